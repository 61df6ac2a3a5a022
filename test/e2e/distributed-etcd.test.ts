/**
 * Distributed mode (issue 13, part 2): three `wharf server --store etcd://...` replicas on a
 * three-member etcd cluster, and an agent (simulated runtime: the point is the control plane)
 * that starts on one replica and learns the others from its answers.
 *
 * What a user relies on: any replica answers any request with the same state; one leader runs the
 * controllers, and when it dies another takes over (a stopped service task is replaced); an agent
 * whose replica dies moves to a live one without its instance ever counting as lost; losing one
 * etcd member changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeContainerInstancesCommand,
  DescribeServicesCommand,
  ListClustersCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../src/store/etcd';
import { LEADER_KEY } from '../../src/store/etcd/etcd-leadership';
import { killAllSpawned, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { AWS_CLI, childEnv, run } from './helpers/wharf-server';
import { inCI } from '../images/docker-test-env';
import { spawnSync } from 'node:child_process';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && inCI()) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

const CLUSTER = `dist-${process.pid}`;
const PREFIX = `dist${process.pid}/`;

describe('distributed mode: replicas on etcd', { skip: missing ? 'etcd is not installed' : false }, () => {
  let etcd: EtcdCluster;
  let etcdClient: Etcd3;
  const replicas: ServerProcess[] = [];
  let agent: AgentProcess;
  let dataDir: string;

  const url = () => `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}/${PREFIX}`;
  const live = () => replicas.filter((r) => !r.exited);
  /** The replica process that holds the leader key now (its id starts with host-pid-). */
  async function leader(): Promise<ServerProcess | undefined> {
    const raw = await etcdClient.get(`${PREFIX}k/${LEADER_KEY}`).string().catch(() => null);
    return live().find((r) => raw?.startsWith(`${os.hostname()}-${r.pid}-`));
  }
  const ecsOf = (r: ServerProcess): ECSClient => r.ecs();

  before(async () => {
    etcd = await startEtcdCluster(3);
    etcdClient = new Etcd3({ hosts: etcd.endpoints });
    // Replicas share the data dir's keys (root key, join tokens, secrets key): one dir here.
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-dist-'));
    for (let i = 0; i < 3; i++) {
      replicas.push(await spawnServer({ dataDir, agentTimeoutMs: 4000, healthyAfterRunningMs: 500, extraArgs: ['--store', url(), '--load-balancers', 'off'] }));
    }
  });

  after(async () => {
    await killAllSpawned();
    etcdClient?.close();
    await etcd?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('every replica serves the same state, and exactly one leads', async () => {
    await ecsOf(replicas[0]!).send(new CreateClusterCommand({ clusterName: CLUSTER }));
    // Read-your-writes on the replica that acknowledged the write: no wait.
    assert.ok((await ecsOf(replicas[0]!).send(new ListClustersCommand({}))).clusterArns!.some((a) => a.endsWith(`/${CLUSTER}`)));
    for (const r of replicas) {
      await waitUntil(async () => (await ecsOf(r).send(new ListClustersCommand({}))).clusterArns!.some((a) => a.endsWith(`/${CLUSTER}`)), `the cluster on replica ${r.pid}`, { timeoutMs: 10_000 });
    }
    const l = await waitUntil(() => leader(), 'a leader', { timeoutMs: 20_000 });
    assert.ok(replicas.includes(l));
  });

  test("a session one replica issued is accepted by the others (they share the data dir's session-token.key)", async () => {
    const [r0, r1, r2] = replicas as [ServerProcess, ServerProcess, ServerProcess];
    const got = await run(AWS_CLI, ['sts', 'get-session-token', '--duration-seconds', '900', '--endpoint-url', r0.endpoint, '--output', 'json'], r0.env());
    assert.equal(got.code, 0, got.stderr);
    const c = JSON.parse(got.stdout).Credentials;
    const env = childEnv({ accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey }, r0.region, { AWS_SESSION_TOKEN: c.SessionToken });
    for (const r of [r1, r2]) {
      const list = await run(AWS_CLI, ['ecs', 'list-clusters', '--endpoint-url', r.endpoint, '--output', 'json'], env);
      assert.equal(list.code, 0, list.stderr);
      assert.ok(JSON.parse(list.stdout).clusterArns.some((a: string) => a.endsWith(`/${CLUSTER}`)));
    }
  });

  test('replicas placing at once never overbook an instance nor place a task twice', async () => {
    const cluster = `${CLUSTER}-book`;
    await ecsOf(replicas[1]!).send(new CreateClusterCommand({ clusterName: cluster }));
    const small = await spawnAgent({ server: replicas[1]!, cluster, runtime: 'simulated', instances: 1, resources: 'cpu=1024,memory=1024' });
    await ecsOf(replicas[2]!).send(new RegisterTaskDefinitionCommand({ family: 'book', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }] }));
    // Room for four; twelve RunTasks at once, through all three replicas.
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => ecsOf(replicas[i % 3]!).send(new RunTaskCommand({ cluster, taskDefinition: 'book' }))),
    );
    const placed = results.flatMap((r) => r.tasks ?? []).map((t) => t.taskArn!);
    const failures = results.flatMap((r) => r.failures ?? []);
    assert.equal(placed.length, 4, `placed ${placed.length}; failures ${JSON.stringify(failures)}`);
    assert.equal(new Set(placed).size, 4, 'no task placed twice');
    assert.ok(failures.every((f) => f.reason === 'RESOURCE:MEMORY'), JSON.stringify(failures));
    const ci = (await ecsOf(replicas[0]!).send(new DescribeContainerInstancesCommand({ cluster, containerInstances: [small.instanceArns[0]!] }))).containerInstances![0]!;
    assert.equal(ci.remainingResources!.find((r) => r.name === 'MEMORY')!.integerValue, 0);
    // (ECS counts a task desired RUNNING as running, whatever its last status.)
    assert.equal(ci.runningTasksCount, 4);
    await small.stop();
  });

  test('the leader dies: another takes over the controllers; the agent\'s replica dies: the agent moves', async () => {
    const l = (await leader())!;
    // The agent starts on a replica that does not lead, and hears of the others from its answers.
    const first = replicas.find((r) => r !== l)!;
    // (At warn, whatever the suite's log level: the test reads the agent's line when it moves.)
    agent = await spawnAgent({ server: first, cluster: CLUSTER, runtime: 'simulated', instances: 1, env: { WHARF_LOG_LEVEL: 'warn' } });
    const instanceArn = agent.instanceArns[0]!;
    const ecs = ecsOf(first);
    await ecs.send(new RegisterTaskDefinitionCommand({ family: 'dist', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 32, essential: true }] }));
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'web', taskDefinition: 'dist', desiredCount: 2 }));
    const running = (r: ServerProcess) => ecsOf(r).send(new DescribeServicesCommand({ cluster: CLUSTER, services: ['web'] })).then((o) => o.services![0]!.runningCount);
    await waitUntil(async () => (await running(first)) === 2, 'two service tasks running', { timeoutMs: 30_000 });
    // The leader counts the agent connected though its socket is on another replica: after the
    // agent timeout (4 s) it is still so.
    await new Promise((r) => setTimeout(r, 6000));
    const connected = async (r: ServerProcess) => (await ecsOf(r).send(new DescribeContainerInstancesCommand({ cluster: CLUSTER, containerInstances: [instanceArn] }))).containerInstances![0]!.agentConnected;
    assert.equal(await connected(first), true, 'connected, as the leader sees it through the presence record');

    // The leader dies. Another replica leads within the lease TTL, and its service controller
    // replaces a task that is stopped.
    await l.kill9();
    const next = await waitUntil(async () => {
      const n = await leader();
      return n && n !== l ? n : undefined;
    }, 'a new leader', { timeoutMs: 20_000 });
    const tasks = (await ecsOf(next).send(new ListTasksCommand({ cluster: CLUSTER, serviceName: 'web' }))).taskArns!;
    await ecsOf(next).send(new StopTaskCommand({ cluster: CLUSTER, task: tasks[0]! }));
    await waitUntil(async () => {
      const now = (await ecsOf(next).send(new ListTasksCommand({ cluster: CLUSTER, serviceName: 'web' }))).taskArns!;
      return now.length === 2 && !now.includes(tasks[0]!) && (await running(next)) === 2;
    }, 'the stopped task replaced by the new leader', { timeoutMs: 30_000 });

    // The agent's own replica dies (if it is the new leader, another leads after it). The agent
    // moves to the live replica it learned of, and its instance never counts as lost: the
    // service keeps its two tasks, none replaced.
    const before = new Set((await ecsOf(next).send(new ListTasksCommand({ cluster: CLUSTER, serviceName: 'web' }))).taskArns!);
    await first.kill9();
    const last = live()[0]!;
    assert.equal(live().length, 1);
    await waitUntil(async () => (await leader()) === last, 'the last replica leads', { timeoutMs: 20_000 });
    await waitUntil(() => /moving to another replica/.test(agent.output()), 'the agent moves to a live replica', { timeoutMs: 20_000, describe: () => agent.output().slice(-2000) });
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(await connected(last), true, 'the instance is connected through the last replica');
    const after = new Set((await ecsOf(last).send(new ListTasksCommand({ cluster: CLUSTER, serviceName: 'web' }))).taskArns!);
    assert.deepEqual([...after].sort(), [...before].sort(), 'no task was replaced: the instance was never lost');
    assert.equal(await running(last), 2);

    // One etcd member lost: the rest is a quorum, and writes go on.
    await etcd.kill('m1');
    await ecsOf(last).send(new CreateClusterCommand({ clusterName: `${CLUSTER}-after` }));
    assert.ok((await ecsOf(last).send(new ListClustersCommand({}))).clusterArns!.some((a) => a.endsWith(`/${CLUSTER}-after`)));
  });
});
