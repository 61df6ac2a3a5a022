import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FARGATE_POOL } from '../core/fargate-pool';
import { keys, type ContainerInstanceRecord } from '../core/resources';
import { casUpdate } from '../store/store';
import {
  CAPACITY_PROVIDER_ATTRIBUTE,
  createCapacityProvider,
  deleteCapacityProvider,
  describeCapacityProviders,
  updateCapacityProvider,
} from './capacity-providers';
import { createCluster, putClusterCapacityProviders } from './clusters';
import { registerContainerInstance } from './container-instances';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { createService, describeServices, updateService } from './services';
import { launchReplicaTasks } from './service-placement';
import { serviceInstanceLookup } from './service-records';
import { listTagsForResource } from './tags';
import { registerTaskDefinition } from './task-definitions';
import { FARGATE_ATTRIBUTE_DETAIL, runTask, stopTask } from './tasks';
import { ensureDefaultNetwork } from './vpc';
import { CapacityProviderController } from '../controllers/capacity-provider-controller';

const asgArn = (group: string, region = 'eu-west-3') => `arn:aws:autoscaling:${region}:123456789012:autoScalingGroup:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0:autoScalingGroupName/${group}`;
const TOTAL = [{ name: 'CPU', type: 'INTEGER', integerValue: 4096 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 8192 }];
/** The region's default subnets (the same ids in every context: they derive from account and region). */
let NET: { awsvpcConfiguration: { subnets: string[] } } = { awsvpcConfiguration: { subnets: [] } };

/** An instance whose agent is connected (what the agent gateway records when its socket opens). */
async function instance(ctx: Awaited<ReturnType<typeof controlTestContext>>, cluster: string, attributes: { name: string; value: string }[] = [], total = TOTAL) {
  // Everything the test task definitions require (as a real agent advertises it).
  const required = [...ctx.state.taskDefinitions.all()].flatMap((e) => e.value.requiresAttributes ?? []).map((a) => ({ name: a.name }));
  // In a zone of the region, as agents register (awsvpc tasks land only in their subnets' zones).
  const zone = attributes.some((a) => a.name === 'ecs.availability-zone') ? [] : [{ name: 'ecs.availability-zone', value: `${ctx.partition.region}a` }];
  const ci = (await registerContainerInstance(ctx, { cluster, totalResources: total, attributes: [...required, ...zone, ...attributes] })).containerInstance!;
  const id = ci.containerInstanceArn!.split('/').pop()!;
  const { revision } = await casUpdate<ContainerInstanceRecord>(ctx.store, keys.instance(cluster, id), (cur) => ({ ...cur!.value, agentConnected: true }));
  await ctx.state.waitFor(revision);
  return ci;
}

async function context() {
  const ctx = await controlTestContext();
  // As a region's start makes it (cmd/regions.ts).
  const net = await ensureDefaultNetwork(ctx);
  NET = { awsvpcConfiguration: { subnets: net.subnets.map((x) => x.SubnetId!) } };
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }] }, TEST_CALLER);
  await registerTaskDefinition(ctx, { family: 'fg', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: 'busybox', essential: true }] }, TEST_CALLER);
  return ctx;
}

