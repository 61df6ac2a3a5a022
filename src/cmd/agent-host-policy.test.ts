import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostPolicy } from './agent';

test('no host policy flag and no ECS_DISABLE_PRIVILEGED: nothing is restricted', () => {
  assert.equal(parseHostPolicy({}, {}), undefined);
  assert.equal(parseHostPolicy({}, { ECS_DISABLE_PRIVILEGED: 'false' }), undefined);
});

test('ECS_DISABLE_PRIVILEGED is read as the ECS agent reads it, and a typo is refused', () => {
  for (const v of ['true', 'TRUE', '1', 't']) assert.deepEqual(parseHostPolicy({}, { ECS_DISABLE_PRIVILEGED: v }), { disablePrivileged: true });
  assert.throws(() => parseHostPolicy({}, { ECS_DISABLE_PRIVILEGED: 'yes please' }), /ECS_DISABLE_PRIVILEGED must be true or false/);
});

test('the four flags together', () => {
  assert.deepEqual(
    parseHostPolicy({ disablePrivileged: true, disallowHostNetwork: true, disableCapabilities: 'sys_admin', allowedHostPaths: '/data/,/var/log' }, {}),
    { disablePrivileged: true, disallowHostNetwork: true, disabledCapabilities: ['SYS_ADMIN'], allowedHostPaths: ['/data', '/var/log'] },
  );
  assert.throws(() => parseHostPolicy({ allowedHostPaths: 'relative/path' }, {}), /--allowed-host-paths wants absolute paths/);
});
