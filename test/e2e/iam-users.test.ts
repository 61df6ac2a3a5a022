/**
 * IAM users and identity policies, attacked from the wrong side with the tools users have: users
 * are made with `wharf credentials create` (the running server picks them up without a restart),
 * then the AWS CLI v2 and boto3 call with their keys. A read-only key cannot RunTask; a key
 * scoped to cluster A cannot touch cluster B; an explicit Deny beats an Allow; rotate and delete
 * invalidate keys; a refused call changes nothing in the store; STS says who the caller is.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { ListClustersCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import { signRequest } from '../../src/lib';
import { ACCOUNT_ID, AWS_CLI, awsCli, boto3, childEnv, run, startTestServer, type Keys, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
const E = `arn:aws:ecs:us-east-1:${ACCOUNT_ID}`;
const userArn = (n: string) => `arn:aws:iam::${ACCOUNT_ID}:user/${n}`;

const wharf = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', ...args, '--data-dir', srv.dataDir], srv.env());

async function createUser(name: string, policy: string): Promise<Keys & { userId: string }> {
  const r = await wharf(['credentials', 'create', '--name', name, '--policy', policy, '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const k = JSON.parse(r.stdout).AccessKey;
  return { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey, userId: k.UserId };
}

/** The server re-reads users.json at most once a second. */
const pickedUp = () => sleep(1100);

/** A client of the test server signing with `keys`. */
const as = (keys: Keys): TestServer => ({ ...srv, env: (extra = {}) => childEnv(keys, srv.region, extra) });

const aws = (keys: Keys, args: string[]) => run(AWS_CLI, [...args, '--endpoint-url', srv.endpoint, '--output', 'json'], childEnv(keys, srv.region));

/** Every key and revision in the store, to prove a refused call wrote nothing. */
async function storeDump(): Promise<string> {
  const s = await srv.server.store.snapshot('');
  return JSON.stringify(s.entries.map((e) => [e.key, e.modRevision]));
}

let ro: Keys & { userId: string };
let scoped: Keys;
let denyB: Keys;

before(async () => {
  srv = await startTestServer();
  for (const c of ['a', 'b']) assert.equal((await awsCli(srv, ['create-cluster', '--cluster-name', c])).code, 0);
  const td = await awsCli(srv, ['register-task-definition', '--family', 'web', '--container-definitions', JSON.stringify([{ name: 'web', image: 'nginx', memory: 64 }])]);
  assert.equal(td.code, 0, td.stderr);

  const policies = fs.mkdtempSync(path.join(srv.dataDir, 'policies-'));
  // Scoped to cluster A: ECS actions whose ecs:cluster is A, and A itself as a resource.
  const scopedFile = path.join(policies, 'scoped.json');
  fs.writeFileSync(scopedFile, JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'InClusterA', Effect: 'Allow', Action: ['ecs:RunTask', 'ecs:CreateService', 'ecs:ListTasks', 'ecs:DescribeServices'], Resource: '*', Condition: { ArnEquals: { 'ecs:cluster': `${E}:cluster/a` } } },
      { Sid: 'ClusterA', Effect: 'Allow', Action: 'ecs:Describe*', Resource: `${E}:cluster/a` },
      { Sid: 'TaskDefinitions', Effect: 'Allow', Action: ['ecs:DescribeTaskDefinition', 'ecs:ListTaskDefinitions'], Resource: '*' },
    ],
  }));
  const denyFile = path.join(policies, 'deny-b.json');
  fs.writeFileSync(denyFile, JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: '*', Resource: '*' },
      { Effect: 'Deny', Action: 'ecs:*', Resource: '*', Condition: { StringLike: { 'ecs:cluster': '*:cluster/b' } } },
      { Effect: 'Deny', Action: ['ecs:DeleteCluster', 'ecs:DescribeClusters'], Resource: `${E}:cluster/b` },
      { Effect: 'Deny', Action: 'sts:*', Resource: '*' },
    ],
  }));
  ro = await createUser('reader', 'readonly');
  scoped = await createUser('team-a', scopedFile);
  denyB = await createUser('not-b', denyFile);
  await pickedUp();
});
after(() => srv.close());

