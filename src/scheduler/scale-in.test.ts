import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemoryClusterSnapshot } from './in-memory-snapshot';
import { instanceFromSpec } from './instance-ops';
import { chooseTasksToStop, type ServiceTaskInfo } from './scale-in';
import { seededRandom } from '../lib/seeded-random';

const snap = new InMemoryClusterSnapshot(
  [
    { id: 'a1', az: 'a', mem: 1000 },
    { id: 'a2', az: 'a', mem: 6000 },
    { id: 'b1', az: 'b', mem: 3000 },
    { id: 'c1', az: 'c', mem: 2000 },
  ].map((i) => instanceFromSpec({ id: i.id, attributes: { 'ecs.availability-zone': i.az }, registered: { cpu: 4096, memory: 8192 }, remaining: { cpu: 2048, memory: i.mem } })),
);
const task = (taskArn: string, instanceId: string, extra: Partial<ServiceTaskInfo> = {}): ServiceTaskInfo => ({ taskArn, instanceId, memory: 100, ...extra });
// Zone a holds 4 tasks (3 on a1), b 2, c 1.
const tasks = [task('t1', 'a1'), task('t2', 'a1'), task('t3', 'a1'), task('t4', 'a2'), task('t5', 'b1'), task('t6', 'b1'), task('t7', 'c1')];

test('the default keeps zones balanced: stop from the zone with most tasks, then the busiest instance', () => {
  const stop = chooseTasksToStop(tasks, 3, undefined, snap, { random: seededRandom(1) });
  assert.equal(stop.length, 3);
  // a:4 -> the first two come from zone a (a1 has most); then a has 2, b 2: a1 or b1 (1 vs 2 tasks) -> b1.
  assert.ok(['t1', 't2', 't3'].includes(stop[0]!));
  assert.ok(['t1', 't2', 't3'].includes(stop[1]!));
  assert.ok(['t5', 't6'].includes(stop[2]!), `third was ${stop[2]}`);
});

test('binpack(memory) stops the task whose instance has the most memory free afterwards', () => {
  assert.deepEqual(chooseTasksToStop(tasks, 1, [{ type: 'binpack', field: 'memory' }], snap), ['t4']);
});

test('pending and unhealthy tasks go first; protected tasks never go', () => {
  const mixed = [task('t1', 'a1', { protected: true }), task('t2', 'c1', { lastStatus: 'PENDING' }), task('t3', 'a1'), task('t4', 'b1', { healthy: false })];
  const stop = chooseTasksToStop(mixed, 4, [{ type: 'spread', field: 'attribute:ecs.availability-zone' }], snap, { random: seededRandom(3) });
  assert.deepEqual(new Set(stop.slice(0, 2)), new Set(['t2', 't4']));
  assert.deepEqual(stop.slice(2), ['t3']);
});

test('random stops any task, reproducibly with a seed', () => {
  const a = chooseTasksToStop(tasks, 2, [{ type: 'random' }], snap, { random: seededRandom(9) });
  const b = chooseTasksToStop(tasks, 2, [{ type: 'random' }], snap, { random: seededRandom(9) });
  assert.deepEqual(a, b);
  assert.equal(new Set(a).size, 2);
});
