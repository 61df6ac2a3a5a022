/**
 * Services against Docker Swarm and against the Docker Engine API itself, on the same machine,
 * same image, same command (`sleep 3600`).
 *
 * The image is the local test image (wharf-test/busybox) pushed to a registry on 127.0.0.1 and
 * pulled once into the engine: Swarm's workers ask that registry for the image on every task start
 * (as Swarm does), Wharf's agent (--image-pull-behavior prefer-cached) and the floor use the
 * engine's copy; nothing reaches off this machine.
 *
 *  - scale-up: from the create call to N containers running (N = 50; 10 with --quick):
 *    Wharf's CreateService (desiredCount N) vs `docker service create --replicas N`, and the
 *    floor: N concurrent create + start through the Engine API over its unix socket, with the
 *    configuration Wharf gave its own containers (bench/lib/engine-floor.ts), until the last
 *    start call has returned and the same Docker poll that times the others sees them running;
 *  - replacement: from `docker kill` of one replica's container to its replacement running.
 *
 * Wharf and Swarm are timed by the same Docker poll (running containers by label, every 25 ms),
 * so the figures are "containers really running". For the scale-up each system's own API is
 * polled too, alike (every 100 ms), until it says N are running: Wharf's DescribeServices
 * (runningCount = N, pendingCount = 0) and Swarm's task list (`docker service ps`: N tasks of the
 * service in state running). That is when a client of either learns the scale-up is done, and
 * it counts each system's own report from its worker; the goal's ratio is Wharf API / Swarm API.
 * For the replacement Wharf's API time (the replacement task RUNNING in DescribeTasks, every
 * 25 ms) is set against Swarm's Docker time, which favours Swarm. Swarm restarts a failed replica after its default --restart-delay (5 s);
 * it is also measured with --restart-delay 0s to show what its machinery costs without that wait.
 *
 * Wharf runs as `wharf server` + `wharf agent` child processes. Swarm is a single-node swarm on
 * loopback, left again (`docker swarm leave --force`) at the end; it is not touched if this host
 * is already in a swarm.
 *
 * Run: npx tsx bench/services-swarm.ts [--quick]     (or through bench/run.ts)
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import Docker from 'dockerode';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { floorBurst, floorConfigFrom, removeLabelled, type FloorConfig } from './lib/engine-floor';
import { dockerSkipReason } from '../test/images/docker-test-env';
import { pushToRegistry, startLocalRegistry } from '../test/images/local-registry';
import { killAllSpawned, removeClusterContainers, removeDir, runWharfFrom, sleep, spawnAgent, spawnServer } from '../test/e2e/helpers/processes';
import { wharfEntry } from './lib/processes';

const docker = new Docker();
const LOCAL_IMAGE = 'wharf-test/busybox:latest';
/**
 * The image every side runs: the local test image served from a registry on 127.0.0.1, so that
 * Swarm (which pulls on every task start) never reaches for a registry off this machine. Set in
 * run().
 */
let IMAGE = LOCAL_IMAGE;
const POLL_MS = 25;
/**
 * The scale-up's API poll, the same for both systems (Wharf's DescribeServices, Swarm's task
 * list). Every 25 ms Wharf's (through the AWS SDK, about 1.6 ms of client CPU a call) took CPU
 * from the Docker Engine on these 2 cores; every 100 ms it is at most 0.4% off a 20-odd-second
 * scale-up.
 */
const SCALE_UP_API_POLL_MS = 100;
const FLOOR_KEY = 'io.wharf.bench.floor';
const FLOOR_VALUE = `swarm-${process.pid}`;
/** Goals (issue 9): the scale-up faster than Swarm and at most this times the N-at-once floor. */
export const SCALE_UP_FLOOR_GOAL = 1.1;

export interface SwarmBenchResult {
  replicas: number;
  runs: number;
  machine: string;
  scaleUp: { wharfDockerMs: number[]; wharfApiMs: number[]; swarmMs: number[]; swarmApiMs: number[]; floorMs: number[] };
  replacement: { wharfDockerMs: number[]; wharfApiMs: number[]; swarmMs: number[]; swarmNoDelayMs: number[] };
  medians: Record<string, number>;
  ratios: { scaleUp: number; scaleUpDocker: number; scaleUpVsFloor: number; replacement: number; replacementVsSwarmNoDelay: number };
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number) => Math.round(x * 10) / 10;

async function runningByLabel(label: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ filters: JSON.stringify({ label: [label], status: ['running'] }) });
}

