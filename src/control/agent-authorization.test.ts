import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FARGATE_POOL } from '../core/fargate-pool';
import { WharfError } from '../core/errors';
import { keys, type ContainerInstanceRecord, type TaskRecord } from '../core/resources';
import type { Logger } from '../lib';
import { authorizeAgent, channelRefusal } from './agent-authorization';
import { controlTestContext, TEST_CALLER } from './control-test-context';
import type { Caller, Principal } from './context';
import { ecsHandlers } from './ecs-api';
import { INSTANCE_CREDENTIAL_MEMBER, instancePrincipal } from './instance-credentials';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-3';
const TOTAL = [
  { name: 'CPU', type: 'INTEGER', integerValue: 1024 },
  { name: 'MEMORY', type: 'INTEGER', integerValue: 2048 },
];

function callerOf(principal: Principal, extra: Partial<Caller> = {}): Caller {
  return { requestId: 'r', accessKeyId: 'AKIAWTEST', principalArn: `arn:aws:iam::${ACCOUNT}:${principal.iamResource}`, isAgent: principal.kind !== 'user', principal, region: REGION, ...extra };
}

function task(id: string, cluster: string, instanceId: string, instanceCluster?: string): TaskRecord {
  return {
    taskArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${cluster}/${id}`,
    clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${cluster}`,
    lastStatus: 'PENDING',
    desiredStatus: 'RUNNING',
    containers: [],
    attachments: [{ id: `att-${id}`, type: 'ElasticNetworkInterface', status: 'PRECREATED' }],
    version: 1,
    wharf: { id, cluster, instanceId, ...(instanceCluster ? { instanceCluster } : {}) },
  };
}

/**
 * Cluster `a` with instances X and Y (registered with a join token of `a`, as agents do), a
 * Fargate pool host P, and a task on each: tx on X, ty on Y, tp (cluster a, Fargate) on P.
 */
async function fixture() {
  const ctx = await controlTestContext({ region: REGION, accountId: ACCOUNT });
  const warned: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = Object.create(ctx.log) as Logger;
  log.warn = ((fields: Record<string, unknown>, msg: string) => void warned.push({ fields, msg })) as Logger['warn'];
  ctx.log = log;
  const ecs = ecsHandlers(ctx);
  await ecs.CreateCluster!({ clusterName: 'a' }, TEST_CALLER);
  await ecs.CreateCluster!({ clusterName: 'b' }, TEST_CALLER);
  const tokenA = callerOf({ kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: 'a' });
  const register = async (cluster: string, caller: Caller) => {
    const out = (await ecs.RegisterContainerInstance!({ cluster, totalResources: TOTAL }, caller)) as Record<string, unknown> & { containerInstance: { containerInstanceArn: string } };
    const id = out.containerInstance.containerInstanceArn.split('/').pop()!;
    const rec = ctx.state.instances.get(cluster, id)!.value;
    return { rec, id, issued: out[INSTANCE_CREDENTIAL_MEMBER] as { accessKeyId: string; secretAccessKey: string } | undefined };
  };
  const x = await register('a', tokenA);
  const y = await register('a', tokenA);
  const p = await register(FARGATE_POOL, callerOf({ kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: FARGATE_POOL }));
  for (const t of [task('tx', 'a', x.id), task('ty', 'a', y.id), task('tp', 'a', p.id, FARGATE_POOL)]) await ctx.store.create(keys.task(t.wharf.cluster, t.wharf.id), t);
  await ctx.state.waitFor(await ctx.store.revision());
  const as = (r: { rec: ContainerInstanceRecord }, extra: Partial<Caller> = {}) => callerOf(instancePrincipal(r.rec), extra);
  return { ctx, ecs, warned, tokenA, x, y, p, as };
}

const denied = (fn: () => void) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WharfError, String(e));
    assert.equal(e.code, 'AccessDeniedException');
    assert.match(e.message, /^User: arn:aws:iam::123456789012:role\/wharf-\S+ is not authorized to perform: ecs:\w+ on resource: \S+ because /);
    return true;
  });

test('registration with a join token hands back a fresh credential bound to the new instance, stored with it and nowhere on the wire', async () => {
  const { x, y, ctx, ecs } = await fixture();
  assert.match(x.issued!.accessKeyId, /^AKIAWINST[A-Z2-7]{11}$/);
  assert.ok(x.issued!.secretAccessKey.length >= 40);
  assert.deepEqual(x.rec.wharf.agentKey, x.issued, 'the store keeps exactly what SigV4 verification needs');
  assert.notEqual(x.issued!.accessKeyId, y.issued!.accessKeyId);
  const described = JSON.stringify(await ecs.DescribeContainerInstances!({ cluster: 'a', containerInstances: [x.id] }, TEST_CALLER));
  assert.ok(!described.includes(x.issued!.secretAccessKey), 'DescribeContainerInstances never shows it');
  // Re-registration with its own credential keeps it and hands nothing back.
  const again = (await ecs.RegisterContainerInstance!({ cluster: 'a', containerInstanceArn: x.rec.containerInstanceArn, totalResources: TOTAL }, callerOf(instancePrincipal(x.rec)))) as Record<string, unknown>;
  assert.equal(again[INSTANCE_CREDENTIAL_MEMBER], undefined);
  assert.deepEqual(ctx.state.instances.get('a', x.id)!.value.wharf.agentKey, x.issued);
});

