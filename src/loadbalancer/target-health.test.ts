import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { targetGroupDefaults, type TargetGroup } from './model';
import type { ServerState } from './runtime-api';
import { targetHealth } from './target-health';

const group: TargetGroup = { ...targetGroupDefaults('HTTP'), id: 'web', port: 80, targets: [] };
const T0 = 1_000_000;
const server = (over: Partial<ServerState>): ServerState => ({
  backend: 'tg_web', server: 's1', address: '10.0.0.1', port: 80, opState: 0, adminState: 0, status: 'DOWN', checkStatus: '', checkCode: '', currentSessions: 0, ...over,
});

describe('HAProxy server -> ELB target health', () => {
  test('no slot yet: registration in progress', () => {
    assert.equal(targetHealth(group, undefined, { registeredAt: T0, seenHealthy: false }, T0).reason, 'Elb.RegistrationInProgress');
  });
  test('DOWN and never UP, before interval x unhealthyThreshold: initial', () => {
    const h = targetHealth(group, server({ checkStatus: 'L4CON' }), { registeredAt: T0, seenHealthy: false }, T0 + 59_000);
    assert.deepEqual(h, { state: 'initial', reason: 'Elb.InitialHealthChecking', description: 'Initial health checks in progress' });
  });
  test('still failing after interval x unhealthyThreshold: unhealthy', () => {
    const h = targetHealth(group, server({ checkStatus: 'L4CON' }), { registeredAt: T0, seenHealthy: false }, T0 + 60_000);
    assert.equal(h.state, 'unhealthy');
  });
  test('UP (even while failing towards DOWN) is healthy', () => {
    assert.deepEqual(targetHealth(group, server({ opState: 2, status: 'UP 1/2', checkStatus: 'L7STS' }), { registeredAt: T0, seenHealthy: true }, T0), { state: 'healthy' });
  });
  test('check results map to reason codes', () => {
    const seen = { registeredAt: T0, seenHealthy: true };
    assert.deepEqual(targetHealth(group, server({ checkStatus: 'L7STS', checkCode: '502' }), seen, T0), { state: 'unhealthy', reason: 'Target.ResponseCodeMismatch', description: 'Health checks failed with these codes: [502]' });
    assert.equal(targetHealth(group, server({ checkStatus: 'L7TOUT' }), seen, T0).reason, 'Target.Timeout');
    assert.equal(targetHealth(group, server({ checkStatus: 'L4CON' }), seen, T0).reason, 'Target.FailedHealthChecks');
    const tcp: TargetGroup = { ...group, ...targetGroupDefaults('TCP') };
    assert.equal(targetHealth(tcp, server({ checkStatus: 'L4TOUT' }), seen, T0).reason, 'Target.FailedHealthChecks');
  });
  test('health checks disabled: unavailable', () => {
    const off = { ...group, healthCheck: { ...group.healthCheck, enabled: false } };
    assert.equal(targetHealth(off, server({ opState: 2, status: 'no check' }), { registeredAt: T0, seenHealthy: false }, T0).reason, 'Target.HealthCheckDisabled');
  });
});
