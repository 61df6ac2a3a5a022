/**
 * FARGATE RunTask on this host's Docker Engine, against the Docker Engine API itself measured in
 * the same run (issue 10): once with the pool host's sandbox gVisor (runsc) and once with runc
 * (`--fargate-sandbox runc`), each in a phase of its own (a fresh `wharf server` and one pool
 * agent, `wharf agent --fargate`, each a process of its own, apart from the polling client).
 *
 * - Latency: one one-container FARGATE task (awsvpc, one subnet), from sending RunTask until
 *   DescribeTasks (polled every 5 ms) says RUNNING; the floor is create + start through the
 *   Engine API of one container with the configuration Wharf gave the task's container (read
 *   back from the warm-up task), on a user-defined bridge network, under runc and under runsc,
 *   until the start call returns. Samples rotate between the three; median and p90 of each.
 *   A Fargate task starts a pause container (its network namespace) and then the task
 *   container, where the floor starts one container: the goal allows for that.
 * - Burst: 50 FARGATE tasks at once (5 concurrent RunTask calls of count 10, ECS's maximum per
 *   call) until all are RUNNING, against 50 concurrent floor create + start.
 * - HTTP: one task running busybox httpd with a 1 KiB file, driven from the host at the task's
 *   own IP (awsvpc: reachable on the subnet's bridge) by autocannon for a few seconds.
 *
 *   npx tsx bench/run.ts fargate-tasks [--quick]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  DescribeTasksCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  type Task,
} from '@aws-sdk/client-ecs';
import autocannon from 'autocannon';
import Docker from 'dockerode';
import { removeClusterContainers, runWharfFrom, spawnAgent, spawnServer, type AgentProcess } from '../test/e2e/helpers/processes';
import { wharfEntry } from './lib/processes';
import { taskTimer } from './lib/task-timing';
import { defaultSubnets } from '../test/e2e/helpers/wharf-server';
import { FARGATE_POOL } from '../src/core/fargate-pool';
import { createLogger } from '../src/lib';
import { floorBurst, floorConfigFrom, floorStart, removeLabelled, type FloorConfig } from './lib/engine-floor';
import { stats, type Stats } from './tasks-docker';

const IMAGE = 'wharf-test/busybox:latest';
const COMMAND = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const HTTPD = ['sh', '-c', 'mkdir -p /www && head -c 1024 /dev/zero | tr "\\0" x > /www/f && exec httpd -f -p 80 -h /www'];
const RUN = `bench-fargate-${process.pid}`;
/** The default subnet of the pool host's zone (us-east-1a), looked up once the server runs. */
let SUBNET = '';
const FLOOR_KEY = 'io.wharf.bench.floor';
const FLOOR_NETWORK = `wharf-bench-floor-${process.pid}`;
const POLL_MS = 5;
/** Goals (issue 10): RunTask -> RUNNING median at most this times the same-sandbox API floor's. */
export const GOALS = { gvisor: 1.5, runc: 1.2 } as const;

type Sandbox = 'gvisor' | 'runc';

export interface PhaseResult {
  sandbox: Sandbox;
  /** What DescribeTasks said the task ran under (the wharf.fargate-sandbox attribute). */
  reported: string;
  wharf: Stats;
  burst: Stats;
  http: { requestsPerSec: number; latencyP50Ms: number; latencyP99Ms: number; errors: number; seconds: number };
}

