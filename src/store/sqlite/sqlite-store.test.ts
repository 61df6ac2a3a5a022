import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runStoreContract } from '../contract';
import { StoreCompactedError, type WatchEvent } from '../store';
import { SqliteStore, prefixEnd } from './sqlite-store';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-sqlite-store-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => path.join(dir, `store-${++n}.db`);

runStoreContract('sqlite (file)', async () => SqliteStore.open({ path: freshPath() }));
runStoreContract('sqlite (:memory:)', async () => SqliteStore.open({ path: ':memory:' }));

describe('SqliteStore', () => {
  test('reopening keeps the data and continues the revision counter', async () => {
    const p = freshPath();
    const s1 = SqliteStore.open({ path: p });
    const r1 = await s1.create('clusters/a', { name: 'a' });
    const r2 = await s1.txn([
      { op: 'put', key: 'clusters/b', value: { name: 'b' } },
      { op: 'update', key: 'clusters/a', value: { name: 'a', v: 2 }, expectedRevision: r1 },
    ]);
    const r3 = await s1.delete('clusters/b');
    await s1.close();

    const s2 = SqliteStore.open({ path: p });
    assert.equal(await s2.revision(), r3);
    assert.deepEqual(await s2.list(''), [{ key: 'clusters/a', value: { name: 'a', v: 2 }, createRevision: r1, modRevision: r2 }]);
    const r4 = await s2.create('clusters/c', {});
    assert.ok(r4 > r3);
    // History survives the reopen too.
    const events: WatchEvent[] = [];
    const w = s2.watch('clusters/', 0, (evs) => events.push(...evs));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      events.map((e) => [e.type, e.key, e.revision]),
      [
        ['put', 'clusters/a', r1],
        ['put', 'clusters/b', r2],
        ['put', 'clusters/a', r2],
        ['delete', 'clusters/b', r3],
        ['put', 'clusters/c', r4],
      ],
    );
    w.cancel();
    await s2.close();
  });

  test('reopening with synchronous=NORMAL reads the same data', async () => {
    const p = freshPath();
    const s1 = SqliteStore.open({ path: p, synchronous: 'NORMAL' });
    await s1.create('k', 1);
    await s1.close();
    const s2 = SqliteStore.open({ path: p, synchronous: 'FULL' });
    assert.equal((await s2.get('k'))?.value, 1);
    await s2.close();
  });

  describe('compaction', () => {
    test('keeps at least the last compactKeep revisions of history, and refuses a watch from before them', async () => {
      const p = freshPath();
      const s = SqliteStore.open({ path: p, compactKeep: 10 });
      for (let i = 0; i < 100; i++) await s.txn([{ op: 'put', key: `k/${i % 7}`, value: i }]);
      const rev = await s.revision();
      assert.equal(rev, 100);

      // The last 10 revisions are always replayable.
      const events: WatchEvent[] = [];
      const w = s.watch('k/', rev - 10, (evs) => events.push(...evs));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(
        events.map((e) => e.revision),
        Array.from({ length: 10 }, (_, i) => rev - 9 + i),
      );
      assert.deepEqual(
        events.map((e) => e.value),
        Array.from({ length: 10 }, (_, i) => rev - 10 + i),
      );
      w.cancel();

      // Far older history is gone, and asking for it fails loudly instead of skipping.
      assert.throws(
        () => s.watch('k/', 0, () => assert.fail('must not deliver')),
        (e: unknown) => e instanceof StoreCompactedError && e.fromRevision === 0 && e.compactedRevision > 0,
      );
      // Current data is untouched by compaction.
      assert.equal((await s.list('k/')).length, 7);
      await s.close();

      // The compaction point survives a reopen.
      const s2 = SqliteStore.open({ path: p, compactKeep: 10 });
      assert.throws(() => s2.watch('', 0, () => undefined), StoreCompactedError);
      const ok: WatchEvent[] = [];
      const w2 = s2.watch('', rev - 10, (evs) => ok.push(...evs));
      await new Promise((r) => setImmediate(r));
      assert.equal(ok.length, 10);
      w2.cancel();
      await s2.close();
    });

    test('a live watcher from before a compaction still gets every change', async () => {
      const s = SqliteStore.open({ path: ':memory:', compactKeep: 2 });
      const revs: number[] = [];
      const w = s.watch('', 0, (evs) => revs.push(...evs.map((e) => e.revision)));
      for (let i = 0; i < 50; i++) await s.txn([{ op: 'put', key: 'k', value: i }]);
      assert.deepEqual(
        revs,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      w.cancel();
      await s.close();
    });
  });

  test('the database, its WAL and lock file are 0600 whatever the umask, and wider ones are narrowed', async () => {
    const old = process.umask(0);
    try {
      const p = freshPath();
      const s1 = SqliteStore.open({ path: p });
      await s1.create('k', 'v');
      const mode = (f: string) => (fs.statSync(f).mode & 0o777).toString(8);
      for (const f of [p, `${p}-wal`, `${p}.lock`]) assert.equal(mode(f), '600', f);
      await s1.close();
      // As an older build left it (the WAL and lock file go at close; SQLite makes the WAL with
      // the database file's mode).
      fs.chmodSync(p, 0o644);
      const s2 = SqliteStore.open({ path: p });
      await s2.create('j', 'w');
      for (const f of [p, `${p}-wal`, `${p}.lock`]) assert.equal(mode(f), '600', f);
      await s2.close();
    } finally {
      process.umask(old);
    }
  });

  describe('single-process lock', () => {
    test('a second open of the same file in this process fails clearly; after close it opens', async () => {
      const p = freshPath();
      const s1 = SqliteStore.open({ path: p });
      await s1.create('k', 1);
      assert.throws(() => SqliteStore.open({ path: p }), /locked by another open store.*pid \d+/);
      // The failed open must not have loosened the first store's hold or broken it.
      assert.equal((await s1.get('k'))?.value, 1);
      await s1.create('j', 2);
      await s1.close();
      const s2 = SqliteStore.open({ path: p });
      assert.equal((await s2.get('j'))?.value, 2);
      await s2.close();
    });

    test('another process cannot open a store this process holds', async () => {
      const p = freshPath();
      const s1 = SqliteStore.open({ path: p });
      await s1.create('k', 1);
      // Also after a failed in-process open, which closes a second handle on the same file.
      assert.throws(() => SqliteStore.open({ path: p }));
      const child = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '-e',
          `const { SqliteStore } = require(${JSON.stringify(path.join(__dirname, 'sqlite-store'))});
           try { SqliteStore.open({ path: ${JSON.stringify(p)} }); console.log('OPENED'); }
           catch (e) { console.log('REFUSED: ' + e.message); }`,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(child.status, 0, child.stderr);
      assert.match(child.stdout, new RegExp(`REFUSED: .*locked by another open store.*pid ${process.pid}`));
      assert.equal((await s1.get('k'))?.value, 1);
      await s1.close();
    });
  });

  test('lists 100k keys in key order', async () => {
    const s = SqliteStore.open({ path: ':memory:' });
    const total = 100_000;
    for (let b = 0; b < total; b += 5000) {
      await s.txn(Array.from({ length: 5000 }, (_, i) => ({ op: 'put' as const, key: `tasks/c/${String(b + i).padStart(6, '0')}`, value: { i: b + i } })));
    }
    await s.create('tasks/d/x', {});
    const all = await s.list<{ i: number }>('tasks/c/');
    assert.equal(all.length, total);
    for (let i = 0; i < total; i += 9973) assert.equal(all[i].value.i, i);
    assert.equal(all[total - 1].key, 'tasks/c/099999');
    await s.close();
  });

  test('prefixEnd bounds exactly the strings with the prefix', () => {
    assert.equal(prefixEnd('a/'), 'a0');
    assert.equal(prefixEnd('\ud7ff'), '\ue000');
    assert.equal(prefixEnd('a\u{10ffff}'), 'b');
    assert.equal(prefixEnd('\u{10ffff}'), undefined);
    assert.equal(prefixEnd('x😀'), 'x😁');
  });
});
