import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask } from '../api/agent/protocol';
import { buildContainerSpec, type SpecContext } from './container-spec';

const task = { taskArn: 'arn:aws:ecs:us-east-1:000000000000:task/c/abc', clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/c', desiredStatus: 'RUNNING', taskDefinition: { family: 'f', revision: 1, containerDefinitions: [] } } as unknown as AgentTask;
const spec = (networkMode: string, def: SpecContext['def']) =>
  buildContainerSpec({ task, containerInstanceArn: 'arn:aws:ecs:us-east-1:000000000000:container-instance/c/i', def, dockerName: 'x', networkMode, pauseId: 'pause', dockerNames: {}, dockerIds: {}, volumeSources: {}, dnsServers: ['172.17.0.1'] });

test("a bridge container without dnsServers resolves through the agent's resolvers (Wharf's DNS server)", () => {
  assert.deepEqual(spec('bridge', { name: 'a', image: 'busybox' }).host.dns, ['172.17.0.1']);
});

test("the definition's dnsServers win; host and awsvpc containers get none (Docker refuses them; awsvpc uses the pause container's)", () => {
  assert.deepEqual(spec('bridge', { name: 'a', image: 'busybox', dnsServers: ['10.0.0.2'] }).host.dns, ['10.0.0.2']);
  assert.equal(spec('host', { name: 'a', image: 'busybox' }).host.dns, undefined);
  assert.equal(spec('awsvpc', { name: 'a', image: 'busybox' }).host.dns, undefined);
});
