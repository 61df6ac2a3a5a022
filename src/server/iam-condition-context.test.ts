/**
 * The global condition keys through the HTTP server: a user's policy sees the region of the
 * credential scope, whether the listener is TLS, the connection's address, the time and who the
 * caller is, so conditions on them decide as they would on AWS.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegionPolicy } from '../core/regions';
import { parsePolicy } from '../core/iam-policy';
import { createLogger, deriveSecret, signRequest } from '../lib';
import type { Principal } from '../control/context';
import { createHttpServer, type WharfHttpServer } from './http-server';
import type { KeyHolder } from './session-auth';

const PREFIX = 'Test_20240101';
const keys = new Map<string, KeyHolder>();
const servers: WharfHttpServer[] = [];
let http = '';
let https = '';

/** One user per policy; its access key id is the policy's name. */
const policies: Record<string, unknown> = {
  // The tester's case: allow ECS, deny everything outside us-east-1.
  ONLYUSEAST1: { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: 'ecs:*', Resource: '*' },
    { Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringNotEquals: { 'aws:RequestedRegion': ['us-east-1'] } } },
  ] },
  LISTINUSEAST1: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:List*', Resource: '*', Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } } }] },
  TLSONLY: { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: '*', Resource: '*' },
    { Effect: 'Deny', Action: '*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
  ] },
  FROMLOOPBACK: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': ['127.0.0.0/8', '::1'] } } }] },
  FROMELSEWHERE: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } } }] },
  EXPIRED: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { DateLessThan: { 'aws:CurrentTime': '2020-01-01T00:00:00Z' } } }] },
  UNTIL2100: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { NumericLessThan: { 'aws:EpochTime': '4102444800' } } }] },
  ALICEONLY: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: {
    StringEquals: { 'aws:username': 'alice', 'aws:PrincipalType': 'User', 'aws:PrincipalAccount': '123456789012', 'aws:userid': 'AIDAALICE' },
    ArnEquals: { 'aws:PrincipalArn': 'arn:aws:iam::123456789012:user/alice' },
  } }] },
};
const SECRET = 's'.repeat(64);

before(async () => {
  for (const [id, doc] of Object.entries(policies)) {
    keys.set(id, { secret: deriveSecret(SECRET), principal: { kind: 'user', iamResource: 'user/alice', policy: parsePolicy(doc) } as Principal, userId: 'AIDAALICE' });
  }
  const dir = mkdtempSync(join(tmpdir(), 'wharf-iam-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', `${dir}/k`, '-out', `${dir}/c`], { stdio: 'ignore' });
  const tls = { cert: readFileSync(`${dir}/c`), key: readFileSync(`${dir}/k`) };
  for (const secure of [false, true]) {
    const srv = createHttpServer({
      apis: [{ targetPrefix: PREFIX, signingName: 'ecs', modelOperations: ['ListClusters', 'RunTask'], handlers: { ListClusters: async () => ({ clusterArns: [] }), RunTask: async () => ({}) } }],
      credentials: { lookup: (id) => keys.get(id) },
      accountId: '123456789012',
      regions: new RegionPolicy('us-east-1'),
      log: createLogger('test', 'silent'),
      ...(secure ? { tls } : {}),
    });
    servers.push(srv);
    const { port } = await srv.listen(0, '127.0.0.1');
    if (secure) https = `https://127.0.0.1:${port}/`;
    else http = `http://127.0.0.1:${port}/`;
  }
});
after(() => Promise.all(servers.map((s) => s.close())));

/** A signed call; answers the error code, or OK. */
async function call(user: string, op: string, { region = 'us-east-1', secure = false } = {}): Promise<string> {
  const url = secure ? https : http;
  const body = '{}';
  const h: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${PREFIX}.${op}` };
  Object.assign(h, signRequest({ method: 'POST', url, headers: h, body }, { accessKeyId: user, secretAccessKey: SECRET, region, service: 'ecs' }));
  const text = await new Promise<string>((resolve, reject) => {
    const u = new URL(url);
    if (!secure) {
      delete h.host;
      fetch(url, { method: 'POST', headers: h, body }).then((r) => r.text()).then(resolve, reject);
      return;
    }
    const r = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: h, rejectUnauthorized: false }, (res) => {
      let out = '';
      res.on('data', (c: Buffer) => (out += c.toString()));
      res.on('end', () => resolve(out));
    });
    r.on('error', reject);
    r.end(body);
  });
  const parsed = JSON.parse(text) as { __type?: string; message?: string };
  return parsed.__type ? `${parsed.__type}: ${parsed.message}` : 'OK';
}

test('aws:RequestedRegion is the region of the credential scope', async () => {
  assert.equal(await call('ONLYUSEAST1', 'ListClusters'), 'OK', 'a Deny on StringNotEquals lets the named region through');
  assert.match(await call('ONLYUSEAST1', 'ListClusters', { region: 'eu-west-1' }), /^AccessDeniedException: .*ecs:ListClusters .*with an explicit deny/);
  assert.equal(await call('LISTINUSEAST1', 'ListClusters'), 'OK', 'an Allow on StringEquals matches');
  assert.match(await call('LISTINUSEAST1', 'ListClusters', { region: 'eu-west-1' }), /because no identity-based policy allows/);
});

test('aws:SecureTransport is false on plain HTTP and true on the TLS listener', async () => {
  assert.match(await call('TLSONLY', 'RunTask'), /^AccessDeniedException: .*explicit deny/);
  assert.equal(await call('TLSONLY', 'RunTask', { secure: true }), 'OK');
});

test("aws:SourceIp is the connection's address, for IpAddress", async () => {
  assert.equal(await call('FROMLOOPBACK', 'RunTask'), 'OK');
  assert.match(await call('FROMELSEWHERE', 'RunTask'), /^AccessDeniedException/);
});

test('aws:CurrentTime and aws:EpochTime are the time of the call', async () => {
  assert.match(await call('EXPIRED', 'RunTask'), /^AccessDeniedException/);
  assert.equal(await call('UNTIL2100', 'RunTask'), 'OK');
});

test('aws:username, aws:userid, aws:PrincipalType, aws:PrincipalAccount and aws:PrincipalArn name the caller', async () => {
  assert.equal(await call('ALICEONLY', 'RunTask'), 'OK');
});