test('CreateCapacityProvider stores an Auto Scaling group provider with ECS defaults; Describe lists it after FARGATE and FARGATE_SPOT', async () => {
  const ctx = await context();
  const { capacityProvider } = await createCapacityProvider(ctx, { name: 'workers', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('workers-asg') }, tags: [{ key: 'team', value: 'a' }] });
  assert.deepEqual(capacityProvider, {
    capacityProviderArn: 'arn:aws:ecs:eu-west-3:123456789012:capacity-provider/workers',
    name: 'workers',
    status: 'ACTIVE',
    type: 'EC2_AUTOSCALING',
    autoScalingGroupProvider: {
      autoScalingGroupArn: asgArn('workers-asg'),
      managedScaling: { status: 'DISABLED', targetCapacity: 100, minimumScalingStepSize: 1, maximumScalingStepSize: 10000, instanceWarmupPeriod: 300 },
      managedTerminationProtection: 'DISABLED',
      managedDraining: 'ENABLED',
    },
    tags: [{ key: 'team', value: 'a' }],
  });
  const all = await describeCapacityProviders(ctx, {});
  assert.deepEqual(all.capacityProviders!.map((p) => [p.name, p.type, p.status]), [['FARGATE', 'FARGATE', 'ACTIVE'], ['FARGATE_SPOT', 'FARGATE_SPOT', 'ACTIVE'], ['workers', 'EC2_AUTOSCALING', 'ACTIVE']]);
  assert.equal(all.capacityProviders![2]!.tags, undefined, 'tags only with include TAGS');
  const named = await describeCapacityProviders(ctx, { capacityProviders: ['workers', 'nope'], include: ['TAGS'] });
  assert.deepEqual(named.capacityProviders![0]!.tags, [{ key: 'team', value: 'a' }]);
  assert.deepEqual(named.failures, [{ arn: 'arn:aws:ecs:eu-west-3:123456789012:capacity-provider/nope', reason: 'MISSING' }]);
  assert.deepEqual((await listTagsForResource(ctx, { resourceArn: capacityProvider!.capacityProviderArn! })).tags, [{ key: 'team', value: 'a' }]);

  const page1 = await describeCapacityProviders(ctx, { maxResults: 2 });
  assert.equal(page1.capacityProviders!.length, 2);
  const page2 = await describeCapacityProviders(ctx, { maxResults: 2, nextToken: page1.nextToken });
  assert.deepEqual(page2.capacityProviders!.map((p) => p.name), ['workers']);
  assert.equal(page2.nextToken, undefined);
});

test('CreateCapacityProvider refuses reserved prefixes, duplicates, a shared group and bad settings', async () => {
  const ctx = await context();
  const asg = { autoScalingGroupArn: asgArn('g') };
  for (const name of ['aws-x', 'ecsWorkers', 'FARGATE_X', 'fargate']) {
    await rejects(createCapacityProvider(ctx, { name, autoScalingGroupProvider: asg }), 'InvalidParameterException', 'The capacity provider name cannot begin with "aws", "ecs", or "fargate". Specify a different name and try again.');
  }
  await rejects(createCapacityProvider(ctx, { name: 'x', autoScalingGroupProvider: { autoScalingGroupArn: 'arn:aws:autoscaling:eu-west-3:123456789012:nope' } }), 'InvalidParameterException', 'The specified Auto Scaling group ARN is not valid. Wharf expects arn:aws:autoscaling:<region>:<account>:autoScalingGroup:<uuid>:autoScalingGroupName/<group name>.');
  await rejects(
    createCapacityProvider(ctx, { name: 'x', autoScalingGroupProvider: { ...asg, managedTerminationProtection: 'ENABLED' } }),
    'InvalidParameterException',
    'The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must also be enabled.',
  );
  await rejects(createCapacityProvider(ctx, { name: 'x', autoScalingGroupProvider: { ...asg, managedScaling: { targetCapacity: 0 } } }), 'InvalidParameterException', 'targetCapacity must be between 1 and 100.');
  await createCapacityProvider(ctx, { name: 'x', autoScalingGroupProvider: asg });
  await rejects(createCapacityProvider(ctx, { name: 'x', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('other') } }), 'ClientException', 'The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.');
  await rejects(createCapacityProvider(ctx, { name: 'y', autoScalingGroupProvider: asg }), 'ClientException', 'The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.');
});

