/**
 * The shared Store contract suite (STYLE.md: one contract, many backends, one suite). A backend's
 * test file calls `runStoreContract('sqlite', () => open a fresh, empty store)`; every backend
 * must pass all of it. Each test gets its own store and closes it.
 *
 * Key order means UTF-8 byte order (= Unicode code point order), which is what SQLite's BINARY
 * collation and etcd's byte keys both give.
 */
import { describe, test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { casUpdate, StoreConflictError, type Store, type WatchEvent } from './store';

export interface StoreContractOptions {
  /**
   * The backend runs in-process and delivers a write's watch events before the write's promise
   * resolves (sqlite, memory). Default true; a networked backend (etcd) passes false and the
   * suite then waits for events instead.
   */
  syncWatch?: boolean;
}

/** Polls until `cond` holds; the deadline only bounds a failing test, it is not a timing goal. */
async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function conflictOf(p: Promise<unknown>): Promise<StoreConflictError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StoreConflictError, `expected StoreConflictError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a StoreConflictError, but the write succeeded');
}

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Collects watch callbacks: each call is one batch. */
function recorder() {
  const batches: WatchEvent[][] = [];
  return {
    batches,
    onEvents: (events: WatchEvent[]) => void batches.push(events),
    get events(): WatchEvent[] {
      return batches.flat();
    },
  };
}

export function runStoreContract(name: string, makeStore: () => Promise<Store>, options: StoreContractOptions = {}): void {
  const syncWatch = options.syncWatch ?? true;

  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('single-key writes', () => {
      test('a fresh store is empty at revision 0', async () => {
        assert.equal(await store.revision(), 0);
        assert.deepEqual(await store.list(''), []);
        assert.equal(await store.get('clusters/default'), undefined);
      });

      test('create stores the value and returns the revision it was written at', async () => {
        const rev = await store.create('clusters/default', { name: 'default', n: 1 });
        assert.equal(await store.revision(), rev);
        assert.deepEqual(await store.get('clusters/default'), {
          key: 'clusters/default',
          value: { name: 'default', n: 1 },
          createRevision: rev,
          modRevision: rev,
        });
      });

      test('create of an existing key fails with reason "exists" and changes nothing', async () => {
        const rev = await store.create('k', 1);
        const err = await conflictOf(store.create('k', 2));
        assert.equal(err.key, 'k');
        assert.equal(err.reason, 'exists');
        assert.equal((await store.get('k'))?.value, 1);
        assert.equal(await store.revision(), rev);
      });

      test('update with the current revision succeeds and keeps createRevision', async () => {
        const r1 = await store.create('k', 'a');
        const r2 = await store.update('k', 'b', r1);
        assert.ok(r2 > r1);
        assert.deepEqual(await store.get('k'), { key: 'k', value: 'b', createRevision: r1, modRevision: r2 });
      });

      test('update with a stale revision fails with reason "revision"', async () => {
        const r1 = await store.create('k', 'a');
        const r2 = await store.update('k', 'b', r1);
        const err = await conflictOf(store.update('k', 'c', r1));
        assert.equal(err.key, 'k');
        assert.equal(err.reason, 'revision');
        assert.deepEqual(await store.get('k'), { key: 'k', value: 'b', createRevision: r1, modRevision: r2 });
        assert.equal(await store.revision(), r2);
      });

      test('update of a missing key fails with reason "missing"', async () => {
        const err = await conflictOf(store.update('nope', 1, 1));
        assert.equal(err.key, 'nope');
        assert.equal(err.reason, 'missing');
        assert.equal(await store.get('nope'), undefined);
      });

      test('delete with the current revision removes the key and returns a new revision', async () => {
        const r1 = await store.create('k', 1);
        const r2 = await store.delete('k', r1);
        assert.ok(r2 > r1);
        assert.equal(await store.get('k'), undefined);
        assert.equal(await store.revision(), r2);
      });

      test('delete with a stale revision fails with reason "revision" and keeps the key', async () => {
        const r1 = await store.create('k', 1);
        await store.update('k', 2, r1);
        const err = await conflictOf(store.delete('k', r1));
        assert.equal(err.reason, 'revision');
        assert.equal((await store.get('k'))?.value, 2);
      });

      test('delete without a revision is unconditional, but the key must exist', async () => {
        const r1 = await store.create('k', 1);
        await store.update('k', 2, r1);
        await store.delete('k');
        assert.equal(await store.get('k'), undefined);
        const err = await conflictOf(store.delete('k'));
        assert.equal(err.key, 'k');
        assert.equal(err.reason, 'missing');
      });

      test('a deleted key can be created again with a new createRevision', async () => {
        const r1 = await store.create('k', 1);
        await store.delete('k', r1);
        const r3 = await store.create('k', 2);
        assert.deepEqual(await store.get('k'), { key: 'k', value: 2, createRevision: r3, modRevision: r3 });
      });

      test('every committed write gets a new, strictly greater global revision; failed writes get none', async () => {
        const revs: number[] = [];
        revs.push(await store.create('a', 1));
        revs.push(await store.create('b', 1));
        await conflictOf(store.create('a', 2));
        revs.push(await store.update('a', 2, revs[0]));
        await conflictOf(store.update('b', 2, revs[0]));
        revs.push(await store.delete('b'));
        revs.push(await store.txn([{ op: 'put', key: 'c', value: 1 }]));
        for (let i = 1; i < revs.length; i++) assert.ok(revs[i] > revs[i - 1], `revisions ${revs.join(',')} not increasing`);
        assert.equal(await store.revision(), revs[revs.length - 1]);
      });
    });

    describe('values', () => {
      test('JSON values of every kind round-trip', async () => {
        const values: unknown[] = [
          null,
          0,
          -1.5,
          true,
          'text with "quotes", \\ and unicode: é 中 😀',
          [],
          [1, 'two', null, { three: [3] }],
          { nested: { deep: { list: [1, 2, 3], empty: {} } }, n: 1e300 },
        ];
        for (const [i, v] of values.entries()) await store.create(`v/${i}`, v);
        for (const [i, v] of values.entries()) assert.deepEqual((await store.get(`v/${i}`))?.value, v);
      });

      test('mutating an object after writing it does not change the stored value', async () => {
        const obj = { tags: ['a'], status: 'RUNNING' };
        const r1 = await store.create('k', obj);
        obj.tags.push('b');
        obj.status = 'STOPPED';
        assert.deepEqual((await store.get('k'))?.value, { tags: ['a'], status: 'RUNNING' });
        const upd = { tags: ['x'] };
        await store.txn([{ op: 'update', key: 'k', value: upd, expectedRevision: r1 }]);
        upd.tags.push('y');
        assert.deepEqual((await store.get('k'))?.value, { tags: ['x'] });
      });

      test('mutating an object read from the store does not change the stored value', async () => {
        await store.create('p/k', { tags: ['a'] });
        const got = await store.get<{ tags: string[] }>('p/k');
        got!.value.tags.push('mutated');
        const listed = await store.list<{ tags: string[] }>('p/');
        listed[0].value.tags.push('mutated');
        const snap = await store.snapshot<{ tags: string[] }>('p/');
        snap.entries[0].value.tags.push('mutated');
        assert.deepEqual((await store.get('p/k'))?.value, { tags: ['a'] });
      });

      test('a value that is not JSON (undefined) is rejected and nothing is written', async () => {
        await assert.rejects(store.create('k', undefined));
        assert.equal(await store.get('k'), undefined);
        assert.equal(await store.revision(), 0);
      });
    });

    describe('list', () => {
      test('returns the keys under the prefix, in key order', async () => {
        const keys = ['tasks/c1/b', 'tasks/c2/a', 'tasks/c1/a', 'tasks/c1', 'tasks/c10/a', 'tasksx/c1/a', 'task', 'tasks/c1/a/x'];
        for (const k of keys) await store.create(k, k);
        const c1 = await store.list('tasks/c1/');
        assert.deepEqual(c1.map((e) => e.key), ['tasks/c1/a', 'tasks/c1/a/x', 'tasks/c1/b']);
        for (const e of c1) assert.equal(e.value, e.key);
        assert.deepEqual((await store.list('tasks/c1')).map((e) => e.key), ['tasks/c1', 'tasks/c1/a', 'tasks/c1/a/x', 'tasks/c1/b', 'tasks/c10/a']);
        assert.deepEqual((await store.list('')).map((e) => e.key), [...keys].sort(byUtf8));
        assert.deepEqual(await store.list('nothing/'), []);
      });

      test('orders non-ASCII keys by UTF-8 bytes and matches prefixes exactly', async () => {
        const keys = ['u/z', 'u/é', 'u/~', 'u/😀', 'u/\uff5e', 'u/中', 'u/\u007f', 'u0', 'u/😀/x', 'u/😁'];
        for (const k of keys) await store.create(k, 1);
        assert.deepEqual((await store.list('u/')).map((e) => e.key), keys.filter((k) => k.startsWith('u/')).sort(byUtf8));
        assert.deepEqual((await store.list('u/😀')).map((e) => e.key), ['u/😀', 'u/😀/x']);
      });

      test('entries carry their own create and mod revisions', async () => {
        const ra = await store.create('l/a', 1);
        const rb = await store.create('l/b', 1);
        const ra2 = await store.update('l/a', 2, ra);
        assert.deepEqual(await store.list('l/'), [
          { key: 'l/a', value: 2, createRevision: ra, modRevision: ra2 },
          { key: 'l/b', value: 1, createRevision: rb, modRevision: rb },
        ]);
      });
    });

    describe('txn', () => {
      test('commits every op at one revision', async () => {
        const r0 = await store.create('upd', 0);
        await store.create('del', 'gone');
        await store.create('put-existing', 'old');
        const rev = await store.txn([
          { op: 'create', key: 'new', value: 'n' },
          { op: 'update', key: 'upd', value: 1, expectedRevision: r0 },
          { op: 'delete', key: 'del' },
          { op: 'put', key: 'put-new', value: 'p' },
          { op: 'put', key: 'put-existing', value: 'new' },
        ]);
        assert.equal(await store.revision(), rev);
        assert.deepEqual(await store.get('new'), { key: 'new', value: 'n', createRevision: rev, modRevision: rev });
        assert.deepEqual(await store.get('upd'), { key: 'upd', value: 1, createRevision: r0, modRevision: rev });
        assert.equal(await store.get('del'), undefined);
        assert.equal((await store.get('put-new'))?.modRevision, rev);
        const pe = await store.get('put-existing');
        assert.equal(pe?.value, 'new');
        assert.equal(pe?.modRevision, rev);
        assert.ok(pe!.createRevision < rev);
      });

      test('is all or nothing: one failed condition writes nothing and names the key', async () => {
        const ra = await store.create('a', 'a0');
        const rb = await store.create('b', 'b0');
        await store.update('b', 'b1', rb);
        const before = await store.revision();
        const err = await conflictOf(
          store.txn([
            { op: 'create', key: 'fresh', value: 1 },
            { op: 'update', key: 'a', value: 'a1', expectedRevision: ra },
            { op: 'delete', key: 'c' },
            { op: 'update', key: 'b', value: 'b2', expectedRevision: rb },
          ]),
        );
        // The first failing op in op order is reported; here 'c' (missing) comes before 'b'.
        assert.equal(err.key, 'c');
        assert.equal(err.reason, 'missing');
        assert.equal(await store.get('fresh'), undefined);
        assert.equal((await store.get('a'))?.value, 'a0');
        assert.equal((await store.get('b'))?.value, 'b1');
        assert.equal(await store.revision(), before);
      });

      test('conflict reasons: create on existing, stale update, stale delete', async () => {
        const r = await store.create('x', 1);
        await store.update('x', 2, r);
        assert.equal((await conflictOf(store.txn([{ op: 'create', key: 'x', value: 0 }]))).reason, 'exists');
        assert.equal((await conflictOf(store.txn([{ op: 'update', key: 'x', value: 0, expectedRevision: r }]))).reason, 'revision');
        assert.equal((await conflictOf(store.txn([{ op: 'delete', key: 'x', expectedRevision: r }]))).reason, 'revision');
        assert.equal((await conflictOf(store.txn([{ op: 'update', key: 'y', value: 0, expectedRevision: r }]))).reason, 'missing');
      });

      test("'check' ops guard the txn without writing", async () => {
        const ri = await store.create('instances/i1', { cpu: 1024 });
        const ok = await store.txn([
          { op: 'check', key: 'instances/i1', expectedRevision: ri },
          { op: 'check', key: 'instances/absent', expectedRevision: 0 },
          { op: 'create', key: 'tasks/t1', value: { on: 'i1' } },
        ]);
        assert.equal((await store.get('instances/i1'))?.modRevision, ri, 'check does not touch the key');
        assert.equal((await store.get('tasks/t1'))?.createRevision, ok);

        await store.update('instances/i1', { cpu: 512 }, ri);
        const stale = await conflictOf(
          store.txn([{ op: 'check', key: 'instances/i1', expectedRevision: ri }, { op: 'create', key: 'tasks/t2', value: {} }]),
        );
        assert.deepEqual([stale.key, stale.reason], ['instances/i1', 'revision']);
        const present = await conflictOf(store.txn([{ op: 'check', key: 'instances/i1', expectedRevision: 0 }, { op: 'put', key: 'z', value: 1 }]));
        assert.deepEqual([present.key, present.reason], ['instances/i1', 'exists']);
        const missing = await conflictOf(store.txn([{ op: 'check', key: 'instances/i9', expectedRevision: 3 }, { op: 'put', key: 'z', value: 1 }]));
        assert.deepEqual([missing.key, missing.reason], ['instances/i9', 'missing']);
        assert.equal(await store.get('tasks/t2'), undefined);
        assert.equal(await store.get('z'), undefined);
      });

      test('conditions are checked against the state before the txn', async () => {
        const r = await store.create('k', 1);
        // The check sees k at r even though the same txn updates it.
        const rev = await store.txn([{ op: 'update', key: 'k', value: 2, expectedRevision: r }, { op: 'check', key: 'k', expectedRevision: r }]);
        assert.equal((await store.get('k'))?.modRevision, rev);
      });

      test('a txn that writes nothing creates no revision', async () => {
        const r = await store.create('k', 1);
        assert.equal(await store.txn([]), r);
        assert.equal(await store.txn([{ op: 'check', key: 'k', expectedRevision: r }]), r);
        assert.equal(await store.revision(), r);
      });

      test('writing one key twice in a txn is rejected as a programming error', async () => {
        await assert.rejects(
          store.txn([{ op: 'put', key: 'k', value: 1 }, { op: 'put', key: 'k', value: 2 }]),
          (e) => !(e instanceof StoreConflictError),
        );
        assert.equal(await store.get('k'), undefined);
        assert.equal(await store.revision(), 0);
      });
    });

    describe('snapshot', () => {
      test('returns the entries under the prefix and the revision they were read at', async () => {
        await store.create('s/a', 1);
        await store.create('other', 1);
        const rb = await store.create('s/b', 2);
        const snap = await store.snapshot('s/');
        assert.equal(snap.revision, rb);
        assert.deepEqual(snap.entries.map((e) => [e.key, e.value]), [['s/a', 1], ['s/b', 2]]);
      });

      test('snapshot then watch from its revision sees each later change exactly once', async () => {
        await store.create('s/a', 1);
        // Writers racing with the snapshot: whatever the snapshot missed, the watch must bring.
        const writes = Array.from({ length: 20 }, (_, i) => store.create(`s/w${i}`, i));
        const snap = await store.snapshot('s/');
        const rec = recorder();
        const w = store.watch('s/', snap.revision, rec.onEvents);
        await Promise.all(writes);
        await waitFor(() => snap.entries.length + rec.events.length >= 21, 'all writes via snapshot or watch');
        const seen = [...snap.entries.map((e) => e.key), ...rec.events.map((e) => e.key)].sort();
        assert.deepEqual(seen, ['s/a', ...Array.from({ length: 20 }, (_, i) => `s/w${i}`)].sort());
        for (const e of rec.events) assert.ok(e.revision > snap.revision);
        w.cancel();
      });
    });

    describe('watch', () => {
      test('replays history after fromRevision, then live changes, in revision order', async () => {
        const r1 = await store.create('w/a', 1);
        const r2 = await store.create('w/b', 1);
        const r3 = await store.update('w/a', 2, r1);
        const rec = recorder();
        const w = store.watch('w/', r1, rec.onEvents);
        const r4 = await store.delete('w/b', r2);
        const r5 = await store.create('w/c', 3);
        await waitFor(() => rec.events.length >= 4, 'four events');
        assert.deepEqual(
          rec.events.map((e) => [e.type, e.key, e.revision]),
          [['put', 'w/b', r2], ['put', 'w/a', r3], ['delete', 'w/b', r4], ['put', 'w/c', r5]],
        );
        w.cancel();
      });

      test('fromRevision 0 replays everything; the current revision replays nothing', async () => {
        await store.create('w/a', 1);
        const r = await store.create('w/b', 2);
        const all = recorder();
        const none = recorder();
        const w1 = store.watch('w/', 0, all.onEvents);
        const w2 = store.watch('w/', r, none.onEvents);
        await waitFor(() => all.events.length >= 2, 'history');
        assert.deepEqual(all.events.map((e) => [e.key, e.value]), [['w/a', 1], ['w/b', 2]]);
        const r3 = await store.create('w/c', 3);
        await waitFor(() => none.events.length >= 1, 'live event');
        assert.deepEqual(none.events.map((e) => [e.key, e.revision]), [['w/c', r3]]);
        w1.cancel();
        w2.cancel();
      });

      test('put events carry value and createRevision; delete events carry the last value', async () => {
        const rec = recorder();
        const w = store.watch('w/', 0, rec.onEvents);
        const r1 = await store.create('w/k', { v: 1 });
        const r2 = await store.update('w/k', { v: 2 }, r1);
        const r3 = await store.delete('w/k');
        await waitFor(() => rec.events.length >= 3, 'three events');
        assert.deepEqual(rec.events, [
          { type: 'put', key: 'w/k', value: { v: 1 }, revision: r1, createRevision: r1 },
          { type: 'put', key: 'w/k', value: { v: 2 }, revision: r2, createRevision: r1 },
          { type: 'delete', key: 'w/k', value: { v: 2 }, revision: r3, createRevision: r1 },
        ]);
        w.cancel();
      });

      test('the events of one txn arrive together in one callback, live and in history', async () => {
        await store.create('w/x', 0);
        const live = recorder();
        const w = store.watch('w/', 0, live.onEvents);
        await waitFor(() => live.events.length >= 1, 'history');
        const rev = await store.txn([{ op: 'put', key: 'w/a', value: 1 }, { op: 'put', key: 'w/b', value: 2 }, { op: 'delete', key: 'w/x' }]);
        await waitFor(() => live.batches.length >= 2, 'txn batch');
        assert.equal(live.batches.length, 2);
        const batch = live.batches[1];
        assert.deepEqual(batch.map((e) => [e.type, e.key]).sort(), [['delete', 'w/x'], ['put', 'w/a'], ['put', 'w/b']]);
        for (const e of batch) assert.equal(e.revision, rev);

        const replay = recorder();
        const w2 = store.watch('w/', rev - 1, replay.onEvents);
        await waitFor(() => replay.batches.length >= 1, 'replayed txn');
        assert.equal(replay.batches.length, 1);
        assert.equal(replay.batches[0].length, 3);
        w.cancel();
        w2.cancel();
      });

      test('only changes under the prefix are delivered', async () => {
        const rec = recorder();
        const w = store.watch('tasks/c1/', 0, rec.onEvents);
        await store.create('tasks/c1/t1', 1);
        await store.create('tasks/c10/t1', 1);
        await store.create('tasks/c2/t1', 1);
        await store.txn([{ op: 'put', key: 'tasks/c2/t2', value: 1 }, { op: 'put', key: 'tasks/c1/t2', value: 1 }]);
        const last = await store.create('tasks/c1/t3', 1);
        await waitFor(() => rec.events.some((e) => e.revision === last), 'last event');
        assert.deepEqual(rec.batches.map((b) => b.map((e) => e.key)), [['tasks/c1/t1'], ['tasks/c1/t2'], ['tasks/c1/t3']]);
        w.cancel();
      });

      test('cancel stops delivery', async () => {
        const rec = recorder();
        const w = store.watch('w/', 0, rec.onEvents);
        await store.create('w/a', 1);
        await waitFor(() => rec.events.length >= 1, 'first event');
        w.cancel();
        await store.create('w/b', 1);
        // A second watcher proves the write has been dispatched.
        const probe = recorder();
        const w2 = store.watch('w/', 0, probe.onEvents);
        await waitFor(() => probe.events.length >= 2, 'probe');
        assert.deepEqual(rec.events.map((e) => e.key), ['w/a']);
        w2.cancel();
      });

      test('live events arrive in revision order under concurrent writers', async () => {
        const rec = recorder();
        const w = store.watch('', 0, rec.onEvents);
        const writes: Promise<number>[] = [];
        for (let c = 0; c < 5; c++) {
          writes.push(
            (async () => {
              let last = 0;
              for (let i = 0; i < 10; i++) last = await store.txn([{ op: 'put', key: `c${c}/k${i}`, value: i }, { op: 'put', key: `c${c}/last`, value: i }]);
              return last;
            })(),
          );
        }
        await Promise.all(writes);
        await waitFor(() => rec.batches.length >= 50, 'fifty batches');
        const revs = rec.batches.map((b) => b[0].revision);
        for (let i = 1; i < revs.length; i++) assert.ok(revs[i] > revs[i - 1], 'revisions strictly increase across batches');
        for (const b of rec.batches) assert.equal(b.length, 2);
        w.cancel();
      });

      test('a callback that throws breaks neither the store nor other watchers', async () => {
        const good = recorder();
        let thrown = 0;
        const bad = store.watch('w/', 0, () => {
          thrown++;
          throw new Error('watcher bug');
        });
        const w = store.watch('w/', 0, good.onEvents);
        await store.create('w/a', 1);
        const r = await store.create('w/b', 2);
        await waitFor(() => good.events.length >= 2 && thrown >= 2, 'both events to both watchers');
        assert.equal((await store.get('w/b'))?.modRevision, r);
        assert.deepEqual(good.events.map((e) => e.key), ['w/a', 'w/b']);
        bad.cancel();
        w.cancel();
      });

      test('a callback that writes to the store does not reorder events for other watchers', async () => {
        const rec = recorder();
        const w1 = store.watch('w/', 0, (events) => {
          for (const e of events) if (e.key === 'w/a') void store.create('w/echo', 'from watcher').catch(() => undefined);
        });
        const w2 = store.watch('w/', 0, rec.onEvents);
        await store.create('w/a', 1);
        const rb = await store.create('w/b', 1);
        await waitFor(() => rec.events.length >= 3, 'three events');
        const revs = rec.events.map((e) => e.revision);
        assert.deepEqual(revs, [...revs].sort((a, b) => a - b));
        assert.deepEqual(rec.events.map((e) => e.key).sort(), ['w/a', 'w/b', 'w/echo']);
        assert.ok(revs.includes(rb));
        w1.cancel();
        w2.cancel();
      });

      test('each watcher gets its own copy of event values', async () => {
        const seen: unknown[] = [];
        const w1 = store.watch('w/', 0, (events) => {
          for (const e of events) (e.value as { tags: string[] }).tags.push('mutated');
        });
        const w2 = store.watch('w/', 0, (events) => {
          for (const e of events) seen.push(e.value);
        });
        await store.create('w/a', { tags: [] });
        await waitFor(() => seen.length >= 1, 'event');
        assert.deepEqual(seen, [{ tags: [] }]);
        assert.deepEqual((await store.get('w/a'))?.value, { tags: [] });
        w1.cancel();
        w2.cancel();
      });

      if (syncWatch) {
        test('a write’s events are delivered before the write’s promise resolves', async () => {
          const rec = recorder();
          const w = store.watch('w/', 0, rec.onEvents);
          const r1 = await store.create('w/a', 1);
          assert.deepEqual(rec.events.map((e) => e.revision), [r1]);
          const r2 = await store.txn([{ op: 'put', key: 'w/b', value: 1 }]);
          assert.deepEqual(rec.events.map((e) => e.revision), [r1, r2]);
          w.cancel();
        });

        test('history is delivered before live events even when a write follows watch at once', async () => {
          await store.create('w/old', 1);
          const rec = recorder();
          const w = store.watch('w/', 0, rec.onEvents);
          const r = await store.create('w/new', 1);
          assert.deepEqual(rec.events.map((e) => e.key), ['w/old', 'w/new']);
          assert.equal(rec.events[1].revision, r);
          w.cancel();
        });
      }
    });

    describe('casUpdate', () => {
      test('20 concurrent incrementers end at exactly 20', async () => {
        await Promise.all(
          Array.from({ length: 20 }, () => casUpdate<{ n: number }>(store, 'counter', (cur) => ({ n: (cur?.value.n ?? 0) + 1 }), 100)),
        );
        assert.deepEqual((await store.get('counter'))?.value, { n: 20 });
      });

      test('creates a missing key, and leaves the key alone when mutate returns undefined', async () => {
        const first = await casUpdate<number>(store, 'k', (cur) => (cur ? cur.value + 1 : 1));
        assert.deepEqual(first, { value: 1, revision: await store.revision() });
        const before = await store.revision();
        const same = await casUpdate<number>(store, 'k', () => undefined);
        assert.deepEqual(same, { value: 1, revision: before });
        assert.equal(await store.revision(), before);
      });

      test('gives up with the conflict after its attempts are used', async () => {
        await store.create('k', 0);
        let writes = 0;
        // Another writer always gets in between casUpdate's read and its write.
        const contended = {
          get: (key: string) => store.get(key),
          create: (key: string, value: unknown) => store.create(key, value),
          update: async (key: string, value: unknown, expectedRevision: number) => {
            writes++;
            const cur = await store.get<number>(key);
            await store.update(key, cur!.value + 100, cur!.modRevision);
            return store.update(key, value, expectedRevision);
          },
        } as unknown as Store;
        await assert.rejects(casUpdate<number>(contended, 'k', (cur) => cur!.value + 1, 3), StoreConflictError);
        assert.equal(writes, 3);
        assert.equal((await store.get('k'))?.value, 300);
      });
    });

    test('operations after close are rejected', async () => {
      const s = await makeStore();
      await s.create('k', 1);
      await s.close();
      await assert.rejects(s.get('k'));
      await assert.rejects(s.create('j', 1));
    });
  });
}
