/**
 * Tag-on-create through the HTTP server, as ECS's developer guide has it ("Grant permission to tag
 * resources on creation"): a create that carries tags also needs ecs:TagResource, else the request
 * fails with IAM's refusal naming ecs:TagResource; without tags it does not.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RegionPolicy } from '../core/regions';
import { parsePolicy } from '../core/iam-policy';
import { createLogger, deriveSecret, signRequest } from '../lib';
import type { Principal } from '../control/context';
import { ecsIamRequest } from '../control/iam-resources';
import { createHttpServer, type WharfHttpServer } from './http-server';
import type { KeyHolder } from './session-auth';

const PREFIX = 'Test_20240101';
const SECRET = 's'.repeat(64);
const E = 'arn:aws:ecs:us-east-1:123456789012';
const keys = new Map<string, KeyHolder>();
let srv: WharfHttpServer;
let url = '';
const created: string[] = [];

const CREATES = ['ecs:CreateCluster', 'ecs:RunTask', 'ecs:RegisterTaskDefinition', 'ecs:CreateService'];
const policies: Record<string, unknown> = {
  NOTAGGING: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: CREATES, Resource: '*' }] },
  DENYTAGGING: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:*', Resource: '*' }, { Effect: 'Deny', Action: 'ecs:TagResource', Resource: '*' }] },
  // The developer guide's example: tagging allowed only as part of a create.
  TAGONCREATE: { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: CREATES, Resource: '*' },
    { Effect: 'Allow', Action: 'ecs:TagResource', Resource: '*', Condition: { StringEquals: { 'ecs:CreateAction': ['CreateCluster', 'RunTask', 'RegisterTaskDefinition', 'CreateService'] } } },
  ] },
  TASKSOFA: { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: CREATES, Resource: '*' },
    { Effect: 'Allow', Action: 'ecs:TagResource', Resource: `${E}:task/a/*` },
  ] },
};

before(async () => {
  for (const [id, doc] of Object.entries(policies)) {
    keys.set(id, { secret: deriveSecret(SECRET), principal: { kind: 'user', iamResource: 'user/dev', policy: parsePolicy(doc) } as Principal, userId: 'AIDADEV' });
  }
  const handler = (op: string) => async () => {
    created.push(op);
    return {};
  };
  srv = createHttpServer({
    apis: [{
      targetPrefix: PREFIX,
      signingName: 'ecs',
      modelOperations: ['CreateCluster', 'RunTask', 'RegisterTaskDefinition', 'CreateService', 'TagResource'],
      handlers: Object.fromEntries(['CreateCluster', 'RunTask', 'RegisterTaskDefinition', 'CreateService', 'TagResource'].map((op) => [op, handler(op)])),
      authorize: (op, input, partition) => ecsIamRequest(partition, op, input),
    }],
    credentials: { lookup: (id) => keys.get(id) },
    accountId: '123456789012',
    regions: new RegionPolicy('us-east-1'),
    log: createLogger('test', 'silent'),
  });
  const { port } = await srv.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${port}/`;
});
after(() => srv.close());

async function call(user: string, op: string, input: Record<string, unknown>): Promise<string> {
  const body = JSON.stringify(input);
  const h: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${PREFIX}.${op}` };
  Object.assign(h, signRequest({ method: 'POST', url, headers: h, body }, { accessKeyId: user, secretAccessKey: SECRET, region: 'us-east-1', service: 'ecs' }));
  delete h.host;
  const parsed = (await (await fetch(url, { method: 'POST', headers: h, body })).json()) as { __type?: string; message?: string };
  return parsed.__type ? `${parsed.__type}: ${parsed.message}` : 'OK';
}

const tags = [{ key: 'team', value: 'a' }];

test('without ecs:TagResource a tagged create fails, naming ecs:TagResource and the resource; untagged it succeeds', async () => {
  created.length = 0;
  assert.equal(await call('NOTAGGING', 'CreateCluster', { clusterName: 'a' }), 'OK');
  assert.equal(await call('NOTAGGING', 'CreateCluster', { clusterName: 'a', tags }),
    `AccessDeniedException: User: arn:aws:iam::123456789012:user/dev is not authorized to perform: ecs:TagResource on resource: ${E}:cluster/a because no identity-based policy allows the ecs:TagResource action`);
  assert.match(await call('NOTAGGING', 'RegisterTaskDefinition', { family: 'web', containerDefinitions: [], tags }), new RegExp(`ecs:TagResource on resource: ${E}:task-definition/web because`));
  assert.match(await call('NOTAGGING', 'RunTask', { cluster: 'a', taskDefinition: 'web:1', tags }), new RegExp(`ecs:TagResource on resource: ${E}:task/a/\\* because`));
  assert.match(await call('NOTAGGING', 'CreateService', { cluster: 'a', serviceName: 'api', tags }), /ecs:TagResource on resource: .*:service\/a\/api because/);
  assert.deepEqual(created, ['CreateCluster'], 'a refused create does nothing');
});

test('an explicit Deny on ecs:TagResource refuses a tagged create', async () => {
  assert.match(await call('DENYTAGGING', 'RunTask', { taskDefinition: 'web:1', tags }), /ecs:TagResource .* with an explicit deny/);
  assert.equal(await call('DENYTAGGING', 'RunTask', { taskDefinition: 'web:1' }), 'OK');
});

test("the guide's policy: tagging allowed on create (ecs:CreateAction) but not on an existing resource", async () => {
  assert.equal(await call('TAGONCREATE', 'CreateService', { cluster: 'a', serviceName: 'api', tags }), 'OK');
  assert.equal(await call('TAGONCREATE', 'RunTask', { cluster: 'a', taskDefinition: 'web:1', tags }), 'OK');
  assert.match(await call('TAGONCREATE', 'TagResource', { resourceArn: `${E}:cluster/a`, tags }), /ecs:TagResource on resource: .*cluster\/a because no identity-based policy allows/);
});

test("ecs:TagResource on task/<cluster>/* allows tagging the tasks RunTask starts in that cluster only", async () => {
  assert.equal(await call('TASKSOFA', 'RunTask', { cluster: 'a', taskDefinition: 'web:1', tags }), 'OK');
  assert.match(await call('TASKSOFA', 'RunTask', { cluster: 'b', taskDefinition: 'web:1', tags }), /AccessDeniedException/);
});
