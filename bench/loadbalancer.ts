/**
 * The load balancer data plane (src/loadbalancer/, HAProxy) against no load balancer at all, in
 * the same run: wrk (bench/lib/wrk.ts) drives an HTTP listener in front of 3 targets, then the
 * same load straight to one target. Targets are node HTTP servers with keep-alive (as a real
 * service's would be; a server that forks or closes per request would measure its own cost), one
 * child process each, answering a 13-byte body. Every target is healthy before the load starts.
 *
 * Goal (issue 11): through the listener at least 0.8x the direct throughput (both saturated, 32
 * keep-alive connections), and under 1 ms added to the median latency (at about 1000 req/s, where
 * neither path is short of CPU, so the figure is the hop's own cost and not queueing).
 *
 * Saturated throughput on a small machine is a question of whose CPU the hop uses, so it is
 * measured twice, the same way for both paths each time:
 *   shared  no pinning: wrk, HAProxy and the targets share every cpu. The listener's hop costs
 *           CPU the targets and the generator would otherwise have, so the ratio is
 *           (generator + one target) / (generator + HAProxy + target) CPU per request.
 *   own-cpu HAProxy pinned to cpu 1 (taskset), wrk and every target to cpu 0, in both runs (in
 *           the direct run cpu 1 idles): an ELB's nodes are not the tasks' or the clients'
 *           machines, and this asks whether the hop itself limits what clients get from the
 *           tasks. Only on 2 or more cpus.
 * Then the same three paths with targets that compute per request as an application does (a fixed
 * amount of CPU, 100 and 250 µs, see TARGET_SOURCE), shared cpus only and fewer rounds: the
 * trivial targets are the worst case for any proxy (its hop costs more CPU than the target's
 * answer), these show what spreading the load across tasks buys when the tasks do work.
 * Each round measures every pair back to back (alternating which path goes first), and the
 * tables give medians over the rounds; ratios are taken within a round, then their median. The
 * CPU each process used (from /proc) is given per request, and the CPU other work on the machine
 * used meanwhile, since the machine may be shared.
 *
 *   npx tsx bench/run.ts loadbalancer [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { targetGroupDefaults, type DesiredState } from '../src/loadbalancer/model';
import { LoadBalancerReconciler } from '../src/loadbalancer/reconciler';
import { childPids, cpuSeconds, ensureCommands, machineBusySeconds, pin, wrk, wrkCleanup, type WrkResult } from './lib/wrk';

/**
 * A target: GET / answers 13 bytes at once (the trivial profile, the health check's path). GET
 * /work/<n> first computes (a multiply-add chain) until its process has used n more microseconds
 * of CPU (user + system, process.cpuUsage), as an application's handler spends CPU per request,
 * then answers the chain's value. Measured CPU, not a counted loop: the same amount of work
 * whatever the contention, and never a sleep, which would cost no CPU.
 */
const TARGET_SOURCE = `
const http = require('node:http');
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
function work(us) {
  const end = cpu() + us;
  let x = 1;
  do for (let i = 0; i < 1000; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  while (cpu() < end);
  return x >>> 0;
}
const s = http.createServer((req, res) => {
  const m = /^\\/work\\/(\\d+)$/.exec(req.url);
  res.writeHead(200, { 'content-type': 'text/plain' }).end(m ? work(Number(m[1])) + '\\n' : 'hello, world\\n');
});
s.keepAliveTimeout = 65000;
s.listen(0, '127.0.0.1', () => process.send(s.address().port));
`;

const LB_ADDRESS = '127.100.250.1';
const THROUGHPUT_GOAL = 0.8;
const ADDED_P50_GOAL_MS = 1;
const CONNECTIONS = 32;
const PACED_CONNECTIONS = 8;
/** Per connection: a request, then this pause; 8 connections come to about 1000 req/s. */
const PAUSE_MS = 7;
/** CPU microseconds a target spends on each request in the realistic profiles. */
const WORK_PROFILES_US = [100, 250];
/** Cores of other work (median of a path) above which the section says its figures are not the hop's. */
const OTHER_WORK_WARNING = 0.25;