test('a read-only key can describe but cannot RunTask: AccessDeniedException in IAM wording, nothing written', async () => {
  const d = await aws(ro, ['ecs', 'describe-clusters', '--clusters', 'a', 'b']);
  assert.equal(d.code, 0, d.stderr);
  assert.deepEqual(JSON.parse(d.stdout).clusters.map((c: { clusterName: string }) => c.clusterName), ['a', 'b']);

  const before = await storeDump();
  const r = await aws(ro, ['ecs', 'run-task', '--cluster', 'a', '--task-definition', 'web']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /AccessDeniedException/);
  assert.ok(r.stderr.includes(`User: ${userArn('reader')} is not authorized to perform: ecs:RunTask on resource: ${E}:task-definition/web:1 because no identity-based policy allows the ecs:RunTask action`), r.stderr);
  // The AWS SDK for JavaScript v3 signs with the 64-character secret as well, and is refused alike.
  const sdk = srv.ecs({ accessKeyId: ro.accessKeyId, secretAccessKey: ro.secretAccessKey });
  assert.equal((await sdk.send(new ListClustersCommand({}))).clusterArns?.length, 2);
  await assert.rejects(sdk.send(new RunTaskCommand({ cluster: 'a', taskDefinition: 'web' })), (e: Error) => e.name === 'AccessDeniedException' && e.message.includes('ecs:RunTask on resource'));
  const c = await aws(ro, ['ecs', 'create-cluster', '--cluster-name', 'c']);
  assert.match(c.stderr, /AccessDeniedException.*ecs:CreateCluster on resource: arn:aws:ecs:us-east-1:123456789012:cluster\/c /);
  const s = await aws(ro, ['secretsmanager', 'create-secret', '--name', 'x', '--secret-string', 'y']);
  assert.match(s.stderr, /AccessDeniedException.*secretsmanager:CreateSecret/);
  // Query protocol (ELBv2) is checked as well; its reads are allowed.
  const tg = await aws(ro, ['elbv2', 'create-target-group', '--name', 'tg', '--protocol', 'HTTP', '--port', '80', '--vpc-id', 'vpc-1']);
  assert.match(tg.stderr, /\(AccessDenied\).*User: arn:aws:iam::123456789012:user\/reader is not authorized to perform: elasticloadbalancing:CreateTargetGroup on resource: \* because/);
  const sg = await aws(ro, ['ec2', 'create-security-group', '--group-name', 'g', '--description', 'd']);
  assert.match(sg.stderr, /\(UnauthorizedOperation\).*You are not authorized to perform this operation. User: .*ec2:CreateSecurityGroup/);
  assert.equal((await aws(ro, ['elbv2', 'describe-load-balancers'])).code, 0);
  assert.equal(await storeDump(), before, 'the refused calls changed nothing in the store');
  const tasks = await awsCli(srv, ['list-tasks', '--cluster', 'a']);
  assert.deepEqual(tasks.json.taskArns, []);
});

test('a key scoped to cluster A works in A and is refused in B (boto3)', async () => {
  const out = await boto3(as(scoped), `
import botocore.exceptions as bx
def call(fn, **kw):
    try:
        r = fn(**kw)
        r.pop("ResponseMetadata", None)
        return {"ok": r}
    except bx.ClientError as e:
        return {"error": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
res = {}
for c in ["a", "b"]:
    res[c] = {
        "run": call(ecs.run_task, cluster=c, taskDefinition="web"),
        "svc": call(ecs.create_service, cluster=c, serviceName="api", taskDefinition="web", desiredCount=0),
        "list": call(ecs.list_tasks, cluster=c),
        "describe": call(ecs.describe_clusters, clusters=[c]),
    }
out(res)
`);
  // In A: authorised. A has no container instances, so RunTask gets past IAM to ECS's own answer.
  assert.deepEqual(out.a.run, { error: 'InvalidParameterException', message: 'No Container Instances were found in your cluster.' });
  assert.ok(out.a.svc.ok?.service?.serviceArn === `${E}:service/a/api`, JSON.stringify(out.a.svc));
  assert.deepEqual(out.a.list.ok?.taskArns, []);
  assert.equal(out.a.describe.ok?.clusters?.[0]?.clusterName, 'a');
  // In B: every one refused, naming the resource and the user.
  for (const [k, action, resource] of [
    ['run', 'ecs:RunTask', `${E}:task-definition/web:1`],
    ['svc', 'ecs:CreateService', `${E}:service/b/api`],
    ['list', 'ecs:ListTasks', '*'],
    ['describe', 'ecs:DescribeClusters', `${E}:cluster/b`],
  ] as const) {
    assert.equal(out.b[k].error, 'AccessDeniedException', `${k}: ${JSON.stringify(out.b[k])}`);
    assert.equal(out.b[k].message, `User: ${userArn('team-a')} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`);
  }
  const services = await awsCli(srv, ['list-services', '--cluster', 'b']);
  assert.deepEqual(services.json.serviceArns, [], 'no service was made in B');
});

