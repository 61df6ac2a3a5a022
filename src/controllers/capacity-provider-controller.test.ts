import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAPACITY_PROVIDER_ATTRIBUTE, createCapacityProvider } from '../control/capacity-providers';
import { createCluster } from '../control/clusters';
import { registerContainerInstance } from '../control/container-instances';
import { controlTestContext, TEST_CALLER } from '../control/control-test-context';
import { createService, updateService } from '../control/services';
import { registerTaskDefinition } from '../control/task-definitions';
import { CapacityProviderController, type ScaleRequest } from './capacity-provider-controller';

const ASG = 'arn:aws:autoscaling:eu-west-3:123456789012:autoScalingGroup:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0:autoScalingGroupName/g';

test('managed scaling: tasks a service cannot place give reservation 200 from an empty group; the scale action runs once per new size', async () => {
  const ctx = await controlTestContext();
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 512, cpu: 256, essential: true }] }, TEST_CALLER);
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: ASG, managedScaling: { status: 'ENABLED', targetCapacity: 100 }, managedTerminationProtection: 'ENABLED' } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['w'], defaultCapacityProviderStrategy: [{ capacityProvider: 'w', weight: 1 }] });
  await createService(ctx, { cluster: 'c', serviceName: 's', taskDefinition: 'web', desiredCount: 3 }, TEST_CALLER);
  const asked: ScaleRequest[] = [];
  const c = new CapacityProviderController({ ctx, scale: async (r) => void asked.push(r) });

  const [r] = c.reconcile();
  assert.deepEqual({ ...r }, { capacityProvider: 'w', cluster: 'c', instances: 0, needed: 3, reservation: 200, desired: 3 });
  await new Promise((res) => setImmediate(res));
  c.reconcile();
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(asked.map((a) => a.desired), [3], 'asked once for the same size');
  assert.equal(asked[0]!.autoScalingGroupArn, ASG);

  // One group instance joins (1024 MiB: two tasks fit): three tasks still wait -> 1 + 2 needed.
  await registerContainerInstance(ctx, { cluster: 'c', totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }], attributes: [{ name: CAPACITY_PROVIDER_ATTRIBUTE, value: 'w' }] });
  await registerContainerInstance(ctx, { cluster: 'c', totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }] });
  const [r2] = c.reconcile();
  assert.deepEqual({ instances: r2!.instances, needed: r2!.needed, reservation: r2!.reservation, desired: r2!.desired }, { instances: 1, needed: 3, reservation: 300, desired: 3 }, 'the instance outside the group does not count');
  assert.equal(asked.length, 1, 'same desired size: nothing to run');
});

test('providers without managed scaling, or in no cluster, are not measured', async () => {
  const ctx = await controlTestContext();
  await createCapacityProvider(ctx, { name: 'off', autoScalingGroupProvider: { autoScalingGroupArn: ASG } });
  await createCapacityProvider(ctx, { name: 'alone', autoScalingGroupProvider: { autoScalingGroupArn: ASG.replace('/g', '/h'), managedScaling: { status: 'ENABLED' } } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['off'] });
  assert.deepEqual(new CapacityProviderController({ ctx }).reconcile(), []);
});

test('instanceWarmupPeriod: a larger size is not asked for while the last scale-out is joining, and is once the period is over', async () => {
  const ctx = await controlTestContext();
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 512, cpu: 256, essential: true }] }, TEST_CALLER);
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: ASG, managedScaling: { status: 'ENABLED', targetCapacity: 100, instanceWarmupPeriod: 60 } } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['w'], defaultCapacityProviderStrategy: [{ capacityProvider: 'w', weight: 1 }] });
  await createService(ctx, { cluster: 'c', serviceName: 's', taskDefinition: 'web', desiredCount: 3 }, TEST_CALLER);
  const asked: number[] = [];
  const c = new CapacityProviderController({ ctx, scale: async (r) => void asked.push(r.desired) });
  const settle = async () => {
    c.reconcile();
    await new Promise((res) => setImmediate(res));
  };
  await settle();
  assert.deepEqual(asked, [3]);

  await updateService(ctx, { cluster: 'c', service: 's', desiredCount: 5 });
  await settle();
  assert.equal(c.reconcile()[0]!.desired, 5, 'the reading says 5');
  assert.deepEqual(asked, [3], 'held: the 3 asked for 0 s ago have not joined and 60 s have not passed');

  ctx.clock.advance(60_000);
  await settle();
  assert.deepEqual(asked, [3, 5], 'asked once the warm-up period is over');
});

test('scale-in is asked for only once the desired size has stayed below the group for 15 minutes; a dip that ends is forgotten', async () => {
  const ctx = await controlTestContext();
  await createCapacityProvider(ctx, { name: 'w', autoScalingGroupProvider: { autoScalingGroupArn: ASG, managedScaling: { status: 'ENABLED', targetCapacity: 100 } } });
  await createCluster(ctx, { clusterName: 'c', capacityProviders: ['w'], defaultCapacityProviderStrategy: [{ capacityProvider: 'w', weight: 1 }] });
  // Two idle group instances, nothing waiting: ECS's formula wants 0 of them.
  for (let i = 0; i < 2; i++) {
    await registerContainerInstance(ctx, { cluster: 'c', totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }], attributes: [{ name: CAPACITY_PROVIDER_ATTRIBUTE, value: 'w' }] });
  }
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 2048, cpu: 256, essential: true }] }, TEST_CALLER);
  const asked: number[] = [];
  const c = new CapacityProviderController({ ctx, scale: async (r) => void asked.push(r.desired) });
  const pass = async (advanceMs = 0) => {
    ctx.clock.advance(advanceMs);
    const [r] = c.reconcile();
    await new Promise((res) => setImmediate(res));
    return r!;
  };
  assert.equal((await pass()).desired, 0, 'the reading says 0 at once');
  assert.deepEqual(asked, [], 'but no scale-in yet');
  await pass(10 * 60_000);
  assert.deepEqual(asked, [], 'still held after 10 minutes');
  // A service wanting a task that fits no instance lifts the desired size above the group's for a pass: the dip ends.
  await createService(ctx, { cluster: 'c', serviceName: 's', taskDefinition: 'web', desiredCount: 1 }, TEST_CALLER);
  assert.ok((await pass()).desired > 2);
  assert.equal(asked.length, 1, 'scale-out asked for at once');
  await updateService(ctx, { cluster: 'c', service: 's', desiredCount: 0 });
  await pass(6 * 60_000);
  assert.equal(asked.length, 1, 'a new dip counts from its own start, not from the first one');
  await pass(15 * 60_000);
  assert.deepEqual(asked.slice(1), [0], 'asked once the dip has lasted 15 minutes');
});
