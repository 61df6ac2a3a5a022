import { test } from 'node:test';
import assert from 'node:assert/strict';
import { place } from './engine';
import { InMemoryClusterSnapshot } from './in-memory-snapshot';
import { instanceFromSpec } from './instance-ops';
import { SortedKeys, sortKey, slotOfKey } from './sorted-keys';
import { seededRandom } from '../lib/seeded-random';

test('SortedKeys keeps order and counts through thousands of inserts and removes', () => {
  const r = seededRandom(5);
  const s = new SortedKeys();
  const ref: number[] = [];
  for (let i = 0; i < 6000; i++) {
    if (ref.length > 0 && r() < 0.35) {
      const k = ref.splice(Math.floor(r() * ref.length), 1)[0]!;
      assert.equal(s.remove(k), true);
    } else {
      const k = sortKey(Math.floor(r() * 500), i);
      s.insert(k);
      ref.push(k);
    }
  }
  ref.sort((a, b) => a - b);
  assert.equal(s.size, ref.length);
  const c = s.cursor(sortKey(100, 0));
  const from = ref.findIndex((k) => k >= sortKey(100, 0));
  for (let i = from; i < ref.length; i++) assert.equal(c.next(), slotOfKey(ref[i]!));
  assert.equal(c.next(), -1);
  assert.equal(s.countBetween(sortKey(100, 0), sortKey(101, 0)), ref.filter((k) => k >= sortKey(100, 0) && k < sortKey(101, 0)).length);
});

test('placements follow attribute changes, drains and removals made after the indexes exist', () => {
  const snap = new InMemoryClusterSnapshot(
    ['x', 'y', 'z'].map((id, n) => instanceFromSpec({ id, attributes: { zone: 'a', stack: 'prod' }, registered: { cpu: 4096, memory: 1000 * (n + 1) } })),
  );
  const req = { needs: { cpu: 10, memory: 100 }, count: 1, group: 'family:f', strategies: [{ type: 'spread' as const, field: 'attribute:zone' }, { type: 'binpack' as const, field: 'memory' }], constraints: [{ type: 'memberOf' as const, expression: 'attribute:stack == prod' }] };
  assert.equal(place(req, snap).placements[0]!.instanceId, 'x');
  snap.upsert({ ...snap.instance('x')!, attributes: new Map([['zone', 'a'], ['stack', 'dev']]) });
  assert.equal(place(req, snap).placements[0]!.instanceId, 'y');
  snap.upsert({ ...snap.instance('y')!, status: 'DRAINING' });
  assert.equal(place(req, snap).placements[0]!.instanceId, 'z');
  snap.remove('z');
  const res = place(req, snap);
  assert.equal(res.placements.length, 0);
  assert.equal(res.failures[0]!.reason, 'MemberOf placement constraint unsatisfied.');
  assert.ok(res.failures[0]!.arn!.endsWith('/x'));
  assert.deepEqual(snap.instances().map((i) => i.id), ['x', 'y']);
});

test('spread counts follow committed placements and stopped tasks', () => {
  const snap = new InMemoryClusterSnapshot(['a', 'b'].map((zone) => instanceFromSpec({ id: zone, attributes: { zone }, registered: { cpu: 4096, memory: 8192 } })));
  const req = { needs: { cpu: 10, memory: 10 }, count: 1, group: 'service:s', service: 's', strategies: [{ type: 'spread' as const, field: 'attribute:zone' }] };
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = place(req, snap, { random: seededRandom(i) });
    snap.applyPlacements(req, res);
    seen.push(res.placements[0]!.instanceId);
  }
  assert.equal(seen.filter((z) => z === 'a').length, 2);
  snap.applyTask('a', { group: 'service:s', service: 's', cpu: 10, memory: 10 }, -1);
  assert.equal(place(req, snap).placements[0]!.instanceId, 'a');
});
