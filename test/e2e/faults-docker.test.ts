/**
 * Docker Engine restarts end to end. So that restarting an engine never disturbs other tests on
 * this host, the test runs a dockerd of its own (own socket, data root and exec root, a bridge
 * interface of its own and no iptables changes; its tasks use networkMode none) and points a real
 * `wharf agent` child process at it with DOCKER_HOST. NEVER give that dockerd `--bridge none`:
 * dockerd then deletes the host's docker0 interface, which the main engine still uses.
 *
 * - With live-restore, containers survive the restart: the agent reconnects to the engine, its
 *   tasks stay RUNNING in the same containers, and new tasks start.
 * - Without it, the restart stops the containers: the agent reconciles, every task becomes
 *   STOPPED with its container's exit code, and nothing is started again.
 *
 * Needs root (it runs dockerd). Run: npx tsx --test test/e2e/faults-docker.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import {
  CreateClusterCommand,
  DescribeContainerInstancesCommand,
  DescribeTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  type ECSClient,
  type Task,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason, skipUnlessCI } from '../images/docker-test-env';
import { killAllSpawned, removeDir, sleep, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';

const skip = dockerSkipReason() || (process.getuid?.() === 0 ? false : skipUnlessCI('running a dockerd of its own needs root'));
// Short: the unix socket path must stay under 108 bytes.
const DIR = `/tmp/wharf-dd-${process.pid}`;
const SOCK = `unix://${DIR}/docker.sock`;
/** The test engine's own bridge (interface names are at most 15 characters). */
const BRIDGE = `wdd${process.pid % 1_000_000}`;
const BRIDGE_CIDR = `10.253.${process.pid % 250}.1/24`;

interface Engine {
  child: ChildProcess;
  stop(): Promise<void>;
}

