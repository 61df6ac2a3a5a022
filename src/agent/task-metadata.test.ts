import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask } from '../api/agent/protocol';
import { buildContainerSpec } from './container-spec';
import { TaskProtectionEndpoint } from './task-protection-endpoint';
import { taskMetadata, type MetadataContext } from './task-metadata';

const TASK = 'arn:aws:ecs:eu-west-1:000000000000:task/c1/0123456789abcdef0123456789abcdef';
const task: AgentTask = {
  taskArn: TASK,
  clusterArn: 'arn:aws:ecs:eu-west-1:000000000000:cluster/c1',
  desiredStatus: 'RUNNING',
  version: 1,
  launchType: 'FARGATE',
  taskDefinition: {
    taskDefinitionArn: 'arn:aws:ecs:eu-west-1:000000000000:task-definition/web:7',
    networkMode: 'awsvpc',
    cpu: '256',
    memory: '512',
    containerDefinitions: [
      { name: 'web', image: 'nginx', cpu: 128, memory: 256, healthCheck: { command: ['CMD', 'true'] } },
      { name: 'side', image: 'busybox' },
    ],
  },
};
const ctx: MetadataContext = {
  task,
  availabilityZone: 'eu-west-1b',
  snapshot: {
    taskArn: TASK,
    knownStatus: 'RUNNING',
    desiredStatus: 'RUNNING',
    healthStatus: 'HEALTHY',
    privateIpv4Address: '10.77.0.5',
    containers: [
      { name: 'web', status: 'RUNNING', dockerId: 'd1', health: 'HEALTHY', networkBindings: [], restartCount: 0 },
      { name: 'side', status: 'STOPPED', dockerId: 'd2', exitCode: 3, health: 'UNKNOWN', networkBindings: [], restartCount: 2 },
    ],
  },
};

describe('task metadata endpoint v4', () => {
  test('the task document: ECS field names, vCPU limits, every container with its network and state', () => {
    const doc = taskMetadata(ctx) as any;
    assert.equal(doc.TaskARN, TASK);
    assert.equal(doc.Family, 'web');
    assert.equal(doc.Revision, '7');
    assert.deepEqual(doc.Limits, { CPU: 0.25, Memory: 512 });
    assert.equal(doc.LaunchType, 'FARGATE');
    assert.equal(doc.AvailabilityZone, 'eu-west-1b');
    assert.deepEqual(doc.Containers.map((c: any) => [c.Name, c.DockerId, c.KnownStatus]), [['web', 'd1', 'RUNNING'], ['side', 'd2', 'STOPPED']]);
    assert.deepEqual(doc.Containers[0].Networks, [{ NetworkMode: 'awsvpc', IPv4Addresses: ['10.77.0.5'] }]);
    assert.deepEqual(doc.Containers[0].Health, { status: 'HEALTHY' });
    assert.equal(doc.Containers[1].ExitCode, 3);
    assert.equal(doc.Containers[1].RestartCount, 2);
  });

  let ep: TaskProtectionEndpoint;
  before(async () => {
    const api = { updateTaskProtection: async () => ({}), getTaskProtection: async () => ({}) };
    ep = new TaskProtectionEndpoint({ host: '127.0.0.1', port: 0, api, taskFor: () => undefined, containerInstanceArn: () => undefined, metadataFor: (id) => (id === 'tok' ? ctx : undefined) });
    await ep.start();
  });
  after(() => ep.close());

  test("containers get ECS_CONTAINER_METADATA_URI_V4 beside ECS_AGENT_URI, and it answers the container's and the task's documents", async () => {
    const spec = buildContainerSpec({
      task,
      containerInstanceArn: 'arn:aws:ecs:eu-west-1:000000000000:container-instance/~fargate/x',
      def: task.taskDefinition.containerDefinitions![0]!,
      dockerName: 'web',
      networkMode: 'awsvpc',
      dockerNames: {},
      dockerIds: {},
      volumeSources: {},
      agentUri: ep.uriFor('tok'),
    });
    const env = new Map(spec.env!.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const uri = env.get('ECS_CONTAINER_METADATA_URI_V4')!;
    assert.equal(uri, ep.uriFor('tok').replace('/api/tok', '/v4/tok/web'));
    const container = (await (await fetch(uri)).json()) as { Name: string; Image: string };
    assert.equal(container.Name, 'web');
    assert.equal(container.Image, 'nginx');
    const t = (await (await fetch(`${uri}/task`)).json()) as { TaskARN: string };
    assert.equal(t.TaskARN, TASK);
    assert.equal((await fetch(uri.replace('/tok/', '/nope/'))).status, 404);
    assert.equal((await fetch(`${uri}/task`, { method: 'POST' })).status, 405);
  });
});
