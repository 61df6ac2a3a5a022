/**
 * The load balancer data plane (src/loadbalancer/, HAProxy) against no load balancer at all,
 * in the same run: autocannon drives an HTTP listener in front of 3 targets, then the same load
 * straight to one target. Targets are node HTTP servers, each in a child process of its own,
 * answering a 13-byte body. Every target is healthy before the load starts.
 *
 * Goal (issue 11): through the listener at least 0.8x the direct throughput (both saturated, 32
 * connections), and under 1 ms added to the median latency (measured at a fixed 1000 req/s, where
 * neither path is short of CPU, so the figure is the hop's own cost and not queueing).
 *
 *   npx tsx bench/run.ts loadbalancer [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { targetGroupDefaults, type DesiredState } from '../src/loadbalancer/model';
import { LoadBalancerReconciler } from '../src/loadbalancer/reconciler';

const TARGET_SOURCE = `
const http = require('node:http');
const s = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello, world\\n'));
s.keepAliveTimeout = 65000;
s.listen(0, '127.0.0.1', () => process.send(s.address().port));
`;

const LB_ADDRESS = '127.100.250.1';
const THROUGHPUT_GOAL = 0.8;
const ADDED_P50_GOAL_MS = 1;

interface Load {
  requestsPerSec: number;
  latencyMeanMs: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export interface LoadBalancerBenchResult {
  host: string;
  haproxy: string;
  connections: number;
  durationSeconds: number;
  direct: Load;
  listener: Load;
  /** The same two at a fixed rate well below saturation: the latency the hop itself adds. */
  rate: number;
  directAtRate: Load;
  listenerAtRate: Load;
  throughputRatio: number;
  addedP50Ms: number;
  addedMeanMsAtRate: number;
}

function startTarget(): Promise<{ port: number; child: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', TARGET_SOURCE], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (port) => resolve({ port: Number(port), child }));
    child.once('error', reject);
  });
}

async function load(url: string, connections: number, duration: number, overallRate?: number): Promise<Load> {
  const r = await autocannon({ url, connections, duration, pipelining: 1, ...(overallRate ? { overallRate } : {}) });
  return {
    requestsPerSec: r.requests.average,
    latencyMeanMs: r.latency.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

export async function run(opts: { quick?: boolean } = {}): Promise<LoadBalancerBenchResult> {
  const connections = 32;
  const durationSeconds = opts.quick ? 3 : 10;
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
          listeners: [{ id: 'http', port: 18999, protocol: 'HTTP', defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'web', weight: 1 }] }], rules: [] }],
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
      ],
    };
    await lb.apply(desired);
    const until = Date.now() + 20_000;
    while (!((await lb.health()).get('web') ?? []).every((t) => t.health.state === 'healthy')) {
      if (Date.now() > until) throw new Error('the targets did not become healthy');
      await new Promise((r) => setTimeout(r, 100));
    }
    const listenerUrl = `http://${LB_ADDRESS}:18999/`;
    const directUrl = `http://127.0.0.1:${targets[0]!.port}/`;
    // Warm both paths (JIT, connection pools), then measure one after the other.
    await load(listenerUrl, connections, 1);
    await load(directUrl, connections, 1);
    const direct = await load(directUrl, connections, durationSeconds);
    const listener = await load(listenerUrl, connections, durationSeconds);
    const rate = 1000;
    const directAtRate = await load(directUrl, 8, durationSeconds, rate);
    const listenerAtRate = await load(listenerUrl, 8, durationSeconds, rate);
    const version = /version is (\S+)/.exec(fs.readFileSync(path.join(dataDir, 'haproxy.log'), 'utf8'))?.[1] ?? '?';
    return {
      host: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`,
      haproxy: version,
      connections,
      durationSeconds,
      direct,
      listener,
      rate,
      directAtRate,
      listenerAtRate,
      throughputRatio: listener.requestsPerSec / direct.requestsPerSec,
      addedP50Ms: listenerAtRate.p50Ms - directAtRate.p50Ms,
      addedMeanMsAtRate: listenerAtRate.latencyMeanMs - directAtRate.latencyMeanMs,
    };
  } finally {
    await lb.stop();
    for (const t of targets) t.child.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const n = (v: number, digits = 2) => String(+v.toFixed(digits));

export function toMarkdown(r: LoadBalancerBenchResult): string {
  const row = (name: string, l: Load) => `| ${name} | ${Math.round(l.requestsPerSec)} | ${n(l.latencyMeanMs)} | ${n(l.p50Ms)} | ${n(l.p99Ms)} | ${l.errors} | ${l.non2xx} |`;
  const met = (ok: boolean) => (ok ? 'met' : 'not met');
  return [
    `One host (${r.host}), HAProxy ${r.haproxy}. autocannon, ${r.connections} keep-alive connections, ${r.durationSeconds} s per side, in the`,
    'same run: straight to one target, then through an HTTP listener (src/loadbalancer/) in front of 3 targets. Targets are',
    'node HTTP servers, one child process each, answering a 13-byte body. The load generator, HAProxy and the targets share',
    'the machine, and the machine is shared with other work: the figures are noisy, the ratio is the comparable part.',
    '',
    '| Path | req/s | mean ms | p50 ms | p99 ms | errors | non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('straight to one target', r.direct),
    row('listener -> 3 targets', r.listener),
    row(`straight to one target, ${r.rate} req/s, 8 connections`, r.directAtRate),
    row(`listener -> 3 targets, ${r.rate} req/s, 8 connections`, r.listenerAtRate),
    '',
    'autocannon reports percentiles in whole milliseconds; the means are finer.',
    `Throughput through the listener: ${n(r.throughputRatio)}x direct (goal at least ${THROUGHPUT_GOAL}x: ${met(r.throughputRatio >= THROUGHPUT_GOAL)}).`,
    `Added p50 at ${r.rate} req/s: ${n(r.addedP50Ms)} ms, added mean ${n(r.addedMeanMsAtRate, 3)} ms (goal under ${ADDED_P50_GOAL_MS} ms: ${met(r.addedP50Ms < ADDED_P50_GOAL_MS)}).`,
    '',
    'Command: `npx tsx bench/run.ts loadbalancer`',
    '',
  ].join('\n');
}
