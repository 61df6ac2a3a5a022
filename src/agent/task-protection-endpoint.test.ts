import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ControlPlaneError } from './control-plane-client';
import { TaskProtectionEndpoint, goTime, type TaskProtectionApi } from './task-protection-endpoint';

const TASK = 'arn:aws:ecs:us-east-1:000000000000:task/c1/0123456789abcdef0123456789abcdef';
const CLUSTER = 'arn:aws:ecs:us-east-1:000000000000:cluster/c1';
const INSTANCE = 'arn:aws:ecs:us-east-1:000000000000:container-instance/c1/ffffffffffffffffffffffffffffffff';

const calls: { op: string; req: unknown; instance: string }[] = [];
let answer: () => Promise<unknown> = async () => ({});
const api: TaskProtectionApi = {
  updateTaskProtection: (req, instance) => (calls.push({ op: 'update', req, instance }), answer() as never),
  getTaskProtection: (req, instance) => (calls.push({ op: 'get', req, instance }), answer() as never),
};
const ep = new TaskProtectionEndpoint({ host: '127.0.0.1', port: 0, api, taskFor: (id) => (id === 'tok' ? { taskArn: TASK, clusterArn: CLUSTER } : undefined), containerInstanceArn: () => INSTANCE });
let uri = '';
before(async () => {
  await ep.start();
  uri = ep.uriFor('tok');
});
after(() => ep.close());

async function call(method: string, body?: string, base = uri): Promise<{ status: number; json: any }> {
  const r = await fetch(`${base}/task-protection/v1/state`, { method, body });
  return { status: r.status, json: await r.json() };
}

test('goTime writes epoch seconds as Go marshals a time.Time', () => {
  assert.equal(goTime(1_700_000_000), '2023-11-14T22:13:20Z');
  assert.equal(goTime(1_700_000_000.12), '2023-11-14T22:13:20.12Z');
  assert.equal(goTime(1_700_000_000.005), '2023-11-14T22:13:20.005Z');
});

test('PUT forwards to UpdateTaskProtection for the task the endpoint id names and answers {protection}', async () => {
  calls.length = 0;
  answer = async () => ({ protectedTasks: [{ taskArn: TASK, protectionEnabled: true, expirationDate: 1_700_003_600 }], failures: [] });
  const r = await call('PUT', '{"ProtectionEnabled":true,"ExpiresInMinutes":60}');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { protection: { ExpirationDate: '2023-11-14T23:13:20Z', ProtectionEnabled: true, TaskArn: TASK } });
  assert.deepEqual(calls, [{ op: 'update', req: { cluster: CLUSTER, tasks: [TASK], protectionEnabled: true, expiresInMinutes: 60 }, instance: INSTANCE }]);
  // Keys match case-insensitively (Go's decoder); no ExpiresInMinutes leaves the default to ECS.
  calls.length = 0;
  await call('PUT', '{"protectionEnabled":false}');
  assert.deepEqual(calls[0]!.req, { cluster: CLUSTER, tasks: [TASK], protectionEnabled: false });
});

test('GET forwards to GetTaskProtection; an unprotected task has a null ExpirationDate', async () => {
  calls.length = 0;
  answer = async () => ({ protectedTasks: [{ taskArn: TASK, protectionEnabled: false }], failures: [] });
  const r = await call('GET');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { protection: { ExpirationDate: null, ProtectionEnabled: false, TaskArn: TASK } });
  assert.deepEqual(calls, [{ op: 'get', req: { cluster: CLUSTER, tasks: [TASK] }, instance: INSTANCE }]);
});

test('a failure from ECS is answered as {failure}', async () => {
  answer = async () => ({ protectedTasks: [], failures: [{ arn: TASK, reason: 'TASK_NOT_VALID' }] });
  const r = await call('GET');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { failure: { Arn: TASK, Detail: null, Reason: 'TASK_NOT_VALID' } });
});

test('an ECS error keeps its status, code, message and request id; a transport failure is a 500', async () => {
  answer = async () => {
    throw new ControlPlaneError('InvalidParameterException', 'expiresInMinutes must be between 1 and 2880.', 400, 'req-1');
  };
  let r = await call('PUT', '{"ProtectionEnabled":true,"ExpiresInMinutes":9999}');
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { requestID: 'req-1', error: { Arn: TASK, Code: 'InvalidParameterException', Message: 'expiresInMinutes must be between 1 and 2880.' } });
  answer = async () => {
    throw new ControlPlaneError('NetworkError', 'connect ECONNREFUSED 127.0.0.1:1');
  };
  r = await call('GET');
  assert.equal(r.status, 500);
  assert.deepEqual(r.json, { error: { Arn: TASK, Code: 'ServerException', Message: 'connect ECONNREFUSED 127.0.0.1:1' } });
});

test('bad requests get the ECS agent answers and reach nobody', async () => {
  calls.length = 0;
  for (const body of ['', 'nope', '{"ProtectionEnabled":"yes"}', '{"ProtectionEnabled":true,"Extra":1}', '[]']) {
    const r = await call('PUT', body);
    assert.equal(r.status, 400, body);
    assert.deepEqual(r.json, { error: { Code: 'InvalidParameterException', Message: 'UpdateTaskProtection: failed to decode request' } }, body);
  }
  for (const body of ['{}', 'null', '{"ExpiresInMinutes":5}']) {
    const r = await call('PUT', body);
    assert.equal(r.status, 400, body);
    assert.deepEqual(r.json, { error: { Arn: TASK, Code: 'InvalidParameterException', Message: "Invalid request: does not contain 'ProtectionEnabled' field" } }, body);
  }
  const unknown = await call('GET', undefined, ep.uriFor('not-a-task'));
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.json, { error: { Code: 'ResourceNotFoundException', Message: 'Failed to find a task for the request' } });
  const del = await call('DELETE');
  assert.equal(del.status, 405);
  assert.equal(calls.length, 0);
});

test('a client that half-closes after its request still gets the answer', async () => {
  answer = () => new Promise((r) => setTimeout(() => r({ protectedTasks: [{ taskArn: TASK, protectionEnabled: false }], failures: [] }), 100));
  const { port, pathname } = new URL(uri);
  const text = await new Promise<string>((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.end(`GET ${pathname}/task-protection/v1/state HTTP/1.0\r\n\r\n`));
    let got = '';
    s.on('data', (d) => (got += String(d)));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.ok(text.endsWith(JSON.stringify({ protection: { ExpirationDate: null, ProtectionEnabled: false, TaskArn: TASK } })), text);
});
