import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readResources } from '../core/instance-resources';
import { WharfError } from '../core/errors';
import { keys, type TaskRecord } from '../core/resources';
import type { Resource } from '../core/shapes/ecs';
import { FakeClock, createLogger } from '../lib';
import { PlacementView } from '../state/placement-view';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { casUpdate } from '../store/store';
import { isBuiltinAttribute, registrationAttributes, validateAttributeName, validateAttributeValue } from './attributes';
import { createCluster } from './clusters';
import {
  deregisterContainerInstance,
  describeContainerInstances,
  listContainerInstances,
  orphanedTask,
  registerContainerInstance,
  updateContainerInstancesState,
} from './container-instances';
import type { ControlContext } from './context';
import { placeTasks } from './placement';

const TOTAL: Resource[] = [
  { name: 'CPU', type: 'INTEGER', integerValue: 1024 },
  { name: 'MEMORY', type: 'INTEGER', integerValue: 2048 },
];

async function context(): Promise<ControlContext> {
  const store = new MemoryStore();
  const state = new State(store);
  await state.start();
  const ctx: ControlContext = {
    store,
    state,
    placement: new PlacementView(state),
    partition: { region: 'us-east-1', accountId: '000000000000' },
    clock: new FakeClock(),
    log: createLogger('test', 'silent'),
  };
  await createCluster(ctx, { clusterName: 'c1' });
  return ctx;
}

/** Places a task on an instance the way a committed placement leaves it. */
async function placeTask(ctx: ControlContext, instanceId: string, lastStatus = 'RUNNING'): Promise<string> {
  const id = (ctx.state.tasks.size + 1).toString(16).padStart(32, '0');
  const reservation = { cpu: 256, memory: 512, ports: [8080], portsUdp: [], gpuIds: [] };
  const t: TaskRecord = {
    taskArn: `arn:aws:ecs:us-east-1:000000000000:task/c1/${id}`,
    clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/c1',
    taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/web:1',
    lastStatus,
    desiredStatus: 'RUNNING',
    version: 1,
    group: 'family:web',
    containers: [{ name: 'app', lastStatus }],
    wharf: { id, cluster: 'c1', instanceId, reservation },
  };
  await ctx.state.waitFor(await ctx.store.create(keys.task('c1', id), t));
  return id;
}

const idOfArn = (arn: string) => arn.split('/').pop()!;

test('re-registration keeps the identity and recomputes remaining resources from the tasks still placed', async () => {
  const ctx = await context();
  const first = (await registerContainerInstance(ctx, { cluster: 'c1', totalResources: TOTAL, attributes: [{ name: 'ecs.os-type', value: 'linux' }] })).containerInstance!;
  const id = idOfArn(first.containerInstanceArn!);
  await placeTask(ctx, id);
  // A custom attribute put through the API survives; the agent's built-ins are replaced.
  await casUpdate(ctx.store, keys.instance('c1', id), (cur: any) => ({ ...cur.value, attributes: [...cur.value.attributes, { name: 'team', value: 'blue' }] }));

  const again = (await registerContainerInstance(ctx, {
    cluster: 'c1',
    containerInstanceArn: first.containerInstanceArn,
    totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 2048 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 4096 }],
    attributes: [{ name: 'ecs.os-type', value: 'linux' }, { name: 'ecs.cpu-architecture', value: 'x86_64' }],
  })).containerInstance!;
  assert.equal(again.containerInstanceArn, first.containerInstanceArn);
  const remaining = readResources(again.remainingResources);
  assert.equal(remaining.cpu, 2048 - 256);
  assert.equal(remaining.memory, 4096 - 512);
  assert.ok(remaining.ports.includes(8080));
  assert.equal(readResources(again.registeredResources).cpu, 2048);
  assert.deepEqual(again.attributes?.map((a) => a.name).sort(), ['ecs.cpu-architecture', 'ecs.os-type', 'team']);
  assert.equal(again.runningTasksCount, 1);
  assert.equal(ctx.state.instances.size, 1, 'no second instance was created');
});

