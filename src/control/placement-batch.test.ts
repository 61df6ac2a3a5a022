import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readResources } from '../core/instance-resources';
import { WharfError } from '../core/errors';
import { keys, type InstanceUsageRecord, type TaskRecord } from '../core/resources';
import { StoreConflictError } from '../store/store';
import { batchContext as context, placementInput as input } from './batch-test-helpers';
import type { ControlContext } from './context';
import { placeTasks } from './placement';
import { placementCommitStats } from './placement-batch';

/** CPU left on an instance as the store holds it, and the tasks the store holds on it. */
async function stored(ctx: ControlContext, id: string): Promise<{ cpu: number; tasks: number }> {
  const usage = await ctx.store.get<InstanceUsageRecord>(keys.instanceUsage('c1', id));
  const tasks = (await ctx.store.list<TaskRecord>('tasks/c1/')).filter((t) => t.value.wharf.instanceId === id);
  return { cpu: usage ? readResources(usage.value.remainingResources).cpu : NaN, tasks: tasks.length };
}

test('concurrent placements are decided together and written in fewer transactions, none overbooking', async () => {
  const { ctx, store, ids } = await context({ instances: 2, cpu: 1024 });
  const before = { ...placementCommitStats };
  // Ten callers of one task each; the two instances hold eight tasks of 256 CPU units.
  const answers = await Promise.all(Array.from({ length: 10 }, () => placeTasks(ctx, input())));
  const placed = answers.flatMap((a) => a.tasks);
  assert.equal(placed.length, 8, 'eight tasks fit');
  assert.deepEqual(answers.flatMap((a) => a.failures.map((f) => f.reason)), ['RESOURCE:CPU', 'RESOURCE:CPU']);
  assert.equal(new Set(placed.map((t) => t.taskArn)).size, 8, 'every caller got tasks of its own');
  for (const a of answers) assert.equal(a.tasks.length + a.failures.length, 1, 'each caller is answered for its one task');
  const ok = store.txns.filter((t) => t.ok);
  assert.ok(ok.length < 8, `fewer transactions than placements (${ok.length})`);
  assert.ok(placementCommitStats.largestBatch > 1, 'some transaction carried several callers');
  assert.equal(placementCommitStats.placements - before.placements, 8);
  for (const id of ids) assert.deepEqual(await stored(ctx, id), { cpu: 0, tasks: 4 });
});

test('a conflict in the middle of a batch retries only the callers on the instance that changed', async () => {
  const { ctx, store, ids } = await context({ instances: 2, cpu: 1024 });
  const [a, b] = ids as [string, string];
  // Hold the first caller's txn so that the next three gather into one batch behind it.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  store.beforeTxn = async (n) => {
    if (n === 0) await held;
    if (n === 1) {
      // Another replica places 512 CPU units on instance a just before the batch commits.
      const use = await store.inner.get<InstanceUsageRecord>(keys.instanceUsage('c1', a));
      const left = readResources(use!.value.remainingResources).cpu - 512;
      await store.inner.update(keys.instanceUsage('c1', a), { remainingResources: [{ name: 'CPU', type: 'INTEGER', integerValue: left }, { name: 'MEMORY', type: 'INTEGER', integerValue: 8192 }], version: use!.value.version + 1 }, use!.modRevision);
    }
  };
  const first = placeTasks(ctx, input({ on: [a], count: 1 }));
  await new Promise((r) => setTimeout(r, 1));
  const onA1 = placeTasks(ctx, input({ on: [a], count: 1 }));
  const onB = placeTasks(ctx, input({ on: [b, b], count: 2 }));
  const onA2 = placeTasks(ctx, input({ on: [a], count: 1 }));
  release();
  const [r0, r1, r2, r3] = await Promise.all([first, onA1, onB, onA2]);
  assert.equal(r0.tasks.length, 1);
  assert.equal(r2.tasks.length, 2, 'the caller on the other instance is placed');
  // a: 1024 - 256 (first) - 512 (the other replica) leaves room for one more task of 256, so
  // exactly one of the two callers on a is placed on fresh state and the other fails.
  assert.equal(r1.tasks.length + r3.tasks.length, 1, 'no overbooking after the conflict');
  assert.deepEqual([...r1.failures, ...r3.failures].map((f) => f.reason), ['RESOURCE:CPU']);
  const txns = store.txns;
  assert.equal(txns[1]!.ok, false, 'the batch of three conflicted');
  assert.equal(txns[1]!.ops.filter((o) => o.key.startsWith('tasks/')).length, 4, 'it carried all three callers');
  assert.equal(txns[2]!.ok, true);
  assert.deepEqual(txns[2]!.ops.filter((o) => o.key.startsWith('tasks/')).map((o) => (o as { value: TaskRecord }).value.wharf.instanceId), [b, b], 'written again at once: the caller on b alone');
  assert.deepEqual(await stored(ctx, a), { cpu: 0, tasks: 2 });
  assert.deepEqual(await stored(ctx, b), { cpu: 512, tasks: 2 });
});

