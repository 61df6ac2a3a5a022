import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runStoreContract } from '../contract';
import { StoreCompactedError, type WatchEvent } from '../store';
import { MemoryStore, compareKeys } from './memory-store';

runStoreContract('memory', async () => new MemoryStore());

describe('MemoryStore', () => {
  test('compaction keeps the last compactKeep revisions and refuses older watches', async () => {
    const s = new MemoryStore({ compactKeep: 5 });
    for (let i = 0; i < 30; i++) await s.txn([{ op: 'put', key: `k/${i % 3}`, value: i }]);
    assert.throws(() => s.watch('', 0, () => undefined), StoreCompactedError);
    const events: WatchEvent[] = [];
    const w = s.watch('k/', 25, (evs) => events.push(...evs));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      events.map((e) => e.revision),
      [26, 27, 28, 29, 30],
    );
    w.cancel();
    await s.close();
  });

  test('compareKeys orders like UTF-8 bytes', () => {
    const keys = ['b', 'a', '\uff5e', '😀', 'é', 'ab', '', '中', '\ud7ff', '\ue000'];
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual([...keys].sort(compareKeys), byBytes);
  });
});