type Mode = 'shared' | 'own-cpu' | 'paced';
type Path = 'direct' | 'listener' | 'listener1';

interface Run extends WrkResult {
  /** CPU microseconds per request: wrk, HAProxy (master and workers), the targets together. */
  usPerRequest: { generator: number; haproxy: number; targets: number };
  /** Cores other processes on the machine kept busy during the run. */
  otherCores: number;
}

export interface LoadBalancerBenchResult {
  host: string;
  cpus: number;
  haproxy: string;
  rounds: number;
  seconds: number;
  loadAverage: [number, number];
  /** Medians over the rounds, per mode and path. */
  medians: Record<Mode, Record<Path, Run>>;
  /** Per round: listener req/s / direct req/s, per saturated mode; listener p50 - direct p50 when paced. */
  ratios: Record<'shared' | 'own-cpu', number[]>;
  /** The same through the listener in front of the direct run's one target. */
  ratios1: Record<'shared' | 'own-cpu', number[]>;
  addedP50Ms: number[];
  addedP99Ms: number[];
  /** Targets that compute per request: shared cpus only, fewer rounds. */
  work: WorkProfileResult[];
}

export interface WorkProfileResult {
  /** CPU microseconds each target spends per request. */
  workUs: number;
  rounds: number;
  medians: Record<Path, Run>;
  /** Per round, listener req/s / direct req/s: in front of 3 targets, and of the same one. */
  ratios: number[];
  ratios1: number[];
}