test('built-in providers cannot be updated or deleted; UpdateCapacityProvider merges the group settings', async () => {
  const ctx = await context();
  await rejects(deleteCapacityProvider(ctx, { capacityProvider: 'FARGATE' }), 'ClientException', 'The FARGATE capacity provider is built in and cannot be changed or deleted.');
  await rejects(updateCapacityProvider(ctx, { name: 'FARGATE_SPOT', autoScalingGroupProvider: {} }), 'ClientException', 'The FARGATE_SPOT capacity provider is built in and cannot be changed or deleted.');
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('g') } });
  const u = await updateCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { managedScaling: { status: 'ENABLED', targetCapacity: 80 }, managedTerminationProtection: 'ENABLED' } });
  assert.deepEqual(u.capacityProvider!.autoScalingGroupProvider!.managedScaling, { status: 'ENABLED', targetCapacity: 80, minimumScalingStepSize: 1, maximumScalingStepSize: 10000, instanceWarmupPeriod: 300 });
  assert.equal(u.capacityProvider!.autoScalingGroupProvider!.managedTerminationProtection, 'ENABLED');
  assert.equal(u.capacityProvider!.updateStatus, 'UPDATE_COMPLETE');
  await rejects(updateCapacityProvider(ctx, { name: 'nope', autoScalingGroupProvider: {} }), 'ClientException', 'The specified capacity provider does not exist. Specify a valid name or ARN and try again.');
});

test('a provider a cluster has is not deleted (DELETE_FAILED with the reason); once removed it becomes INACTIVE', async () => {
  const ctx = await context();
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('g') } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['w'] });
  const failed = await deleteCapacityProvider(ctx, { capacityProvider: 'w' });
  assert.equal(failed.capacityProvider!.status, 'ACTIVE');
  assert.equal(failed.capacityProvider!.updateStatus, 'DELETE_FAILED');
  assert.equal(failed.capacityProvider!.updateStatusReason, 'The capacity provider cannot be deleted because it is associated with cluster: c. Remove the capacity provider from the cluster and try again.');
  await putClusterCapacityProviders(ctx, { cluster: 'c', capacityProviders: [], defaultCapacityProviderStrategy: [] });
  const gone = await deleteCapacityProvider(ctx, { capacityProvider: 'arn:aws:ecs:eu-west-3:123456789012:capacity-provider/w' });
  assert.equal(gone.capacityProvider!.status, 'INACTIVE');
  assert.equal(gone.capacityProvider!.updateStatus, 'DELETE_COMPLETE');
  assert.deepEqual((await describeCapacityProviders(ctx, {})).capacityProviders!.map((p) => p.name), ['FARGATE', 'FARGATE_SPOT']);
  await rejects(putClusterCapacityProviders(ctx, { cluster: 'c', capacityProviders: ['w'], defaultCapacityProviderStrategy: [] }), 'InvalidParameterException', 'The specified capacity provider was not found. Specify a valid capacity provider and try again.');
  // The name is free again.
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('g') } });
});

test('clusters take only existing providers, a default strategy over them, and no mix of Fargate and ASG providers', async () => {
  const ctx = await context();
  await rejects(createCluster(ctx, { clusterName: 'c', capacityProviders: ['nope'] }), 'InvalidParameterException', 'The specified capacity provider was not found. Specify a valid capacity provider and try again.');
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('g') } });
  await rejects(
    createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE'], defaultCapacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }] }),
    'InvalidParameterException',
    'The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.',
  );
  await rejects(
    createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'w'], defaultCapacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }, { capacityProvider: 'w', weight: 1 }] }),
    'InvalidParameterException',
    'A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.',
  );
  // A cluster may have both kinds; an ASG provider belongs to one cluster.
  const c = (await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'w'] })).cluster!;
  assert.deepEqual(c.capacityProviders, ['FARGATE', 'w']);
  assert.deepEqual((await describeCapacityProviders(ctx, { cluster: 'c' })).capacityProviders!.map((p) => p.name), ['FARGATE', 'w'], 'Describe with a cluster: only its providers');
  await rejects(createCluster(ctx, { clusterName: 'd', capacityProviders: ['w'] }), 'InvalidParameterException', "The specified capacity provider 'w' is already associated with another cluster. An Auto Scaling group capacity provider can be associated with one cluster only.");
});

