import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { createLogger } from '../lib';
import { haproxyMissing, haproxyTooOld, startLoadBalancers } from './load-balancers';
import type { RegionRuntimes } from './regions';

test('without haproxy the load balancers are not served, with one line saying why, and nothing else fails', () => {
  const lines: { level: string; obj: unknown; msg: string }[] = [];
  const log = createLogger('test', 'silent');
  const capture = Object.assign(Object.create(log) as typeof log, {
    child: () => capture,
    warn: (obj: unknown, msg: string) => void lines.push({ level: 'warn', obj, msg }),
    info: (obj: unknown, msg: string) => void lines.push({ level: 'info', obj, msg }),
  });
  assert.match(haproxyMissing('/nonexistent/haproxy') ?? '', /ENOENT/);
  const regions = { onUp: () => assert.fail('no controller should be wired') } as unknown as RegionRuntimes;
  const running = startLoadBalancers({ dataDir: os.tmpdir(), settings: { enabled: true, haproxy: '/nonexistent/haproxy' }, regions, log: capture });
  assert.equal(running, undefined);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 'warn');
  assert.match(lines[0]!.msg, /load balancers are not served: cannot run haproxy \(\/nonexistent\/haproxy\)/);
});

test('--load-balancers off: no controller at all', () => {
  const regions = { onUp: () => assert.fail('no controller should be wired') } as unknown as RegionRuntimes;
  assert.equal(startLoadBalancers({ dataDir: os.tmpdir(), settings: { enabled: false }, regions, log: createLogger('test', 'silent') }), undefined);
});

test('an HAProxy older than 2.5 is refused (the generated config needs 2.5), with the reason', () => {
  assert.equal(haproxyTooOld('HAProxy version 2.6.12-1+deb12u4 2025/07/01 - https://haproxy.org/'), undefined);
  assert.equal(haproxyTooOld('HAProxy version 3.0.5-1 2024/09/19'), undefined);
  assert.equal(haproxyTooOld('HA-Proxy version 2.4.22-0ubuntu0.22.04.3 2023/08/14'), 'HAProxy 2.4 is too old: 2.5 or later is needed');
  assert.match(haproxyTooOld('something else') ?? '', /cannot tell its version/);
  // The machine's own haproxy, when it has one, passes.
  const here = haproxyMissing('haproxy');
  if (!here?.includes('ENOENT')) assert.equal(here, undefined);
});