/** Polls Docker until `ok(running containers)`; returns ms since `t0`. */
async function until(label: string, ok: (cs: Docker.ContainerInfo[]) => boolean, t0: number, timeoutMs = 300_000): Promise<number> {
  for (;;) {
    const cs = await runningByLabel(label);
    if (ok(cs)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting on ${label} (${cs.length} running)`);
    await sleep(POLL_MS);
  }
}

async function untilApi(probe: () => Promise<boolean>, t0: number, timeoutMs = 300_000, pollMs = POLL_MS): Promise<number> {
  for (;;) {
    if (await probe()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error('timed out waiting on the Wharf API');
    await sleep(pollMs);
  }
}

async function removeByLabel(label: string): Promise<void> {
  const cs = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [label] }) });
  await Promise.all(cs.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

// ---------------------------------------------------------------- Wharf

interface WharfSide {
  ecs: ECSClient;
  cluster: string;
  clusterArn: string;
  td: string;
  close(): Promise<void>;
}

async function startWharf(): Promise<WharfSide> {
  // Healthy right after RUNNING: the bench times placement and start, not ECS's 40 s wait.
  const srv = await spawnServer({ healthyAfterRunningMs: 0, env: { WHARF_LOG_LEVEL: 'error' } });
  const ecs = srv.ecs();
  const cluster = `bench-swarm-${process.pid}`;
  const clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
  const agent = await spawnAgent({ server: srv, cluster, extraArgs: ['--image-pull-behavior', 'prefer-cached'], env: { WHARF_LOG_LEVEL: 'error' } });
  const td = (
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'bench-sleep',
        containerDefinitions: [{ name: 'app', image: IMAGE, essential: true, memory: 8, stopTimeout: 1, command: ['sleep', '3600'] }],
      }),
    )
  ).taskDefinition!.taskDefinitionArn!;
  return {
    ecs,
    cluster,
    clusterArn,
    td,
    async close() {
      await agent.stop();
      await srv.stop();
      await removeClusterContainers(clusterArn);
      removeDir(srv.dataDir);
      removeDir(agent.dataDir);
    },
  };
}

async function wharfRunningCount(w: WharfSide, name: string): Promise<number> {
  const s = (await w.ecs.send(new DescribeServicesCommand({ cluster: w.cluster, services: [name] }))).services![0]!;
  return s.pendingCount === 0 ? s.runningCount! : -1;
}

async function wharfDelete(w: WharfSide, name: string): Promise<void> {
  await w.ecs.send(new DeleteServiceCommand({ cluster: w.cluster, service: name, force: true }));
  const label = `com.amazonaws.ecs.cluster=${w.clusterArn}`;
  await until(label, (cs) => cs.length === 0, performance.now(), 120_000);
  await removeByLabel(label);
}

async function wharfScaleUp(w: WharfSide, n: number, run: number): Promise<{ dockerMs: number; apiMs: number; floor: FloorConfig }> {
  const name = `scale-${run}`;
  const label = `com.amazonaws.ecs.cluster=${w.clusterArn}`;
  const t0 = performance.now();
  await w.ecs.send(new CreateServiceCommand({ cluster: w.cluster, serviceName: name, taskDefinition: w.td, desiredCount: n }));
  const [dockerMs, apiMs] = await Promise.all([until(label, (cs) => cs.length >= n, t0), untilApi(async () => (await wharfRunningCount(w, name)) === n, t0, 300_000, SCALE_UP_API_POLL_MS)]);
  const floor = await floorConfigFrom(docker, (await runningByLabel(label))[0]!.Id, { [FLOOR_KEY]: FLOOR_VALUE });
  await wharfDelete(w, name);
  return { dockerMs, apiMs, floor };
}

/**
 * N concurrent create + start through the Engine API, then removed again. It is watched by the
 * same Docker poll that times Wharf and Swarm (running containers by label, every POLL_MS), so the
 * engine carries the same observer's load for all three; the figure is the later of the last
 * start call returning and the poll seeing N running.
 */
async function floorScaleUp(floor: FloorConfig, n: number): Promise<number> {
  const t0 = performance.now();
  const [burstMs, seenMs] = await Promise.all([floorBurst(docker, floor, n), until(`${FLOOR_KEY}=${FLOOR_VALUE}`, (cs) => cs.length >= n, t0)]);
  await removeLabelled(docker, FLOOR_KEY, FLOOR_VALUE);
  return Math.max(burstMs, seenMs);
}

async function wharfReplacement(w: WharfSide, run: number): Promise<{ dockerMs: number; apiMs: number }> {
  const name = `replace-${run}`;
  const label = `com.amazonaws.ecs.cluster=${w.clusterArn}`;
  await w.ecs.send(new CreateServiceCommand({ cluster: w.cluster, serviceName: name, taskDefinition: w.td, desiredCount: 3 }));
  await untilApi(async () => (await wharfRunningCount(w, name)) === 3, performance.now());
  const before = await runningByLabel(label);
  const victim = before[0]!;
  const known = new Set(before.map((c) => c.Labels['com.amazonaws.ecs.task-arn']));
  const t0 = performance.now();
  await docker.getContainer(victim.Id).kill();
  const [dockerMs, apiMs] = await Promise.all([
    until(label, (cs) => cs.some((c) => !known.has(c.Labels['com.amazonaws.ecs.task-arn'])), t0),
    untilApi(async () => {
      const arns = (await w.ecs.send(new ListTasksCommand({ cluster: w.cluster, serviceName: name, desiredStatus: 'RUNNING' }))).taskArns ?? [];
      const fresh = arns.filter((a) => !known.has(a));
      if (fresh.length === 0) return false;
      const tasks = (await w.ecs.send(new DescribeTasksCommand({ cluster: w.cluster, tasks: fresh }))).tasks ?? [];
      return tasks.some((t) => t.lastStatus === 'RUNNING');
    }, t0),
  ]);
  await wharfDelete(w, name);
  return { dockerMs, apiMs };
}

// ---------------------------------------------------------------- Swarm

function sh(args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function swarmState(): string {
  return sh(['info', '--format', '{{.Swarm.LocalNodeState}}']).trim();
}

/** `docker service create` of `replicas` sleepers, returning at once (--detach). */
function swarmCreate(name: string, replicas: number, extra: string[] = []): void {
  sh(['service', 'create', '--detach', '--no-resolve-image', '--name', name, '--replicas', String(replicas), '--stop-grace-period', '1s', ...extra, IMAGE, 'sleep', '3600']);
}

async function swarmService(name: string, replicas: number, extra: string[] = []): Promise<number> {
  const t0 = performance.now();
  swarmCreate(name, replicas, extra);
  return until(`com.docker.swarm.service.name=${name}`, (cs) => cs.length >= replicas, t0);
}

async function swarmRemove(name: string): Promise<void> {
  sh(['service', 'rm', name]);
  const label = `com.docker.swarm.service.name=${name}`;
  await until(label, (cs) => cs.length === 0, performance.now(), 120_000);
  await removeByLabel(label);
}

/** Tasks of a Swarm service that its manager says are running (what `docker service ps` shows). */
async function swarmRunningTasks(name: string): Promise<number> {
  const tasks = (await docker.listTasks({ filters: JSON.stringify({ service: [name], 'desired-state': ['running'] }) })) as { Status?: { State?: string } }[];
  return tasks.filter((t) => t.Status?.State === 'running').length;
}

async function swarmScaleUp(n: number, run: number): Promise<{ dockerMs: number; apiMs: number }> {
  const name = `wharf-bench-scale-${run}`;
  const t0 = performance.now();
  swarmCreate(name, n);
  const [dockerMs, apiMs] = await Promise.all([
    until(`com.docker.swarm.service.name=${name}`, (cs) => cs.length >= n, t0),
    untilApi(async () => (await swarmRunningTasks(name)) >= n, t0, 300_000, SCALE_UP_API_POLL_MS),
  ]);
  await swarmRemove(name);
  return { dockerMs, apiMs };
}

async function swarmReplacement(run: number, extra: string[]): Promise<number> {
  const name = `wharf-bench-replace-${run}-${extra.length}`;
  const label = `com.docker.swarm.service.name=${name}`;
  await swarmService(name, 3, extra);
  const before = await runningByLabel(label);
  const known = new Set(before.map((c) => c.Id));
  const t0 = performance.now();
  await docker.getContainer(before[0]!.Id).kill();
  const ms = await until(label, (cs) => cs.some((c) => !known.has(c.Id)), t0);
  await swarmRemove(name);
  return ms;
}

// ---------------------------------------------------------------- run

export async function run(opts: { quick?: boolean } = {}): Promise<SwarmBenchResult> {
  runWharfFrom(wharfEntry()); // the built CLI, as users run it
  const skip = dockerSkipReason();
  if (skip) throw new Error(skip);
  const replicas = opts.quick ? 10 : 50;
  const runs = opts.quick ? 2 : 5;
  if (swarmState() !== 'inactive') throw new Error('this Docker Engine is already part of a swarm; the benchmark only uses a swarm of its own');
  const r: SwarmBenchResult = {
    replicas,
    runs,
    machine: `${os.cpus().length} cpu ${os.cpus()[0]?.model ?? ''}, Docker ${sh(['version', '--format', '{{.Server.Version}}']).trim()}`,
    scaleUp: { wharfDockerMs: [], wharfApiMs: [], swarmMs: [], swarmApiMs: [], floorMs: [] },
    replacement: { wharfDockerMs: [], wharfApiMs: [], swarmMs: [], swarmNoDelayMs: [] },
    medians: {},
    ratios: { scaleUp: 0, scaleUpDocker: 0, scaleUpVsFloor: 0, replacement: 0, replacementVsSwarmNoDelay: 0 },
  };
  const registry = await startLocalRegistry();
  IMAGE = await pushToRegistry(new Docker(), LOCAL_IMAGE, registry, 'wharf-bench/busybox:latest');
  await new Docker().pull(IMAGE).then((stream: NodeJS.ReadableStream) => new Promise((res) => { stream.on('end', res); stream.resume(); }));
  const w = await startWharf();
  try {
    sh(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', '127.0.0.1:2377']);
    // The three scale-ups take turns going first, so that drift in the machine's load (and
    // whatever the previous one left the engine doing) hits each alike. The floor needs the
    // configuration of a Wharf container: the first round starts with Wharf's.
    let floorConfig: FloorConfig | undefined;
    for (let i = 0; i < runs; i++) {
      const steps: (() => Promise<void>)[] = [
        async () => {
          const a = await wharfScaleUp(w, replicas, i);
          floorConfig = a.floor;
          r.scaleUp.wharfDockerMs.push(round(a.dockerMs));
          r.scaleUp.wharfApiMs.push(round(a.apiMs));
        },
        async () => {
          const s = await swarmScaleUp(replicas, i);
          r.scaleUp.swarmMs.push(round(s.dockerMs));
          r.scaleUp.swarmApiMs.push(round(s.apiMs));
        },
        async () => {
          if (!floorConfig) throw new Error('no Wharf container configuration for the floor yet');
          r.scaleUp.floorMs.push(round(await floorScaleUp(floorConfig, replicas)));
        },
      ];
      for (let k = 0; k < steps.length; k++) await steps[(i + k) % steps.length]!();
      const b = await wharfReplacement(w, i);
      r.replacement.wharfDockerMs.push(round(b.dockerMs));
      r.replacement.wharfApiMs.push(round(b.apiMs));
      r.replacement.swarmMs.push(round(await swarmReplacement(i, [])));
      r.replacement.swarmNoDelayMs.push(round(await swarmReplacement(i, ['--restart-delay', '0s'])));
    }
  } finally {
    // Each clean-up step on its own: one failing (Docker restarting) must not skip the others.
    const attempt = async (f: () => unknown) => {
      try {
        await f();
      } catch {
        /* best effort */
      }
    };
    await attempt(() => {
      for (const s of sh(['service', 'ls', '-q', '--filter', 'name=wharf-bench-']).split('\n').filter(Boolean)) sh(['service', 'rm', s]);
    });
    await attempt(() => sh(['swarm', 'leave', '--force']));
    await attempt(() => removeByLabel('com.docker.swarm.service.name'));
    await attempt(() => removeLabelled(docker, FLOOR_KEY, FLOOR_VALUE));
    await attempt(() => w.close());
    await attempt(() => registry.stop());
    await killAllSpawned();
  }
  for (const [group, series] of Object.entries({ scaleUp: r.scaleUp, replacement: r.replacement })) {
    for (const [k, v] of Object.entries(series)) r.medians[`${group}.${k}`] = round(median(v));
  }
  r.ratios = {
    scaleUp: Math.round((r.medians['scaleUp.wharfApiMs']! / r.medians['scaleUp.swarmApiMs']!) * 100) / 100,
    scaleUpDocker: Math.round((r.medians['scaleUp.wharfDockerMs']! / r.medians['scaleUp.swarmMs']!) * 100) / 100,
    scaleUpVsFloor: Math.round((r.medians['scaleUp.wharfApiMs']! / r.medians['scaleUp.floorMs']!) * 100) / 100,
    replacement: Math.round((r.medians['replacement.wharfApiMs']! / r.medians['replacement.swarmMs']!) * 100) / 100,
    replacementVsSwarmNoDelay: Math.round((r.medians['replacement.wharfApiMs']! / r.medians['replacement.swarmNoDelayMs']!) * 100) / 100,
  };
  return r;
}

export function toMarkdown(r: SwarmBenchResult): string {
  const m = r.medians;
  const f = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  return [
    `One host (${r.machine}), \`sleep 3600\` containers of the local test image, served by a registry on 127.0.0.1 (Swarm pulls from it on every task start; Wharf's agent, prefer-cached, and the floor use the engine's copy); medians of ${r.runs} runs, the three scale-ups taking turns going first. Times are from the create (or \`docker kill\`) call. "Docker" is until the containers run as Docker reports them (running containers by label, polled every ${POLL_MS} ms, the same poll for every system). "API" is until the system's own API says so, polled every ${SCALE_UP_API_POLL_MS} ms for both: Wharf's DescribeServices (runningCount = N, pendingCount = 0, through the AWS SDK v3), Swarm's task list (N tasks of the service in state running, as \`docker service ps\` shows them). For the replacement, Wharf's API time is until the replacement task is RUNNING in DescribeTasks (polled every ${POLL_MS} ms) and Swarm's time is Docker's, which favours Swarm. The floor is the Docker Engine API itself: ${r.replicas} concurrent create + start over its unix socket with the configuration Wharf gave its own containers, until the last start call has returned and the same Docker poll sees them running. Ratios below 1: Wharf is faster.`,
    '',
    '| Measurement | Wharf (Docker) ms | Wharf (API) ms | Swarm (Docker) ms | Swarm (API) ms | Wharf API / Swarm API | Wharf Docker / Swarm Docker | API floor ms | Wharf API / floor |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| Scale-up to ${r.replicas} tasks | ${Math.round(m['scaleUp.wharfDockerMs']!)} | ${Math.round(m['scaleUp.wharfApiMs']!)} | ${Math.round(m['scaleUp.swarmMs']!)} | ${Math.round(m['scaleUp.swarmApiMs']!)} | ${r.ratios.scaleUp} | ${r.ratios.scaleUpDocker} | ${Math.round(m['scaleUp.floorMs']!)} | ${r.ratios.scaleUpVsFloor} |`,
    `| Replacement after docker kill (Swarm default restart-delay 5 s) | ${Math.round(m['replacement.wharfDockerMs']!)} | ${Math.round(m['replacement.wharfApiMs']!)} | ${Math.round(m['replacement.swarmMs']!)} | | ${r.ratios.replacement} (vs Swarm Docker) | | | |`,
    `| Replacement after docker kill (Swarm --restart-delay 0s) | ${Math.round(m['replacement.wharfDockerMs']!)} | ${Math.round(m['replacement.wharfApiMs']!)} | ${Math.round(m['replacement.swarmNoDelayMs']!)} | | ${r.ratios.replacementVsSwarmNoDelay} (vs Swarm Docker) | | | |`,
    '',
    `Goals for the ${r.replicas}-task scale-up: faster than Swarm (Wharf API / Swarm API ${r.ratios.scaleUp}, ${met(r.ratios.scaleUp < 1)}; as Docker sees the containers, ${r.ratios.scaleUpDocker}); at most ${SCALE_UP_FLOOR_GOAL}x the ${r.replicas}-at-once API floor (${r.ratios.scaleUpVsFloor}, ${met(r.ratios.scaleUpVsFloor <= SCALE_UP_FLOOR_GOAL)}).`,
    '',
    `Every run (ms): scale-up Wharf API ${f(r.scaleUp.wharfApiMs)}; Wharf Docker ${f(r.scaleUp.wharfDockerMs)}; Swarm API ${f(r.scaleUp.swarmApiMs)}; Swarm Docker ${f(r.scaleUp.swarmMs)}; API floor ${f(r.scaleUp.floorMs)}. Replacement Wharf API ${f(r.replacement.wharfApiMs)}; Swarm ${f(r.replacement.swarmMs)}; Swarm with no restart delay ${f(r.replacement.swarmNoDelayMs)}.`,
  ].join('\n') + '\n';
}

if (require.main === module) {
  run({ quick: process.argv.includes('--quick') }).then(
    (r) => process.stdout.write(toMarkdown(r)),
    (e: unknown) => {
      process.stderr.write(String(e instanceof Error ? e.stack : e) + '\n');
      process.exit(1);
    },
  );
}
