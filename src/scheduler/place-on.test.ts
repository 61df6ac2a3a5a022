import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { placeOn, requirementCheck } from './engine';
import { InMemoryClusterSnapshot } from './in-memory-snapshot';
import { instanceFromSpec } from './instance-ops';
import { Reason } from './types';

const snapshot = () =>
  new InMemoryClusterSnapshot([
    instanceFromSpec({ id: 'big', attributes: { stack: 'prod', gpu: 'yes' }, registered: { cpu: 4096, memory: 1024, tcpPorts: [22] } }),
    instanceFromSpec({ id: 'small', attributes: { stack: 'dev' }, registered: { cpu: 4096, memory: 100 } }),
    instanceFromSpec({ id: 'draining', status: 'DRAINING', registered: { cpu: 4096, memory: 1024 } }),
    instanceFromSpec({ id: 'away', agentConnected: false, attributes: { stack: 'prod' }, registered: { cpu: 4096, memory: 1024 } }),
  ]);

describe('placeOn: tasks on the instances the caller names', () => {
  test('each named instance is checked by every filter, with reasons as ECS gives them', () => {
    const r = placeOn({ needs: { cpu: 10, memory: 200 }, group: 'family:f' }, ['big', 'small', 'draining', 'away', 'nope'], snapshot());
    assert.deepEqual(r.placements.map((p) => [p.taskIndex, p.instanceId]), [[0, 'big']]);
    assert.deepEqual(
      r.failures.map((f) => [f.taskIndex, f.reason, f.arn?.split('/').pop()]),
      [
        [1, Reason.MEMORY, 'small'],
        [2, Reason.INACTIVE, 'draining'],
        [3, Reason.AGENT, 'away'],
        [4, Reason.MISSING, 'nope'],
      ],
    );
  });

  test('two tasks on one instance see each other: a host port is not given twice, memory not overbooked', () => {
    const ports = placeOn({ needs: { cpu: 10, memory: 10, tcpPorts: [8080] }, group: 'family:f' }, ['big', 'big'], snapshot());
    assert.equal(ports.placements.length, 1);
    assert.deepEqual(ports.failures.map((f) => f.reason), [Reason.PORTS]);
    const reserved = placeOn({ needs: { cpu: 10, memory: 10, tcpPorts: [22] }, group: 'family:f' }, ['big'], snapshot());
    assert.deepEqual(reserved.failures.map((f) => f.reason), [Reason.PORTS], 'a port the instance already uses');
    const memory = placeOn({ needs: { cpu: 10, memory: 600 }, group: 'family:f' }, ['big', 'big'], snapshot());
    assert.deepEqual(memory.failures.map((f) => f.reason), [Reason.MEMORY]);
  });

  test('required attributes and memberOf apply to named instances too', () => {
    const r = placeOn({ needs: { cpu: 1, memory: 1 }, group: 'g', requiredAttributes: [{ name: 'gpu' }] }, ['small'], snapshot());
    assert.deepEqual(r.failures.map((f) => f.reason), [Reason.ATTRIBUTE]);
    const m = placeOn({ needs: { cpu: 1, memory: 1 }, group: 'g', constraints: [{ type: 'memberOf', expression: 'attribute:stack == prod' }] }, ['small', 'big'], snapshot());
    assert.deepEqual(m.failures.map((f) => f.reason), [Reason.MEMBER_OF]);
    assert.deepEqual(m.placements.map((p) => p.instanceId), ['big']);
  });
});

describe('requirementCheck: where a DAEMON service belongs', () => {
  test('attributes and memberOf decide; free resources and the agent do not', () => {
    const snap = snapshot();
    const check = requirementCheck({ needs: { cpu: 99_999, memory: 99_999 }, group: 'service:d', service: 'd', constraints: [{ type: 'memberOf', expression: 'attribute:stack in [prod, dev]' }] });
    assert.deepEqual(['big', 'small', 'away', 'draining'].filter((id) => check(snap.instance(id)!)), ['big', 'small', 'away']);
    const gpu = requirementCheck({ needs: { cpu: 0, memory: 0 }, group: 'service:d', requiredAttributes: [{ name: 'gpu', value: 'yes' }] });
    assert.deepEqual(['big', 'small'].filter((id) => gpu(snap.instance(id)!)), ['big']);
  });
});