test('RunTask splits tasks over FARGATE and FARGATE_SPOT by base and weight; each task names its provider', async () => {
  const ctx = await context();
  await instance(ctx, FARGATE_POOL);
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'FARGATE_SPOT'] });
  const strategy = [{ capacityProvider: 'FARGATE', base: 2, weight: 1 }, { capacityProvider: 'FARGATE_SPOT', weight: 3 }];
  const r = await runTask(ctx, { cluster: 'c', taskDefinition: 'fg', count: 10, capacityProviderStrategy: strategy, networkConfiguration: NET });
  assert.deepEqual(r.failures, []);
  const n = (p: string) => r.tasks!.filter((t) => t.capacityProviderName === p).length;
  assert.deepEqual([n('FARGATE'), n('FARGATE_SPOT')], [4, 6]);
  assert.ok(r.tasks!.every((t) => t.launchType === 'FARGATE' && t.containerInstanceArn === undefined));

  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'fg', launchType: 'FARGATE', capacityProviderStrategy: strategy, networkConfiguration: NET }), 'InvalidParameterException', 'Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.');
  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'fg', capacityProviderStrategy: [{ capacityProvider: 'FARGATE', base: 1 }], networkConfiguration: NET }), 'InvalidParameterException', 'The capacity provider strategy must contain at least one capacity provider with a weight greater than zero.');
  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'web', capacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }] }), 'InvalidParameterException', 'Task definition does not support launch_type FARGATE.');
});

test("Fargate RunTask overrides: cpu/memory must make one of Fargate's sizes; ephemeralStorage is 21-200 GiB, applied, and Fargate's only", async () => {
  const ctx = await context();
  await instance(ctx, FARGATE_POOL);
  await instance(ctx, 'default');
  await createCluster(ctx, { clusterName: 'default' });
  const run = (overrides: object, taskDefinition = 'fg') =>
    runTask(ctx, { cluster: 'default', taskDefinition, overrides, ...(taskDefinition === 'fg' ? { launchType: 'FARGATE' as const, networkConfiguration: NET } : {}) });
  const noSize = 'No Fargate configuration exists for given values.';
  await rejects(run({ cpu: '300' }), 'InvalidParameterException', noSize);
  await rejects(run({ memory: '4096' }), 'InvalidParameterException', noSize); // 256 cpu goes up to 2 GB
  const sized = await run({ cpu: '1024', memory: '4096' });
  assert.deepEqual([sized.tasks![0]!.cpu, sized.tasks![0]!.memory], ['1024', '4096']);
  const storage = "Invalid 'ephemeralStorage.sizeInGiB' setting. It must be an integer between 21 and 200.";
  await rejects(run({ ephemeralStorage: { sizeInGiB: 500 } }), 'InvalidParameterException', storage);
  await rejects(run({ ephemeralStorage: { sizeInGiB: 20 } }), 'InvalidParameterException', storage);
  const big = await run({ ephemeralStorage: { sizeInGiB: 50 } });
  assert.deepEqual([big.tasks![0]!.ephemeralStorage, big.tasks![0]!.fargateEphemeralStorage], [{ sizeInGiB: 50 }, { sizeInGiB: 50 }]);
  await rejects(run({ ephemeralStorage: { sizeInGiB: 50 } }, 'web'), 'InvalidParameterException', 'The ephemeralStorage override is only supported for tasks using the FARGATE launch type.');
});

test("no launch type and no strategy: the cluster's default strategy, else EC2", async () => {
  const ctx = await context();
  await instance(ctx, FARGATE_POOL);
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE_SPOT'], defaultCapacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }] });
  const r = await runTask(ctx, { cluster: 'c', taskDefinition: 'fg', networkConfiguration: NET });
  assert.equal(r.tasks![0]!.capacityProviderName, 'FARGATE_SPOT');
  await createCluster(ctx, { clusterName: 'plain' });
  await instance(ctx, 'plain');
  const e = await runTask(ctx, { cluster: 'plain', taskDefinition: 'web' });
  assert.equal(e.tasks![0]!.launchType, 'EC2');
  assert.equal(e.tasks![0]!.capacityProviderName, undefined);
});

