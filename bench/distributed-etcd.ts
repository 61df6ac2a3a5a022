/**
 * Distributed mode (issue 13): what a user of three replicas on etcd gets, measured in the same
 * run against one server on SQLite.
 *
 * (a) Leader failover: three `wharf server --store etcd://...` replicas on a three-member etcd
 *     cluster (loopback). `kills` times over: SIGKILL the replica whose /healthz says it leads,
 *     then poll the others' /healthz every 20 ms until one answers `leader: true`. The time from
 *     the kill to that answer is the failover time (the leader lease TTL is 5 s, so it is bounded
 *     below by what is left of the dead leader's lease). The killed replica is started again
 *     before the next kill, so there are always three.
 * (b) RunTask latency: `calls` RunTask calls (count 1), `clients` at a time, spread round-robin
 *     over the replicas, onto a cluster of simulated instances (one `wharf agent --runtime
 *     simulated` process joined to every replica); the same against one SQLite server
 *     (`--sync normal`, as scheduler-e2e).
 *
 *   npx tsx bench/distributed-etcd.ts            10 kills, 1,000 RunTask calls
 *   npx tsx bench/distributed-etcd.ts --quick    3 kills, 200 calls
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateClusterCommand, ECSClient, ListContainerInstancesCommand, RegisterTaskDefinitionCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import { healthz, startControlPlane, type BenchControlPlane, type StoreKind } from './lib/control-plane';
import { pct, stopChild, until, wharf } from './lib/processes';
import { ensureAgentToken } from '../src/cmd/agent-tokens';

const REGION = 'us-east-1';
const CLUSTER = 'bench';

export interface FailoverResult {
  kills: number;
  failoverMs: number[];
  medianMs: number;
  maxMs: number;
}

export interface LatencyResult {
  store: string;
  servers: number;
  calls: number;
  clients: number;
  placed: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  callsPerSecond: number;
}

export interface DistributedResult {
  failover: FailoverResult;
  runTask: LatencyResult[];
  loadAverage: [number, number];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const log = (m: string) => process.stderr.write(`distributed-etcd: ${m}\n`);

async function leaderIndex(cp: BenchControlPlane, except = -1): Promise<number | undefined> {
  const answers = await Promise.all(cp.servers.map((s, i) => (i === except || s.child.exitCode !== null ? undefined : healthz(s.endpoint).catch(() => undefined))));
  const i = answers.findIndex((a) => a?.leader === true);
  return i >= 0 ? i : undefined;
}

export async function failover(kills: number): Promise<FailoverResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-bench-failover-'));
  const cp = await startControlPlane({ kind: 'etcd', dir });
  const times: number[] = [];
  try {
    for (let k = 0; k < kills; k++) {
      const l = await until('a leader', 30_000, () => leaderIndex(cp), 50);
      const victim = cp.servers[l]!.child;
      const gone = new Promise((r) => victim.once('exit', r));
      const t0 = performance.now();
      victim.kill('SIGKILL');
      await until('another leader', 60_000, () => leaderIndex(cp, l), 20);
      const ms = performance.now() - t0;
      times.push(Math.round(ms));
      log(`kill ${k + 1}/${kills}: replica ${l + 1} killed, another leads after ${Math.round(ms)} ms`);
      await gone;
      await cp.restart(l);
    }
  } finally {
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { kills, failoverMs: times, medianMs: median(times), maxMs: Math.max(...times) };
}

export async function runTaskLatency(kind: StoreKind, calls: number, clients: number, instances: number): Promise<LatencyResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `wharf-bench-runtask-${kind}-`));
  const cp = await startControlPlane({ kind, dir, serverArgs: ['--sync', 'normal'] });
  let agent: ChildProcess | undefined;
  const sdk: ECSClient[] = [];
  try {
    const client = (endpoint: string) => {
      const c = new ECSClient({ endpoint, region: REGION, credentials: cp.credentials, maxAttempts: 1 });
      sdk.push(c);
      return c;
    };
    const ecs = client(cp.servers[0]!.endpoint);
    await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }));
    const td = await ecs.send(new RegisterTaskDefinitionCommand({ family: 'bench-latency', containerDefinitions: [{ name: 'app', image: 'busybox', cpu: 32, memory: 128, essential: true }] }));
    const token = ensureAgentToken(cp.dataDir, CLUSTER);
    agent = wharf(
      ['agent', '--runtime', 'simulated', '--instances', String(instances), '--cluster', CLUSTER, '--endpoint', cp.servers.map((s) => s.endpoint).join(','), '--join-token', `${token.accessKeyId}:${token.secretAccessKey}`, '--region', REGION, '--data-dir', path.join(dir, 'agent')],
      [],
      path.join(dir, 'agent.log'),
    );
    await until(`${instances} connected instances`, 120_000, async () => {
      const out = await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER, filter: 'agentConnected == true', maxResults: 100 }));
      return (out.containerInstanceArns?.length ?? 0) >= instances ? true : undefined;
    }, 500);
    // Every replica has seen the instances before the clock starts (its cache follows etcd's watch).
    const perServer = cp.servers.map((s) => client(s.endpoint));
    for (const c of perServer) {
      await until('the instances on every replica', 30_000, async () => ((await c.send(new ListContainerInstancesCommand({ cluster: CLUSTER, maxResults: 100 }))).containerInstanceArns?.length ?? 0) >= instances ? true : undefined);
    }
    const latencies: number[] = [];
    let issued = 0;
    let placed = 0;
    let failures = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (issued < calls) {
          const i = issued++;
          const c = perServer[i % perServer.length]!;
          const s = performance.now();
          const out = await c.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: td.taskDefinition!.taskDefinitionArn!, count: 1 }));
          latencies.push(performance.now() - s);
          placed += out.tasks?.length ?? 0;
          failures += out.failures?.length ?? 0;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const r: LatencyResult = {
      store: kind === 'etcd' ? 'etcd (3 members)' : 'SQLite',
      servers: cp.servers.length,
      calls,
      clients,
      placed,
      failures,
      p50Ms: +pct(latencies, 50).toFixed(1),
      p99Ms: +pct(latencies, 99).toFixed(1),
      callsPerSecond: Math.round(calls / seconds),
    };
    log(`RunTask on ${kind}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${placed} placed, ${failures} failures)`);
    return r;
  } finally {
    for (const c of sdk) c.destroy();
    if (agent) await stopChild(agent);
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: { quick?: boolean; kills?: number; calls?: number; clients?: number } = {}): Promise<DistributedResult> {
  const load0 = os.loadavg()[0]!;
  const calls = opts.calls ?? (opts.quick ? 200 : 1000);
  const clients = opts.clients ?? 4;
  const instances = 20;
  // SQLite first, then etcd, then failover: each with a machine as quiet as the previous left it.
  const runTask = [await runTaskLatency('sqlite', calls, clients, instances), await runTaskLatency('etcd', calls, clients, instances)];
  const fo = await failover(opts.kills ?? (opts.quick ? 3 : 10));
  return { failover: fo, runTask, loadAverage: [+load0.toFixed(1), +os.loadavg()[0]!.toFixed(1)] };
}

export function toMarkdown(r: DistributedResult): string {
  const [sqlite, etcd] = r.runTask;
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : '?');
  return [
    `Three \`wharf server --store etcd://...\` replicas on a three-member etcd 3.4 cluster, all on loopback on this machine ` +
      `(${os.cpus().length} cores, shared with other work: load average ${r.loadAverage[0]} at start, ${r.loadAverage[1]} at end); baseline: one server on SQLite (\`--sync normal\`), measured in the same run.`,
    '',
    `**Leader failover** (${r.failover.kills} kills): SIGKILL of the replica whose /healthz says it leads, until another replica's /healthz answers \`leader: true\` (lease TTL 4 s, the default; waiting replicas watch the leader key and campaign the moment it goes).`,
    '',
    '| figure | Wharf | goal |',
    '|---|---|---|',
    `| failover time, median (ms) | ${r.failover.medianMs} | issue 13: another replica leads within 5 s (${r.failover.medianMs <= 5000 ? 'met' : 'NOT met'}) |`,
    `| failover time, max (ms) | ${r.failover.maxMs} | (${r.failover.maxMs <= 5000 ? 'met' : 'NOT met'}) |`,
    `| each kill (ms) | ${r.failover.failoverMs.join(', ')} | |`,
    '',
    `**RunTask latency** (count 1, ${sqlite!.calls} calls, ${sqlite!.clients} clients at a time; on etcd spread round-robin over the replicas; 20 simulated instances).`,
    '',
    '| store | servers | p50 (ms) | p99 (ms) | calls/s | placed / failures | p50, p99 vs SQLite |',
    '|---|---|---|---|---|---|---|',
    ...r.runTask.map((x) => `| ${x.store} | ${x.servers} | ${x.p50Ms} | ${x.p99Ms} | ${x.callsPerSecond} | ${x.placed} / ${x.failures} | ${ratio(x.p50Ms, sqlite!.p50Ms)}x, ${ratio(x.p99Ms, sqlite!.p99Ms)}x |`),
    '',
    `On etcd a RunTask is a read from the replica's cache and one etcd transaction (a Raft commit: a round trip to a majority of members and an fsync on each); on SQLite it is one local transaction. p50 on etcd is ${ratio(etcd!.p50Ms, sqlite!.p50Ms)}x SQLite's.`,
    '',
    'Command: `npx tsx bench/run.ts distributed-etcd` (or `npx tsx bench/distributed-etcd.ts`; `--quick`: 3 kills, 200 calls). Failover is bounded by the lease: etcd lets the leader key go only when the lease expires, counted from the last keep-alive (renewed every TTL/3), so a new leader answers between about TTL less a renewal interval and TTL after the kill, plus etcd\'s own expiry check.',
    '',
  ].join('\n');
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const num = (n: string) => (argv.includes(n) ? Number(argv[argv.indexOf(n) + 1]) : undefined);
  run({ quick: argv.includes('--quick'), kills: num('--kills'), calls: num('--calls'), clients: num('--clients') })
    .then((r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n\n' + toMarkdown(r)))
    .catch((e: unknown) => {
      process.stderr.write(`distributed-etcd: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    });
}
