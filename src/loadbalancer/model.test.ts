import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateLoopbackAddress } from './model';

test('load balancer addresses: the first free one in 127.100.0.0/16, skipping .0 and .255', () => {
  assert.equal(allocateLoopbackAddress([]), '127.100.0.1');
  assert.equal(allocateLoopbackAddress(['127.100.0.1', '127.100.0.3']), '127.100.0.2');
  const full = Array.from({ length: 254 }, (_, i) => `127.100.0.${i + 1}`);
  assert.equal(allocateLoopbackAddress(full), '127.100.1.1');
});

