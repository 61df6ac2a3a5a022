/**
 * Real `wharf server` and `wharf agent` child processes for end-to-end and fault tests: each gets
 * a temp data dir (or a given one, so a restart finds its store again), its output is kept for
 * failure messages, and it can be killed with SIGKILL as a crash would. The processes run the
 * TypeScript sources through tsx, so a test needs no build step.
 *
 *   const srv = await spawnServer({ agentTimeoutMs: 3000 });
 *   const agent = await spawnAgent({ server: srv, cluster: 'c1', availabilityZone: 'us-east-1a' });
 *   await srv.kill9();  const again = await spawnServer({ dataDir: srv.dataDir, port: srv.port });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import type { CredentialsFile } from '../../../src/cmd/credentials';
import { joinToken } from '../../../src/cmd/credentials';
import { ensureAgentToken } from '../../../src/cmd/agent-tokens';
import { ACCOUNT_ID, REGION, REPO, TEST_VPC_BASE, childEnv, type Keys } from './wharf-server';
import { FARGATE_POOL } from '../../../src/core/fargate-pool';

const MAIN = path.join(REPO, 'src', 'cmd', 'main.ts');

/** The node arguments that run the CLI: the sources through tsx, so a test needs no build step. */
let entry: string[] = ['--import', 'tsx', MAIN];

/**
 * Benchmarks that start Wharf through these helpers call this with the built CLI
 * (bench/lib/processes.ts wharfEntry), so they measure what users run, not the sources under tsx.
 */
export function runWharfFrom(nodeArgs: string[]): void {
  entry = nodeArgs;
}

export interface WharfProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly dataDir: string;
  /** stdout and stderr so far (the last 64 KiB), for assertion messages. */
  output(): string;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** SIGKILL, then wait for the exit: a crash, nothing is flushed or closed. */
  kill9(): Promise<void>;
  /** SIGTERM (a clean shutdown), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** CPU time (user + system) the process has used so far, in ms (Linux /proc). */
  cpuTimeMs(): number;
}

export interface ServerProcess extends WharfProcess {
  endpoint: string;
  port: number;
  keys: Keys;
  /** A join token (`ID:SECRET`) for cluster `default`. */
  joinToken: string;
  /** A join token for the given cluster (made in the server's data dir, which it re-reads). */
  joinTokenFor(cluster: string): string;
  region: string;
  /** An SDK v3 client pointed at the server (destroyed when the process is stopped or killed). */
  ecs(): ECSClient;
  /** Environment for the AWS CLI with the server's credentials. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
}

export interface SpawnServerOptions {
  /** Reuse a data dir (a restart); default a fresh temp dir. */
  dataDir?: string;
  /** Default 0 (any free port); give the old port on a restart so agents find it again. */
  port?: number;
  region?: string;
  accountId?: string;
  agentTimeoutMs?: number;
  /** `--fargate-host-lost`: how long a pool host may be gone before its tasks are stopped. */
  poolHostLostMs?: number;
  healthyAfterRunningMs?: number;
  sync?: 'full' | 'normal';
  extraArgs?: string[];
  env?: Record<string, string>;
  /** How long to wait for the banner. */
  startTimeoutMs?: number;
  /** Sees every line the server prints, from its first (e.g. to collect structured log lines). */
  onLine?: (line: string) => void;
}

export interface SpawnAgentOptions {
  /** The server to join (endpoint and join token are taken from it). */
  server: Pick<ServerProcess, 'endpoint' | 'joinToken' | 'region'> & Partial<Pick<ServerProcess, 'joinTokenFor'>>;
  /** The region to register into (default the server's; null: pass no --region at all). */
  region?: string | null;
  /** Join the region's Fargate pool (`--fargate`) instead of a cluster. */
  fargate?: boolean;
  /** Reuse a data dir (a restart keeps the instance identity); default a fresh temp dir. */
  dataDir?: string;
  cluster?: string;
  availabilityZone?: string;
  runtime?: 'docker' | 'simulated';
  instances?: number;
  resources?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** How long to wait for the "registered" line. */
  startTimeoutMs?: number;
  /** A command the agent runs under, e.g. `nsenter --net=... env DOCKER_HOST=...` (a test bed host). */
  via?: string[];
}