test('re-registering with an ARN that is unknown or deregistered is refused', async () => {
  const ctx = await context();
  const unknown = 'arn:aws:ecs:us-east-1:000000000000:container-instance/c1/' + 'a'.repeat(32);
  await assert.rejects(registerContainerInstance(ctx, { cluster: 'c1', containerInstanceArn: unknown }), (e: unknown) => e instanceof WharfError && e.code === 'ClientException');
  const ci = (await registerContainerInstance(ctx, { cluster: 'c1', totalResources: TOTAL })).containerInstance!;
  await deregisterContainerInstance(ctx, { cluster: 'c1', containerInstance: ci.containerInstanceArn! });
  await assert.rejects(registerContainerInstance(ctx, { cluster: 'c1', containerInstanceArn: ci.containerInstanceArn }), /INACTIVE/);
});

test('an identity document supplies the EC2 instance id and location attributes the agent did not send', async () => {
  const ctx = await context();
  const doc = JSON.stringify({ instanceId: 'i-0123456789abcdef0', availabilityZone: 'eu-west-1c', instanceType: 'c5.xlarge', imageId: 'ami-1' });
  const ci = (await registerContainerInstance(ctx, {
    cluster: 'c1',
    instanceIdentityDocument: doc,
    attributes: [{ name: 'ecs.instance-type', value: 'c5.2xlarge' }],
  })).containerInstance!;
  assert.equal(ci.ec2InstanceId, 'i-0123456789abcdef0');
  const attrs = Object.fromEntries(ci.attributes!.map((a) => [a.name, a.value]));
  assert.equal(attrs['ecs.availability-zone'], 'eu-west-1c');
  assert.equal(attrs['ecs.instance-type'], 'c5.2xlarge', 'what the agent sends wins');
  const listed = await listContainerInstances(ctx, { cluster: 'c1', filter: 'ec2InstanceId == i-0123456789abcdef0' });
  assert.deepEqual(listed.containerInstanceArns, [ci.containerInstanceArn]);
});

test('registration refuses more than ten custom attributes but not many built-in ones', async () => {
  const ctx = await context();
  const builtins = Array.from({ length: 20 }, (_, i) => ({ name: `ecs.capability.c${i}` }));
  const ten = Array.from({ length: 10 }, (_, i) => ({ name: `k${i}`, value: 'v' }));
  await registerContainerInstance(ctx, { cluster: 'c1', attributes: [...builtins, ...ten] });
  await assert.rejects(
    registerContainerInstance(ctx, { cluster: 'c1', attributes: [...ten, { name: 'k10', value: 'v' }] }),
    (e: unknown) => e instanceof WharfError && e.code === 'AttributeLimitExceededException',
  );
});

test("the agent's Fargate sandbox attribute is not a custom one; the capacity provider attribute is the instance's capacityProviderName", async () => {
  const ctx = await context();
  const agentSet = [{ name: 'wharf.fargate-sandbox', value: 'gvisor' }, { name: 'wharf.capacity-provider', value: 'cp1' }];
  // The provider attribute stays custom (it outlives a re-registration without the flag): nine more.
  const ten = Array.from({ length: 9 }, (_, i) => ({ name: `k${i}`, value: 'v' }));
  const ci = (await registerContainerInstance(ctx, { cluster: 'c1', attributes: [...agentSet, ...ten] })).containerInstance!;
  assert.equal(ci.capacityProviderName, 'cp1');
  const id = idOfArn(ci.containerInstanceArn!);
  assert.equal((await describeContainerInstances(ctx, { cluster: 'c1', containerInstances: [id] })).containerInstances![0]!.capacityProviderName, 'cp1');
  const plain = (await registerContainerInstance(ctx, { cluster: 'c1' })).containerInstance!;
  assert.equal(plain.capacityProviderName, undefined);
});

