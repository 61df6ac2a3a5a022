import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask } from '../api/agent/protocol';
import { buildContainerSpec } from './container-spec';
import { TaskProtectionEndpoint } from './task-protection-endpoint';
import { NetworkRates, statsMetadata, taskMetadata, type MetadataContext } from './task-metadata';

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

/** A Docker stats document as the engine returns it (trimmed to what the shaping reads). */
function dockerStats(id: string, read: string, rx: number, tx: number): Record<string, unknown> {
  return {
    read,
    name: `/ecs-${id}`,
    id,
    cpu_stats: { cpu_usage: { total_usage: 5 }, online_cpus: 2 },
    memory_stats: { usage: 4096, limit: 536870912 },
    networks: { eth0: { rx_bytes: rx, tx_bytes: tx }, eth1: { rx_bytes: rx, tx_bytes: 0 } },
  };
}

describe('task metadata endpoint v4 /stats', () => {
  test("a container's stats are the engine's document, with network_rate_stats from its second read on", async () => {
    const rates = new NetworkRates();
    const reads = [dockerStats('d1', '2026-01-01T00:00:00Z', 1000, 500), dockerStats('d1', '2026-01-01T00:00:02Z', 3000, 1500)];
    const first = (await statsMetadata(ctx, 'web', async () => reads.shift(), rates)) as any;
    assert.equal(first.name, '/ecs-d1');
    assert.deepEqual(first.memory_stats, { usage: 4096, limit: 536870912 });
    assert.equal(first.network_rate_stats, undefined, 'one reading gives no rate');
    const second = (await statsMetadata(ctx, 'web', async () => reads.shift(), rates)) as any;
    // Both interfaces summed: rx 2000+2000 bytes in 2 s, tx 1000 bytes in 2 s.
    assert.deepEqual(second.network_rate_stats, { rx_bytes_per_sec: 2000, tx_bytes_per_sec: 500 });
    rates.forget(['d1']);
    assert.equal(rates.size, 0);
  });

  test('/task/stats maps every container by Docker id; stopped ones are null; unknown containers are undefined', async () => {
    const asked: string[] = [];
    const read = async (id: string) => (asked.push(id), dockerStats(id, '2026-01-01T00:00:00Z', 0, 0));
    const all = (await statsMetadata(ctx, undefined, read, new NetworkRates())) as any;
    assert.deepEqual(Object.keys(all), ['d1', 'd2']);
    assert.equal(all.d1.id, 'd1');
    assert.equal(all.d2, null);
    assert.deepEqual(asked, ['d1'], 'the engine is not asked about a stopped container');
    assert.deepEqual(await statsMetadata(ctx, 'side', read, new NetworkRates()), {});
    assert.equal(await statsMetadata(ctx, 'nope', read, new NetworkRates()), undefined);
  });

  test('a counter that went backwards or a document without networks gives no rate', () => {
    const rates = new NetworkRates();
    assert.equal(rates.next('x', dockerStats('x', '2026-01-01T00:00:00Z', 500, 500)), undefined);
    assert.equal(rates.next('x', dockerStats('x', '2026-01-01T00:00:01Z', 100, 100)), undefined);
    assert.equal(rates.next('x', { read: '2026-01-01T00:00:02Z' }), undefined);
  });
});

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
    ep = new TaskProtectionEndpoint({ host: '127.0.0.1', port: 0, api, taskFor: () => undefined, containerInstanceArn: () => undefined, metadataFor: (id) => (id === 'tok' ? ctx : undefined),
      statsFor: (id, container) => (id === 'tok' ? statsMetadata(ctx, container, async (d) => dockerStats(d, '2026-01-01T00:00:00Z', 100, 10), new NetworkRates()) : Promise.resolve(undefined)),
    });
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
    const stats = (await (await fetch(`${uri}/stats`)).json()) as { id: string; name: string };
    assert.deepEqual([stats.id, stats.name], ['d1', '/ecs-d1']);
    const taskStats = (await (await fetch(`${uri}/task/stats`)).json()) as Record<string, { id: string } | null>;
    assert.deepEqual(Object.keys(taskStats), ['d1', 'd2']);
    assert.equal(taskStats.d1!.id, 'd1');
    assert.equal(taskStats.d2, null, 'a stopped container has no stats');
    assert.equal((await fetch(`${uri.replace('/tok/', '/nope/')}/stats`)).status, 404);
    assert.equal((await fetch(uri.replace('/tok/', '/nope/'))).status, 404);
    assert.equal((await fetch(`${uri}/task`, { method: 'POST' })).status, 405);
  });
});