test('an explicit Deny beats an Allow', async () => {
  const del = await aws(denyB, ['ecs', 'delete-cluster', '--cluster', 'b']);
  assert.ok(del.stderr.includes(`User: ${userArn('not-b')} is not authorized to perform: ecs:DeleteCluster on resource: ${E}:cluster/b with an explicit deny in an identity-based policy`), del.stderr);
  const run_ = await aws(denyB, ['ecs', 'list-tasks', '--cluster', 'b']);
  assert.match(run_.stderr, /AccessDeniedException.*ecs:ListTasks.*explicit deny/);
  assert.equal((await aws(denyB, ['ecs', 'list-tasks', '--cluster', 'a'])).code, 0, 'the Allow still holds elsewhere');
  const b = await awsCli(srv, ['describe-clusters', '--clusters', 'b']);
  assert.equal(b.json.clusters[0].status, 'ACTIVE', 'cluster B is still there');
});

/** Opens the agent channel as the Wharf agent does (a signed upgrade GET); resolves the HTTP status (101 when opened). */
function openAgentChannel(keys: Keys, cluster: string, containerInstance: string): Promise<{ status: number; body: string }> {
  const u = new URL('/v1/agent/connect', srv.endpoint);
  u.searchParams.set('cluster', cluster);
  u.searchParams.set('containerInstance', containerInstance);
  const headers = signRequest({ method: 'GET', url: u.toString(), headers: {}, body: '' }, { ...keys, region: srv.region, service: 'ecs' });
  delete headers.host;
  u.protocol = 'ws:';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(u.toString(), { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve({ status: 101, body: '' });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (e) => reject(e));
  });
}

test('a user key without ecs:Poll cannot open the agent channel (which carries tasks and their secrets)', async () => {
  const ci = `${E}:container-instance/a/0123456789abcdef0123456789abcdef`;
  const refused = await openAgentChannel(ro, 'a', ci);
  assert.equal(refused.status, 403);
  assert.ok(refused.body.includes(`User: ${userArn('reader')} is not authorized to perform: ecs:Poll on resource: ${ci}`), refused.body);
  // The root key gets past IAM to the gateway, which answers for the unknown instance itself.
  const root = await openAgentChannel(srv.keys, 'a', ci);
  assert.notEqual(root.status, 403, root.body);
});

test('get-caller-identity names the user (even under a Deny of sts:*), and the built-in key as root', async () => {
  const me = await aws(ro, ['sts', 'get-caller-identity']);
  assert.equal(me.code, 0, me.stderr);
  assert.deepEqual(JSON.parse(me.stdout), { UserId: ro.userId, Account: ACCOUNT_ID, Arn: userArn('reader') });
  const denied = await aws(denyB, ['sts', 'get-caller-identity']);
  assert.equal(JSON.parse(denied.stdout).Arn, userArn('not-b'));
  const root = await aws(srv.keys, ['sts', 'get-caller-identity']);
  assert.deepEqual(JSON.parse(root.stdout), { UserId: ACCOUNT_ID, Account: ACCOUNT_ID, Arn: `arn:aws:iam::${ACCOUNT_ID}:root` });
});

test('rotate gives a new key and the old one stops working; delete ends the new one', async () => {
  const old = await createUser('rotating', 'admin');
  await pickedUp();
  assert.equal((await aws(old, ['ecs', 'list-clusters'])).code, 0);
  const r = await wharf(['credentials', 'rotate', '--name', 'rotating', '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const k = JSON.parse(r.stdout).AccessKey;
  const fresh = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
  await pickedUp();
  assert.match((await aws(old, ['ecs', 'list-clusters'])).stderr, /UnrecognizedClientException/);
  assert.equal((await aws(fresh, ['ecs', 'list-clusters'])).code, 0);

  const list = await wharf(['credentials', 'list']);
  assert.match(list.stdout, new RegExp(`rotating\\s+${fresh.accessKeyId}\\s+admin`));
  assert.ok(!list.stdout.includes(fresh.secretAccessKey), 'list never shows a secret');
  assert.ok(!fs.readFileSync(path.join(srv.dataDir, 'users.json'), 'utf8').includes(fresh.secretAccessKey), 'the secret is not stored');
  assert.equal(fs.statSync(path.join(srv.dataDir, 'users.json')).mode & 0o777, 0o600);

  assert.equal((await wharf(['credentials', 'delete', '--name', 'rotating'])).code, 0);
  await pickedUp();
  assert.match((await aws(fresh, ['ecs', 'list-clusters'])).stderr, /UnrecognizedClientException/);
});

test('a malformed policy file is refused at create time with a MalformedPolicyDocument message', async () => {
  const bad = path.join(srv.dataDir, 'bad-policy.json');
  fs.writeFileSync(bad, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'RunTask', Resource: '*' }] }));
  const r = await wharf(['credentials', 'create', '--name', 'bad', '--policy', bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /MalformedPolicyDocument: Actions\/Conditions must be prefaced by a vendor/);
  assert.doesNotMatch((await wharf(['credentials', 'list'])).stdout, /\bbad\b/);
});
