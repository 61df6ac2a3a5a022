import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeDeploymentConfiguration } from './service-math';

test('deploymentConfiguration: alarms turned off and the ROLLING strategy are kept as given (no drift for tools that compare), other extras refused', () => {
  const given = { alarms: { alarmNames: ['high-5xx'], enable: false, rollback: false }, strategy: 'ROLLING' as const };
  const out = normalizeDeploymentConfiguration(given, 'REPLICA');
  assert.deepEqual(out, {
    maximumPercent: 200,
    minimumHealthyPercent: 100,
    deploymentCircuitBreaker: { enable: false, rollback: false },
    alarms: { alarmNames: ['high-5xx'], enable: false, rollback: false },
    strategy: 'ROLLING',
  });
  // An update that names neither keeps them, as it keeps the percents.
  assert.deepEqual(normalizeDeploymentConfiguration({ maximumPercent: 150 }, 'REPLICA', out).alarms, out.alarms);
  assert.throws(() => normalizeDeploymentConfiguration({ alarms: { alarmNames: ['a'], enable: true, rollback: true } }, 'REPLICA'), /alarms is not supported/);
  assert.throws(() => normalizeDeploymentConfiguration({ strategy: 'BLUE_GREEN' }, 'REPLICA'), /strategy is not supported/);
  assert.equal(normalizeDeploymentConfiguration(undefined, 'REPLICA').alarms, undefined);
});
