import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTAINER_INSTANCE_HEADER } from '../api/agent/protocol';
import { RegionPolicy } from '../core/regions';
import { createLogger, signRequest } from '../lib';
import type { RequestContext } from './api-registry';
import { createHttpServer, type WharfHttpServer } from './http-server';

const AGENT = { accessKeyId: 'AKAGENT', secretAccessKey: 'agent-secret' };
const PREFIX = 'Test_20240101';
let srv: WharfHttpServer;
let url = '';

before(async () => {
  srv = createHttpServer({
    apis: [{ targetPrefix: PREFIX, signingName: 'ecs', modelOperations: ['Echo'], handlers: { Echo: async (_i, c: RequestContext) => ({ ...c }) }, agentOperations: ['Echo'] }],
    credentials: { lookup: (id) => (id === AGENT.accessKeyId ? { secret: AGENT.secretAccessKey, principal: { kind: 'agent-token', iamResource: 'role/wharf-agent' } } : undefined) },
    accountId: '000000000000',
    regions: new RegionPolicy('us-east-1'),
    log: createLogger('test', 'silent'),
  });
  const { port } = await srv.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${port}/`;
});
after(() => srv.close());

async function echo(headers: Record<string, string>, addAfterSigning: Record<string, string> = {}): Promise<any> {
  const body = '{}';
  const h: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${PREFIX}.Echo`, ...headers };
  Object.assign(h, signRequest({ method: 'POST', url, headers: h, body }, { ...AGENT, region: 'us-east-1', service: 'ecs' }), addAfterSigning);
  delete h.host;
  const r = await fetch(url, { method: 'POST', headers: h, body });
  assert.equal(r.status, 200);
  return r.json();
}

test('the container instance an agent names counts only when the signature covers it', async () => {
  const arn = 'arn:aws:ecs:us-east-1:000000000000:container-instance/c/abc';
  const signed = await echo({ [CONTAINER_INSTANCE_HEADER]: arn });
  assert.equal(signed.containerInstanceArn, arn);
  assert.equal(signed.isAgent, true);
  const unsigned = await echo({}, { [CONTAINER_INSTANCE_HEADER]: arn });
  assert.equal(unsigned.containerInstanceArn, undefined);
  // The Host the caller used is passed on (DiscoverPollEndpoint answers with it).
  assert.equal(signed.host, new URL(url).host);
});