test('a join token registers only into its own cluster, and never speaks for an existing instance', async () => {
  const { ctx, tokenA, x, warned } = await fixture();
  authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a' }, tokenA);
  authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/a` }, tokenA);
  authorizeAgent(ctx, 'DiscoverPollEndpoint', {}, tokenA);
  denied(() => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'b' }, tokenA));
  // A cluster's token given to a Fargate host: the refusal says which token it needs.
  assert.throws(() => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: FARGATE_POOL }, tokenA), /because this join token belongs to cluster a \(a Fargate host needs the pool's token: wharf credentials --agent --cluster '~fargate'\)$/);
  denied(() => authorizeAgent(ctx, 'RegisterContainerInstance', {}, tokenA)); // `default` is not `a`
  denied(() => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a', containerInstanceArn: x.rec.containerInstanceArn }, tokenA));
  for (const op of ['CreateCluster', 'SubmitTaskStateChange', 'SubmitContainerStateChange', 'UpdateContainerInstancesState', 'DeregisterContainerInstance', 'UpdateTaskProtection']) {
    denied(() => authorizeAgent(ctx, op, { cluster: 'a', task: 'tx', containerInstance: x.id, containerInstances: [x.id] }, tokenA));
  }
  // A legacy token (bound to no cluster) may join any cluster, and claim an instance that has
  // no credential yet, once.
  const legacy = callerOf({ kind: 'agent-token', iamResource: 'role/wharf-agent' });
  authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'b' }, legacy);
  denied(() => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a', containerInstanceArn: x.id }, legacy));
  const { wharf, ...rest } = x.rec;
  const { agentKey: _k, ...bare } = wharf;
  await ctx.state.waitFor(await ctx.store.txn([{ op: 'update', key: keys.instance('a', x.id), value: { ...rest, wharf: bare }, expectedRevision: ctx.state.instances.get('a', x.id)!.modRevision }]));
  authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a', containerInstanceArn: x.id }, legacy);
  // Every refusal was logged with the key, its binding and the operation.
  const b = warned.find((w) => w.fields.operation === 'RegisterContainerInstance' && w.fields.resource === `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/b`)!;
  assert.equal(b.fields.cluster, 'a');
  assert.equal(b.fields.principalKind, 'agent-token');
  assert.equal(warned.length, 11);
});

test("a join token bound to a region registers only into its cluster of that region", async () => {
  const { ctx } = await fixture();
  const here = callerOf({ kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: 'a', region: REGION });
  authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a' }, here);
  const elsewhere = callerOf({ kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: 'a', region: 'us-west-2' });
  assert.throws(
    () => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a' }, elsewhere),
    (e: unknown) => e instanceof WharfError && e.code === 'AccessDeniedException' && e.message.endsWith(`on resource: arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/a because this join token belongs to cluster a of region us-west-2`),
  );
});

test('an instance credential reports on its own tasks only', async () => {
  const { ctx, x, y, p, as } = await fixture();
  const X = as(x);
  authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: 'tx', status: 'RUNNING' }, X);
  authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/a/tx` }, X);
  authorizeAgent(ctx, 'SubmitContainerStateChange', { cluster: 'a', task: 'tx' }, X);
  authorizeAgent(ctx, 'SubmitAttachmentStateChanges', { cluster: 'a', attachments: [{ attachmentArn: 'arn:aws:ecs:eu-west-3:123456789012:attachment/att-tx', status: 'ATTACHED' }] }, X);
  denied(() => authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: 'ty', status: 'STOPPED' }, X));
  denied(() => authorizeAgent(ctx, 'SubmitTaskStateChange', { task: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/a/ty` }, X));
  denied(() => authorizeAgent(ctx, 'SubmitContainerStateChange', { cluster: 'a', task: 'ty' }, X));
  denied(() => authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: 'no-such-task' }, X));
  denied(() => authorizeAgent(ctx, 'SubmitAttachmentStateChanges', { cluster: 'a', attachments: [{ attachmentArn: 'x/att-tx', status: 'ATTACHED' }, { attachmentArn: 'x/att-ty', status: 'DETACHED' }] }, X));
  // A pool host reports on the Fargate tasks of user clusters placed on it, and only those.
  authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: 'tp' }, as(p));
  denied(() => authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: 'tx' }, as(p)));
  denied(() => authorizeAgent(ctx, 'SubmitTaskStateChange', { cluster: 'a', task: 'tp' }, as(y)));
});

test('an instance credential drains, deregisters and re-registers only its own instance, and never creates a cluster', async () => {
  const { ctx, x, y, as } = await fixture();
  const X = as(x);
  authorizeAgent(ctx, 'UpdateContainerInstancesState', { cluster: 'a', containerInstances: [x.id], status: 'DRAINING' }, X);
  authorizeAgent(ctx, 'DeregisterContainerInstance', { cluster: 'a', containerInstance: x.rec.containerInstanceArn }, X);
  authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a', containerInstanceArn: x.rec.containerInstanceArn }, X);
  authorizeAgent(ctx, 'DiscoverPollEndpoint', { cluster: 'a' }, X);
  denied(() => authorizeAgent(ctx, 'UpdateContainerInstancesState', { cluster: 'a', containerInstances: [y.id], status: 'DRAINING' }, X));
  denied(() => authorizeAgent(ctx, 'UpdateContainerInstancesState', { cluster: 'a', containerInstances: [x.id, y.id], status: 'DRAINING' }, X));
  denied(() => authorizeAgent(ctx, 'DeregisterContainerInstance', { cluster: 'a', containerInstance: y.id, force: true }, X));
  denied(() => authorizeAgent(ctx, 'DeregisterContainerInstance', { cluster: 'b', containerInstance: x.id }, X));
  denied(() => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a', containerInstanceArn: y.rec.containerInstanceArn }, X));
  denied(() => authorizeAgent(ctx, 'RegisterContainerInstance', { cluster: 'a' }, X));
  denied(() => authorizeAgent(ctx, 'CreateCluster', { clusterName: 'mine' }, X));
  denied(() => authorizeAgent(ctx, 'DiscoverPollEndpoint', { cluster: 'b' }, X));
  // Task protection: the instance it speaks for is its own, whatever header it signs.
  const viaHeader = as(x, { containerInstanceArn: y.rec.containerInstanceArn });
  denied(() => authorizeAgent(ctx, 'UpdateTaskProtection', { cluster: 'a', tasks: ['ty'], protectionEnabled: true }, viaHeader));
  const plain = as(x);
  authorizeAgent(ctx, 'UpdateTaskProtection', { cluster: 'a', tasks: ['tx'], protectionEnabled: true }, plain);
  assert.equal(plain.containerInstanceArn, x.rec.containerInstanceArn, 'pinned to its own instance');
});

test('through the API table: refused calls change nothing', async () => {
  const { ctx, ecs, x, y, as } = await fixture();
  const before = ctx.state.tasks.get('a', 'ty')!.value;
  await assert.rejects(ecs.SubmitTaskStateChange!({ cluster: 'a', task: 'ty', status: 'STOPPED', reason: 'x says so' }, as(x)), { code: 'AccessDeniedException' });
  assert.deepEqual(ctx.state.tasks.get('a', 'ty')!.value, before);
  await assert.rejects(ecs.DeregisterContainerInstance!({ cluster: 'a', containerInstance: y.id, force: true }, as(x)), { code: 'AccessDeniedException' });
  assert.equal(ctx.state.instances.get('a', y.id)!.value.status, 'ACTIVE');
  await assert.rejects(ecs.CreateCluster!({ clusterName: 'mine' }, as(x)), { code: 'AccessDeniedException' });
  assert.equal(ctx.state.clusters.get('', 'mine'), undefined);
});

test('task protection: a Fargate pool host acts on the tasks placed on it, whatever their cluster, and on no others', async () => {
  const { ecs, x, p, as } = await fixture();
  // tp is cluster a's Fargate task on P; not a service task, so the answer is a failure, not a refusal.
  const out = (await ecs.GetTaskProtection!({ cluster: 'a', tasks: ['tp'] }, as(p))) as { failures: { reason: string }[] };
  assert.equal(out.failures[0]!.reason, 'TASK_NOT_VALID');
  const upd = (await ecs.UpdateTaskProtection!({ cluster: 'a', tasks: ['tp'], protectionEnabled: true }, as(p))) as { failures: { reason: string }[] };
  assert.equal(upd.failures[0]!.reason, 'TASK_NOT_VALID');
  await assert.rejects(ecs.GetTaskProtection!({ cluster: 'a', tasks: ['tx'] }, as(p)), { code: 'AccessDeniedException' });
  await assert.rejects(ecs.GetTaskProtection!({ cluster: 'a', tasks: ['tp'] }, as(x)), { code: 'AccessDeniedException' });
});

test('the agent channel opens only for the instance its credential is bound to', async () => {
  const { x, y, p } = await fixture();
  assert.equal(channelRefusal(instancePrincipal(x.rec), x.rec), undefined);
  assert.match(channelRefusal(instancePrincipal(x.rec), y.rec)!, /only open the channel of its own container instance/);
  assert.match(channelRefusal(instancePrincipal(x.rec), p.rec)!, /own container instance/);
  assert.match(channelRefusal({ kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: 'a' }, x.rec)!, /speaks for no container instance/);
  assert.equal(channelRefusal({ kind: 'user', iamResource: 'root' }, x.rec), undefined, 'the account root may');
  assert.ok(channelRefusal({ kind: 'user', iamResource: 'user/alice', policy: { Version: '2012-10-17', Statement: [] } }, x.rec));
});