export interface AgentProcess extends WharfProcess {
  /** The container instance ARNs the agent printed (at most the first five). */
  instanceArns: string[];
}

/** Every process spawned here, so a test's `after` hook can make sure none outlives it. */
const spawned = new Set<WharfProcess>();
// A test runner that dies (or a bench that throws) must not leave servers and agents behind.
process.once('exit', () => {
  for (const p of spawned) if (!p.exited) p.child.kill('SIGKILL');
});

/** SIGKILLs every process spawned through this module that is still running. */
export async function killAllSpawned(): Promise<void> {
  await Promise.all([...spawned].map((p) => p.kill9()));
}

function procCpuMs(pid: number): number {
  // Fields 14 and 15 of /proc/<pid>/stat are utime and stime in clock ticks (USER_HZ = 100 on
  // Linux). The command name (field 2) may hold spaces, so split after its closing parenthesis.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1000) / 100;
}

function launch(args: string[], dataDir: string, env: Record<string, string>, onLine: (line: string) => void, via: string[] = []): WharfProcess {
  const node = [process.execPath, ...entry, ...args];
  const [cmd, ...rest] = [...via, ...node];
  const child = spawn(cmd!, rest, {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WHARF_LOG_LEVEL: process.env.WHARF_LOG_LEVEL ?? 'warn', ...env },
  });
  let out = '';
  let partial = '';
  const take = (d: Buffer) => {
    const s = String(d);
    out = (out + s).slice(-65536);
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  const proc: WharfProcess = {
    child,
    pid: child.pid!,
    dataDir,
    output: () => out,
    get exited() {
      return exited;
    },
    async kill9() {
      spawned.delete(proc);
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    async stop(graceMs = 10_000) {
      spawned.delete(proc);
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    },
    cpuTimeMs: () => procCpuMs(child.pid!),
  };
  spawned.add(proc);
  return proc;
}

function waitForLine<T>(proc: WharfProcess, lines: { push(cb: (l: string) => void): void }, match: (l: string, all: string) => T | undefined, what: string, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no sign after ${ms} ms; output:\n${proc.output()}`)), ms);
    proc.child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${what}: the process exited (${code ?? sig}) first; output:\n${proc.output()}`));
    });
    lines.push((l) => {
      const v = match(l, proc.output());
      if (v !== undefined) {
        clearTimeout(timer);
        resolve(v);
      }
    });
  });
}

/** Starts `wharf server` and resolves once it prints its endpoint. */
export async function spawnServer(o: SpawnServerOptions = {}): Promise<ServerProcess> {
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-srv-'));
  const region = o.region ?? REGION;
  const args = ['server', '--listen', `127.0.0.1:${o.port ?? 0}`, '--data-dir', dataDir, '--region', region, '--account-id', o.accountId ?? ACCOUNT_ID, '--sync', o.sync ?? 'normal', '--vpc-base', TEST_VPC_BASE];
  if (o.agentTimeoutMs !== undefined) args.push('--agent-timeout', String(o.agentTimeoutMs));
  if (o.poolHostLostMs !== undefined) args.push('--fargate-host-lost', String(o.poolHostLostMs));
  if (o.healthyAfterRunningMs !== undefined) args.push('--healthy-after-running', String(o.healthyAfterRunningMs));
  args.push(...(o.extraArgs ?? []));
  // Test servers leave port 53 alone (the DNS server's default) unless a test asks for it.
  if (!args.includes('--dns')) args.push('--dns', 'off');
  const listeners: ((l: string) => void)[] = o.onLine ? [o.onLine] : [];
  const proc = launch(args, dataDir, o.env ?? {}, (l) => listeners.forEach((f) => f(l)));
  const endpoint = await waitForLine(proc, listeners, (l) => /Endpoint:\s+(https?:\/\/\S+)/.exec(l)?.[1], 'wharf server start', o.startTimeoutMs ?? 60_000);
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')) as CredentialsFile;
  const keys = { accessKeyId: creds.user.accessKeyId, secretAccessKey: creds.user.secretAccessKey };
  const clients: ECSClient[] = [];
  proc.child.once('exit', () => clients.forEach((c) => c.destroy()));
  return Object.assign(proc, {
    endpoint,
    port: Number(new URL(endpoint).port),
    keys,
    joinToken: joinToken(ensureAgentToken(dataDir, 'default')),
    joinTokenFor: (cluster: string) => joinToken(ensureAgentToken(dataDir, cluster)),
    region,
    ecs() {
      const c = new ECSClient({ endpoint, region, credentials: keys, maxAttempts: 3 });
      clients.push(c);
      return c;
    },
    env(extra: Record<string, string> = {}) {
      return childEnv(keys, region, extra);
    },
  });
}