function docker(args: string[], input?: Buffer): string {
  return execFileSync('docker', ['-H', SOCK, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function startEngine(liveRestore: boolean): Promise<Engine> {
  const args = ['-H', SOCK, '--data-root', `${DIR}/root`, '--exec-root', `${DIR}/exec`, '--pidfile', `${DIR}/docker.pid`, '--bridge', BRIDGE, '--iptables=false', '--ip-masq=false', '--ip-forward=false'];
  if (liveRestore) args.push('--live-restore');
  const log = fs.openSync(`${DIR}/dockerd.log`, 'a');
  const child = spawn('dockerd', args, { stdio: ['ignore', log, log] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitUntil(() => {
    try {
      docker(['info', '--format', '{{.ServerVersion}}']);
      return true;
    } catch {
      return false;
    }
  }, 'the test dockerd to answer', { timeoutMs: 30_000, intervalMs: 200, describe: () => fs.readFileSync(`${DIR}/dockerd.log`, 'utf8').slice(-2000) });
  return {
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('Docker Engine restarts', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let ecs: ECSClient;
  let engine: Engine | undefined;
  const agents: AgentProcess[] = [];

  before(async () => {
    fs.mkdirSync(DIR, { recursive: true });
    execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', BRIDGE_CIDR, 'dev', BRIDGE]);
    execFileSync('ip', ['link', 'set', BRIDGE, 'up']);
    srv = await spawnServer({ agentTimeoutMs: 5000 });
    ecs = srv.ecs();
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'fd-sleeper',
        networkMode: 'none',
        // A shell that exits 143 on SIGTERM, so a stop by the engine has a known exit code.
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 2, command: ['sh', '-c', 'trap "exit 143" TERM; while :; do sleep 0.2; done'] }],
      }),
    );
  });
  after(async () => {
    await killAllSpawned();
    if (engine) {
      try {
        const ids = docker(['ps', '-aq']).split('\n').filter(Boolean);
        if (ids.length) docker(['rm', '-f', ...ids]);
      } catch {
        /* engine already gone */
      }
      await engine.stop();
    }
    if (srv) removeDir(srv.dataDir);
    for (const a of agents) removeDir(a.dataDir);
    // dockerd bind-mounts its data root onto itself (private propagation) and leaves it mounted.
    try {
      execFileSync('umount', [`${DIR}/root`], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    fs.rmSync(DIR, { recursive: true, force: true });
    try {
      execFileSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
    } catch {
      /* never made */
    }
  });

  const describeTasks = async (c: string, arns: string[]): Promise<Task[]> => (await ecs.send(new DescribeTasksCommand({ cluster: c, tasks: arns }))).tasks!;
  const waitStatus = (c: string, arns: string[], status: string) =>
    waitUntil(async () => {
      const ts = await describeTasks(c, arns);
      return ts.every((t) => t.lastStatus === status) ? ts : undefined;
    }, `tasks ${status}`, { timeoutMs: 60_000, intervalMs: 100, describe: () => describeTasks(c, arns) });

  async function setUp(name: string, liveRestore: boolean): Promise<{ c: string; agent: AgentProcess }> {
    engine = await startEngine(liveRestore);
    // The engine has its own image store: load the test images into it.
    const images = execFileSync('docker', ['save', 'wharf-test/busybox:latest'], { maxBuffer: 256 * 1024 * 1024 });
    docker(['load'], images);
    const c = `${name}-${process.pid}`;
    await ecs.send(new CreateClusterCommand({ clusterName: c }));
    const agent = await spawnAgent({ server: srv, cluster: c, env: { DOCKER_HOST: SOCK }, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
    agents.push(agent);
    return { c, agent };
  }

  const containersOf = (arn: string) => docker(['ps', '-a', '--filter', `label=com.amazonaws.ecs.task-arn=${arn}`, '--format', '{{.ID}} {{.State}}']).split('\n').filter(Boolean);

  test('live-restore: tasks survive an engine restart and the agent carries on', async () => {
    const { c, agent } = await setUp('fd-live', true);
    const arns = (await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: 'fd-sleeper', count: 2 }))).tasks!.map((t) => t.taskArn!);
    const before = await waitStatus(c, arns, 'RUNNING');
    await engine!.stop();
    engine = await startEngine(true);
    // Give the agent time to notice the engine went and came back.
    await sleep(3000);
    const [fresh] = (await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: 'fd-sleeper' }))).tasks!.map((t) => t.taskArn!);
    await waitStatus(c, [fresh!], 'RUNNING');
    const after = await describeTasks(c, arns);
    for (const t of after) {
      assert.equal(t.lastStatus, 'RUNNING');
      assert.equal(t.containers![0]!.runtimeId, before.find((b) => b.taskArn === t.taskArn)!.containers![0]!.runtimeId);
    }
    for (const arn of [...arns, fresh!]) assert.deepEqual(containersOf(arn).map((l) => l.split(' ')[1]), ['running']);
    const inst = (await ecs.send(new DescribeContainerInstancesCommand({ cluster: c, containerInstances: [agent.instanceArns[0]!] }))).containerInstances![0]!;
    assert.equal(inst.agentConnected, true);
    assert.equal(inst.runningTasksCount, 3);
    await agent.stop();
    docker(['rm', '-f', ...docker(['ps', '-aq']).split('\n').filter(Boolean)]);
    await engine!.stop();
    engine = undefined;
  });

  test('without live-restore: the restart stops the containers and the agent reports every task STOPPED', async () => {
    const { c, agent } = await setUp('fd-plain', false);
    const arns = (await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: 'fd-sleeper', count: 2 }))).tasks!.map((t) => t.taskArn!);
    await waitStatus(c, arns, 'RUNNING');
    await engine!.stop();
    engine = await startEngine(false);
    const stopped = await waitStatus(c, arns, 'STOPPED');
    for (const t of stopped) {
      assert.equal(t.stopCode, 'EssentialContainerExited');
      assert.equal(t.containers![0]!.exitCode, 143);
    }
    // Nothing was started again: one exited container per task.
    await sleep(2000);
    for (const arn of arns) assert.deepEqual(containersOf(arn).map((l) => l.split(' ')[1]), ['exited']);
    // The agent still runs new work on the restarted engine.
    const [fresh] = (await ecs.send(new RunTaskCommand({ cluster: c, taskDefinition: 'fd-sleeper' }))).tasks!.map((t) => t.taskArn!);
    await waitStatus(c, [fresh!], 'RUNNING');
    await agent.stop();
    // The main engine's bridge is untouched.
    execFileSync('ip', ['link', 'show', 'docker0'], { stdio: 'ignore' });
  });
});
