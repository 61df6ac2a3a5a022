import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countByProvider, launchStrategyProblem, splitTasks, strategyProblem } from './capacity-provider-strategy';
import { managedScaling, provisioningEstimate } from './capacity-provider-scaling';

const counts = (names: string[]) => Object.fromEntries(countByProvider(names));

test("ECS's example: FARGATE base 2 weight 1 and FARGATE_SPOT weight 3, 10 tasks -> 4 and 6", () => {
  const s = [{ capacityProvider: 'FARGATE', base: 2, weight: 1 }, { capacityProvider: 'FARGATE_SPOT', weight: 3 }];
  const names = splitTasks(s, 10);
  assert.deepEqual(counts(names), { FARGATE: 4, FARGATE_SPOT: 6 });
  // The base is filled first.
  assert.deepEqual(names.slice(0, 2), ['FARGATE', 'FARGATE']);
});

test('a service scaled up step by step ends as one launched at once', () => {
  const s = [{ capacityProvider: 'FARGATE', base: 2, weight: 1 }, { capacityProvider: 'FARGATE_SPOT', weight: 3 }];
  let have = new Map<string, number>();
  for (let i = 0; i < 10; i++) have = countByProvider([...[...have].flatMap(([k, v]) => Array(v).fill(k)), ...splitTasks(s, 1, have)]);
  assert.deepEqual(Object.fromEntries(have), { FARGATE: 4, FARGATE_SPOT: 6 });
});

test('a replacement goes to the provider below its share', () => {
  const s = [{ capacityProvider: 'FARGATE', weight: 1 }, { capacityProvider: 'FARGATE_SPOT', weight: 1 }];
  // Four tasks 2/2; a Spot task was reclaimed: the replacement is Spot again.
  assert.deepEqual(splitTasks(s, 1, new Map([['FARGATE', 2], ['FARGATE_SPOT', 1]])), ['FARGATE_SPOT']);
});

test('a provider of weight 0 gets only its base', () => {
  const s = [{ capacityProvider: 'FARGATE', base: 3, weight: 0 }, { capacityProvider: 'FARGATE_SPOT', weight: 1 }];
  assert.deepEqual(counts(splitTasks(s, 7)), { FARGATE: 3, FARGATE_SPOT: 4 });
  assert.deepEqual(counts(splitTasks(s, 2)), { FARGATE: 2 });
});

test('equal weights alternate, the first listed first', () => {
  const s = [{ capacityProvider: 'a', weight: 1 }, { capacityProvider: 'b', weight: 1 }];
  assert.deepEqual(splitTasks(s, 4), ['a', 'b', 'a', 'b']);
});

test('strategy rules: one base, no zero-weight-only strategy, no mix of Fargate and ASG providers', () => {
  assert.equal(strategyProblem([{ capacityProvider: 'a', base: 1 }, { capacityProvider: 'b', base: 2 }]), 'Only one capacity provider in a strategy can have a base defined.');
  assert.equal(launchStrategyProblem([{ capacityProvider: 'a', base: 1, weight: 0 }]), 'The capacity provider strategy must contain at least one capacity provider with a weight greater than zero.');
  assert.match(strategyProblem([{ capacityProvider: 'FARGATE', weight: 1 }, { capacityProvider: 'asg', weight: 1 }])!, /cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers/);
  assert.equal(strategyProblem([{ capacityProvider: 'a', weight: 1001 }]), 'Capacity provider strategy weight must be between 0 and 1000.');
  assert.equal(strategyProblem([{ capacityProvider: 'a', base: -1, weight: 1 }]), 'Capacity provider strategy base must be between 0 and 100000.');
  assert.equal(launchStrategyProblem([{ capacityProvider: 'FARGATE', base: 1, weight: 1 }, { capacityProvider: 'FARGATE_SPOT' }]), undefined);
});

const settings = { targetCapacity: 100, minimumScalingStepSize: 1, maximumScalingStepSize: 10000, terminationProtection: false };

test('reservation: no instances and tasks waiting -> 200; nothing at all -> 100', () => {
  assert.deepEqual(managedScaling({ instances: 0, busyInstances: 0, provisioning: [{ cpu: 256, memory: 512 }], settings }), { needed: 1, reservation: 200, desired: 1 });
  assert.deepEqual(managedScaling({ instances: 0, busyInstances: 0, provisioning: [], settings }), { needed: 0, reservation: 100, desired: 0 });
});

test('reservation is M/N*100 and the desired size meets the target', () => {
  assert.deepEqual(managedScaling({ instances: 4, busyInstances: 3, provisioning: [], settings: { ...settings, targetCapacity: 75 } }), { needed: 3, reservation: 75, desired: 4 });
  assert.deepEqual(managedScaling({ instances: 4, busyInstances: 3, provisioning: [], settings }), { needed: 3, reservation: 75, desired: 3 });
  // Idle group: scale in to nothing unless termination protection keeps busy instances.
  assert.equal(managedScaling({ instances: 2, busyInstances: 0, provisioning: [], settings }).desired, 0);
});

test('waiting tasks add instances within the step sizes', () => {
  const size = { cpu: 1024, memory: 2048 };
  // 5 tasks of 512 MiB fit 4 per instance -> 2 more instances.
  assert.equal(provisioningEstimate(Array(5).fill({ cpu: 128, memory: 512 }), size), 2);
  const r = managedScaling({ instances: 2, busyInstances: 2, provisioning: Array(5).fill({ cpu: 128, memory: 512 }), instanceSize: size, settings });
  assert.deepEqual(r, { needed: 4, reservation: 200, desired: 4 });
  const capped = managedScaling({ instances: 2, busyInstances: 2, provisioning: Array(40).fill({ cpu: 1024, memory: 512 }), instanceSize: size, settings: { ...settings, maximumScalingStepSize: 3 } });
  assert.equal(capped.needed, 5);
  const stepped = managedScaling({ instances: 2, busyInstances: 2, provisioning: [{ cpu: 1, memory: 1 }], instanceSize: size, settings: { ...settings, minimumScalingStepSize: 2 } });
  assert.equal(stepped.needed, 4);
});

test('termination protection keeps every busy instance', () => {
  const r = managedScaling({ instances: 5, busyInstances: 3, provisioning: [], settings: { ...settings, targetCapacity: 100, terminationProtection: true } });
  assert.equal(r.desired, 3);
  // A target of 100 with no task anywhere would empty the group; busy instances stay.
  assert.equal(managedScaling({ instances: 2, busyInstances: 0, provisioning: [], settings: { ...settings, terminationProtection: true } }).desired, 0);
  assert.equal(managedScaling({ instances: 2, busyInstances: 1, provisioning: [], settings: { ...settings, targetCapacity: 100, terminationProtection: true } }).desired, 1);
});