/** Starts `wharf agent` and resolves once it says its instance(s) registered. */
export async function spawnAgent(o: SpawnAgentOptions): Promise<AgentProcess> {
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-agent-'));
  const cluster = o.fargate ? FARGATE_POOL : (o.cluster ?? 'default');
  const token = o.server.joinTokenFor ? o.server.joinTokenFor(cluster) : o.server.joinToken;
  const args = ['agent', '--endpoint', o.server.endpoint, '--join-token', token, '--data-dir', dataDir];
  args.push(...(o.fargate ? ['--fargate'] : ['--cluster', o.cluster ?? 'default']));
  if (o.region !== null) args.push('--region', o.region ?? o.server.region);
  if (o.availabilityZone) args.push('--availability-zone', o.availabilityZone);
  if (o.runtime) args.push('--runtime', o.runtime);
  if (o.instances !== undefined) args.push('--instances', String(o.instances));
  if (o.resources) args.push('--resources', o.resources);
  // Tests stay on loopback: assignPublicIp ENABLED publishes there.
  if (!(o.extraArgs ?? []).includes('--public-ip')) args.push('--public-ip', '127.0.0.1');
  args.push(...(o.extraArgs ?? []));
  const listeners: ((l: string) => void)[] = [];
  const proc = launch(args, dataDir, o.env ?? {}, (l) => listeners.forEach((f) => f(l)), o.via);
  await waitForLine(proc, listeners, (l) => (/container instance\(s\) registered/.test(l) ? true : undefined), 'wharf agent start', o.startTimeoutMs ?? 120_000);
  // The ARNs follow the banner line; give them a moment to arrive.
  await sleep(50);
  const instanceArns = [...proc.output().matchAll(/^\s+(arn:aws:ecs:\S+:container-instance\/\S+)$/gm)].map((m) => m[1]!);
  return Object.assign(proc, { instanceArns });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `intervalMs` until it returns something other than undefined/false, and
 * returns that. On timeout it throws with `what` and the last value `describe` gave.
 */
export async function waitUntil<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, what: string, o: { timeoutMs?: number; intervalMs?: number; describe?: () => unknown } = {}): Promise<T> {
  const end = Date.now() + (o.timeoutMs ?? 60_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      lastErr = undefined;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      let detail = '';
      if (o.describe) {
        try {
          detail = `; last state: ${JSON.stringify(await o.describe())}`;
        } catch {
          /* the description is best effort */
        }
      }
      throw new Error(`timed out after ${o.timeoutMs ?? 60_000} ms waiting for ${what}${detail}${lastErr ? `; last error: ${String(lastErr)}` : ''}`);
    }
    await sleep(o.intervalMs ?? 200);
  }
}

/** Removes a temp data dir made by spawnServer/spawnAgent (ignores errors). */
export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface ClusterContainer {
  id: string;
  taskArn: string;
  instanceArn: string;
  /** Task definition family and revision of the container's task. */
  family: string;
  revision: string;
  running: boolean;
}

