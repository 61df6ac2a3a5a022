/**
 * Store contract, part one: single-key writes (create / update / delete with compare-and-swap),
 * what values survive a round trip, list order, and casUpdate's retry loop. Run by
 * `runStoreContract` (contract.ts), which gives every test a fresh store.
 */
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { casUpdate, StoreConflictError, type Store } from './store';
import { byUtf8, conflictOf, type ContractContext } from './contract-support';

export function singleKeyContract(ctx: ContractContext): void {
  describe('single-key writes', () => {
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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
}

/** casUpdate (store.ts) over a real backend: the read-modify-CAS loop every control operation uses. */
export function casUpdateContract(ctx: ContractContext): void {
  describe('casUpdate', () => {
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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
}
