/**
 * The scheduler through the real API: a Wharf server (startTestServer) with hollow container
 * instances of an in-process SimulatedFleet (each a real agent: RegisterContainerInstance with the
 * agent key, the agent WebSocket, state reports over the API), driven with the AWS SDK v3.
 *
 * Run: npx tsx --test test/e2e/scheduler-placement.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  DescribeContainerInstancesCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ListContainerInstancesCommand,
  PutAttributesCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  type ContainerInstance,
  type ECSClient,
  type Failure,
  type RunTaskCommandInput,
  type Task,
} from '@aws-sdk/client-ecs';
import { HttpControlPlaneClient, SimulatedFleet } from '../../src/agent';
import { sdkError, startTestServer, type TestServer } from './helpers/wharf-server';
import { ensureAgentToken } from '../../src/cmd/agent-tokens';

interface Cluster {
  name: string;
  fleet: SimulatedFleet;
  /** Container instance ARNs in fleet order. */
  arns: string[];
}

/** A cluster of `count` hollow instances of the given size, all registered and connected. */
async function cluster(srv: TestServer, ecs: ECSClient, name: string, count: number, size: { cpu: number; memory: number }, zones?: string[]): Promise<Cluster> {
  await ecs.send(new CreateClusterCommand({ clusterName: name }));
  const fleet = new SimulatedFleet({
    count,
    cluster: name,
    region: srv.region,
    resources: size,
    availabilityZones: zones,
    registerConcurrency: 1,
    makeClient: () => new HttpControlPlaneClient({ endpoint: srv.endpoint, region: srv.region, credentials: ensureAgentToken(srv.dataDir, name) }),
  });
  await fleet.start();
  const arns = fleet.agents.map((a) => a.containerInstanceArn!);
  await until(async () => (await describe(ecs, name, arns)).every((i) => i.agentConnected), `${name}: every agent connected`);
  return { name, fleet, arns };
}

async function describe(ecs: ECSClient, clusterName: string, arns: string[]): Promise<ContainerInstance[]> {
  const out = await ecs.send(new DescribeContainerInstancesCommand({ cluster: clusterName, containerInstances: arns }));
  // In the order asked, so tests can index by fleet position.
  return arns.map((a) => out.containerInstances!.find((i) => i.containerInstanceArn === a)!);
}

async function until(cond: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function resource(i: ContainerInstance, kind: 'registeredResources' | 'remainingResources', name: string) {
  return i[kind]!.find((r) => r.name === name)!;
}

async function taskDefinition(ecs: ECSClient, family: string, container: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const out = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      containerDefinitions: [{ name: 'app', image: 'busybox', essential: true, command: ['sleep', 'infinity'], ...container }],
      ...extra,
    }),
  );
  return out.taskDefinition!.taskDefinitionArn!;
}

/** `clients` concurrent SDK clients each calling RunTask (count 1) until `calls` calls are made. */
async function hammer(srv: TestServer, clients: number, calls: number, input: RunTaskCommandInput): Promise<{ tasks: Task[]; failures: Failure[] }> {
  const tasks: Task[] = [];
  const failures: Failure[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = srv.ecs();
      while (issued < calls) {
        issued++;
        const out = await c.send(new RunTaskCommand({ ...input, count: 1 }));
        tasks.push(...(out.tasks ?? []));
        failures.push(...(out.failures ?? []));
      }
    }),
  );
  return { tasks, failures };
}

