/**
 * Scheduler end to end: the real `wharf server` and `wharf agent --runtime simulated` processes,
 * driven through the ECS API the way users drive it.
 *
 * Setup: one server child process (SQLite store, `--sync normal` by default), one agent child
 * process hosting N hollow instances (4 vCPU / 16 GiB each), and C concurrent clients (default 16) in this
 * process (one SDK v3 client each) calling RunTask with count=10 until T tasks are placed. Task:
 * one container, 32 CPU units / 128 MiB, no ports (so the cluster has room for every task).
 *
 * Reported: tasks placed per second (acknowledged by RunTask), median / p99 RunTask latency,
 * seconds until every task is RUNNING (DescribeClusters runningTasksCount, polled), the server's
 * and the agent's resident memory at the end (VmRSS / VmHWM from /proc), and placement failures.
 *
 *   npx tsx bench/scheduler-e2e.ts            1,000 instances, 100,000 tasks
 *   npx tsx bench/scheduler-e2e.ts --quick    100 instances, 5,000 tasks
 *   flags: --instances N --tasks N --clients N --sync full|normal
 *          --prof DIR (--cpu-prof of server and agent)  --heap DIR (server heap snapshot at the end)
 *          --server-heap-limit MIB (the server's --max-old-space-size)
 *          --heap-growth PERCENT (the server's --heap-growth; default its own)
 *          --runs N (repetitions, medians reported; default 3, 1 with --quick)
 *          --store sqlite|etcd [--replicas N] (etcd: N, default three, replicas on a three-member etcd; bench/scheduler-e2e-etcd.ts
 *          compares the two in one run)
 *          --clients-on-one-replica (etcd: every client calls the first replica instead of spreading
 *          round-robin, so one group-commit queue decides every placement: what a single placement
 *          writer would give)
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  ECSClient,
  ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
} from '@aws-sdk/client-ecs';
import { cpuOf, ecsCall, liveHeapOf, memoryOf, pct, request, stopChild, until, wharf } from './lib/processes';
import { ETCD_PREFIX, startControlPlane, type StoreKind } from './lib/control-plane';
import { Etcd3 } from 'etcd3';
import { ensureAgentToken } from '../src/cmd/agent-tokens';
import { decodeValue } from '../src/store/etcd/value-codec';

const REGION = 'us-east-1';
/** Seconds of idleness measured between the instances' registration and the first RunTask. */
const IDLE_SECONDS = 10;
const CLUSTER = 'bench';

export interface E2EOptions {
  quick?: boolean;
  instances?: number;
  tasks?: number;
  clients?: number;
  sync?: 'full' | 'normal';
  /** Directory for --cpu-prof output of the server and the agent (DIR/server, DIR/agent). */
  prof?: string;
  /** The server's V8 old-space limit in MiB (node --max-old-space-size); default: node's own. */
  serverHeapLimitMiB?: number;
  /** Directory for a heap snapshot of the server, taken when every task is RUNNING. */
  heap?: string;
  /** The server's --heap-growth (default: the server's own default). */
  heapGrowth?: number;
  /** Repetitions, each with a fresh server and agent (default 3; 1 with quick). */
  runs?: number;
  /**
   * Where the state lives: one server on SQLite (default), or three replicas on a three-member
   * etcd cluster (distributed mode), the clients spread over the replicas round-robin and the
   * agent given every replica's endpoint.
   */
  store?: StoreKind;
  /** Replicas on etcd (default 3). */
  replicas?: number;
  /** etcd: every client calls the first replica (default: spread round-robin over the replicas). */
  clientsOnOneReplica?: boolean;
}

/** Several runs and, per figure, their median. */
export interface E2ESeries {
  runs: E2EResult[];
  median: E2EResult;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs the benchmark `opts.runs` times; each figure of `median` is the median over the runs. */
export async function run(opts: E2EOptions = {}): Promise<E2ESeries> {
  const n = opts.runs ?? (opts.quick ? 1 : 3);
  const runs: E2EResult[] = [];
  for (let i = 0; i < n; i++) {
    process.stderr.write(`scheduler-e2e: run ${i + 1} of ${n}\n`);
    runs.push(await runOnce(opts));
  }
  const med = { ...runs[0]! } as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(med)) {
    if (typeof v === 'number') med[k] = +median(runs.map((r) => (r as unknown as Record<string, number>)[k]!)).toFixed(1);
  }
  return { runs, median: med as unknown as E2EResult };
}

