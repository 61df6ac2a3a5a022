import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSpotToReclaim } from './spot-reclaim';

const spot = (taskId: string, memory: number, cpu = 256) => ({ taskId, cluster: 'c', cpu, memory });

test('nothing is reclaimed when the task fits somewhere', () => {
  assert.deepEqual(chooseSpotToReclaim([{ id: 'a', free: { cpu: 512, memory: 1024 }, spot: [spot('s1', 512)] }], { cpu: 256, memory: 512 }, 1), []);
});

test('the host needing the fewest interruptions is chosen, largest Spot tasks first', () => {
  const hosts = [
    { id: 'a', free: { cpu: 0, memory: 0 }, spot: [spot('a1', 256), spot('a2', 256)] },
    { id: 'b', free: { cpu: 0, memory: 0 }, spot: [spot('b1', 256), spot('b2', 512)] },
  ];
  assert.deepEqual(chooseSpotToReclaim(hosts, { cpu: 256, memory: 512 }, 1), [{ taskId: 'b2', cluster: 'c' }]);
  // Two tasks: b2 for the first; the second needs both of a's.
  assert.deepEqual(chooseSpotToReclaim(hosts, { cpu: 256, memory: 512 }, 2).map((t) => t.taskId), ['b2', 'a1', 'a2']);
});

test('room already being freed counts: nothing more is reclaimed; nothing when even all Spot tasks are not enough', () => {
  assert.deepEqual(chooseSpotToReclaim([{ id: 'a', free: { cpu: 256, memory: 512 }, spot: [spot('s', 512)] }], { cpu: 256, memory: 512 }, 1), []);
  assert.deepEqual(chooseSpotToReclaim([{ id: 'a', free: { cpu: 0, memory: 0 }, spot: [spot('s', 256)] }], { cpu: 256, memory: 512 }, 1), []);
});