export interface FargateTasksResult {
  host: string;
  dockerVersion: string;
  runsc: boolean;
  /** 1-minute load average when the run began and ended: other work on the host skews the figures. */
  load: [number, number];
  runs: number;
  burstRuns: number;
  phases: PhaseResult[];
  /** Floor samples of both phases together, by OCI runtime. */
  floor: { runc: Stats; runsc?: Stats; burstRunc: Stats; burstRunsc?: Stats };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Removes a network once the engine has let go of its last endpoint (a forced remove can lag). */
async function removeNetwork(docker: Docker, name: string): Promise<void> {
  for (let i = 0; i < 20; i++) {
    try {
      await docker.getNetwork(name).remove();
      return;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return;
      await sleep(500);
    }
  }
}

async function phase(
  sandbox: Sandbox,
  o: { runs: number; burstRuns: number; httpSeconds: number; docker: Docker; floorRuntimes: string[]; floor: Record<string, number[]>; floorBurst: Record<string, number[]> },
): Promise<PhaseResult> {
  const cluster = `${RUN}-${sandbox}`;
  const srv = await spawnServer({ sync: 'full', env: { WHARF_LOG_LEVEL: 'error' } });
  const ecs = srv.ecs();
  let clusterArn = '';
  let agent: AgentProcess | undefined;
  const marker = (runtime: string) => ({ [FLOOR_KEY]: `${RUN}-${runtime}` });
  const removeFloor = () => Promise.all(o.floorRuntimes.map((r) => removeLabelled(o.docker, FLOOR_KEY, `${RUN}-${r}`)));
  try {
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
    SUBNET = (await defaultSubnets(srv))['us-east-1a']!.id;
    agent = await spawnAgent({
      server: srv,
      fargate: true,
      // Room for the 50-task burst (256 CPU / 512 MiB each); the tasks only sleep.
      resources: `cpu=${51 * 256},memory=${51 * 512}`,
      extraArgs: ['--fargate-sandbox', sandbox, '--image-pull-behavior', 'prefer-cached'],
      env: { WHARF_LOG_LEVEL: 'error' },
    });
    const register = async (family: string, command: string[]) =>
      (
        await ecs.send(
          new RegisterTaskDefinitionCommand({
            family,
            requiresCompatibilities: ['FARGATE'],
            networkMode: 'awsvpc',
            cpu: '256',
            memory: '512',
            containerDefinitions: [{ name: 'app', image: IMAGE, essential: true, stopTimeout: 2, command }],
          }),
        )
      ).taskDefinition!.taskDefinitionArn!;
    const sleeper = await register('bench-fg-sleeper', COMMAND);
    const httpd = await register('bench-fg-httpd', HTTPD);

    const describe = async (arns: string[]): Promise<Task[]> => {
      const out: Task[] = [];
      for (let i = 0; i < arns.length; i += 100) out.push(...((await ecs.send(new DescribeTasksCommand({ cluster, tasks: arns.slice(i, i + 100) }))).tasks ?? []));
      return out;
    };
    const { runTasks: timed, stopAll } = taskTimer(ecs, cluster, { pollMs: POLL_MS, timeoutMs: 180_000 });
    const runTasks = (td: string, count: number, calls: number) =>
      timed({ taskDefinition: td, count, launchType: 'FARGATE', networkConfiguration: { awsvpcConfiguration: { subnets: [SUBNET], assignPublicIp: 'DISABLED' } } }, calls);

    // Warm-up (not counted): first-use costs of the engine, the runtime, the subnet network and
    // this process. The floor copies the warm-up task container's configuration, on a bridge
    // network of its own in place of the pause container's namespace.
    const warm = await runTasks(sleeper, 1, 1);
    const [warmTask] = await describe(warm.arns);
    const reported = warmTask!.attributes?.find((a) => a.name === 'wharf.fargate-sandbox')?.value ?? '?';
    const base = await floorConfigFrom(o.docker, warmTask!.containers![0]!.runtimeId!, {});
    await stopAll(warm.arns);
    const configs: Record<string, FloorConfig> = {};
    for (const r of o.floorRuntimes) {
      configs[r] = {
        ...base,
        Labels: { ...base.Labels, ...marker(r) },
        // The task's cgroup goes with the task; the floor's containers get the task's limits alone.
        HostConfig: { ...base.HostConfig, NetworkMode: FLOOR_NETWORK, CgroupParent: undefined, Memory: 512 * 1048576, Runtime: r },
      };
      await floorStart(o.docker, configs[r]!);
    }
    await removeFloor();

    const wharf: number[] = [];
    const kinds = ['wharf', ...o.floorRuntimes];
    for (let i = 0; i < o.runs; i++) {
      // Rotate which goes first, so drift in the engine's state hits all alike.
      for (let k = 0; k < kinds.length; k++) {
        const which = kinds[(i + k) % kinds.length]!;
        if (which === 'wharf') {
          const r = await runTasks(sleeper, 1, 1);
          wharf.push(r.ms);
          await stopAll(r.arns);
        } else {
          o.floor[which]!.push(await floorStart(o.docker, configs[which]!));
          await removeFloor();
        }
      }
    }

    const burst: number[] = [];
    for (let i = 0; i < o.burstRuns; i++) {
      const r = await runTasks(sleeper, 10, 5);
      burst.push(r.ms);
      await stopAll(r.arns);
      for (const rt of o.floorRuntimes) {
        o.floorBurst[rt]!.push(await floorBurst(o.docker, configs[rt]!, 50));
        await removeFloor();
      }
    }

    const web = await runTasks(httpd, 1, 1);
    const [webTask] = await describe(web.arns);
    const ip = webTask!.containers![0]!.networkInterfaces![0]!.privateIpv4Address!;
    const url = `http://${ip}:80/f`;
    for (let i = 0; ; i++) {
      // httpd binds a moment after the container is RUNNING.
      const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 50) throw new Error(`${url} does not answer`);
      await sleep(200);
    }
    const ac = await autocannon({ url, connections: 10, duration: o.httpSeconds });
    await stopAll(web.arns);

    return {
      sandbox,
      reported,
      wharf: stats(wharf),
      burst: stats(burst),
      http: {
        requestsPerSec: ac.requests.average,
        latencyP50Ms: ac.latency.p50,
        latencyP99Ms: ac.latency.p99,
        errors: ac.errors + ac.non2xx + ac.timeouts,
        seconds: o.httpSeconds,
      },
    };
  } finally {
    await agent?.stop();
    await srv.stop();
    await removeFloor();
    // The agent leaves containers running when it stops (a restart would adopt them): remove them,
    // with the pause containers the tasks took from the agent's pool (they name no cluster).
    if (clusterArn) await removeClusterContainers(clusterArn);
    await removeNetwork(o.docker, `wharf-subnet-${SUBNET}`);
    for (const dir of [srv.dataDir, agent?.dataDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: { quick?: boolean } = {}): Promise<FargateTasksResult> {
  runWharfFrom(wharfEntry()); // the built CLI, as users run it
  execFileSync(path.join(__dirname, '..', 'test', 'images', 'build.sh'), { stdio: 'ignore' });
  const loadAtStart = os.loadavg()[0]!;
  const docker = new Docker();
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown>; ServerVersion?: string };
  const runsc = Object.keys(info.Runtimes ?? {}).includes('runsc');
  const floorRuntimes = runsc ? ['runc', 'runsc'] : ['runc'];
  const floor: Record<string, number[]> = Object.fromEntries(floorRuntimes.map((r) => [r, []]));
  const floorBurstMs: Record<string, number[]> = Object.fromEntries(floorRuntimes.map((r) => [r, []]));
  const runs = opts.quick ? 6 : 20;
  const burstRuns = opts.quick ? 1 : 2;
  await docker.createNetwork({ Name: FLOOR_NETWORK, Driver: 'bridge', Labels: { [FLOOR_KEY]: RUN } });
  const phases: PhaseResult[] = [];
  try {
    for (const sandbox of (runsc ? ['gvisor', 'runc'] : ['runc']) as Sandbox[]) {
      process.stderr.write(`bench: fargate-tasks: ${sandbox}...\n`);
      phases.push(await phase(sandbox, { runs, burstRuns, httpSeconds: opts.quick ? 3 : 10, docker, floorRuntimes, floor, floorBurst: floorBurstMs }));
    }
  } finally {
    for (const r of floorRuntimes) await removeLabelled(docker, FLOOR_KEY, `${RUN}-${r}`);
    await removeNetwork(docker, FLOOR_NETWORK);
  }
  return {
    host: `${os.cpus().length} cpu ${os.cpus()[0]?.model ?? ''}`.trim(),
    dockerVersion: info.ServerVersion ?? '?',
    runsc,
    load: [loadAtStart, os.loadavg()[0]!],
    runs,
    burstRuns,
    phases,
    floor: {
      runc: stats(floor.runc!),
      runsc: runsc ? stats(floor.runsc!) : undefined,
      burstRunc: stats(floorBurstMs.runc!),
      burstRunsc: runsc ? stats(floorBurstMs.runsc!) : undefined,
    },
  };
}

const ms = (x: number) => String(Math.round(x));
const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) : '');