test('many concurrent RunTask clients never overbook one small instance', { timeout: 120_000 }, async () => {
  const srv = await startTestServer();
  const ecs = srv.ecs();
  try {
    const small = await cluster(srv, ecs, 'hammer', 1, { cpu: 1024, memory: 1000 });
    const [inst] = await describe(ecs, small.name, small.arns);
    const registeredMemory = resource(inst!, 'registeredResources', 'MEMORY').integerValue!;
    const registeredCpu = resource(inst!, 'registeredResources', 'CPU').integerValue!;
    const td = await taskDefinition(ecs, 'hammer-100m', { memory: 100, cpu: 10 });

    const { tasks, failures } = await hammer(srv, 24, 60, { cluster: small.name, taskDefinition: td, launchType: 'EC2' });
    assert.equal(tasks.length, Math.floor(registeredMemory / 100), 'exactly as many 100 MiB tasks as the memory holds');
    assert.equal(tasks.length + failures.length, 60);
    for (const f of failures) assert.deepEqual(f, { arn: inst!.containerInstanceArn, reason: 'RESOURCE:MEMORY' });
    assert.ok(tasks.every((t) => t.containerInstanceArn === inst!.containerInstanceArn));
    assert.equal(new Set(tasks.map((t) => t.taskArn)).size, tasks.length);

    const [after] = await describe(ecs, small.name, small.arns);
    assert.equal(resource(after!, 'remainingResources', 'MEMORY').integerValue, registeredMemory - 100 * tasks.length);
    assert.equal(resource(after!, 'remainingResources', 'CPU').integerValue, registeredCpu - 10 * tasks.length);
    assert.equal(after!.runningTasksCount, tasks.length);
    // Every placed task really runs on the agent: all but the first reach it with the task
    // definition elided (sent once per connection), so this also proves the agent fills it in.
    await until(async () => {
      const d = await ecs.send(new DescribeTasksCommand({ cluster: small.name, tasks: tasks.map((t) => t.taskArn!) }));
      return d.tasks!.length === tasks.length && d.tasks!.every((t) => t.lastStatus === 'RUNNING');
    }, 'every placed task RUNNING');

    // Static host ports: only one task may hold port 8080, however many clients race for it.
    const ports = await cluster(srv, ecs, 'hammer-ports', 1, { cpu: 1024, memory: 1000 });
    const web = await taskDefinition(ecs, 'hammer-port', { memory: 10, portMappings: [{ containerPort: 80, hostPort: 8080 }] });
    const raced = await hammer(srv, 20, 40, { cluster: ports.name, taskDefinition: web, launchType: 'EC2' });
    assert.equal(raced.tasks.length, 1, 'one task per static host port');
    assert.equal(raced.failures.length, 39);
    for (const f of raced.failures) assert.deepEqual(f, { arn: ports.arns[0], reason: 'RESOURCE:PORTS' });
    const [portInst] = await describe(ecs, ports.name, ports.arns);
    assert.ok(resource(portInst!, 'remainingResources', 'PORTS').stringSetValue!.includes('8080'));

    await small.fleet.stop();
    await ports.fleet.stop();
  } finally {
    await srv.close();
  }
});

