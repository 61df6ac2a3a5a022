import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask } from '../api/agent/protocol';
import type { Clock } from '../lib/clock';
import { AgentTaskEndpoint } from './agent-task-endpoint';
import { buildContainerSpec } from './container-spec';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import type { ContainerRuntime } from './runtime/container-runtime';
import { TaskProtectionEndpoint } from './task-protection-endpoint';
import { TaskRunner } from './task-runner';
import { containerMetadata, NetworkRates, statsMetadata, taskMetadata, type MetadataContext } from './task-metadata';

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
      { name: 'side', image: 'busybox', restartPolicy: { enabled: true } },
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

  test("an awsvpc container's Ports are its definition's mappings on the task's own address (it has no host bindings)", () => {
    const withPorts: MetadataContext = {
      ...ctx,
      task: { ...task, taskDefinition: { ...task.taskDefinition, containerDefinitions: [{ name: 'web', image: 'nginx', portMappings: [{ containerPort: 8080 }, { containerPort: 53, protocol: 'udp' }] }, { name: 'side', image: 'busybox' }] } },
    };
    assert.deepEqual((containerMetadata(withPorts, 'web') as any).Ports, [
      { ContainerPort: 8080, Protocol: 'tcp', HostPort: 8080 },
      { ContainerPort: 53, Protocol: 'udp', HostPort: 53 },
    ]);
    assert.equal((containerMetadata(withPorts, 'side') as any).Ports, undefined, 'no mappings, no Ports');
    assert.deepEqual((taskMetadata(withPorts) as any).Containers[0].Ports.map((p: any) => p.ContainerPort), [8080, 53]);
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

// ---- an EC2 task, read as its container reads it -------------------------------------------

const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
const EC2_TASK = 'arn:aws:ecs:us-east-1:123456789012:task/default/fedcba9876543210fedcba9876543210';
const CONTAINER_ARN = 'arn:aws:ecs:us-east-1:123456789012:container/default/fedcba9876543210fedcba9876543210/0206b271-b33f-47ab-86c6-a0ba208a70a9';
const IMAGE_ID = `sha256:${'d6'.repeat(32)}`;
const CREATED = Date.parse('2026-12-07T10:00:00.5Z');
const ec2Task: AgentTask = {
  taskArn: EC2_TASK,
  clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
  desiredStatus: 'RUNNING',
  version: 1,
  serviceName: 'web-svc',
  containerArns: { app: CONTAINER_ARN },
  taskDefinition: {
    taskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/curltest:24',
    family: 'curltest',
    revision: 24,
    networkMode: 'bridge',
    containerDefinitions: [
      {
        name: 'app',
        image: 'wharf-test/busybox',
        cpu: 10,
        memory: 128,
        portMappings: [{ containerPort: 80, hostPort: 0, protocol: 'tcp' }],
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/ecs/metadata', 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': 'ecs' } },
      },
    ],
  },
};