test("an ASG provider's tasks go only to instances of its group", async () => {
  const ctx = await context();
  await createCapacityProvider(ctx, { name: 'big', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('big') } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['big'] });
  await instance(ctx, 'c');
  const none = await runTask(ctx, { cluster: 'c', taskDefinition: 'web', capacityProviderStrategy: [{ capacityProvider: 'big', weight: 1 }] });
  assert.deepEqual(none.tasks, []);
  assert.equal(none.failures!.length, 1, 'the instance outside the group is not used');
  const member = await instance(ctx, 'c', [{ name: CAPACITY_PROVIDER_ATTRIBUTE, value: 'big' }]);
  const r = await runTask(ctx, { cluster: 'c', taskDefinition: 'web', count: 3, capacityProviderStrategy: [{ capacityProvider: 'big', weight: 1 }] });
  assert.equal(r.tasks!.length, 3);
  assert.ok(r.tasks!.every((t) => t.containerInstanceArn === member.containerInstanceArn && t.capacityProviderName === 'big' && t.launchType === 'EC2'));
  // In use: it cannot be removed from the cluster.
  await rejects(putClusterCapacityProviders(ctx, { cluster: 'c', capacityProviders: [], defaultCapacityProviderStrategy: [] }), 'ResourceInUseException', 'The specified capacity provider is in use and cannot be removed.');
});

test('a service with a strategy shows it (no launchType) and its launches follow the split, counting tasks it has', async () => {
  const ctx = await context();
  await instance(ctx, FARGATE_POOL);
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'FARGATE_SPOT'] });
  const strategy = [{ capacityProvider: 'FARGATE', base: 1, weight: 1 }, { capacityProvider: 'FARGATE_SPOT', weight: 1 }];
  const s = (await createService(ctx, { cluster: 'c', serviceName: 's', taskDefinition: 'fg', desiredCount: 5, capacityProviderStrategy: strategy, networkConfiguration: NET }, TEST_CALLER)).service!;
  assert.deepEqual(s.capacityProviderStrategy, [{ capacityProvider: 'FARGATE', base: 1, weight: 1 }, { capacityProvider: 'FARGATE_SPOT', base: 0, weight: 1 }]);
  assert.equal(s.launchType, undefined);
  const rec = ctx.state.services.get('c', 's')!.value;
  const d = rec.wharf.deployments[0]!;
  const first = await launchReplicaTasks(ctx, rec, d, 3);
  assert.deepEqual(first.tasks.map((t) => t.capacityProviderName).sort(), ['FARGATE', 'FARGATE', 'FARGATE_SPOT']);
  const more = await launchReplicaTasks(ctx, rec, d, 2);
  // Base 1, then the other 4 split 1:1: FARGATE 3, FARGATE_SPOT 2 in all, as if launched at once.
  assert.deepEqual(more.tasks.map((t) => t.capacityProviderName).sort(), ['FARGATE', 'FARGATE_SPOT']);
  const described = (await describeServices(ctx, { cluster: 'c', services: ['s'] })).services![0]!;
  assert.deepEqual(described.deployments![0]!.capacityProviderStrategy, s.capacityProviderStrategy);
  await rejects(putClusterCapacityProviders(ctx, { cluster: 'c', capacityProviders: ['FARGATE'], defaultCapacityProviderStrategy: [] }), 'ResourceInUseException', 'The specified capacity provider is in use and cannot be removed.');
});

