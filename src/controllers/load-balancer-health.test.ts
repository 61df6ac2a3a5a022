import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TargetHealthRecord, TargetRecord } from '../control/elbv2-records';
import { DRAINING } from '../loadbalancer/target-health';
import { NOT_IN_USE, planTargetHealth } from './load-balancer-health';

const NOW = 1_700_000_000_000;
const reg = (Id: string, Port = 80, registeredAt = NOW - 10_000): TargetRecord => ({ Id, Port, registeredAt });
const rec = (Id: string, State: TargetHealthRecord['State'], Reason?: string, Description?: string): TargetHealthRecord => ({
  Id,
  Port: 80,
  State,
  ...(Reason ? { Reason } : {}),
  ...(Description ? { Description } : {}),
  updatedAt: NOW - 5000,
});

describe('HAProxy health -> stored health records', () => {
  test('a new target is written; an unchanged one is not', () => {
    const plan = planTargetHealth(
      [reg('10.0.0.1'), reg('10.0.0.2')],
      [
        { Id: '10.0.0.1', Port: 80, health: { state: 'healthy' } },
        { Id: '10.0.0.2', Port: 80, health: { state: 'initial', reason: 'Elb.RegistrationInProgress', description: 'Target registration is in progress' } },
      ],
      [rec('10.0.0.1', 'healthy')],
      NOW,
    );
    assert.deepEqual(plan, {
      put: [{ Id: '10.0.0.2', Port: 80, State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress', updatedAt: NOW }],
      delete: [],
    });
  });

  test('a record older than the registration of its target (a new task at a reused address) is written again', () => {
    const plan = planTargetHealth([reg('10.0.0.1', 80, NOW - 1000)], [{ Id: '10.0.0.1', Port: 80, health: { state: 'healthy' } }], [rec('10.0.0.1', 'healthy')], NOW);
    assert.deepEqual(plan, { put: [{ Id: '10.0.0.1', Port: 80, State: 'healthy', updatedAt: NOW }], delete: [] });
  });

  test('a change of state, reason or description is written', () => {
    const plan = planTargetHealth(
      [reg('10.0.0.1'), reg('10.0.0.2')],
      [
        { Id: '10.0.0.1', Port: 80, health: { state: 'unhealthy', reason: 'Target.ResponseCodeMismatch', description: 'Health checks failed with these codes: [500]' } },
        { Id: '10.0.0.2', Port: 80, health: { state: 'unhealthy', reason: 'Target.Timeout', description: 'Request timed out' } },
      ],
      [rec('10.0.0.1', 'healthy'), rec('10.0.0.2', 'unhealthy', 'Target.ResponseCodeMismatch', 'Health checks failed with these codes: [500]')],
      NOW,
    );
    assert.deepEqual(
      plan.put.map((p) => [p.Id, p.State, p.Reason]),
      [
        ['10.0.0.1', 'unhealthy', 'Target.ResponseCodeMismatch'],
        ['10.0.0.2', 'unhealthy', 'Target.Timeout'],
      ],
    );
    assert.deepEqual(plan.delete, []);
  });

  test('a deregistered target is draining while HAProxy drains it, then its record is deleted', () => {
    const draining = planTargetHealth([], [{ Id: '10.0.0.3', Port: 80, health: DRAINING }], [rec('10.0.0.3', 'healthy')], NOW);
    assert.deepEqual(draining.put.map((p) => [p.State, p.Reason, p.Description]), [['draining', 'Target.DeregistrationInProgress', 'Target deregistration is in progress']]);
    assert.deepEqual(draining.delete, []);
    const gone = planTargetHealth([], [], [rec('10.0.0.3', 'draining', 'Target.DeregistrationInProgress', 'Target deregistration is in progress')], NOW);
    assert.deepEqual(gone, { put: [], delete: [{ Id: '10.0.0.3', Port: 80 }] });
  });

  test('targets of a group no listener uses are unused (Target.NotInUse); deregistered ones lose their record at once', () => {
    const plan = planTargetHealth([reg('10.0.0.1')], undefined, [rec('10.0.0.9', 'healthy')], NOW);
    assert.deepEqual(plan.put, [{ Id: '10.0.0.1', Port: 80, State: 'unused', Reason: NOT_IN_USE.reason, Description: NOT_IN_USE.description, updatedAt: NOW }]);
    assert.deepEqual(plan.delete, [{ Id: '10.0.0.9', Port: 80 }]);
  });

  test('a registered target HAProxy does not carry (an unknown instance) keeps its record', () => {
    const plan = planTargetHealth([reg('i-0abc', 32768)], [], [{ ...rec('i-0abc', 'healthy'), Port: 32768 }], NOW);
    assert.deepEqual(plan, { put: [], delete: [] });
  });

  test('instance targets are keyed by instance id and port: two ports of one instance are two records', () => {
    const plan = planTargetHealth(
      [reg('i-0abc', 32768), reg('i-0abc', 32769)],
      [
        { Id: 'i-0abc', Port: 32768, health: { state: 'healthy' } },
        { Id: 'i-0abc', Port: 32769, health: { state: 'healthy' } },
      ],
      [{ ...rec('i-0abc', 'healthy'), Port: 32768 }],
      NOW,
    );
    assert.deepEqual(plan.put.map((p) => `${p.Id}:${p.Port}`), ['i-0abc:32769']);
  });

  test("a registration younger than interval x unhealthyThreshold is not written unhealthy (the address's earlier target failing)", () => {
    const check = { intervalSeconds: 5, unhealthyThreshold: 2 };
    const failing = [{ Id: '10.0.0.1', Port: 80, health: { state: 'unhealthy' as const, reason: 'Target.FailedHealthChecks', description: 'Health checks failed' } }];
    // The earlier target's record (before the registration): initial, as ELB says of a new target.
    const fresh = planTargetHealth([reg('10.0.0.1', 80, NOW - 30)], failing, [rec('10.0.0.1', 'unhealthy', 'Target.FailedHealthChecks', 'Health checks failed')], NOW, check);
    assert.deepEqual(fresh.put, [{ Id: '10.0.0.1', Port: 80, State: 'initial', Reason: 'Elb.InitialHealthChecking', Description: 'Initial health checks in progress', updatedAt: NOW }]);
    // This registration's record already written (initial): left as it is.
    const initial = { ...fresh.put[0]!, updatedAt: NOW - 10 };
    assert.deepEqual(planTargetHealth([reg('10.0.0.1', 80, NOW - 30)], failing, [initial], NOW, check).put, []);
    // Failing for the whole window: unhealthy.
    const old = planTargetHealth([reg('10.0.0.1', 80, NOW - 10_000)], failing, [initial], NOW, check);
    assert.deepEqual(old.put.map((p) => p.State), ['unhealthy']);
    // Seen healthy since its registration and now failing (HAProxy's fall count): unhealthy.
    const wasHealthy = { ...rec('10.0.0.1', 'healthy'), updatedAt: NOW - 10 };
    assert.deepEqual(planTargetHealth([reg('10.0.0.1', 80, NOW - 30)], failing, [wasHealthy], NOW, check).put.map((p) => p.State), ['unhealthy']);
    // Without the group's timing (callers that have none): as observed.
    assert.deepEqual(planTargetHealth([reg('10.0.0.1', 80, NOW - 30)], failing, [], NOW).put.map((p) => p.State), ['unhealthy']);
  });
});
