import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerCreateOptions } from './docker-create-options';
import { firstHostAddress } from '../../lib/ipv4';

test("the default bridge's gateway when Docker names none: the subnet's first address", () => {
  assert.equal(firstHostAddress('172.17.0.0/16'), '172.17.0.1');
  assert.equal(firstHostAddress('10.200.3.128/25'), '10.200.3.129');
  assert.equal(firstHostAddress('192.168.5.7/24'), '192.168.5.1');
  assert.equal(firstHostAddress('fd00::/64'), undefined);
  assert.equal(firstHostAddress('10.0.0.1/32'), undefined);
  assert.equal(firstHostAddress(undefined), undefined);
});

test('a spec maps onto Docker create options: the sandbox runtime and pids limit of a Fargate container among them', () => {
  const o = dockerCreateOptions({
    name: 'web',
    image: 'wharf-test/busybox',
    labels: { a: 'b' },
    env: ['X=1'],
    host: { networkMode: 'container:abc', runtime: 'runsc', pidsLimit: 4096, memoryBytes: 64 << 20, cgroupParent: '/wharf/t1' },
  } as Parameters<typeof dockerCreateOptions>[0]);
  assert.equal(o.Image, 'wharf-test/busybox:latest');
  assert.deepEqual(o.Env, ['X=1']);
  assert.equal(o.HostConfig?.Runtime, 'runsc');
  assert.equal(o.HostConfig?.PidsLimit, 4096);
  assert.equal(o.HostConfig?.NetworkMode, 'container:abc');
  assert.equal(o.HostConfig?.CgroupParent, '/wharf/t1');
});