test('an on-demand Fargate task that finds the pool full interrupts Spot tasks; Spot waits until on-demand got the room', async () => {
  const ctx = await context();
  // Room for two 256 CPU / 512 MiB tasks.
  await instance(ctx, FARGATE_POOL, [], [{ name: 'CPU', type: 'INTEGER', integerValue: 512 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }]);
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'FARGATE_SPOT'] });
  const spot = await runTask(ctx, { cluster: 'c', taskDefinition: 'fg', count: 2, capacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }], networkConfiguration: NET });
  assert.equal(spot.tasks!.length, 2);
  const onDemand = await runTask(ctx, { cluster: 'c', taskDefinition: 'fg', launchType: 'FARGATE', networkConfiguration: NET });
  assert.deepEqual(onDemand.failures, [{ reason: 'Capacity is unavailable at this time. Please try again later or in a different availability zone' }]);
  const after = spot.tasks!.map((t) => ctx.state.tasks.get('c', t.taskArn!.split('/').pop()!)!.value);
  const interrupted = after.filter((t) => t.desiredStatus === 'STOPPED');
  assert.equal(interrupted.length, 1, 'one Spot task makes room for one task');
  assert.equal(interrupted[0]!.stopCode, 'SpotInterruption');
  assert.equal(interrupted[0]!.stoppedReason, 'Your Spot Task was interrupted.');
  // A second try while the interruption is under way interrupts nothing more.
  await runTask(ctx, { cluster: 'c', taskDefinition: 'fg', launchType: 'FARGATE', networkConfiguration: NET });
  assert.equal(after.map((t) => ctx.state.tasks.get('c', t.wharf.id)!.value).filter((t) => t.desiredStatus === 'STOPPED').length, 1);
  // New Spot tasks are held back meanwhile.
  const held = await runTask(ctx, { cluster: 'c', taskDefinition: 'fg', capacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }], networkConfiguration: NET });
  assert.deepEqual(held.tasks, []);
  assert.equal(held.failures!.length, 1);
});

test('with managed scaling, RunTask tasks an ASG group cannot take wait in PROVISIONING and are placed once a group instance joins', async () => {
  const ctx = await context();
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('g'), managedScaling: { status: 'ENABLED' } } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['w'], defaultCapacityProviderStrategy: [{ capacityProvider: 'w', weight: 1 }] });
  const controller = new CapacityProviderController({ ctx });
  controller.start();
  try {
    const r = await runTask(ctx, { cluster: 'c', taskDefinition: 'web', count: 2 });
    assert.deepEqual(r.failures, []);
    assert.deepEqual(r.tasks!.map((t) => [t.lastStatus, t.capacityProviderName, t.containerInstanceArn]), [['PROVISIONING', 'w', undefined], ['PROVISIONING', 'w', undefined]]);
    assert.equal(controller.reconcile()[0]!.reservation, 200, 'waiting tasks count for managed scaling');
    // One is no longer wanted: it stops at once.
    await stopTask(ctx, { cluster: 'c', task: r.tasks![1]!.taskArn! });
    await controller.settleSoon();
    assert.equal(ctx.state.tasks.get('c', r.tasks![1]!.taskArn!.split('/').pop()!)!.value.lastStatus, 'STOPPED');

    const member = await instance(ctx, 'c', [{ name: CAPACITY_PROVIDER_ATTRIBUTE, value: 'w' }]);
    await controller.settleSoon();
    const placed = ctx.state.tasks.get('c', r.tasks![0]!.taskArn!.split('/').pop()!)!.value;
    assert.equal(placed.containerInstanceArn, member.containerInstanceArn);
    assert.equal(placed.lastStatus, 'PENDING');
    assert.equal(placed.wharf.waiting, undefined);
  } finally {
    controller.stop();
  }
});

const NEEDS_FORCE =
  'When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment.';