test('RunTask failures as ECS reports them, strategies, constraints and attributes through the API', { timeout: 120_000 }, async () => {
  const srv = await startTestServer();
  const ecs = srv.ecs();
  const fleets: SimulatedFleet[] = [];
  try {
    // No instance at all: the InvalidParameterException ECS gives.
    await ecs.send(new CreateClusterCommand({ clusterName: 'empty' }));
    const tdSmall = await taskDefinition(ecs, 'small', { memory: 100, cpu: 10 });
    const none = await sdkError(ecs.send(new RunTaskCommand({ cluster: 'empty', taskDefinition: tdSmall, launchType: 'EC2' })));
    assert.equal(none.name, 'InvalidParameterException');
    assert.equal(none.message, 'No Container Instances were found in your cluster.');

    // count 3 with room for 2: two tasks and one failure naming the instance.
    const one = await cluster(srv, ecs, 'room-for-two', 1, { cpu: 1024, memory: 1000 });
    fleets.push(one.fleet);
    const td450 = await taskDefinition(ecs, 'big', { memory: 450, cpu: 10 });
    const three = await ecs.send(new RunTaskCommand({ cluster: one.name, taskDefinition: td450, count: 3, launchType: 'EC2' }));
    assert.equal(three.tasks!.length, 2);
    assert.deepEqual(three.failures, [{ arn: one.arns[0], reason: 'RESOURCE:MEMORY' }]);

    // Three instances in three zones.
    const c = await cluster(srv, ecs, 'zones', 3, { cpu: 4096, memory: 4000 }, ['us-east-1a', 'us-east-1b', 'us-east-1c']);
    fleets.push(c.fleet);
    const zoneOf = new Map(c.arns.map((a, i) => [a, `us-east-1${'abc'[i]}`]));

    // spread over zones: one task per zone.
    const spread = await ecs.send(
      new RunTaskCommand({ cluster: c.name, taskDefinition: tdSmall, count: 3, launchType: 'EC2', placementStrategy: [{ type: 'spread', field: 'attribute:ecs.availability-zone' }] }),
    );
    assert.deepEqual(spread.failures, []);
    assert.deepEqual(spread.tasks!.map((t) => zoneOf.get(t.containerInstanceArn!)).sort(), ['us-east-1a', 'us-east-1b', 'us-east-1c']);
    assert.deepEqual(spread.tasks!.map((t) => t.availabilityZone).sort(), ['us-east-1a', 'us-east-1b', 'us-east-1c']);

    // binpack on memory: the fullest instance first. Fill instance 2 a little more, then binpack.
    await ecs.send(new RunTaskCommand({ cluster: c.name, taskDefinition: tdSmall, launchType: 'EC2', placementConstraints: [{ type: 'memberOf', expression: 'attribute:ecs.availability-zone == us-east-1c' }] }));
    const packed = await ecs.send(new RunTaskCommand({ cluster: c.name, taskDefinition: tdSmall, count: 4, launchType: 'EC2', placementStrategy: [{ type: 'binpack', field: 'memory' }] }));
    assert.deepEqual(new Set(packed.tasks!.map((t) => t.containerInstanceArn)), new Set([c.arns[2]]), 'binpack keeps to the instance with the least memory left');

    // memberOf with the query language, on a custom attribute set with PutAttributes.
    await ecs.send(new PutAttributesCommand({ cluster: c.name, attributes: [{ name: 'team', value: 'blue', targetId: c.arns[0] }, { name: 'team', value: 'red', targetId: c.arns[1] }] }));
    const blue = await ecs.send(
      new RunTaskCommand({ cluster: c.name, taskDefinition: tdSmall, count: 3, launchType: 'EC2', placementConstraints: [{ type: 'memberOf', expression: 'attribute:team == blue' }] }),
    );
    assert.deepEqual(new Set(blue.tasks!.map((t) => t.containerInstanceArn)), new Set([c.arns[0]]));
    const nobody = await ecs.send(
      new RunTaskCommand({ cluster: c.name, taskDefinition: tdSmall, launchType: 'EC2', placementConstraints: [{ type: 'memberOf', expression: 'attribute:team == green' }] }),
    );
    assert.equal(nobody.tasks!.length, 0);
    assert.equal(nobody.failures![0]!.reason, 'MemberOf placement constraint unsatisfied.');

    // distinctInstance: count 4 on three instances places 3, one failure.
    const distinct = await ecs.send(
      new RunTaskCommand({ cluster: c.name, taskDefinition: tdSmall, count: 4, launchType: 'EC2', group: 'distinct', placementConstraints: [{ type: 'distinctInstance' }] }),
    );
    assert.equal(distinct.tasks!.length, 3);
    assert.equal(new Set(distinct.tasks!.map((t) => t.containerInstanceArn)).size, 3);
    assert.equal(distinct.failures!.length, 1);
    assert.equal(distinct.failures![0]!.reason, 'DistinctInstance placement constraint unsatisfied.');

    // requiresAttributes (derived from the definition: the fluentd log driver, which the
    // simulated engine does not offer): nothing has it, and PutAttributes cannot fake it.
    const FLUENTD = 'com.amazonaws.ecs.capability.logging-driver.fluentd';
    const needsFluentd = await taskDefinition(ecs, 'needs-attr', { memory: 50, logConfiguration: { logDriver: 'fluentd' } });
    const registered = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: needsFluentd }));
    assert.ok(registered.taskDefinition!.requiresAttributes!.some((a) => a.name === FLUENTD));
    const before = await ecs.send(new RunTaskCommand({ cluster: c.name, taskDefinition: needsFluentd, launchType: 'EC2' }));
    assert.equal(before.tasks!.length, 0);
    assert.equal(before.failures![0]!.reason, 'ATTRIBUTE');
    const faked = await sdkError(ecs.send(new PutAttributesCommand({ cluster: c.name, attributes: [{ name: FLUENTD, targetId: c.arns[1] }] })));
    assert.equal(faked.name, 'InvalidParameterException');

    // ListContainerInstances --filter with the same language.
    const list = async (filter: string) => ((await ecs.send(new ListContainerInstancesCommand({ cluster: c.name, filter }))).containerInstanceArns ?? []).sort();
    assert.deepEqual(await list('attribute:team == blue'), [c.arns[0]]);
    assert.deepEqual(await list('attribute:team exists'), [c.arns[0], c.arns[1]].sort());
    assert.deepEqual(await list('attribute:ecs.availability-zone in [us-east-1b, us-east-1c]'), [c.arns[1], c.arns[2]].sort());
    assert.deepEqual(await list('attribute:com.amazonaws.ecs.capability.logging-driver.json-file exists and attribute:team == red'), [c.arns[1]]);
    assert.deepEqual(await list('task:group == distinct'), [...c.arns].sort());
    assert.deepEqual(await list('agentConnected == true and not(attribute:team exists)'), [c.arns[2]]);
    const bad = await sdkError(ecs.send(new ListContainerInstancesCommand({ cluster: c.name, filter: 'attribute:team ==' })));
    assert.equal(bad.name, 'InvalidParameterException');
  } finally {
    for (const f of fleets) await f.stop();
    await srv.close();
  }
});