function startTarget(): Promise<{ port: number; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', TARGET_SOURCE], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (port) => resolve({ port: Number(port), child }));
    child.once('error', reject);
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The field-by-field median of several runs. */
function medianRun(runs: Run[]): Run {
  const m = (f: (r: Run) => number) => median(runs.map(f));
  return {
    requestsPerSec: m((r) => r.requestsPerSec),
    meanMs: m((r) => r.meanMs),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    cpuSeconds: m((r) => r.cpuSeconds),
    usPerRequest: { generator: m((r) => r.usPerRequest.generator), haproxy: m((r) => r.usPerRequest.haproxy), targets: m((r) => r.usPerRequest.targets) },
    otherCores: m((r) => r.otherCores),
  };
}

export async function run(opts: { quick?: boolean } = {}): Promise<LoadBalancerBenchResult> {
  ensureCommands({ haproxy: 'haproxy', wrk: 'wrk', taskset: 'util-linux' }, (line) => process.stderr.write(line + '\n'));
  const rounds = opts.quick ? 2 : 5;
  const seconds = opts.quick ? 2 : 5;
  const workRounds = opts.quick ? 1 : 3;
  const ownCpu = os.cpus().length >= 2;
  const loadAtStart = os.loadavg()[0]!;
  const targets = await Promise.all([startTarget(), startTarget(), startTarget()]);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-lb-bench-'));
  const lb = new LoadBalancerReconciler(dataDir);
  try {
    await lb.start();
    const d = targetGroupDefaults('HTTP');
    const desired: DesiredState = {
      loadBalancers: [
        {
          id: 'bench',
          type: 'application',
          address: LB_ADDRESS,
          listeners: [
            { id: 'http', port: 18999, protocol: 'HTTP', defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'web', weight: 1 }] }], rules: [] },
            { id: 'one', port: 18998, protocol: 'HTTP', defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'one', weight: 1 }] }], rules: [] },
          ],
        },
      ],
      targetGroups: [
        {
          ...d,
          id: 'web',
          port: 80,
          healthCheck: { ...d.healthCheck, intervalSeconds: 1, healthyThreshold: 2 },
          targets: targets.map((t) => ({ id: '127.0.0.1', port: t.port })),
        },
        // The same listener in front of the direct run's one target: the hop alone, without the
        // cost of spreading the load over 3 processes on the same cpus.
        { ...d, id: 'one', port: 80, healthCheck: { ...d.healthCheck, intervalSeconds: 1, healthyThreshold: 2 }, targets: [{ id: '127.0.0.1', port: targets[0]!.port }] },
      ],
    };
    await lb.apply(desired);
    const until = Date.now() + 20_000;
    const healthy = (h: Awaited<ReturnType<LoadBalancerReconciler['health']>>) => ['web', 'one'].every((g) => (h.get(g) ?? []).every((t) => t.health.state === 'healthy'));
    while (!healthy(await lb.health())) {
      if (Date.now() > until) throw new Error('the targets did not become healthy');
      await new Promise((r) => setTimeout(r, 100));
    }
    const master = lb.supervisor.masterPid;
    if (master === undefined) throw new Error('HAProxy is not running');
    const haproxyPids = () => [master, ...childPids(master)];
    const targetPids = targets.map((t) => t.child.pid!);
    const urls: Record<Path, string> = { listener: `http://${LB_ADDRESS}:18999/`, listener1: `http://${LB_ADDRESS}:18998/`, direct: `http://127.0.0.1:${targets[0]!.port}/` };

    const measure = async (mode: Mode, p: Path, workUs = 0): Promise<Run> => {
      const before = { haproxy: haproxyPids().map(cpuSeconds), targets: targetPids.map(cpuSeconds), busy: machineBusySeconds() };
      const r = await wrk(workUs > 0 ? `${urls[p]}work/${workUs}` : urls[p], {
        connections: mode === 'paced' ? PACED_CONNECTIONS : CONNECTIONS,
        seconds,
        ...(mode === 'paced' ? { pauseMs: PAUSE_MS } : {}),
        ...(mode === 'own-cpu' ? { cpus: '0' } : {}),
      });
      const sum = (xs: number[]) => xs.reduce((s, v) => s + v, 0);
      const used = { haproxy: sum(haproxyPids().map(cpuSeconds)) - sum(before.haproxy), targets: sum(targetPids.map(cpuSeconds)) - sum(before.targets) };
      const busy = machineBusySeconds() - before.busy;
      const requests = r.requestsPerSec * seconds;
      const us = (cpu: number) => (cpu / requests) * 1e6;
      return {
        ...r,
        usPerRequest: { generator: us(r.cpuSeconds), haproxy: us(used.haproxy), targets: us(used.targets) },
        otherCores: Math.max(0, (busy - r.cpuSeconds - used.haproxy - used.targets) / seconds),
      };
    };
    const setPinning = (on: boolean) => {
      pin(targetPids, on ? '0' : `0-${os.cpus().length - 1}`);
      pin(haproxyPids(), on ? '1' : `0-${os.cpus().length - 1}`);
    };

    // Warm both paths (JIT, connection pools).
    await wrk(urls.listener, { connections: CONNECTIONS, seconds: 1 });
    await wrk(urls.listener1, { connections: CONNECTIONS, seconds: 1 });
    await wrk(urls.direct, { connections: CONNECTIONS, seconds: 1 });
    const none = (): Record<Path, Run[]> => ({ direct: [], listener: [], listener1: [] });
    const runs: Record<Mode, Record<Path, Run[]>> = { shared: none(), 'own-cpu': none(), paced: none() };
    const ratios: LoadBalancerBenchResult['ratios'] = { shared: [], 'own-cpu': [] };
    const ratios1: LoadBalancerBenchResult['ratios'] = { shared: [], 'own-cpu': [] };
    const addedP50Ms: number[] = [];
    const addedP99Ms: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order: Path[] = round % 2 ? ['listener', 'listener1', 'direct'] : ['direct', 'listener1', 'listener'];
      const modes: Mode[] = ownCpu ? ['shared', 'own-cpu', 'paced'] : ['shared', 'paced'];
      for (const mode of modes) {
        if (mode === 'own-cpu') setPinning(true);
        const got = {} as Record<Path, Run>;
        try {
          for (const p of order) got[p] = await measure(mode, p);
        } finally {
          if (mode === 'own-cpu') setPinning(false);
        }
        for (const p of order) runs[mode][p].push(got[p]);
        if (mode === 'paced') {
          addedP50Ms.push(got.listener.p50Ms - got.direct.p50Ms);
          addedP99Ms.push(got.listener.p99Ms - got.direct.p99Ms);
        } else {
          ratios[mode].push(got.listener.requestsPerSec / got.direct.requestsPerSec);
          ratios1[mode].push(got.listener1.requestsPerSec / got.direct.requestsPerSec);
        }
      }
    }
    const work: WorkProfileResult[] = [];
    for (const workUs of WORK_PROFILES_US) {
      await wrk(`${urls.listener}work/${workUs}`, { connections: CONNECTIONS, seconds: 1 });
      const got: Record<Path, Run[]> = none();
      const ratios: number[] = [];
      const ratios1: number[] = [];
      for (let round = 0; round < workRounds; round++) {
        const order: Path[] = round % 2 ? ['listener', 'listener1', 'direct'] : ['direct', 'listener1', 'listener'];
        const one = {} as Record<Path, Run>;
        for (const p of order) one[p] = await measure('shared', p, workUs);
        for (const p of order) got[p].push(one[p]);
        ratios.push(one.listener.requestsPerSec / one.direct.requestsPerSec);
        ratios1.push(one.listener1.requestsPerSec / one.direct.requestsPerSec);
      }
      work.push({ workUs, rounds: workRounds, medians: { direct: medianRun(got.direct), listener: medianRun(got.listener), listener1: medianRun(got.listener1) }, ratios, ratios1 });
    }
    const version = /version is (\S+)/.exec(fs.readFileSync(path.join(dataDir, 'haproxy.log'), 'utf8'))?.[1] ?? '?';
    const medians = {} as LoadBalancerBenchResult['medians'];
    for (const mode of Object.keys(runs) as Mode[]) {
      if (runs[mode].direct.length > 0) medians[mode] = { direct: medianRun(runs[mode].direct), listener: medianRun(runs[mode].listener), listener1: medianRun(runs[mode].listener1) };
    }
    return {
      cpus: os.cpus().length,
      host: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`,
      haproxy: version,
      rounds,
      seconds,
      loadAverage: [loadAtStart, os.loadavg()[0]!],
      medians,
      ratios,
      ratios1,
      addedP50Ms,
      addedP99Ms,
      work,
    };
  } finally {
    await lb.stop();
    wrkCleanup();
    for (const t of targets) t.child.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const n = (v: number, digits = 2) => String(+v.toFixed(digits));
const list = (xs: number[], digits = 2) => xs.map((x) => n(x, digits)).join(', ');
const met = (ok: boolean) => (ok ? 'met' : 'not met');
const TABLE_HEAD = [
  '| Path | req/s | p50 ms | p99 ms | mean ms | wrk CPU µs/req | HAProxy CPU µs/req | targets CPU µs/req | other cores | errors | non-2xx |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
/** CPU microseconds per request, all processes of the path together. */
const cpu = (l: Run) => l.usPerRequest.generator + l.usPerRequest.haproxy + l.usPerRequest.targets;
/** Cpus a component kept busy on average: its CPU per request times requests per second. */
const cores = (l: Run, part: keyof Run['usPerRequest']) => (l.usPerRequest[part] * l.requestsPerSec) / 1e6;

/**
 * The targets that compute: their table, the ratios against the goal, and the CPU accounting
 * behind them, each sentence built from the figures (which path was short of what).
 */
function workMarkdown(r: LoadBalancerBenchResult): string[] {
  const w0 = r.work[0]!;
  const out = [
    `Targets that compute (an application's profile): GET /work/N makes the target compute (a multiply-add chain) until its process`,
    `has used N µs more CPU (process.cpuUsage, user + system; not a sleep), then answer a few bytes; N = ${r.work.map((w) => w.workUs).join(' and ')}.`,
    `Same targets, listeners and paths, ${CONNECTIONS} connections, shared cpus only; ${w0.rounds} round${w0.rounds === 1 ? '' : 's'} of ${r.seconds} s, medians.`,
    '',
    ...TABLE_HEAD,
    ...r.work.flatMap((w) => [
      row(`${w.workUs} µs: straight to one target`, w.medians.direct),
      row(`${w.workUs} µs: listener -> the same one target`, w.medians.listener1),
      row(`${w.workUs} µs: listener -> 3 targets`, w.medians.listener),
    ]),
    '',
  ];
  for (const w of r.work) {
    const m = w.medians;
    const x = median(w.ratios);
    const busy = (l: Run) => cores(l, 'generator') + cores(l, 'haproxy') + cores(l, 'targets');
    out.push(
      `${w.workUs} µs per request: through the listener ${n(x)}x direct with 3 targets (rounds: ${list(w.ratios)}; goal at least ${THROUGHPUT_GOAL}x: ${met(x >= THROUGHPUT_GOAL)}), ${n(median(w.ratios1))}x in front of the same one target (rounds: ${list(w.ratios1)}).`,
      `CPU per request: straight ${n(cpu(m.direct), 0)} µs (the target ${n(m.direct.usPerRequest.targets, 0)}), through the listener to 3 targets ${n(cpu(m.listener), 0)} µs (HAProxy ${n(m.listener.usPerRequest.haproxy, 0)}, ${n((100 * m.listener.usPerRequest.haproxy) / cpu(m.listener), 0)}% of it).`,
      `Limits from these figures: straight, one node process (one JavaScript thread) uses at most one cpu, so at most ${Math.round(1e6 / m.direct.usPerRequest.targets)} req/s` +
        ` (measured ${Math.round(m.direct.requestsPerSec)}, the target kept ${n(cores(m.direct, 'targets'))} cpus busy); through the listener to 3 targets, everything on ${r.cpus} cpus,` +
        ` at most ${Math.round((r.cpus * 1e6) / cpu(m.listener))} req/s (HAProxy's one thread alone would allow ${Math.round(1e6 / m.listener.usPerRequest.haproxy)}; measured ${Math.round(m.listener.requestsPerSec)}, wrk + HAProxy + targets kept ${n(busy(m.listener))} cpus busy; other work ${n(m.listener.otherCores)}).`,
    );
  }
  const sh = r.medians.shared;
  const verdicts = [`trivial targets ${n(median(r.ratios.shared))}x (${met(median(r.ratios.shared) >= THROUGHPUT_GOAL)})`, ...r.work.map((w) => `${w.workUs} µs targets ${n(median(w.ratios))}x (${met(median(w.ratios) >= THROUGHPUT_GOAL)})`)];
  out.push(
    '',
    `The ${THROUGHPUT_GOAL}x goal (listener -> 3 targets against straight to one, shared cpus), by profile: ${verdicts.join('; ')}.`,
    `Why, in CPU per request: with trivial targets HAProxy's ${n(sh.listener.usPerRequest.haproxy, 0)} µs per request is more than a target's ${n(sh.direct.usPerRequest.targets, 0)} µs, both paths are`,
    `limited by the same ${r.cpus} cpus, and the listener path needs ${n(cpu(sh.listener), 0)} µs per request against ${n(cpu(sh.direct), 0)} µs straight: at most ${n(cpu(sh.direct) / cpu(sh.listener))}x.`,
    "With targets that compute, HAProxy's CPU is a smaller share of each request and the straight path is limited by its one target",
    'process (one cpu at most), a limit the listener lifts by spreading the load over 3 processes; how far it gets depends on the cpus',
    'the 3 targets and HAProxy get together, as the cpus-busy figures above show.',
  );
  return out;
}