test('UpdateService changes a capacity provider strategy (or a launch type to one) only with forceNewDeployment', async () => {
  const ctx = await context();
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'FARGATE_SPOT'] });
  await createService(ctx, { cluster: 'c', serviceName: 'lt', taskDefinition: 'fg', launchType: 'FARGATE', networkConfiguration: NET }, TEST_CALLER);
  await rejects(updateService(ctx, { cluster: 'c', service: 'lt', capacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }] }), 'InvalidParameterException', NEEDS_FORCE);
  await createService(ctx, { cluster: 'c', serviceName: 'cp', taskDefinition: 'fg', capacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }], networkConfiguration: NET }, TEST_CALLER);
  await rejects(updateService(ctx, { cluster: 'c', service: 'cp', capacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }] }), 'InvalidParameterException', NEEDS_FORCE);
  await rejects(updateService(ctx, { cluster: 'c', service: 'cp', capacityProviderStrategy: [] }), 'InvalidParameterException', NEEDS_FORCE);
  // The same strategy again is no change.
  const same = (await updateService(ctx, { cluster: 'c', service: 'cp', capacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }] })).service!;
  assert.equal(same.deployments!.length, 1);
  const moved = (await updateService(ctx, { cluster: 'c', service: 'lt', forceNewDeployment: true, capacityProviderStrategy: [{ capacityProvider: 'FARGATE_SPOT', weight: 1 }] })).service!;
  assert.deepEqual(moved.capacityProviderStrategy, [{ capacityProvider: 'FARGATE_SPOT', weight: 1, base: 0 }]);
  assert.equal(moved.launchType, undefined);
  assert.equal(moved.deployments!.length, 2);
});

test('UpdateService with an empty strategy (and forceNewDeployment) returns the service to the launch type its providers run as', async () => {
  const ctx = await context();
  await instance(ctx, FARGATE_POOL);
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE'] });
  await createService(ctx, { cluster: 'c', serviceName: 's', taskDefinition: 'fg', desiredCount: 1, capacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }], networkConfiguration: NET }, TEST_CALLER);
  const s = (await updateService(ctx, { cluster: 'c', service: 's', forceNewDeployment: true, capacityProviderStrategy: [] })).service!;
  assert.equal(s.launchType, 'FARGATE');
  assert.equal(s.capacityProviderStrategy, undefined);
  assert.equal(s.deployments![0]!.launchType, 'FARGATE');
  assert.equal(s.deployments![0]!.capacityProviderStrategy, undefined);
  const rec = ctx.state.services.get('c', 's')!.value;
  const t = (await launchReplicaTasks(ctx, rec, rec.wharf.deployments[0]!, 1)).tasks[0]!;
  assert.equal(t.launchType, 'FARGATE');
  assert.equal(t.capacityProviderName, undefined);
});

test('UpdateService moves a service between EC2 and Fargate through a strategy; each deployment launches as its own revision runs', async () => {
  const ctx = await context();
  await registerTaskDefinition(ctx, { family: 'both', requiresCompatibilities: ['EC2', 'FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: 'busybox', essential: true }] }, TEST_CALLER);
  await createCapacityProvider(ctx, { name: 'asg', autoScalingGroupProvider: { autoScalingGroupArn: asgArn('asg') } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'asg'] });
  await instance(ctx, FARGATE_POOL);
  const member = await instance(ctx, 'c', [{ name: CAPACITY_PROVIDER_ATTRIBUTE, value: 'asg' }]);
  await createService(ctx, { cluster: 'c', serviceName: 's', taskDefinition: 'both', launchType: 'EC2', desiredCount: 1, networkConfiguration: NET, placementStrategy: [{ type: 'binpack', field: 'memory' }] }, TEST_CALLER);
  // EC2 launch type -> Fargate provider: the EC2 placement strategy cannot come along.
  await rejects(
    updateService(ctx, { cluster: 'c', service: 's', forceNewDeployment: true, capacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }] }),
    'InvalidParameterException',
    'Task placement strategies are not supported for tasks using the FARGATE launch type.',
  );
  const f = (await updateService(ctx, { cluster: 'c', service: 's', forceNewDeployment: true, placementStrategy: [], capacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }] })).service!;
  assert.equal(f.platformVersion, 'LATEST');
  let rec = ctx.state.services.get('c', 's')!.value;
  const [fargate, ec2] = rec.wharf.deployments;
  const ft = (await launchReplicaTasks(ctx, rec, fargate!, 1)).tasks[0]!;
  assert.equal(ft.launchType, 'FARGATE');
  assert.equal(ft.capacityProviderName, 'FARGATE');
  const et = (await launchReplicaTasks(ctx, rec, ec2!, 1)).tasks[0]!;
  assert.equal(et.launchType, 'EC2', 'the older deployment still runs as EC2');
  assert.equal(et.wharf.instanceId, member.containerInstanceArn!.split('/').pop());
  // The service now runs in the Fargate pool; its EC2 deployment's instance is still found (not lost).
  assert.ok(serviceInstanceLookup(ctx, rec)(et.wharf.instanceId!));
  // Fargate provider -> Auto Scaling group provider: EC2 again, no platform version.
  const a = (await updateService(ctx, { cluster: 'c', service: 's', forceNewDeployment: true, capacityProviderStrategy: [{ capacityProvider: 'asg', weight: 1 }] })).service!;
  assert.equal(a.platformVersion, undefined);
  rec = ctx.state.services.get('c', 's')!.value;
  assert.equal(rec.launchType, 'EC2');
  const at = (await launchReplicaTasks(ctx, rec, rec.wharf.deployments[0]!, 1)).tasks[0]!;
  assert.equal(at.launchType, 'EC2');
  assert.equal(at.capacityProviderName, 'asg');
});

