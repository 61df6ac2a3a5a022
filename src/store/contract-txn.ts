/**
 * Store contract, part two: multi-key transactions. All ops commit at one revision or none do;
 * 'check' ops guard without writing; conditions see the state before the txn.
 */
import { describe, test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreConflictError, type Store } from './store';
import { conflictOf, type ContractContext } from './contract-support';

export function txnContract(ctx: ContractContext): void {
  describe('txn', () => {
    let store: Store;
    beforeEach(() => {
      store = ctx.store();
    });

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
}