const row = (name: string, l: Run) =>
    `| ${name} | ${Math.round(l.requestsPerSec)} | ${n(l.p50Ms, 3)} | ${n(l.p99Ms, 3)} | ${n(l.meanMs, 3)} | ${n(l.usPerRequest.generator, 1)} | ${n(l.usPerRequest.haproxy, 1)} | ${n(l.usPerRequest.targets, 1)} | ${n(l.otherCores)} | ${l.errors} | ${l.non2xx} |`;
export function toMarkdown(r: LoadBalancerBenchResult): string {
  const rows = (mode: string, m: Record<Path, Run>) => [
    row(`${mode}: straight to one target`, m.direct),
    row(`${mode}: listener -> the same one target`, m.listener1),
    row(`${mode}: listener -> 3 targets`, m.listener),
  ];
  const m = r.medians;
  const lines = [
    `One host (${r.host}), HAProxy ${r.haproxy}. wrk (one thread), ${CONNECTIONS} keep-alive connections when saturated: straight to one target,`,
    'through an HTTP listener (src/loadbalancer/) in front of that same target alone, and through one in front of 3 targets.',
    'Targets are node HTTP servers with keep-alive, one process each, answering a 13-byte body.',
    `${r.rounds} rounds of ${r.seconds} s per run, the runs of a mode back to back; medians over the rounds.`,
    '"shared": nothing pinned, the generator, HAProxy and the targets share the cpus. "own cpu": HAProxy on cpu 1, wrk and',
    "the targets on cpu 0 (taskset), for every path (in the direct run cpu 1 idles), as an ELB does not run on its tasks' or",
    `clients' machines. "paced": ${PACED_CONNECTIONS} connections, each sending a request then pausing ${PAUSE_MS} ms (about 1000 req/s), nothing pinned.`,
    'CPU per request is from /proc (user + system); "other cores" is what other work on the machine used meanwhile',
    `(load average ${n(r.loadAverage[0], 1)} at the start, ${n(r.loadAverage[1], 1)} at the end).`,
    '',
  ];
  // A path of 4 processes waking in turn loses more to other work than a path of 2: on a busy
  // machine the ratios measure the contention, not the hop.
  const others = [...Object.values(m), ...r.work.map((w) => w.medians)].flatMap((p) => Object.values(p).map((l) => l.otherCores));
  const busiest = Math.max(...others);
  if (busiest > OTHER_WORK_WARNING) {
    lines.push(
      `**Other work on the machine kept up to ${n(busiest)} cores busy during these runs ("other cores"): the figures below measure that contention as much as the load balancer. Run this on a quiet machine.**`,
      '',
    );
  }
  lines.push(
    ...TABLE_HEAD,
    ...rows('shared', m.shared),
    ...(m['own-cpu'] ? rows('own cpu', m['own-cpu']) : []),
    ...rows('paced', m.paced),
    '',
  );
  for (const mode of ['shared', 'own-cpu'] as const) {
    if (r.ratios[mode].length === 0) continue;
    const x = median(r.ratios[mode]);
    const x1 = median(r.ratios1[mode]);
    lines.push(
      `Throughput through the listener, ${mode === 'shared' ? 'shared cpus' : 'HAProxy on a cpu of its own'}: ${n(x)}x direct with 3 targets (rounds: ${list(r.ratios[mode])}; goal at least ${THROUGHPUT_GOAL}x: ${met(x >= THROUGHPUT_GOAL)}), ${n(x1)}x in front of the same one target (rounds: ${list(r.ratios1[mode])}).`,
    );
  }
  const sh = m.shared;
  lines.push(
    `Where the CPU goes (shared, medians): straight to one target ${n(cpu(sh.direct), 0)} µs per request (wrk + target); through the listener to the same`,
    `target ${n(cpu(sh.listener1), 0)} µs (HAProxy ${n(sh.listener1.usPerRequest.haproxy, 0)}); to 3 targets ${n(cpu(sh.listener), 0)} µs (HAProxy ${n(sh.listener.usPerRequest.haproxy, 0)}, the 3 targets ${n(sh.listener.usPerRequest.targets, 0)}).`,
    `When every path uses all the cpus it gets, throughput goes as 1 / CPU per request: at most ${n(cpu(sh.direct) / cpu(sh.listener1))}x and ${n(cpu(sh.direct) / cpu(sh.listener))}x direct.`,
    "HAProxy's share is mostly kernel time in its 2 receives and 2 sends per request on loopback TCP (it reuses server",
    'connections). The 3 targets cost more per request than one mainly because each process wakes for a third of the',
    'requests on the same cpus (a fixed cost per wakeup); in a cluster each task has cpus of its own.',
  );
  const added = median(r.addedP50Ms);
  lines.push(
    `Added p50 when paced: ${n(added, 3)} ms (rounds: ${list(r.addedP50Ms, 3)}; goal under ${ADDED_P50_GOAL_MS} ms: ${met(added < ADDED_P50_GOAL_MS)}); added p99 ${n(median(r.addedP99Ms), 3)} ms.`,
    '',
  );
  if (r.work.length > 0) lines.push(...workMarkdown(r), '');
  lines.push('Command: `npx tsx bench/run.ts loadbalancer`', '');
  return lines.join('\n');
}
