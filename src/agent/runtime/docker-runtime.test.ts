import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstHostAddress } from './docker-runtime';

test("the default bridge's gateway when Docker names none: the subnet's first address", () => {
  assert.equal(firstHostAddress('172.17.0.0/16'), '172.17.0.1');
  assert.equal(firstHostAddress('10.200.3.128/25'), '10.200.3.129');
  assert.equal(firstHostAddress('192.168.5.7/24'), '192.168.5.1');
  assert.equal(firstHostAddress('fd00::/64'), undefined);
  assert.equal(firstHostAddress('10.0.0.1/32'), undefined);
  assert.equal(firstHostAddress(undefined), undefined);
});