export interface E2EResult {
  store: StoreKind;
  /** Control-plane processes (replicas on etcd); memory figures are the largest replica's. */
  servers: number;
  /** CPU seconds of the etcd members while placing (0 on SQLite). */
  etcdCpuPlacing: number;
  /** Raft proposals etcd committed while placing (each a write transaction; 0 on SQLite). */
  etcdCommitsPlacing: number;
  /**
   * Bytes per task placed, while placing (load-insensitive; 0 on SQLite): written to the etcd
   * members' WALs (all members) and sent by them to their clients (the replicas' watches and answers).
   */
  etcdBytesPerTask: { wal: number; sent: number };
  /**
   * A stored task record once RUNNING, mean of up to 1,000 (etcd only): the bytes etcd holds and
   * the record's JSON text (what it would hold as plain JSON).
   */
  taskRecordBytes: { stored: number; json: number } | null;
  /**
   * CPU-ms per second with every instance connected and nothing placed (IDLE_SECONDS before the
   * first RunTask): control plane (all replicas), etcd members, agent.
   */
  idleCpuMsPerSecond: { controlPlane: number; etcd: number; agent: number };
  /** Unary calls the etcd members answered while placing, per RunTask, by method (Range, Txn, ...). */
  etcdCallsPerRunTask: Record<string, number>;
  /** etcdCommitsPlacing per RunTask call (load-insensitive; 0 on SQLite). */
  etcdTxnsPerRunTask: number;
  /** CPU seconds per 1,000 tasks placed, while placing: control plane (all replicas), etcd members, agent. */
  cpuPer1000Tasks: { controlPlane: number; etcd: number; agent: number };
  /**
   * Group commit (control/placement-batch.ts), summed over the servers for the whole run: store
   * transactions that committed placements, the callers they answered, conflicts, the largest batch.
   */
  placementTxns: number;
  placementCalls: number;
  placementConflicts: number;
  placementLargestBatch: number;
  /** Agents' task state reports (whole run, all servers): the transactions, the reports they carried. */
  reportTxns: number;
  reports: number;
  instances: number;
  tasks: number;
  clients: number;
  /** Whether every client called the first replica (etcd; see E2EOptions.clientsOnOneReplica). */
  clientsOnOneReplica: boolean;
  sync: string;
  serverHeapLimitMiB: number | null;
  heapGrowth: number | null;
  registerSeconds: number;
  placed: number;
  failures: number;
  failureReasons: Record<string, number>;
  placeSeconds: number;
  placedPerSecond: number;
  runTaskP50Ms: number;
  runTaskP99Ms: number;
  allRunningSeconds: number | null;
  runningAtEnd: number;
  serverRssMiB: number;
  serverPeakRssMiB: number;
  agentRssMiB: number;
  /** The server's V8 heap in use at the end (live objects plus garbage not yet collected). */
  serverHeapUsedMiB: number;
  /** The server's V8 heap reserved at the end, and memory held outside it (buffers, SQLite is not counted). */
  serverHeapTotalMiB: number;
  serverExternalMiB: number;
  /** The server's heap after a full garbage collection (what 100,000 tasks really hold), and its RSS then. */
  serverLiveHeapMiB: number | null;
  serverRssAfterGcMiB: number | null;
  /** CPU seconds of the server and the agent while RunTask calls were being made. */
  serverCpuPlacing: number;
  agentCpuPlacing: number;
  /** Tasks placed per CPU-second of the server while placing: its rate with a core to itself. */
  placedPerServerCpuSecond: number;
  /** CPU seconds used during the run by each process (user + system). */
  serverCpuSeconds: number;
  agentCpuSeconds: number;
  clientCpuSeconds: number;
  /** API calls the server answered during the whole run, by operation (from /metrics). */
  apiCalls: Record<string, number>;
  /** 1-minute load average of the machine at the start of placement and at the end. */
  loadAverage: [number, number];
}

