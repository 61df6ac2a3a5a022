/**
 * RunTask against bare Docker, on this host's Docker Engine, measured in the same run.
 *
 * Wharf runs as `wharf up` does (control plane with the SQLite store at synchronous=FULL and one
 * Docker agent in one process, image pull behaviour prefer-cached); the client is the AWS SDK for
 * JavaScript v3 over HTTP. The baseline is the `docker` CLI: `docker run -d` of the same image and
 * command, which returns once the container has started.
 *
 * - Latency: one one-container task, from sending RunTask until DescribeTasks (polled every
 *   20 ms) says RUNNING; against `docker run -d` until it returns. Samples alternate between the
 *   two; median and p90 of each.
 * - Burst: 50 tasks at once (5 concurrent RunTask calls of count 10) until all 50 are RUNNING in
 *   DescribeTasks, against 50 concurrent `docker run -d` until all have returned.
 *
 *   npx tsx bench/run.ts tasks-docker [--quick]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  DescribeTasksCommand,
  ECSClient,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
} from '@aws-sdk/client-ecs';
import { startServer } from '../src/cmd/server';
import { startAgents } from '../src/cmd/agent';
import { createLogger } from '../src/lib';

const IMAGE = 'wharf-test/busybox:latest';
// Exits at once on SIGTERM, so stopping between samples is quick for both systems.
const COMMAND = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];
const CLUSTER = `bench-tasks-${process.pid}`;
const BASELINE_LABEL = `io.wharf.bench=${CLUSTER}`;
const POLL_MS = 20;

export interface Stats {
  median: number;
  p90: number;
  min: number;
  max: number;
  samples: number[];
}

export interface TasksDockerResult {
  host: string;
  dockerVersion: string;
  runs: number;
  burstRuns: number;
  single: { wharf: Stats; docker: Stats; ratioMedian: number; ratioP90: number };
  burst: { wharf: Stats; docker: Stats; ratioMedian: number };
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { median: at(0.5), p90: at(0.9), min: s[0]!, max: s[s.length - 1]!, samples: xs.map((x) => Math.round(x)) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function dockerRun(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('docker', ['run', '-d', '--label', BASELINE_LABEL, IMAGE, ...COMMAND], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += String(d)));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`docker run failed: ${err}`))));
  });
}

function removeBaseline(): void {
  const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=${BASELINE_LABEL}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
}

function removeCluster(clusterArn: string): void {
  const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=com.amazonaws.ecs.cluster=${clusterArn}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
}

export async function run(opts: { quick?: boolean } = {}): Promise<TasksDockerResult> {
  execFileSync(path.join(__dirname, '..', 'test', 'images', 'build.sh'), { stdio: 'ignore' });
  const runs = opts.quick ? 6 : 25;
  const burstRuns = opts.quick ? 1 : 3;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-bench-tasks-'));
  const log = createLogger('bench', 'silent');
  const srv = await startServer({ host: '127.0.0.1', port: 0, dataDir, region: 'us-east-1', accountId: '123456789012', synchronous: 'FULL', log });
  const ecs = new ECSClient({ endpoint: srv.endpoint, region: 'us-east-1', credentials: srv.credentials.user, maxAttempts: 1 });
  let clusterArn = '';
  const agents = await (async () => {
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    return startAgents({
      endpoint: srv.endpoint,
      region: 'us-east-1',
      cluster: CLUSTER,
      credentials: srv.credentials.agentTokens[0]!,
      dataDir,
      attributes: {},
      runtime: 'docker',
      instances: 1,
      pullBehaviour: 'prefer-cached',
      log,
    });
  })();
  try {
    const td = (
      await ecs.send(
        new RegisterTaskDefinitionCommand({
          family: 'bench-sleeper',
          networkMode: 'bridge',
          containerDefinitions: [{ name: 'app', image: IMAGE, memory: 16, essential: true, stopTimeout: 2, command: COMMAND }],
        }),
      )
    ).taskDefinition!.taskDefinitionArn!;

    const waitAll = async (arns: string[], status: string, pollMs = POLL_MS) => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const pending = new Set(arns);
        for (let i = 0; i < arns.length; i += 100) {
          const out = await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns.slice(i, i + 100) }));
          for (const t of out.tasks ?? []) {
            if (t.lastStatus === status) pending.delete(t.taskArn!);
            else if (t.lastStatus === 'STOPPED') throw new Error(`task stopped: ${t.stoppedReason}`);
          }
        }
        if (pending.size === 0) return;
        if (Date.now() > deadline) throw new Error(`${pending.size} tasks not ${status} after 120 s`);
        await sleep(pollMs);
      }
    };
    const runTasks = async (count: number, calls: number): Promise<{ ms: number; arns: string[] }> => {
      const t0 = performance.now();
      const outs = await Promise.all(Array.from({ length: calls }, () => ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: td, count }))));
      const arns = outs.flatMap((o) => {
        if (o.failures?.length) throw new Error(`RunTask failures: ${JSON.stringify(o.failures)}`);
        return o.tasks!.map((t) => t.taskArn!);
      });
      await waitAll(arns, 'RUNNING');
      return { ms: performance.now() - t0, arns };
    };
    const stopAll = async (arns: string[]) => {
      await Promise.all(arns.map((a) => ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: a }))));
      await waitAll(arns, 'STOPPED', 100);
    };

    // Warm-up: one of each, not counted (first-use costs: image metadata, HTTP connection, JIT).
    await stopAll((await runTasks(1, 1)).arns);
    await dockerRun();
    removeBaseline();

    const wharfSingle: number[] = [];
    const dockerSingle: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so drift in the engine's state hits both alike.
      const order = i % 2 === 0 ? ['wharf', 'docker'] : ['docker', 'wharf'];
      for (const which of order) {
        if (which === 'wharf') {
          const r = await runTasks(1, 1);
          wharfSingle.push(r.ms);
          await stopAll(r.arns);
        } else {
          dockerSingle.push(await dockerRun());
          removeBaseline();
        }
      }
    }

    const wharfBurst: number[] = [];
    const dockerBurst: number[] = [];
    for (let i = 0; i < burstRuns; i++) {
      const r = await runTasks(10, 5);
      wharfBurst.push(r.ms);
      await stopAll(r.arns);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 50 }, () => dockerRun()));
      dockerBurst.push(performance.now() - t0);
      removeBaseline();
    }

    const ws = stats(wharfSingle);
    const ds = stats(dockerSingle);
    const wb = stats(wharfBurst);
    const db = stats(dockerBurst);
    return {
      host: `${os.cpus().length} cpu ${os.cpus()[0]?.model ?? ''}`.trim(),
      dockerVersion: execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' }).trim(),
      runs,
      burstRuns,
      single: { wharf: ws, docker: ds, ratioMedian: ws.median / ds.median, ratioP90: ws.p90 / ds.p90 },
      burst: { wharf: wb, docker: db, ratioMedian: wb.median / db.median },
    };
  } finally {
    await agents.stop();
    ecs.destroy();
    await srv.close();
    removeBaseline();
    if (clusterArn) removeCluster(clusterArn);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const ms = (x: number) => String(Math.round(x));
const ratio = (x: number) => x.toFixed(2);

export function toMarkdown(r: TasksDockerResult): string {
  return [
    `One host (${r.host}, Docker ${r.dockerVersion}), image cached, one container \`${COMMAND.join(' ')}\` per task.`,
    'Wharf runs as `wharf up` does (control plane with SQLite synchronous=FULL and the Docker agent in one process) and',
    'is driven with the AWS SDK v3: time from sending RunTask until DescribeTasks (polled every 20 ms) says RUNNING.',
    'The baseline is `docker run -d` of the same image and command, until the CLI returns (the container has started).',
    'Samples of the two alternate. Goal: Wharf / docker at most 1.3.',
    '',
    '| Measurement | Wharf median ms | Wharf p90 ms | docker median ms | docker p90 ms | Ratio (median) | Ratio (p90) |',
    '|---|---:|---:|---:|---:|---:|---:|',
    `| RunTask -> RUNNING, 1 task (${r.runs} runs) | ${ms(r.single.wharf.median)} | ${ms(r.single.wharf.p90)} | ${ms(r.single.docker.median)} | ${ms(r.single.docker.p90)} | ${ratio(r.single.ratioMedian)} | ${ratio(r.single.ratioP90)} |`,
    `| 50 at once: 5 RunTask x 10 vs 50 concurrent docker run (${r.burstRuns} runs) | ${ms(r.burst.wharf.median)} | ${ms(r.burst.wharf.max)} (max) | ${ms(r.burst.docker.median)} | ${ms(r.burst.docker.max)} (max) | ${ratio(r.burst.ratioMedian)} | |`,
    '',
    `Every sample (ms): Wharf ${r.single.wharf.samples.join(', ')}; docker ${r.single.docker.samples.join(', ')}.`,
    `Burst: Wharf ${r.burst.wharf.samples.join(', ')}; docker ${r.burst.docker.samples.join(', ')}.`,
    '',
  ].join('\n');
}
