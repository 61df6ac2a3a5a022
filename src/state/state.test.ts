import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../store/memory';
import { keys, type TaskRecord } from '../core/resources';
import { State } from './state';

/** A task record with only what the cache's indexes read. */
function task(cluster: string, id: string, lastStatus: string, launchType = 'EC2'): TaskRecord {
  return { taskArn: `arn:aws:ecs:us-east-1:123456789012:task/${cluster}/${id}`, lastStatus, desiredStatus: 'RUNNING', launchType, wharf: { id, cluster } } as unknown as TaskRecord;
}

/** What DescribeClusters counted before the counts were kept: a walk over the cluster's tasks. */
function recount(state: State, cluster: string) {
  const c = { runningEC2: 0, runningFargate: 0, pendingEC2: 0, pendingFargate: 0 };
  for (const e of state.tasks.children(cluster).values()) {
    const fargate = e.value.launchType === 'FARGATE';
    if (e.value.lastStatus === 'RUNNING') fargate ? c.runningFargate++ : c.runningEC2++;
    else if (['PENDING', 'PROVISIONING', 'ACTIVATING'].includes(e.value.lastStatus!)) fargate ? c.pendingFargate++ : c.pendingEC2++;
  }
  return c;
}

test("a cluster's running and pending task counts follow every write, across restarts of the cache", async () => {
  const store = new MemoryStore();
  const state = new State(store);
  await state.start();
  const put = async (t: TaskRecord) => state.waitFor(await store.txn([{ op: 'put', key: keys.task(t.wharf.cluster, t.wharf.id), value: t }]));
  const del = async (cluster: string, id: string) => state.waitFor(await store.txn([{ op: 'delete', key: keys.task(cluster, id) }]));
  // Seeded, so the walk below is the same each run and covers every transition.
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 48271) % 2147483647), seed % n);
  const statuses = ['PROVISIONING', 'PENDING', 'ACTIVATING', 'RUNNING', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED'];
  const live = new Map<string, TaskRecord>();
  for (let step = 0; step < 600; step++) {
    const cluster = ['a', 'b'][rnd(2)]!;
    const id = `t${rnd(40)}`;
    const k = `${cluster}/${id}`;
    if (live.has(k) && rnd(6) === 0) {
      await del(cluster, id);
      live.delete(k);
    } else {
      const t = task(cluster, id, statuses[rnd(statuses.length)]!, live.get(k)?.launchType ?? ['EC2', 'FARGATE'][rnd(2)]);
      await put(t);
      live.set(k, t);
    }
    if (step % 50 === 0) for (const c of ['a', 'b']) assert.deepEqual({ ...state.taskCountsOf(c) }, recount(state, c), `step ${step}, cluster ${c}`);
  }
  for (const c of ['a', 'b', 'none']) assert.deepEqual({ ...state.taskCountsOf(c) }, recount(state, c), `cluster ${c}`);
  assert.ok(state.taskCountsOf('a').runningEC2 + state.taskCountsOf('a').runningFargate > 0, 'the walk left running tasks to count');
  // A second cache loaded from the store's snapshot counts the same.
  const again = new State(store);
  await again.start();
  for (const c of ['a', 'b']) assert.deepEqual({ ...again.taskCountsOf(c) }, { ...state.taskCountsOf(c) }, `reloaded, cluster ${c}`);
  state.stop();
  again.stop();
});
