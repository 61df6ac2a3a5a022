import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask } from '../api/agent/protocol';
import { buildContainerSpec, type SpecContext } from './container-spec';

const task = { taskArn: 'arn:aws:ecs:us-east-1:000000000000:task/c/abc', clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/c', desiredStatus: 'RUNNING', taskDefinition: { family: 'f', revision: 1, containerDefinitions: [] } } as unknown as AgentTask;
const spec = (def: SpecContext['def']) =>
  buildContainerSpec({ task, containerInstanceArn: 'arn:aws:ecs:us-east-1:000000000000:container-instance/c/i', def, dockerName: 'x', networkMode: 'bridge', pauseId: 'pause', dockerNames: {}, dockerIds: {}, volumeSources: {} });

test('swappiness applies only with maxSwap, as ECS documents ("A maxSwap value must be set for the swappiness parameter to be used")', () => {
  const alone = spec({ name: 'a', image: 'busybox', memory: 64, linuxParameters: { swappiness: 5 } }).host;
  assert.equal(alone.memorySwappiness, undefined);
  assert.equal(alone.memorySwapBytes, undefined, "no maxSwap: the instance's own swap setting");
  const both = spec({ name: 'a', image: 'busybox', memory: 64, linuxParameters: { swappiness: 5, maxSwap: 32 } }).host;
  assert.equal(both.memorySwappiness, 5);
  assert.equal(both.memorySwapBytes, 96 * 1024 * 1024, 'memory + maxSwap');
});
