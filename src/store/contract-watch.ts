/**
 * Store contract, part three: snapshot and watch. The cache in state/ is built from a snapshot
 * followed by a watch from its revision, so together they must deliver every change exactly
 * once, in revision order, one callback per transaction.
 */
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from './store';
import { recorder, waitFor, type ContractContext } from './contract-support';

export function watchContract(ctx: ContractContext): void {
  describe('snapshot', () => {
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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

    if (ctx.syncWatch) {
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
}