test('after a conflict the batch is written again at once when its reservations still fit the instance as it is now', async () => {
  for (const constrained of [false, true]) {
    const { ctx, store, ids } = await context({ instances: 2, cpu: 1024 });
    const [a, b] = ids as [string, string];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    store.beforeTxn = async (n) => {
      if (n === 0) await held;
      if (n === 1) {
        // Another replica places 256 CPU units on a: room is left for both callers on a.
        const use = await store.inner.get<InstanceUsageRecord>(keys.instanceUsage('c1', a));
        const left = readResources(use!.value.remainingResources).cpu - 256;
        await store.inner.update(keys.instanceUsage('c1', a), { remainingResources: [{ name: 'CPU', type: 'INTEGER', integerValue: left }, { name: 'MEMORY', type: 'INTEGER', integerValue: 8192 }], version: use!.value.version + 1 }, use!.modRevision);
      }
    };
    // A constraint the rebase cannot re-check (distinctInstance is about the instance's tasks).
    const constraints = constrained ? [{ type: 'distinctInstance' as const }] : [];
    const first = placeTasks(ctx, input({ on: [a] }));
    await new Promise((r) => setTimeout(r, 1));
    const rest = [placeTasks(ctx, input({ on: [a], constraints, group: 'family:other' })), placeTasks(ctx, input({ on: [b] })), placeTasks(ctx, input({ on: [a] }))];
    release();
    const answers = await Promise.all([first, ...rest]);
    assert.deepEqual(answers.map((x) => x.tasks.length), [1, 1, 1, 1], 'everyone placed');
    const tasksIn = (n: number) => store.txns[n]!.ops.filter((o) => o.key.startsWith('tasks/')).length;
    assert.equal(store.txns[1]!.ok, false);
    if (!constrained) {
      assert.equal(store.txns[2]!.ok, true);
      assert.equal(tasksIn(2), 3, 'the whole batch written again, as decided');
      assert.equal(store.txns.length, 3);
    } else {
      assert.equal(tasksIn(2), 1, 'the caller on b written at once; those on a decide again');
    }
    assert.deepEqual(await stored(ctx, a), { cpu: 1024 - 256 - 3 * 256, tasks: 3 });
  }
});

test("one caller's bad request or own conflict does not fail the others in its batch", async () => {
  const { ctx, store, ids } = await context({ instances: 2, cpu: 4096 });
  await store.inner.create('tokens/RunTask/taken', {});
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  store.beforeTxn = async (n) => {
    if (n === 0) await held;
  };
  const first = placeTasks(ctx, input());
  await new Promise((r) => setTimeout(r, 1));
  const bad = placeTasks(ctx, input({ makeTask: () => { throw new WharfError('InvalidParameterException', 'bad request'); } }));
  const clash = placeTasks(ctx, input({ extraOps: () => [{ op: 'create', key: 'tokens/RunTask/taken', value: {} }] }));
  const good = placeTasks(ctx, input({ count: 3 }));
  release();
  await assert.rejects(bad, (e: unknown) => e instanceof WharfError && e.message === 'bad request');
  await assert.rejects(clash, (e: unknown) => e instanceof StoreConflictError && e.key === 'tokens/RunTask/taken');
  assert.equal((await first).tasks.length, 1);
  assert.equal((await good).tasks.length, 3);
  const [x, y] = [await stored(ctx, ids[0]!), await stored(ctx, ids[1]!)];
  assert.equal(x.tasks + y.tasks, 4, 'the refused callers wrote nothing');
  // An instance no task landed on (placement may put all four on one) has no usage record yet.
  const free = (s: { cpu: number; tasks: number }) => (s.tasks === 0 && Number.isNaN(s.cpu) ? 4096 : s.cpu);
  const used = 2 * 4096 - free(x) - free(y);
  assert.equal(used, 4 * 256, 'reservations match the tasks written');
});

test('a batch stays under the store\'s limit of ops per transaction', async () => {
  const { ctx, store } = await context({ instances: 8, cpu: 4096, maxTxnOps: 20 });
  const answers = await Promise.all(Array.from({ length: 12 }, () => placeTasks(ctx, input({ count: 2 }))));
  assert.equal(answers.flatMap((a) => a.tasks).length, 24);
  for (const t of store.txns) {
    const weight = t.ops.reduce((n, op) => n + (op.op === 'update' ? 2 : 1), 0);
    assert.ok(weight <= 20, `txn of weight ${weight}`);
  }
  assert.ok(store.txns.some((t) => t.ops.filter((o) => o.key.startsWith('tasks/')).length > 2), 'some txn still carried several callers');
});