export function toMarkdown(r: FargateTasksResult): string {
  const rows: string[] = [];
  const goals: string[] = [];
  for (const p of r.phases) {
    const same = p.sandbox === 'gvisor' ? r.floor.runsc : r.floor.runc;
    const sameBurst = p.sandbox === 'gvisor' ? r.floor.burstRunsc : r.floor.burstRunc;
    const name = p.sandbox === 'gvisor' ? 'gVisor' : 'runc';
    rows.push(
      `| RunTask -> RUNNING, 1 task, ${name} (${r.runs} runs) | ${ms(p.wharf.median)} | ${ms(p.wharf.p90)} | ${same ? ms(same.median) : ''} | ${same ? ms(same.p90) : ''} | ${ratio(p.wharf.median, same?.median)} | ${ratio(p.wharf.p90, same?.p90)} | ${ratio(p.wharf.median, r.floor.runc.median)} |`,
      `| 50 at once, ${name}: 5 RunTask x 10 vs 50 concurrent create + start (${r.burstRuns} runs) | ${ms(p.burst.median)} | ${ms(p.burst.max)} (max) | ${sameBurst ? ms(sameBurst.median) : ''} | ${sameBurst ? ms(sameBurst.max) : ''} (max) | ${ratio(p.burst.median, sameBurst?.median)} | | ${ratio(p.burst.median, r.floor.burstRunc.median)} |`,
    );
    const goal = GOALS[p.sandbox];
    const got = same ? p.wharf.median / same.median : NaN;
    goals.push(`${name}: at most ${goal}x the ${p.sandbox === 'gvisor' ? 'runsc' : 'runc'} floor (median): ${got.toFixed(2)}, ${got <= goal ? 'met' : 'not met'}.`);
  }
  const http = r.phases.map(
    (p) => `| ${p.sandbox === 'gvisor' ? 'gVisor' : 'runc'} | ${Math.round(p.http.requestsPerSec)} | ${p.http.latencyP50Ms} | ${p.http.latencyP99Ms} | ${p.http.errors} |`,
  );
  const g = r.phases.find((p) => p.sandbox === 'gvisor');
  const c = r.phases.find((p) => p.sandbox === 'runc');
  return [
    `One host (${r.host}, Docker ${r.dockerVersion}${r.runsc ? ', gVisor as the runtime `runsc`' : ', no runsc: runc only'}), image cached. Wharf runs as`,
    '`wharf server` (SQLite synchronous=FULL) and one Fargate pool agent (`wharf agent --fargate`), each its own process, once with the pool host\'s sandbox',
    'gVisor and once with `--fargate-sandbox runc`, each with a fresh server; driven with the AWS SDK v3. A FARGATE task',
    `(awsvpc, 256 CPU / 512 MiB, one container \`${COMMAND.join(' ')}\`) is timed from sending RunTask until DescribeTasks`,
    `(polled every ${POLL_MS} ms) says RUNNING; Wharf starts a pause container for its network namespace and then the container.`,
    'The floor is the Docker Engine API over its unix socket: create + start of one container with the configuration Wharf gave',
    'the task\'s container, on a user-defined bridge network, with `HostConfig.Runtime` runc or runsc, until the start call',
    'returns; floor samples of both phases are pooled. Ratios are Wharf / floor.',
    `Load average (1 min) at the start and end of the run: ${r.load[0].toFixed(1)}, ${r.load[1].toFixed(1)} (${os.cpus().length} cpus); well above the cpu count, other work on the host skews every figure.`,
    '',
    '| Measurement | Wharf median ms | Wharf p90 ms | Same-runtime floor median ms | Same-runtime floor p90 ms | Ratio (median) | Ratio (p90) | Ratio to the runc floor (median) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `Floor alone: runc median ${ms(r.floor.runc.median)} ms (p90 ${ms(r.floor.runc.p90)})${r.floor.runsc ? `, runsc median ${ms(r.floor.runsc.median)} ms (p90 ${ms(r.floor.runsc.p90)})` : ''}; 50 at once: runc ${ms(r.floor.burstRunc.median)} ms${r.floor.burstRunsc ? `, runsc ${ms(r.floor.burstRunsc.median)} ms` : ''}.`,
    '',
    `Goals (issue 10): ${goals.join(' ')}`,
    '',
    `HTTP: one FARGATE task running busybox \`httpd\` with a 1 KiB file, reached at the task's own IP from the host, autocannon with 10 connections for ${r.phases[0]?.http.seconds ?? 0} s.`,
    '',
    '| Sandbox | Requests/s | Latency p50 ms | Latency p99 ms | Errors |',
    '|---|---:|---:|---:|---:|',
    ...http,
    '',
    g && c ? `gVisor / runc throughput: ${(g.http.requestsPerSec / c.http.requestsPerSec).toFixed(2)}.` : '',
    '',
    ...r.phases.map((p) => `Every sample (ms), ${p.sandbox} (DescribeTasks said \`${p.reported}\`): Wharf ${p.wharf.samples.join(', ')}; burst ${p.burst.samples.join(', ')}.`),
    `Floor runc ${r.floor.runc.samples.join(', ')}${r.floor.runsc ? `; floor runsc ${r.floor.runsc.samples.join(', ')}` : ''}.`,
    '',
  ].join('\n');
}
