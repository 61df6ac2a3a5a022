import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRegisterHistory, describeFailure, type Operation } from './linearizability';

const w = (value: unknown, invoke: number, ret: number, key = 'x'): Operation => ({ key, kind: 'write', value, invoke, ret, outcome: 'ok', label: `w${String(value)}` });
const r = (value: unknown, invoke: number, ret: number, key = 'x'): Operation => ({ key, kind: 'read', value, invoke, ret, outcome: 'ok', label: `r${String(value)}` });
const unknownWrite = (value: unknown, invoke: number, key = 'x'): Operation => ({ key, kind: 'write', value, invoke, ret: invoke + 1, outcome: 'unknown' });

describe('linearizability checker (register per key)', () => {
  test('accepts a sequential history in which each read sees the last write', () => {
    const res = checkRegisterHistory([w(1, 0, 1), r(1, 2, 3), w(2, 4, 5), r(2, 6, 7)]);
    assert.equal(res.ok, true);
    assert.deepEqual(res.keys.map((k) => [k.key, k.ok, k.operations]), [['x', true, 4]]);
  });

  test('rejects a read of a value never written', () => {
    const res = checkRegisterHistory([w(1, 0, 1), r(7, 2, 3)]);
    assert.equal(res.ok, false);
    assert.equal(res.failures[0]!.key, 'x');
    assert.deepEqual(res.failures[0]!.stuck!.map((o) => o.value), [7]);
    assert.match(describeFailure(res.failures[0]!), /x: not linearizable \(2 ops\).*cannot place next: r7 read=7/);
  });

  test('rejects a stale read after a completed write', () => {
    // w1 done, w2 done, then a read that still sees 1: the etcd/Jepsen "stale read".
    const res = checkRegisterHistory([w(1, 0, 1), w(2, 2, 3), r(1, 4, 5)]);
    assert.equal(res.ok, false);
    assert.deepEqual(res.failures[0]!.longestPrefix!.map((o) => o.label), ['w1', 'w2']);
  });

  test('rejects reads that go back in time even when each alone could be explained', () => {
    // The write of 2 overlaps both reads; the first read sees 2, the later one sees 1 again.
    const res = checkRegisterHistory([w(1, 0, 1), w(2, 2, 20), r(2, 3, 4), r(1, 5, 6)]);
    assert.equal(res.ok, false);
  });

  test('accepts either order for operations that overlap in time', () => {
    // The read overlaps the write: it may see the old or the new value.
    assert.equal(checkRegisterHistory([w(1, 0, 1), w(2, 2, 6), r(1, 3, 4)]).ok, true);
    assert.equal(checkRegisterHistory([w(1, 0, 1), w(2, 2, 6), r(2, 3, 4)]).ok, true);
    // Two concurrent writes, then reads that agree on which was last.
    assert.equal(checkRegisterHistory([w('a', 0, 5), w('b', 1, 4), r('a', 6, 7), r('a', 8, 9)]).ok, true);
    assert.equal(checkRegisterHistory([w('a', 0, 5), w('b', 1, 4), r('b', 6, 7), r('b', 8, 9)]).ok, true);
    // ... but not on two different "last" values one after the other.
    assert.equal(checkRegisterHistory([w('a', 0, 5), w('b', 1, 4), r('b', 6, 7), r('a', 8, 9)]).ok, false);
  });

  test('an absent object reads as undefined until it is written (a create)', () => {
    assert.equal(checkRegisterHistory([r(undefined, 0, 1), w('RUNNING', 2, 3), r('RUNNING', 4, 5)]).ok, true);
    // Absent after its create was acknowledged: stale.
    assert.equal(checkRegisterHistory([w('RUNNING', 0, 1), r(undefined, 2, 3)]).ok, false);
  });

  test('a write of unknown outcome may take effect at any time after its invoke, or never', () => {
    assert.equal(checkRegisterHistory([w(1, 0, 1), unknownWrite(2, 2), r(1, 10, 11)]).ok, true, 'never');
    assert.equal(checkRegisterHistory([w(1, 0, 1), unknownWrite(2, 2), r(2, 100, 101)]).ok, true, 'long after the client gave up');
    assert.equal(checkRegisterHistory([w(1, 0, 1), unknownWrite(2, 2), r(1, 10, 11), r(2, 12, 13)]).ok, true, 'late');
    // Once seen, it happened: a later read cannot see the value before it again.
    assert.equal(checkRegisterHistory([w(1, 0, 1), unknownWrite(2, 2), r(2, 10, 11), r(1, 12, 13)]).ok, false);
    // It cannot take effect before it was invoked.
    assert.equal(checkRegisterHistory([w(1, 0, 1), r(2, 2, 3), unknownWrite(2, 4)]).ok, false);
  });

  test('a read of unknown outcome is left out', () => {
    const res = checkRegisterHistory([w(1, 0, 1), { key: 'x', kind: 'read', value: 9, invoke: 2, ret: 3, outcome: 'unknown' }]);
    assert.equal(res.ok, true);
    assert.equal(res.keys[0]!.operations, 1);
  });

  test('keys are checked apart, each from its own initial value', () => {
    const res = checkRegisterHistory([w(1, 0, 1, 'a'), r(0, 2, 3, 'b'), r(1, 4, 5, 'a'), r(5, 6, 7, 'b')], (k) => (k === 'b' ? 0 : undefined));
    assert.equal(res.ok, false);
    assert.deepEqual(res.failures.map((f) => f.key), ['b']);
    assert.deepEqual(res.keys.map((k) => [k.key, k.ok]), [['a', true], ['b', false]]);
  });

  test('handles a few hundred overlapping operations per key, and finds one bad read among them', () => {
    // Five clients, each doing write/read pairs that overlap the others' (a register that really
    // is linearizable: each op takes effect at a point inside its interval, and reads see that).
    const ops: Operation[] = [];
    let value = 0;
    let t = 0;
    const clients = 5;
    for (let round = 0; round < 80; round++) {
      // All clients invoke, then the effects happen in some order, then all return.
      const start = t;
      const effects: Operation[] = [];
      for (let c = 0; c < clients; c++) {
        const kind = (round + c) % 2 === 0 ? 'write' : 'read';
        effects.push({ key: 'x', kind, value: undefined, invoke: start + c, ret: 0, outcome: 'ok' });
      }
      // Effects in a scrambled (deterministic) order inside the overlapping window.
      const order = effects.map((_, i) => i).sort((a, b) => ((a * 7 + round) % clients) - ((b * 7 + round) % clients));
      for (const i of order) {
        const op = effects[i]!;
        if (op.kind === 'write') op.value = value = round * 10 + i;
        else op.value = value;
      }
      for (const op of effects) op.ret = start + clients + 1 + (op.invoke % 3);
      ops.push(...effects);
      t = start + clients + 5;
    }
    assert.equal(ops.length, 400);
    const good = checkRegisterHistory(ops, () => 0);
    assert.equal(good.ok, true);
    // One read late in the history sees a value from long ago.
    const bad = ops.map((o) => ({ ...o }));
    const victim = bad.filter((o) => o.kind === 'read').at(-1)!;
    victim.value = bad.find((o) => o.kind === 'write')!.value;
    assert.equal(checkRegisterHistory(bad, () => 0).ok, false);
  });
});
