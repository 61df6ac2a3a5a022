import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runStoreContract } from './contract';
import { MemoryStore } from './memory/memory-store';
import { PrefixedStore } from './prefixed-store';
import { StoreConflictError, type WatchEvent } from './store';

// A view must be a Store in every respect: the whole contract (which expects a fresh store at
// revision 0, so the inner store starts empty; the neighbours are the tests below).
runStoreContract('prefixed view', async () => new PrefixedStore(new MemoryStore(), 'regions/mine/'));

describe('PrefixedStore', () => {
  test('two views of one store see only their own keys, with their own key names', async () => {
    const inner = new MemoryStore();
    const a = new PrefixedStore(inner, 'regions/eu-west-1/');
    const b = new PrefixedStore(inner, 'regions/us-east-1/');
    await a.create('clusters/demo', { region: 'eu' });
    await b.create('clusters/demo', { region: 'us' });
    assert.deepEqual((await a.list('clusters/')).map((e) => [e.key, e.value]), [['clusters/demo', { region: 'eu' }]]);
    assert.deepEqual((await b.get('clusters/demo'))?.value, { region: 'us' });
    assert.deepEqual((await inner.list('')).map((e) => e.key), ['regions/eu-west-1/clusters/demo', 'regions/us-east-1/clusters/demo']);
  });

  test('a watch sees its own part only, and a conflict names the view key', async () => {
    const inner = new MemoryStore();
    const a = new PrefixedStore(inner, 'regions/a/');
    const b = new PrefixedStore(inner, 'regions/b/');
    const seen: WatchEvent[] = [];
    const w = a.watch('', 0, (evs) => seen.push(...evs));
    await b.create('x', 1);
    await a.create('x', 2);
    w.cancel();
    assert.deepEqual(seen.map((e) => [e.key, e.value]), [['x', 2]]);
    const err = await a.create('x', 3).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof StoreConflictError);
    assert.equal(err.key, 'x');
  });

  test('with a revision key, the view knows its newest write, which its watch delivers, whatever other parts write', async () => {
    const inner = new MemoryStore();
    const a = new PrefixedStore(inner, 'regions/a/', { revisionKey: 'meta/revision' });
    const b = new PrefixedStore(inner, 'regions/b/');
    assert.equal(await a.latestRevision(), 0);
    let applied = 0;
    const w = a.watch('', 0, (evs) => (applied = Math.max(applied, ...evs.map((e) => e.revision))));
    const r1 = await a.create('x', 1);
    const r2 = await a.txn([{ op: 'update', key: 'x', value: 2, expectedRevision: r1 }]);
    await b.create('y', 1);
    await inner.txn([{ op: 'put', key: 'replicas/r1', value: {} }]);
    // The store's revision moved on with the other parts' writes; the view's is its own last write.
    assert.ok((await inner.revision()) > r2);
    assert.equal(await a.latestRevision(), r2);
    assert.equal(await a.revision(), r2, 'what a cache of the view can wait for');
    const r3 = await a.delete('x', r2);
    assert.equal(await a.latestRevision(), r3);
    // A txn that only checks writes nothing, so it leaves the revision alone.
    await a.txn([{ op: 'check', key: 'x', expectedRevision: 0 }]);
    assert.equal(await a.latestRevision(), r3);
    await new Promise((r) => setImmediate(r));
    w.cancel();
    assert.equal(applied, r3, 'a cache fed by the watch reaches the latest revision');
    // A conflict still names the op that failed.
    const err = await a.update('gone', 1, 5).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof StoreConflictError);
    assert.equal(err.key, 'gone');
    await assert.rejects(b.latestRevision(), /no revision key/);
  });

  test('closing a view leaves the inner store and other views working', async () => {
    const inner = new MemoryStore();
    const a = new PrefixedStore(inner, 'regions/a/');
    const b = new PrefixedStore(inner, 'regions/b/');
    await a.close();
    await assert.rejects(a.get('x'));
    await b.create('x', 1);
    assert.equal((await inner.get('regions/b/x'))?.value, 1);
  });
});
