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