test('a forced deregistration orphans the tasks on the instance, and counts no longer include them', async () => {
  const ctx = await context();
  const ci = (await registerContainerInstance(ctx, { cluster: 'c1', totalResources: TOTAL })).containerInstance!;
  const id = idOfArn(ci.containerInstanceArn!);
  const running = await placeTask(ctx, id, 'RUNNING');
  const pending = await placeTask(ctx, id, 'PENDING');
  const described = (await describeContainerInstances(ctx, { cluster: 'c1', containerInstances: [id] })).containerInstances![0]!;
  assert.equal(described.runningTasksCount, 2);
  assert.equal(described.pendingTasksCount, 1);
  await assert.rejects(deregisterContainerInstance(ctx, { cluster: 'c1', containerInstance: id }), /Found running tasks/);
  const out = (await deregisterContainerInstance(ctx, { cluster: 'c1', containerInstance: id, force: true })).containerInstance!;
  assert.equal(out.status, 'INACTIVE');
  assert.equal(out.runningTasksCount, 0);
  for (const t of [running, pending]) {
    const rec = ctx.state.tasks.get('c1', t)!.value;
    assert.equal(rec.lastStatus, 'STOPPED');
    assert.equal(rec.desiredStatus, 'STOPPED');
    assert.equal(rec.wharf.released, true);
    assert.ok((rec.wharf.expiresAt ?? 0) > ctx.clock.now(), 'kept describable for a while, then reaped');
  }
});

test('orphanedTask stops the task record without touching its identity', () => {
  const t: TaskRecord = {
    taskArn: 'arn:t',
    clusterArn: 'arn:c',
    lastStatus: 'RUNNING',
    desiredStatus: 'RUNNING',
    version: 4,
    containers: [{ name: 'a', lastStatus: 'RUNNING' }],
    wharf: { id: 'x', cluster: 'c1', instanceId: 'i' },
  };
  const o = orphanedTask(t, 1_700_000_000_000);
  assert.equal(o.taskArn, 'arn:t');
  assert.equal(o.version, 5);
  assert.equal(o.stoppedAt, 1_700_000_000);
  assert.deepEqual(o.containers?.map((c) => c.lastStatus), ['STOPPED']);
  assert.equal(t.lastStatus, 'RUNNING', 'the input is not mutated');
});

test('attribute names and values follow the ECS character rules', () => {
  for (const ok of ['stack', 'ecs.capability.x', 'a/b\\c_d-e.f', 'x'.repeat(128)]) assert.equal(validateAttributeName(ok), ok);
  for (const bad of ['', 'has space', 'x'.repeat(129), 'colon:', 'at@']) assert.throws(() => validateAttributeName(bad), /Invalid attribute name/, bad);
  for (const ok of ['prod', 'user@host:/path with spaces', 'a\\b', 'x'.repeat(128)]) assert.equal(validateAttributeValue('n', ok), ok);
  for (const bad of ['', ' lead', 'trail ', 'semi;', 'x'.repeat(129), 'quote"']) assert.throws(() => validateAttributeValue('n', bad), /Invalid value/, JSON.stringify(bad));
  assert.equal(validateAttributeValue('n', undefined), undefined, 'name-only attributes are allowed');
  assert.equal(isBuiltinAttribute('ecs.os-type'), true);
  assert.equal(isBuiltinAttribute('com.amazonaws.ecs.capability.docker-remote-api.1.17'), true);
  assert.equal(isBuiltinAttribute('stack'), false);
  // The host policy's: set by the agent, so a restart with a stricter policy withdraws them.
  assert.equal(isBuiltinAttribute('wharf.capability.host-network'), true);
  assert.equal(isBuiltinAttribute('wharf.allowed-host-paths'), true);
  assert.equal(isBuiltinAttribute('wharf.capacity-provider'), false);
  assert.equal(isBuiltinAttribute('wharf.fargate-sandbox'), true);
  assert.deepEqual(registrationAttributes([{ name: 'a', value: '1' }, { name: 'a', value: '2' }]), [{ name: 'a', value: '2' }], 'a repeated name keeps the last value');
});