/** The mean size of up to 1,000 stored task records, as etcd holds them and as JSON text. */
async function storedTaskBytes(endpoints: string[]): Promise<{ stored: number; json: number } | null> {
  const client = new Etcd3({ hosts: endpoints });
  try {
    const kvs = (await client.getAll().prefix(`${ETCD_PREFIX}k/regions/${REGION}/tasks/${CLUSTER}/`).limit(1000).exec()).kvs;
    if (kvs.length === 0) return null;
    const mean = (f: (v: Buffer) => number) => Math.round(kvs.reduce((a, kv) => a + f(kv.value), 0) / kvs.length);
    return { stored: mean((v) => v.length), json: mean((v) => Buffer.byteLength(JSON.stringify(decodeValue(v)))) };
  } finally {
    client.close();
  }
}

/** One run: a fresh server and agent, every task placed and RUNNING. */
export async function runOnce(opts: E2EOptions = {}): Promise<E2EResult> {
  const instances = opts.instances ?? (opts.quick ? 100 : 1000);
  const total = opts.tasks ?? (opts.quick ? 5000 : 100_000);
  const clients = opts.clients ?? 16;
  const sync = opts.sync ?? 'normal';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-bench-e2e-'));
  const kind = opts.store ?? 'sqlite';
  const oneReplica = kind === 'etcd' && opts.clientsOnOneReplica === true;
  const log = (m: string) => process.stderr.write(`scheduler-e2e: ${m}\n`);
  // The server runs as `wharf server` would (default heap limit), so its memory is what a user sees.
  const nodeArgs: string[] = opts.serverHeapLimitMiB ? [`--max-old-space-size=${opts.serverHeapLimitMiB}`] : [];
  const profArgs = (who: string) => (opts.prof ? ['--cpu-prof', `--cpu-prof-dir=${path.join(opts.prof, who)}`] : []);
  const growth = opts.heapGrowth !== undefined ? ['--heap-growth', String(opts.heapGrowth)] : [];
  const cp = await startControlPlane({
    kind,
    dir,
    replicas: opts.replicas,
    serverArgs: ['--sync', sync, ...growth],
    nodeArgs: (i) => [
      ...nodeArgs,
      ...profArgs(`server-${i + 1}`),
      '--inspect=127.0.0.1:0',
      ...(opts.heap ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${opts.heap}`] : []),
    ],
  });
  const endpoint = cp.servers[0]!.endpoint;
  const servers = cp.servers;
  const etcdPids = cp.etcd?.members.map((m) => m.process.pid) ?? [];
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const serversCpu = () => sum(servers.map((s) => cpuOf(s.child.pid)));
  const etcdCpu = () => sum(etcdPids.map((p) => cpuOf(p)));
  // Every write transaction is one Raft proposal; the etcd leader's count is the cluster's. Bytes:
  // what the members wrote to their WALs and sent to their clients (the replicas' watches and
  // answers), summed over the members.
  const etcdCounters = async () => {
    const out = { commits: 0, walBytes: 0, sentBytes: 0, calls: {} as Record<string, number> };
    for (const m of cp.etcd?.members ?? []) {
      const text = (await request(`${m.clientUrl}/metrics`, { timeoutMs: 5000 }).catch(() => ({ text: '' }))).text;
      const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
      out.commits = Math.max(out.commits, metric('etcd_server_proposals_committed_total'));
      out.walBytes += metric('etcd_disk_wal_write_bytes_total');
      out.sentBytes += metric('etcd_network_client_grpc_sent_bytes_total');
      // Unary calls the members answered (Range, Txn, ...), by method; streams (Watch, LeaseKeepAlive) are counted when they end.
      for (const x of text.matchAll(/^grpc_server_handled_total\{[^}]*grpc_method="(\w+)"[^}]*grpc_type="unary"[^}]*\} (\S+)/gm)) {
        out.calls[x[1]!] = (out.calls[x[1]!] ?? 0) + Number(x[2]);
      }
    }
    return out;
  };
  let agent: ChildProcess | undefined;
  const sdk: ECSClient[] = [];
  try {
    const creds = { user: cp.credentials };
    let nextServer = 0;
    const client = () => {
      // Clients spread over the replicas (one server on SQLite), or all on the first.
      const c = new ECSClient({ endpoint: servers[oneReplica ? 0 : nextServer++ % servers.length]!.endpoint, region: REGION, credentials: creds.user, maxAttempts: 1 });
      sdk.push(c);
      return c;
    };
    nextServer = 0;
    const ecs = new ECSClient({ endpoint, region: REGION, credentials: creds.user, maxAttempts: 1 });
    sdk.push(ecs);
    await until('the server to answer', 60_000, async () => ecs.send(new CreateClusterCommand({ clusterName: CLUSTER })));
    const td = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'bench-e2e',
        containerDefinitions: [{ name: 'app', image: 'busybox', cpu: 32, memory: 128, essential: true, command: ['sleep', 'infinity'] }],
      }),
    );
    const tdArn = td.taskDefinition!.taskDefinitionArn!;

    const bound = ensureAgentToken(cp.dataDir, CLUSTER);
    const token = `${bound.accessKeyId}:${bound.secretAccessKey}`;
    const regStart = Date.now();
    agent = wharf(
      ['agent', '--runtime', 'simulated', '--instances', String(instances), '--cluster', CLUSTER, '--endpoint', servers.map((s) => s.endpoint).join(','), '--join-token', token, '--region', REGION, '--data-dir', path.join(dir, 'agent')],
      ['--max-old-space-size=4096', ...profArgs('agent')],
      path.join(dir, 'agent.log'),
    );
    // Every instance registered and its channel open (agentConnected).
    await until(`${instances} connected instances`, 300_000, async () => {
      let n = 0;
      let next: string | undefined;
      do {
        const out = await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER, filter: 'agentConnected == true', maxResults: 100, nextToken: next }));
        n += out.containerInstanceArns?.length ?? 0;
        next = out.nextToken;
      } while (next);
      return n >= instances ? n : undefined;
    }, 500);
    const registerSeconds = (Date.now() - regStart) / 1000;
    // What the processes burn with nothing to place (heartbeats, polls, controllers, Raft's own
    // heartbeats): a cost per second, which counts per task the more the slower tasks are placed.
    const idle0 = { server: serversCpu(), etcd: etcdCpu(), agent: cpuOf(agent.pid) };
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idleCpuMsPerSecond = {
      controlPlane: Math.round(((serversCpu() - idle0.server) / IDLE_SECONDS) * 1000),
      etcd: Math.round(((etcdCpu() - idle0.etcd) / IDLE_SECONDS) * 1000),
      agent: Math.round(((cpuOf(agent.pid) - idle0.agent) / IDLE_SECONDS) * 1000),
    };
    log(`${instances} instances connected in ${registerSeconds.toFixed(1)} s; idle CPU-ms/s ${JSON.stringify(idleCpuMsPerSecond)}; placing ${total} tasks with ${clients} clients`);

    const calls = Math.ceil(total / 10);
    let issued = 0;
    let placed = 0;
    let failures = 0;
    const failureReasons: Record<string, number> = {};
    const latencies: number[] = [];
    const load0 = os.loadavg()[0]!;
    const t0 = Date.now();
    const etcd0 = await etcdCounters();
    const cpu0 = { server: serversCpu(), etcd: etcdCpu(), agent: cpuOf(agent.pid), client: process.cpuUsage() };
    const worker = async () => {
      const c = client();
      while (issued < calls) {
        const i = issued++;
        const count = Math.min(10, total - i * 10);
        const s = performance.now();
        const out = await c.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: tdArn, count, launchType: 'EC2' }));
        latencies.push(performance.now() - s);
        placed += out.tasks?.length ?? 0;
        failures += out.failures?.length ?? 0;
        for (const f of out.failures ?? []) failureReasons[f.reason ?? '?'] = (failureReasons[f.reason ?? '?'] ?? 0) + 1;
      }
    };
    const progress = setInterval(() => log(`placed ${placed}/${total}`), 5000);
    await Promise.all(Array.from({ length: clients }, worker));
    clearInterval(progress);
    const placeSeconds = (Date.now() - t0) / 1000;
    const cpuPlacing = { server: serversCpu() - cpu0.server, etcd: etcdCpu() - cpu0.etcd, agent: cpuOf(agent.pid) - cpu0.agent };
    const etcd1 = await etcdCounters();
    const etcdCommitsPlacing = etcd1.commits - etcd0.commits;
    log(`placed ${placed} in ${placeSeconds.toFixed(1)} s (${failures} failures ${JSON.stringify(failureReasons)}); waiting for RUNNING`);

    let running = 0;
    let allRunningSeconds: number | null = null;
    const deadline = Date.now() + Math.max(120_000, total * 5);
    let lastLog = 0;
    while (Date.now() < deadline) {
      try {
        const out = await ecsCall<{ clusters?: { runningTasksCount?: number }[] }>(endpoint, creds.user, 'DescribeClusters', { clusters: [CLUSTER] }, 10_000);
        running = out.clusters?.[0]?.runningTasksCount ?? 0;
      } catch (e) {
        log(`DescribeClusters failed (${e instanceof Error ? e.message : String(e)}); polling again`);
      }
      if (running >= placed) {
        allRunningSeconds = (Date.now() - t0) / 1000;
        break;
      }
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log(`running ${running}/${placed}`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    const cpu = { server: serversCpu() - cpu0.server, agent: cpuOf(agent.pid) - cpu0.agent, client: process.cpuUsage(cpu0.client) };
    const apiCalls: Record<string, number> = {};
    let heapUsed = 0;
    let heapTotal = 0;
    let external = 0;
    const batching = { txns: 0, calls: 0, conflicts: 0, largest: 0, reportTxns: 0, reports: 0 };
    for (const srv of servers) {
      try {
        const text = (await request(`${srv.endpoint}/metrics`, { timeoutMs: 10_000 })).text;
        for (const m of text.matchAll(/^wharf_api_requests_total\{[^}]*operation="([^"]+)"[^}]*\} (\d+)/gm)) {
          apiCalls[m[1]!] = (apiCalls[m[1]!] ?? 0) + Number(m[2]);
        }
        const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0) / 1024 / 1024;
        const count = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
        batching.txns += count('wharf_placement_txns');
        batching.calls += count('wharf_placement_calls');
        batching.conflicts += count('wharf_placement_conflicts');
        batching.largest = Math.max(batching.largest, count('wharf_placement_largest_batch'));
        batching.reportTxns += count('wharf_task_report_txns');
        batching.reports += count('wharf_task_reports');
        heapUsed = Math.max(heapUsed, gauge('wharf_nodejs_heap_size_used_bytes'));
        heapTotal = Math.max(heapTotal, gauge('wharf_nodejs_heap_size_total_bytes'));
        external = Math.max(external, gauge('wharf_nodejs_external_memory_bytes'));
      } catch (e) {
        log(`reading /metrics failed (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    // Memory: the largest replica's (the goal is per replica).
    const mems = servers.map((s) => memoryOf(s.child.pid));
    const mem = { rss: Math.max(...mems.map((m) => m.rss)), hwm: Math.max(...mems.map((m) => m.hwm)) };
    let live: { heapUsedMiB: number; rssMiB: number } | undefined;
    for (const srv of servers) {
      const l = await liveHeapOf(srv.log).catch((e: unknown) => {
        log(`measuring the live heap failed (${e instanceof Error ? e.message : String(e)})`);
        return undefined;
      });
      if (l && (!live || l.heapUsedMiB > live.heapUsedMiB)) live = l;
    }
    if (opts.heap) {
      for (const srv of servers) srv.child.kill('SIGUSR2');
      await new Promise((r) => setTimeout(r, 20_000));
    }
    const agentMem = memoryOf(agent.pid);
    latencies.sort((a, b) => a - b);
    return {
      store: kind,
      servers: servers.length,
      etcdCpuPlacing: +cpuPlacing.etcd.toFixed(1),
      etcdCommitsPlacing,
      etcdTxnsPerRunTask: +(etcdCommitsPlacing / calls).toFixed(2),
      etcdBytesPerTask: {
        wal: Math.round((etcd1.walBytes - etcd0.walBytes) / Math.max(1, placed)),
        sent: Math.round((etcd1.sentBytes - etcd0.sentBytes) / Math.max(1, placed)),
      },
      taskRecordBytes: cp.etcd ? await storedTaskBytes(cp.etcd.endpoints) : null,
      idleCpuMsPerSecond,
      etcdCallsPerRunTask: Object.fromEntries(
        Object.entries(etcd1.calls)
          .map(([k, v]) => [k, +((v - (etcd0.calls[k] ?? 0)) / calls).toFixed(2)] as const)
          .filter(([, v]) => v > 0),
      ),
      cpuPer1000Tasks: {
        controlPlane: +((cpuPlacing.server / Math.max(1, placed)) * 1000).toFixed(2),
        etcd: +((cpuPlacing.etcd / Math.max(1, placed)) * 1000).toFixed(2),
        agent: +((cpuPlacing.agent / Math.max(1, placed)) * 1000).toFixed(2),
      },
      placementTxns: batching.txns,
      placementCalls: batching.calls,
      placementConflicts: batching.conflicts,
      placementLargestBatch: batching.largest,
      reportTxns: batching.reportTxns,
      reports: batching.reports,
      instances,
      tasks: total,
      clients,
      clientsOnOneReplica: oneReplica,
      sync,
      serverHeapLimitMiB: opts.serverHeapLimitMiB ?? null,
      heapGrowth: opts.heapGrowth ?? null,
      registerSeconds: +registerSeconds.toFixed(1),
      placed,
      failures,
      failureReasons,
      placeSeconds: +placeSeconds.toFixed(2),
      placedPerSecond: Math.round(placed / placeSeconds),
      runTaskP50Ms: +pct(latencies, 50).toFixed(1),
      runTaskP99Ms: +pct(latencies, 99).toFixed(1),
      allRunningSeconds: allRunningSeconds === null ? null : +allRunningSeconds.toFixed(1),
      runningAtEnd: running,
      serverRssMiB: Math.round(mem.rss),
      serverPeakRssMiB: Math.round(mem.hwm),
      agentRssMiB: Math.round(agentMem.rss),
      serverHeapUsedMiB: Math.round(heapUsed),
      serverHeapTotalMiB: Math.round(heapTotal),
      serverLiveHeapMiB: live?.heapUsedMiB ?? null,
      serverRssAfterGcMiB: live?.rssMiB ?? null,
      serverExternalMiB: Math.round(external),
      serverCpuPlacing: +cpuPlacing.server.toFixed(1),
      agentCpuPlacing: +cpuPlacing.agent.toFixed(1),
      placedPerServerCpuSecond: Math.round(placed / Math.max(0.01, cpuPlacing.server)),
      serverCpuSeconds: +cpu.server.toFixed(1),
      agentCpuSeconds: +cpu.agent.toFixed(1),
      clientCpuSeconds: +((cpu.client.user + cpu.client.system) / 1e6).toFixed(1),
      apiCalls,
      loadAverage: [+load0.toFixed(1), +os.loadavg()[0]!.toFixed(1)],
    };
  } finally {
    for (const c of sdk) c.destroy();
    if (agent) await stopChild(agent);
    await cp.stop();
    if (process.env.WHARF_BENCH_KEEP) log(`kept ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function toMarkdown(series: E2ESeries): string {
  const r = series.median;
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const each = (f: (x: E2EResult) => number | null) => series.runs.map((x) => f(x) ?? '?').join(', ');
  const lines = [
    `Medians of ${series.runs.length} run${series.runs.length === 1 ? '' : 's'}, each with a fresh server and agent ` +
      `(per run: placed/s ${each((x) => x.placedPerSecond)}; peak server RSS MiB ${each((x) => x.serverPeakRssMiB)}; ` +
      `s until all RUNNING ${each((x) => x.allRunningSeconds)}).`,
    '',
    `${r.instances.toLocaleString('en-US')} hollow instances in one \`wharf agent --runtime simulated\` process, ` +
      `${r.tasks.toLocaleString('en-US')} tasks via RunTask (count 10, ${r.clients} concurrent SDK v3 clients), ` +
      `server \`--sync ${r.sync}\`${r.heapGrowth !== null ? ` --heap-growth ${r.heapGrowth}` : ' (default --heap-growth 50)'}` +
      `${r.serverHeapLimitMiB ? ` with node --max-old-space-size=${r.serverHeapLimitMiB}` : ''}; server, agent and clients share this machine.`,
    '',
    '| figure | Wharf | goal / anchor |',
    '|---|---|---|',
    `| tasks placed per second (RunTask acknowledged) | ${r.placedPerSecond} | goal >= 2,000 (${goal(r.placedPerSecond >= 2000)}); Nomad C2M ~1,500/s on 6,100 hosts; kube-scheduler floor 680-810 pods/s at 5,000 nodes |`,
    `| tasks placed per CPU-second of the server while placing | ${r.placedPerServerCpuSecond} | derived: the rate with a core to itself (server ${r.serverCpuPlacing} s, agent ${r.agentCpuPlacing} s CPU while placing) |`,
    `| tasks placed / failures | ${r.placed} / ${r.failures}${r.failures ? ` ${JSON.stringify(r.failureReasons)}` : ''} | |`,
    `| RunTask latency p50 / p99 (ms) | ${r.runTaskP50Ms} / ${r.runTaskP99Ms} | |`,
    `| seconds from first RunTask until all RUNNING | ${r.allRunningSeconds ?? `not reached (${r.runningAtEnd} running)`} | |`,
    `| server RSS at end / peak (MiB) | ${r.serverRssMiB} / ${r.serverPeakRssMiB} | goal < 1,024 with 100,000 tasks (${goal(r.serverPeakRssMiB < 1024)}) |`,
    `| server live heap / RSS after a full garbage collection (MiB) | ${r.serverLiveHeapMiB ?? '?'} / ${r.serverRssAfterGcMiB ?? '?'} | what the 100,000 tasks and their indexes hold |`,
    `| server V8 heap used / reserved, external memory at end (MiB) | ${r.serverHeapUsedMiB} / ${r.serverHeapTotalMiB}, ${r.serverExternalMiB} | the rest of the RSS is code, stacks and SQLite's cache |`,
    `| agent process RSS at end (MiB) | ${r.agentRssMiB} | |`,
    `| seconds to register and connect all instances | ${r.registerSeconds} | |`,
    `| CPU seconds until all RUNNING: server / agent / clients | ${r.serverCpuSeconds} / ${r.agentCpuSeconds} / ${r.clientCpuSeconds} | ${os.cpus().length} cores shared; load average ${r.loadAverage[0]} at start, ${r.loadAverage[1]} at end |`,
    `| API calls answered (whole run) | ${Object.entries(r.apiCalls).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')} | |`,
    '',
    'What differs from the anchors: Nomad C2M placed its containers on a fleet of real cloud hosts, with the ' +
      'scheduler servers on machines of their own; the kube-scheduler figure is its scheduling benchmark, where ' +
      'the nodes are fake and a pod counts once bound (no kubelet runs it). Here the control plane (one process, ' +
      'embedded SQLite), the agent process hosting every hollow instance (each with its own WebSocket and its own ' +
      'state reports over the API) and the clients all share one small machine, so the agent\'s work competes ' +
      'with the scheduler for the same cores. A task counts as placed when RunTask returns it (decision and ' +
      'reservation committed), like a binding; RUNNING when the agent has reported it. The "per CPU-second" row ' +
      'is the placement rate the server would reach with a core to itself.',
  ];
  return lines.join('\n') + '\n';
}

function argOf(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const num = (n: string) => (argOf(argv, n) !== undefined ? Number(argOf(argv, n)) : undefined);
  run({
    quick: argv.includes('--quick'),
    instances: num('--instances'),
    tasks: num('--tasks'),
    clients: num('--clients'),
    sync: argOf(argv, '--sync') as 'full' | 'normal' | undefined,
    prof: argOf(argv, '--prof'),
    heap: argOf(argv, '--heap'),
    serverHeapLimitMiB: num('--server-heap-limit'),
    heapGrowth: num('--heap-growth'),
    runs: num('--runs'),
    store: argOf(argv, '--store') as StoreKind | undefined,
    replicas: num('--replicas'),
    clientsOnOneReplica: argv.includes('--clients-on-one-replica'),
  })
    .then((r) => {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n\n' + toMarkdown(r));
    })
    .catch((e: unknown) => {
      process.stderr.write(`scheduler-e2e: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    });
}