/**
 * The Docker containers Wharf agents made for a cluster (by the `com.amazonaws.ecs.cluster`
 * label, which holds the cluster ARN), straight from the Docker Engine: what really runs,
 * whatever the API says. `all` includes exited containers. A task's pause container that an
 * agent started ahead of the task (agent/pause-pool.ts) names no cluster; it is found through
 * the `io.wharf.pause-id` label of the task's containers and listed as theirs.
 */
export async function listClusterContainers(clusterArn: string, all = false, dockerHost?: string): Promise<ClusterContainer[]> {
  const own = await dockerPs([`label=com.amazonaws.ecs.cluster=${clusterArn}`], all, dockerHost);
  const pooled = new Map<string, ClusterContainer & { pauseId?: string }>();
  for (const c of own) if (c.pauseId && !own.some((x) => x.id === c.pauseId)) pooled.set(c.pauseId, c);
  if (pooled.size === 0) return own.map(({ pauseId: _p, ...c }) => c);
  const pauses = await dockerPs([...pooled.keys()].map((id) => `id=${id}`), all, dockerHost);
  return [
    ...own.map(({ pauseId: _p, ...c }) => c),
    ...pauses.map((p) => {
      const of = pooled.get(p.id)!;
      return { id: p.id, taskArn: of.taskArn, instanceArn: p.instanceArn, family: of.family, revision: of.revision, running: p.running };
    }),
  ];
}

async function dockerPs(filters: string[], all: boolean, dockerHost?: string): Promise<(ClusterContainer & { pauseId?: string })[]> {
  const out = await new Promise<string>((resolve, reject) => {
    const args = ['ps', '--no-trunc', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.ID}}\t{{.State}}\t{{.Labels}}'];
    if (all) args.splice(1, 0, '-a');
    const p = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'], env: dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env });
    let s = '';
    let e = '';
    p.stdout.on('data', (d) => (s += String(d)));
    p.stderr.on('data', (d) => (e += String(d)));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`docker ps failed: ${e}`))));
  });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, state, labels] = line.split('\t');
      const l = new Map<string, string>();
      // Labels print as k=v joined by commas; ECS label values (ARNs, numbers) hold no comma.
      for (const kv of (labels ?? '').split(',')) {
        const i = kv.indexOf('=');
        if (i > 0) l.set(kv.slice(0, i), kv.slice(i + 1));
      }
      return {
        id: id!,
        taskArn: l.get('com.amazonaws.ecs.task-arn') ?? '',
        instanceArn: l.get('io.wharf.container-instance') ?? '',
        family: l.get('com.amazonaws.ecs.task-definition-family') ?? '',
        revision: l.get('com.amazonaws.ecs.task-definition-version') ?? '',
        running: state === 'running',
        pauseId: l.get('io.wharf.pause-id'),
      };
    });
}

/**
 * Force-removes every container of a cluster (test clean-up), and the pause containers the
 * hosts that ran them keep started ahead for coming tasks (agent/pause-pool.ts): an agent
 * stopped normally removes those itself, but one killed (killAllSpawned) leaves them to its next
 * start, which a test's fresh data dir never has.
 */
export async function removeClusterContainers(clusterArn: string): Promise<void> {
  const listed = await listClusterContainers(clusterArn, true);
  const ids = listed.map((c) => c.id);
  const instances = new Set(listed.map((c) => c.instanceArn).filter(Boolean));
  if (instances.size > 0) {
    const named = new Set((await dockerPs(['label=io.wharf.pause-id'], true)).map((c) => c.pauseId));
    for (const instance of instances) {
      for (const p of await dockerPs(['label=io.wharf.pause-pool', `label=io.wharf.container-instance=${instance}`], true)) {
        if (!named.has(p.id) && !ids.includes(p.id)) ids.push(p.id);
      }
    }
  }
  if (ids.length === 0) return;
  await new Promise<void>((resolve) => {
    const p = spawn('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
    p.on('close', () => resolve());
    p.on('error', () => resolve());
  });
}
