/**
 * Test helpers for the group commits (placement-batch.test.ts, task-state-changes.test.ts): a
 * store with a networked store's latency, a cluster of connected instances, placement inputs.
 */
import type { ContainerInstanceRecord, TaskRecord } from '../core/resources';
import { keys } from '../core/resources';
import type { Resource } from '../core/shapes/ecs';
import { FakeClock, createLogger } from '../lib';
import { PlacementView } from '../state/placement-view';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { casUpdate, type Store, type StoreEntry, type TxnOp, type Watcher, type WatchEvent } from '../store/store';
import { createCluster } from './clusters';
import { registerContainerInstance } from './container-instances';
import type { ControlContext } from './context';
import type { PlaceTasksInput } from './placement';

/**
 * A store whose transactions take a few milliseconds, like a networked one, so that callers
 * arriving meanwhile queue up; it records every txn and lets a test act just before one runs.
 */
export class SlowStore implements Store {
  readonly txns: { ops: TxnOp[]; ok: boolean }[] = [];
  beforeTxn?: (n: number, ops: TxnOp[]) => Promise<void>;

  constructor(readonly inner: MemoryStore, readonly maxTxnOps?: number) {}

  async txn(ops: TxnOp[]): Promise<number> {
    await this.beforeTxn?.(this.txns.length, ops);
    await new Promise((r) => setTimeout(r, 5));
    const entry = { ops, ok: false };
    this.txns.push(entry);
    const rev = await this.inner.txn(ops);
    entry.ok = true;
    return rev;
  }
  get<T>(key: string): Promise<StoreEntry<T> | undefined> {
    return this.inner.get<T>(key);
  }
  list<T>(prefix: string): Promise<StoreEntry<T>[]> {
    return this.inner.list<T>(prefix);
  }
  create(key: string, value: unknown): Promise<number> {
    return this.txn([{ op: 'create', key, value }]);
  }
  update(key: string, value: unknown, expectedRevision: number): Promise<number> {
    return this.txn([{ op: 'update', key, value, expectedRevision }]);
  }
  delete(key: string, expectedRevision?: number): Promise<number> {
    return this.txn([{ op: 'delete', key, expectedRevision }]);
  }
  snapshot<T>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    return this.inner.snapshot<T>(prefix);
  }
  revision(): Promise<number> {
    return this.inner.revision();
  }
  watch(prefix: string, from: number, onEvents: (events: WatchEvent[]) => void): Watcher {
    return this.inner.watch(prefix, from, onEvents);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export async function batchContext(opts: { instances: number; cpu: number; maxTxnOps?: number }): Promise<{ ctx: ControlContext; store: SlowStore; ids: string[] }> {
  const store = new SlowStore(new MemoryStore(), opts.maxTxnOps);
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
  const ids: string[] = [];
  for (let i = 0; i < opts.instances; i++) {
    const totalResources: Resource[] = [
      { name: 'CPU', type: 'INTEGER', integerValue: opts.cpu },
      { name: 'MEMORY', type: 'INTEGER', integerValue: 8192 },
    ];
    const ci = (await registerContainerInstance(ctx, { cluster: 'c1', totalResources })).containerInstance!;
    const id = ci.containerInstanceArn!.split('/').pop()!;
    // Its agent connected (the liveness controller's write).
    await ctx.state.waitFor((await casUpdate<ContainerInstanceRecord>(store.inner, keys.instance('c1', id), (cur) => ({ ...cur!.value, agentConnected: true }))).revision);
    ids.push(id);
  }
  store.txns.length = 0;
  return { ctx, store, ids };
}

let nextTask = 0;
export function placementInput(over: Partial<PlaceTasksInput> = {}): PlaceTasksInput {
  return {
    cluster: 'c1',
    needs: { networkMode: 'bridge', cpu: 256, memory: 128, portsTcp: [], portsUdp: [], gpus: 0, containers: [] },
    count: 1,
    group: 'family:web',
    constraints: [],
    strategies: [],
    requiredAttributes: [],
    makeTask: () => {
      const tid = String(++nextTask).padStart(32, '0');
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
    ...over,
  };
}