/** The simulated engine, answering inspect as Docker does for a bridge container. */
function bridgeEngine(): SimulatedRuntime {
  const rt = new SimulatedRuntime({ clock });
  const inspect = rt.inspectContainer.bind(rt);
  rt.inspectContainer = async (id) => {
    const st = await inspect(id);
    const ipAddresses: Record<string, string> = st?.running ? { bridge: '172.17.0.7' } : {};
    return st && { ...st, createdAt: CREATED, imageId: IMAGE_ID, ipAddresses };
  };
  // Network counters that grow between reads, so v4 has a rate to give.
  let bytes = 0;
  rt.containerStats = async (id) => ({ read: new Date().toISOString(), id, networks: { eth0: { rx_bytes: (bytes += 1000), tx_bytes: bytes } } });
  return rt;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('task metadata endpoint for an EC2 bridge task', () => {
  let runner: TaskRunner;
  let endpoint: AgentTaskEndpoint;
  let env: Map<string, string>;
  before(async () => {
    const rt = bridgeEngine();
    runner = new TaskRunner(ec2Task, {
      runtime: rt,
      containerInstanceArn: 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc',
      onTaskStateChange: () => {},
      onContainerStateChange: () => {},
      pollIntervalMs: 20,
      clock,
    });
    runner.start();
    await until(() => runner.knownStatus === 'RUNNING' && runner.snapshot().containers[0]!.ipAddresses?.bridge !== undefined, 'the task running');
    endpoint = new AgentTaskEndpoint({
      runtime: rt,
      runnerFor: (arn) => (arn === EC2_TASK ? runner : undefined),
      containerInstanceArn: () => 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc',
      availabilityZone: 'us-east-1a',
    });
    endpoint.setKey('00'.repeat(32));
    await endpoint.listen({ host: '127.0.0.1', port: 0, api: { updateTaskProtection: async () => ({}), getTaskProtection: async () => ({}) } });
    endpoint.add(ec2Task);
    const spec = buildContainerSpec({
      task: ec2Task,
      containerInstanceArn: 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc',
      def: ec2Task.taskDefinition.containerDefinitions![0]!,
      dockerName: 'app',
      networkMode: 'bridge',
      dockerNames: {},
      dockerIds: {},
      volumeSources: {},
      agentUri: endpoint.uriOf(EC2_TASK),
    });
    env = new Map(spec.env!.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  });
  after(async () => {
    runner.close();
    await endpoint.close();
  });

  test("$ECS_CONTAINER_METADATA_URI_V4: the container's bridge address, engine times, image id, ARN, ports and log options", async () => {
    const doc = (await (await fetch(env.get('ECS_CONTAINER_METADATA_URI_V4')!)).json()) as any;
    const snap = runner.snapshot().containers[0]!;
    assert.deepEqual(doc.Networks, [{ NetworkMode: 'bridge', IPv4Addresses: ['172.17.0.7'] }]);
    assert.equal(doc.DockerId, snap.dockerId);
    assert.match(doc.DockerName, /^ecs-curltest-24-app-[0-9a-f]+$/);
    assert.equal(doc.ImageID, IMAGE_ID);
    assert.equal(doc.CreatedAt, '2026-12-07T10:00:00.5Z', "the engine's creation time, in Go's form");
    assert.equal(doc.StartedAt, new Date(snap.startedAt!).toISOString().replace(/\.?0*Z$/, 'Z'));
    assert.equal(doc.FinishedAt, undefined, 'still running');
    assert.equal(doc.ContainerARN, CONTAINER_ARN);
    assert.equal(doc.KnownStatus, 'RUNNING');
    assert.deepEqual(doc.Limits, { CPU: 10, Memory: 128 });
    assert.equal(doc.Type, 'NORMAL');
    assert.equal(doc.Ports.length, 1);
    assert.equal(doc.Ports[0].ContainerPort, 80);
    assert.equal(doc.Ports[0].Protocol, 'tcp');
    assert.ok(doc.Ports[0].HostPort > 0, 'the dynamic host port');
    assert.equal(doc.LogDriver, 'awslogs');
    assert.deepEqual(doc.LogOptions, { 'awslogs-group': '/ecs/metadata', 'awslogs-region': 'us-east-1', 'awslogs-stream': 'ecs/app/fedcba9876543210fedcba9876543210' });
    assert.equal(doc.RestartCount, undefined, 'no restart policy, no RestartCount');
    assert.equal(doc.Labels['com.amazonaws.ecs.task-definition-family'], 'curltest');
  });

  test('$ECS_CONTAINER_METADATA_URI_V4/task: ServiceName, pull times, EC2, no task limits when none are defined', async () => {
    const doc = (await (await fetch(`${env.get('ECS_CONTAINER_METADATA_URI_V4')}/task`)).json()) as any;
    assert.equal(doc.ServiceName, 'web-svc');
    assert.equal(doc.LaunchType, 'EC2');
    assert.equal(doc.AvailabilityZone, 'us-east-1a');
    assert.equal(doc.Family, 'curltest');
    assert.equal(doc.Revision, '24');
    assert.equal(doc.Limits, undefined);
    assert.match(doc.PullStartedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.match(doc.PullStoppedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok(Date.parse(doc.PullStoppedAt) >= Date.parse(doc.PullStartedAt));
    assert.deepEqual(doc.Containers[0].Networks, [{ NetworkMode: 'bridge', IPv4Addresses: ['172.17.0.7'] }]);
    assert.equal(doc.Containers[0].ContainerARN, CONTAINER_ARN);
  });

  test('ECS_CONTAINER_METADATA_URI is the v3 endpoint: its own URI, v3 documents without what v4 added', async () => {
    const v3 = env.get('ECS_CONTAINER_METADATA_URI')!;
    assert.notEqual(v3, env.get('ECS_CONTAINER_METADATA_URI_V4'));
    const c = (await (await fetch(v3)).json()) as any;
    assert.equal(c.Name, 'app');
    assert.equal(c.ImageID, IMAGE_ID);
    assert.deepEqual(c.Networks, [{ NetworkMode: 'bridge', IPv4Addresses: ['172.17.0.7'] }]);
    for (const v4Only of ['ContainerARN', 'LogDriver', 'LogOptions', 'RestartCount']) assert.equal(c[v4Only], undefined, v4Only);
    assert.equal(c.Ports[0].HostIp, undefined);
    const t = (await (await fetch(`${v3}/task`)).json()) as any;
    assert.equal(t.TaskARN, EC2_TASK);
    assert.ok(t.PullStartedAt);
    assert.equal(t.LaunchType, undefined);
    assert.equal(t.ServiceName, undefined);
    const statsTwice = async (uri: string) => {
      await fetch(`${uri}/stats`);
      await new Promise((r) => setTimeout(r, 10));
      return (await (await fetch(`${uri}/stats`)).json()) as any;
    };
    const stats = await statsTwice(v3);
    assert.equal(stats.id, runner.snapshot().containers[0]!.dockerId);
    assert.equal(stats.network_rate_stats, undefined, 'v3 stats have no network rates');
    assert.ok((await statsTwice(env.get('ECS_CONTAINER_METADATA_URI_V4')!)).network_rate_stats, 'v4 ones do');
    assert.equal((await fetch(v3.replace(/[0-9a-f]{32}-v3/, `${'0'.repeat(32)}-v3`))).status, 404);
  });

  test('a bridge container the engine gave no address (not started yet) still names its network, as the ECS agent does', () => {
    const m: MetadataContext = { task: ec2Task, snapshot: { ...runner.snapshot(), containers: runner.snapshot().containers.map((c) => ({ ...c, ipAddresses: {} })) } };
    assert.deepEqual((containerMetadata(m, 'app') as any).Networks, [{ NetworkMode: 'bridge', IPv4Addresses: [''] }]);
  });
});

test("a container's metadata asked before the runner has looked at it carries the engine's image id and times", async () => {
  const created = Date.parse('2026-12-07T10:00:00.000Z');
  const started = created + 250;
  const inspected: string[] = [];
  const runtime = {
    inspectContainer: async (id: string) => {
      inspected.push(id);
      return { running: true, status: 'running', imageId: `sha256:${'ab'.repeat(32)}`, createdAt: created, startedAt: started, ipAddresses: {}, ports: [] };
    },
  } as unknown as ContainerRuntime;
  // 'web' just started (no engine info yet); 'side' was looked at already.
  const snapshot = { ...ctx.snapshot, containers: [{ ...ctx.snapshot.containers[0]! }, { ...ctx.snapshot.containers[1]!, imageId: 'sha256:known' }] };
  const endpoint = new AgentTaskEndpoint({ runtime, runnerFor: () => ({ agentTask: task, snapshot: () => snapshot }), containerInstanceArn: () => undefined, availabilityZone: 'eu-west-1b' });
  endpoint.setKey('00'.repeat(32));
  await endpoint.listen({ host: '127.0.0.1', port: 0, api: { updateTaskProtection: async () => ({}), getTaskProtection: async () => ({}) } as never });
  try {
    endpoint.add({ taskArn: TASK, clusterArn: task.clusterArn });
    const base = endpoint.uriOf(TASK)!.replace(/\/api\/([0-9a-f]+)$/, '/v4/$1');
    const doc = (await (await fetch(`${base}/web`)).json()) as { ImageID: string; CreatedAt: string; StartedAt: string };
    assert.equal(doc.ImageID, `sha256:${'ab'.repeat(32)}`);
    assert.equal(Date.parse(doc.CreatedAt), created);
    assert.equal(Date.parse(doc.StartedAt), started);
    const all = (await (await fetch(`${base}/web/task`)).json()) as { Containers: { Name: string; ImageID: string }[] };
    assert.deepEqual(all.Containers.map((c) => [c.Name, c.ImageID]), [['web', `sha256:${'ab'.repeat(32)}`], ['side', 'sha256:known']]);
    assert.ok(!inspected.includes('d2'), 'a container the runner has seen is not inspected again');
  } finally {
    await endpoint.close();
  }
});
