import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digitId, hexId } from './ids';

test('hexId gives 32 lowercase hex characters, never the same twice, across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = hexId();
    assert.match(id, /^[0-9a-f]{32}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
});

test('digitId gives the requested number of digits without a leading zero', () => {
  for (let i = 0; i < 100; i++) assert.match(digitId(), /^[1-9][0-9]{18}$/);
});
