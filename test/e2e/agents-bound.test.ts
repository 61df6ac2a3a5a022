/**
 * Issue 12, "agents bound to themselves", attacked end to end: a real control plane, a real
 * Docker agent (Y) running a task with a secret, and an attacker holding what a compromised host
 * X would hold: its instance credential (handed back by its registration) and a join token.
 *
 * Each attack is also made by the party that may (Y's own credential, a token of the right
 * cluster), so a test passes only because of the boundary, and fails if the boundary is removed.
 *
 * Run: node --import tsx --test test/e2e/agents-bound.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CreateClusterCommand, DescribeContainerInstancesCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import WebSocket from 'ws';
import { AGENT_CONNECT_PATH, type ServerToAgentMessage } from '../../src/api/agent/protocol';
import { createAgentToken, revokeAgentToken } from '../../src/cmd/agent-tokens';
import { signRequest } from '../../src/lib';
import { dockerSkipReason } from '../images/docker-test-env';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';
import { AWS_CLI, TARGET_PREFIX, run, type Keys } from './helpers/wharf-server';

const skip = dockerSkipReason();
const TOTAL = [
  { name: 'CPU', type: 'INTEGER', integerValue: 1024 },
  { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 },
];

describe('agents bound to themselves', { skip, timeout: 240_000 }, () => {
  let h: TasksHarness;
  const secret = `s3cret-${randomBytes(8).toString('hex')}`;
  let other = ''; // cluster B
  let tokenA: Keys & { cluster?: string };
  let tokenB: Keys & { cluster?: string };
  let x: { arn: string; key: Keys }; // the attacker's instance, in the same cluster as Y
  let yArn = '';
  let yKey: Keys;
  let yTask = '';

  /** One ECS call signed with `key`, as raw as an attacker would send it. */
  const call = async (key: Keys, op: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const url = `${h.srv.endpoint}/`;
    const payload = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${TARGET_PREFIX}.${op}` };
    Object.assign(headers, signRequest({ method: 'POST', url, headers, body: payload }, { ...key, region: h.srv.region, service: 'ecs' }));
    delete headers.host;
    const res = await fetch(url, { method: 'POST', headers, body: payload });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  /** Opens the agent channel of `instanceArn` signed with `key`: the first message, or the refusal. */
  const channel = (key: Keys, cluster: string, instanceArn: string) => {
    const url = `${h.srv.endpoint}${AGENT_CONNECT_PATH}?cluster=${encodeURIComponent(cluster)}&containerInstance=${encodeURIComponent(instanceArn)}`;
    const { host: _h, ...headers } = signRequest({ method: 'GET', url, headers: {}, body: '' }, { ...key, region: h.srv.region, service: 'ecs' });
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
    const received: string[] = [];
    ws.on('message', (d) => received.push(String(d)));
    ws.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const outcome = new Promise<{ opened: true; first: ServerToAgentMessage } | { opened: false; status: number; type: string; body: string }>((resolve) => {
      ws.once('message', (d) => resolve({ opened: true, first: JSON.parse(String(d)) as ServerToAgentMessage }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ opened: false, status: res.statusCode ?? 0, type: String(res.headers['x-amzn-errortype'] ?? ''), body }));
      });
    });
    return { ws, received, closed, outcome };
  };

  const describeY = async () => (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [yArn] }))).containerInstances![0]!;

  before(async () => {
    h = await startTasksHarness('agents-bound');
    other = `${h.cluster}-b`;
    await h.ecs.send(new CreateClusterCommand({ clusterName: other }));
    // Tokens made while the server runs: it picks them up without a restart.
    tokenA = createAgentToken(h.srv.dataDir, h.cluster);
    tokenB = createAgentToken(h.srv.dataDir, other);
    // Y: the harness's real Docker agent. Its credential is the one it keeps in its data dir.
    yArn = h.instanceArn;
    yKey = JSON.parse(fs.readFileSync(path.join(h.agentDir, 'agent', 'instance-credential.json'), 'utf8')) as Keys;
    // A secret Y's task gets, and the task, placed on Y (X has no channel, so it is not connected).
    const sm = await run(AWS_CLI, ['secretsmanager', 'create-secret', '--name', `bound/${process.pid}`, '--secret-string', secret, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env());
    assert.equal(sm.code, 0, sm.stderr);
    const td = await h.register('bound-web', [
      { name: 'app', image: 'wharf-test/busybox:latest', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'], secrets: [{ name: 'S', valueFrom: JSON.parse(sm.stdout).ARN }] },
    ]);
    // X registers with the cluster's join token, as any new host would.
    const reg = await call(tokenA, 'RegisterContainerInstance', { cluster: h.cluster, totalResources: TOTAL });
    assert.equal(reg.status, 200, JSON.stringify(reg.json));
    const issued = reg.json.wharfInstanceCredential as Keys;
    x = { arn: (reg.json.containerInstance as { containerInstanceArn: string }).containerInstanceArn, key: { accessKeyId: issued.accessKeyId, secretAccessKey: issued.secretAccessKey } };
    const out = await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }));
    assert.deepEqual(out.failures, []);
    yTask = out.tasks![0]!.taskArn!;
    assert.equal(out.tasks![0]!.containerInstanceArn, yArn);
    await h.waitTask(yTask, (t) => t.lastStatus === 'RUNNING', 'Y runs its task');
  });
  after(async () => {
    await h?.close();
  });

  test('the agent keeps its instance credential in its data dir, readable by its owner only', () => {
    const file = path.join(h.agentDir, 'agent', 'instance-credential.json');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.match(yKey.accessKeyId, /^AKIAWINST/);
    assert.equal((JSON.parse(fs.readFileSync(file, 'utf8')) as { containerInstanceArn: string }).containerInstanceArn, yArn);
  });

  test('a join token of cluster A cannot register into cluster B (the token of B can)', async () => {
    const refused = await call(tokenA, 'RegisterContainerInstance', { cluster: other, totalResources: TOTAL });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.__type, 'AccessDeniedException');
    assert.match(String(refused.json.message), new RegExp(`^User: arn:aws:iam::\\d{12}:role/wharf-agent is not authorized to perform: ecs:RegisterContainerInstance on resource: arn:aws:ecs:${h.srv.region}:\\d{12}:cluster/${other} because this join token belongs to cluster ${h.cluster}$`));
    const allowed = await call(tokenB, 'RegisterContainerInstance', { cluster: other, totalResources: TOTAL });
    assert.equal(allowed.status, 200);
    // Nor can a token take over an existing instance by naming it.
    const takeover = await call(tokenA, 'RegisterContainerInstance', { cluster: h.cluster, containerInstanceArn: yArn, totalResources: TOTAL });
    assert.equal(takeover.json.__type, 'AccessDeniedException');
    // A revoked token is unknown at once, without a server restart.
    assert.ok(revokeAgentToken(h.srv.dataDir, tokenB.accessKeyId));
    const revoked = await call(tokenB, 'RegisterContainerInstance', { cluster: other, totalResources: TOTAL });
    assert.equal(revoked.status, 400);
    assert.equal(revoked.json.__type, 'UnrecognizedClientException');
  });

  test("instance X's credential cannot report on Y's task (Y's own credential can), and Y's task is unchanged", async () => {
    const refused = await call(x.key, 'SubmitTaskStateChange', { cluster: h.cluster, task: yTask, status: 'STOPPED', reason: 'X says so' });
    assert.equal(refused.json.__type, 'AccessDeniedException');
    assert.match(String(refused.json.message), /only report on the tasks placed on its own container instance/);
    const container = await call(x.key, 'SubmitContainerStateChange', { cluster: h.cluster, task: yTask, containerName: 'app', status: 'STOPPED', exitCode: 1 });
    assert.equal(container.json.__type, 'AccessDeniedException');
    const t = await h.describe(yTask);
    assert.equal(t.lastStatus, 'RUNNING');
    assert.equal(t.desiredStatus, 'RUNNING');
    assert.equal(t.containers![0]!.lastStatus, 'RUNNING');
    // The same report signed by Y's credential is accepted (a RUNNING report changes nothing).
    const own = await call(yKey, 'SubmitTaskStateChange', { cluster: h.cluster, task: yTask, status: 'RUNNING' });
    assert.equal(own.status, 200, JSON.stringify(own.json));
  });

  test("instance X's credential cannot drain or deregister Y, nor create a cluster", async () => {
    const drain = await call(x.key, 'UpdateContainerInstancesState', { cluster: h.cluster, containerInstances: [yArn], status: 'DRAINING' });
    assert.equal(drain.json.__type, 'AccessDeniedException');
    const dereg = await call(x.key, 'DeregisterContainerInstance', { cluster: h.cluster, containerInstance: yArn, force: true });
    assert.equal(dereg.json.__type, 'AccessDeniedException');
    const create = await call(x.key, 'CreateCluster', { clusterName: `x-made-${process.pid}` });
    assert.equal(create.json.__type, 'AccessDeniedException');
    const y = await describeY();
    assert.equal(y.status, 'ACTIVE');
    assert.equal(y.agentConnected, true);
    // X may drain itself.
    const self = await call(x.key, 'UpdateContainerInstancesState', { cluster: h.cluster, containerInstances: [x.arn], status: 'DRAINING' });
    assert.equal(self.status, 200, JSON.stringify(self.json));
  });

  test("instance X's credential cannot open Y's channel, so never sees Y's secret (Y's credential would)", async () => {
    const attack = channel(x.key, h.cluster, yArn);
    const got = await attack.outcome;
    assert.equal(got.opened, false);
    assert.equal(got.opened === false && got.status, 403);
    assert.equal(got.opened === false && got.type, 'AccessDeniedException');
    // Refused for whose credential it is, not merely because Y's agent is connected.
    assert.match(got.opened === false ? got.body : '', new RegExp(`User: arn:aws:iam::\\d{12}:role/wharf-container-instance/${h.cluster}/[0-9a-f]{32} is not authorized to perform: ecs:Poll on resource: ${yArn} because an instance credential may only open the channel of its own container instance`));
    assert.ok(!attack.received.join('').includes(secret));
    attack.ws.terminate();
    // Y's real agent still holds its channel: a second socket with another credential is refused
    // even when that credential is the account root's.
    const root = channel(h.srv.keys, h.cluster, yArn);
    const second = await root.outcome;
    assert.equal(second.opened === false && second.type, 'AccessDeniedException');
    assert.match(second.opened === false ? second.body : '', /another agent holds the channel/);
    root.ws.terminate();
    assert.equal((await describeY()).agentConnected, true, 'Y was not displaced');
    // The control: Y's own credential opens the channel (replacing Y's socket, as an agent restart
    // does) and its desired state carries the secret value X was kept from.
    const own = channel(yKey, h.cluster, yArn);
    const opened = await own.outcome;
    assert.equal(opened.opened, true);
    assert.ok(own.received.join('').includes(secret), "Y's channel carries its task's secret");
    own.ws.close();
    // Y's real agent, its socket replaced, reconnects by itself.
    const end = Date.now() + 30_000;
    while (!(await describeY()).agentConnected && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    assert.equal((await describeY()).agentConnected, true, "Y's agent is back on its channel");
  });

  test('a second channel for X with another credential is refused; X reconnecting with its own replaces its socket', async () => {
    const mine = channel(x.key, h.cluster, x.arn);
    const first = await mine.outcome;
    assert.equal(first.opened, true);
    assert.ok(!mine.received.join('').includes(secret), "X's own desired state carries none of Y's secrets");
    const withY = channel(yKey, h.cluster, x.arn);
    const refused = await withY.outcome;
    assert.equal(refused.opened === false && refused.type, 'AccessDeniedException');
    withY.ws.terminate();
    const token = channel(tokenA, h.cluster, x.arn);
    assert.equal(((await token.outcome) as { type?: string }).type, 'AccessDeniedException', 'a join token opens no channel');
    token.ws.terminate();
    const again = channel(x.key, h.cluster, x.arn);
    assert.equal((await again.outcome).opened, true);
    assert.equal(await mine.closed, 4000, 'the older socket is replaced');
    again.ws.close();
  });

  test('the AWS CLI reads a RegisterContainerInstance answer and ignores the Wharf credential member', async () => {
    const r = await run(AWS_CLI, ['ecs', 'register-container-instance', '--cluster', other, '--total-resources', 'name=CPU,type=INTEGER,integerValue=256', '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env());
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(out), ['containerInstance']);
  });

  test('Y still runs its task with its secret, through all of that', async () => {
    const t = await h.describe(yTask);
    assert.equal(t.lastStatus, 'RUNNING');
    assert.equal((await describeY()).runningTasksCount, 1);
  });
});