test('placements write the small usage record, never the registration, and the API shows both merged', async () => {
  const ctx = await context();
  const ci = (await registerContainerInstance(ctx, { cluster: 'c1', totalResources: TOTAL, attributes: [{ name: 'ecs.availability-zone', value: 'us-east-1a' }] })).containerInstance!;
  const id = idOfArn(ci.containerInstanceArn!);
  await casUpdate(ctx.store, keys.instance('c1', id), (cur: any) => ({ ...cur.value, agentConnected: true, version: cur.value.version + 1 }));
  await ctx.state.waitFor(await ctx.store.revision());
  const registrationBefore = await ctx.store.get(keys.instance('c1', id));
  const versionBefore = ctx.state.instances.get('c1', id)!.value.version;
  const seen: string[] = [];
  const unsubscribe = ctx.state.subscribe((c) => seen.push(c.kind));

  let n = 0;
  const out = await placeTasks(ctx, {
    cluster: 'c1',
    needs: { networkMode: 'bridge', cpu: 256, memory: 512, portsTcp: [], portsUdp: [], gpus: 0, containers: [] },
    count: 5,
    group: 'family:web',
    constraints: [],
    strategies: [],
    requiredAttributes: [],
    makeTask: () => {
      const tid = String(++n).padStart(32, '0');
      return {
        taskArn: `arn:aws:ecs:us-east-1:000000000000:task/c1/${tid}`,
        clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/c1',
        taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/web:1',
        lastStatus: 'PROVISIONING',
        desiredStatus: 'RUNNING',
        version: 1,
        containers: [],
        wharf: { id: tid, cluster: 'c1' },
      } as TaskRecord;
    },
  });
  unsubscribe();
  assert.equal(out.tasks.length, 4, '1024 CPU units hold four tasks of 256');
  assert.deepEqual(out.failures.map((f) => f.reason), ['RESOURCE:CPU']);
  const registrationAfter = await ctx.store.get(keys.instance('c1', id));
  assert.equal(registrationAfter!.modRevision, registrationBefore!.modRevision, 'the registration record was not rewritten');
  const usage = await ctx.store.get<{ remainingResources: Resource[] }>(keys.instanceUsage('c1', id));
  assert.equal(readResources(usage!.value.remainingResources).cpu, 0);
  const described = (await describeContainerInstances(ctx, { cluster: 'c1', containerInstances: [id] })).containerInstances![0]!;
  assert.equal(readResources(described.remainingResources).cpu, 0);
  assert.equal(readResources(described.remainingResources).memory, 0);
  assert.ok(described.version! > versionBefore, 'the version moves with placements');
  assert.ok(seen.includes('instances'), 'listeners hear of the instance change');
  assert.ok(!seen.includes('usage'), 'the usage record is announced as an instance change');
});

test('DescribeContainerInstances with an empty list answers ECS\'s ClientException', async () => {
  const ctx = await context();
  for (const containerInstances of [[], undefined]) {
    await assert.rejects(describeContainerInstances(ctx, { cluster: 'c1', containerInstances: containerInstances as never }), (e: unknown) => {
      assert.ok(e instanceof WharfError);
      assert.equal(e.code, 'ClientException');
      assert.equal(e.message, 'Container instance cannot be empty.');
      return true;
    });
  }
});

test("DescribeContainerInstances past 100 and UpdateContainerInstancesState past 10 answer ECS's own words", async () => {
  const ctx = await context();
  const ids = (n: number) => Array.from({ length: n }, (_, i) => i.toString(16).padStart(32, '0'));
  const refuses = (p: Promise<unknown>, message: string) =>
    assert.rejects(p, (e: unknown) => e instanceof WharfError && e.code === 'InvalidParameterException' && e.message === message);
  await refuses(describeContainerInstances(ctx, { cluster: 'c1', containerInstances: ids(101) }), 'instanceIds can have at most 100 items.');
  assert.equal((await describeContainerInstances(ctx, { cluster: 'c1', containerInstances: ids(100) })).failures!.length, 100);
  await refuses(updateContainerInstancesState(ctx, { cluster: 'c1', containerInstances: ids(11), status: 'DRAINING' }), 'instanceIds can have at most 10 items.');
});
