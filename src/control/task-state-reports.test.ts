import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readResources } from '../core/instance-resources';
import { keys, type InstanceUsageRecord, type TaskRecord } from '../core/resources';
import { txnWeight } from '../store/store';
import { batchContext, placementInput } from './batch-test-helpers';
import { placeTasks } from './placement';
import { reportCommitStats, submitTaskStateChange } from './task-state-changes';

test("agents' task reports arriving while one transaction is in flight go together in the next, under the store's op limit", async () => {
  const { ctx, store, ids } = await batchContext({ instances: 2, cpu: 4096, maxTxnOps: 12 });
  const placed = (await placeTasks(ctx, placementInput({ count: 10 }))).tasks;
  assert.equal(placed.length, 10);
  store.txns.length = 0;
  const before = { ...reportCommitStats };
  const report = (t: TaskRecord | { taskArn?: string }, status: string) =>
    submitTaskStateChange(ctx, { cluster: 'c1', task: t.taskArn!, status, containers: [] });
  // Every task RUNNING, reported one call each as the agents do, all at once.
  const acks = await Promise.all(placed.map((t) => report(t, 'RUNNING')));
  assert.ok(acks.every((a) => a.acknowledgment === 'true'));
  for (const t of placed) assert.equal(ctx.state.tasks.get('c1', t.taskArn!.split('/').pop()!)!.value.lastStatus, 'RUNNING');
  assert.ok(store.txns.length < 10, `fewer transactions than reports (${store.txns.length})`);
  assert.equal(reportCommitStats.reports - before.reports, 10);
  for (const t of store.txns) assert.ok(t.ops.reduce((n, op) => n + txnWeight(op), 0) <= 12, 'within maxTxnOps');

  // All stop: each reservation goes back exactly once, however the reports were grouped.
  store.txns.length = 0;
  await Promise.all(placed.map((t) => report(t, 'STOPPED')));
  for (const t of placed) assert.equal(ctx.state.tasks.get('c1', t.taskArn!.split('/').pop()!)!.value.lastStatus, 'STOPPED');
  for (const id of ids) {
    const usage = await ctx.store.get<InstanceUsageRecord>(keys.instanceUsage('c1', id));
    assert.equal(readResources(usage!.value.remainingResources).cpu, 4096, 'every reservation returned');
  }
  assert.ok(store.txns.length > 1 && store.txns.length < 10, `stops grouped within the limit (${store.txns.length} txns)`);
  for (const t of store.txns) assert.ok(t.ops.reduce((n, op) => n + txnWeight(op), 0) <= 12, 'within maxTxnOps');
});

test('a task that stops on its own is no longer wanted from its first stopping report: desiredStatus STOPPED, its stop code and reason, and stoppingAt then', async () => {
  const { ctx } = await batchContext({ instances: 1, cpu: 4096 });
  const [a, b] = (await placeTasks(ctx, placementInput({ count: 2 }))).tasks;
  const report = (t: TaskRecord, status: string, extra: object = {}) => submitTaskStateChange(ctx, { cluster: 'c1', task: t.taskArn!, status, containers: [], ...extra } as never);
  const get = (t: TaskRecord) => ctx.state.tasks.get('c1', t.taskArn!.split('/').pop()!)!.value;
  await report(a!, 'RUNNING');
  await report(a!, 'STOPPING', { stopCode: 'EssentialContainerExited', reason: 'Essential container in task exited' });
  const stopping = get(a!);
  assert.equal(stopping.lastStatus, 'STOPPING');
  assert.equal(stopping.desiredStatus, 'STOPPED');
  assert.equal(stopping.stopCode, 'EssentialContainerExited');
  assert.equal(stopping.stoppedReason, 'Essential container in task exited');
  assert.ok(stopping.stoppingAt !== undefined, 'stoppingAt is when it began to stop');
  assert.equal(stopping.stoppedAt, undefined);
  await report(a!, 'STOPPED', { stopCode: 'EssentialContainerExited', reason: 'Essential container in task exited' });
  assert.equal(get(a!).stoppingAt, stopping.stoppingAt, 'kept from the stopping report');
  // A stop the agent reports without a code reads as an essential exit; a later TaskFailedToStart wins.
  await report(b!, 'STOPPING');
  assert.deepEqual([get(b!).desiredStatus, get(b!).stopCode, get(b!).stoppedReason], ['STOPPED', 'EssentialContainerExited', 'Essential container in task exited']);
  await report(b!, 'STOPPED', { stopCode: 'TaskFailedToStart', reason: 'CannotPullContainerError: pull access denied' });
  assert.deepEqual([get(b!).stopCode, get(b!).stoppedReason], ['TaskFailedToStart', 'CannotPullContainerError: pull access denied']);
});