test('cluster providers: a repeated provider is refused, default strategy items carry base 0, and a default of zero weights is refused at launch', async () => {
  const ctx = await context();
  await rejects(
    createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'FARGATE'] }),
    'InvalidParameterException',
    "The capacity provider 'FARGATE' is specified more than once. Specify each capacity provider once and try again.",
  );
  const c = (await createCluster(ctx, { clusterName: 'c', capacityProviders: ['FARGATE', 'FARGATE_SPOT'], defaultCapacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 1 }] })).cluster!;
  assert.deepEqual(c.defaultCapacityProviderStrategy, [{ capacityProvider: 'FARGATE', weight: 1, base: 0 }]);
  await rejects(
    putClusterCapacityProviders(ctx, { cluster: 'c', capacityProviders: ['FARGATE_SPOT', 'FARGATE_SPOT'], defaultCapacityProviderStrategy: [] }),
    'InvalidParameterException',
    "The capacity provider 'FARGATE_SPOT' is specified more than once. Specify each capacity provider once and try again.",
  );
  await putClusterCapacityProviders(ctx, { cluster: 'c', capacityProviders: ['FARGATE'], defaultCapacityProviderStrategy: [{ capacityProvider: 'FARGATE', weight: 0 }] });
  await rejects(
    runTask(ctx, { cluster: 'c', taskDefinition: 'fg', networkConfiguration: NET }),
    'InvalidParameterException',
    "There are no capacity providers with a weight value greater than zero defined in the default capacity provider strategy. At least one capacity provider must have a weight value greater than zero specified. Update the cluster's default capacity provider strategy or specify a valid capacity provider strategy and try again.",
  );
});

test('a Fargate task whose runtimePlatform no pool host offers fails ATTRIBUTE, saying so, not "try again later"', async () => {
  const ctx = await context();
  await createCluster(ctx, { clusterName: 'default' });
  await instance(ctx, FARGATE_POOL, [{ name: 'ecs.cpu-architecture', value: 'x86_64' }, { name: 'ecs.os-type', value: 'linux' }]);
  await registerTaskDefinition(ctx, { family: 'arm', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', runtimePlatform: { cpuArchitecture: 'ARM64', operatingSystemFamily: 'LINUX' }, containerDefinitions: [{ name: 'app', image: 'busybox', essential: true }] }, TEST_CALLER);
  const r = await runTask(ctx, { cluster: 'default', taskDefinition: 'arm', launchType: 'FARGATE', networkConfiguration: NET });
  assert.deepEqual(r.tasks, []);
  assert.deepEqual(r.failures, [{ reason: 'ATTRIBUTE', detail: FARGATE_ATTRIBUTE_DETAIL }]);
  // The x86_64 definition on the same pool runs.
  const ok = await runTask(ctx, { cluster: 'default', taskDefinition: 'fg', launchType: 'FARGATE', networkConfiguration: NET });
  assert.deepEqual(ok.failures, []);
});
