import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalescedRead } from './coalesced-read';

/** A read whose answers the test releases one at a time; it answers the value written when it started. */
function controlledRead() {
  let value = 0;
  const pending: (() => void)[] = [];
  let started = 0;
  const read = () => {
    started++;
    const seen = value;
    return new Promise<number>((resolve) => pending.push(() => resolve(seen)));
  };
  return { read, write: (v: number) => (value = v), finish: () => pending.shift()!(), started: () => started };
}

test('callers arriving during a read share the next one, which starts after they asked', async () => {
  const r = controlledRead();
  const get = coalescedRead(r.read);
  const a = get();
  r.write(1); // acknowledged after read 1 started: b and c must see it
  const b = get();
  const c = get();
  assert.equal(r.started(), 1, 'b and c do not start reads of their own');
  r.finish();
  assert.equal(await a, 0);
  await new Promise((res) => setImmediate(res));
  assert.equal(r.started(), 2, 'the next read starts once the first ends');
  r.finish();
  assert.deepEqual([await b, await c], [1, 1]);
  const d = get();
  assert.equal(r.started(), 3, 'a caller arriving when nothing runs starts a read at once');
  r.finish();
  assert.equal(await d, 1);
});

test('a failed read fails its own callers only; the waiting ones get the next read', async () => {
  let n = 0;
  const gates: ((ok: boolean) => void)[] = [];
  const get = coalescedRead(() => {
    const i = ++n;
    return new Promise<number>((resolve, reject) => gates.push((ok) => (ok ? resolve(i) : reject(new Error(`read ${i} failed`)))));
  });
  const a = get();
  const b = get();
  gates.shift()!(false);
  await assert.rejects(a, /read 1 failed/);
  await new Promise((res) => setImmediate(res));
  gates.shift()!(true);
  assert.equal(await b, 2);
});
