/**
 * API benchmark: RegisterTaskDefinition and DescribeTaskDefinition through the AWS SDK v3, over
 * HTTP on loopback, against Wharf (`wharf server`, SQLite with synchronous=FULL, a child
 * process) and, in the same run and with the same client and load, against moto's server
 * (`python3 -m moto.server`) as a reference point.
 *
 * Per server: register 10,000 revisions over 10 families (the first 1,000 one at a time for
 * latency, the rest from 8 concurrent clients for throughput), then describe with all 10,000
 * present (one at a time, then 8 concurrent clients), half by `family:revision`, half by
 * `family` (latest ACTIVE revision).
 *
 * Run: npx tsx bench/api-task-definitions.ts [--quick]   (or through bench/run.ts)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DescribeTaskDefinitionCommand, ECSClient, RegisterTaskDefinitionCommand } from '@aws-sdk/client-ecs';
import { wharfEntry } from './lib/processes';

const REGION = 'us-east-1';
const FAMILIES = 10;
const CONCURRENCY = 8;

export interface ApiFigures {
  server: string;
  operation: string;
  mode: string;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  perSecond: number;
}

interface Target {
  name: string;
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
    s.on('error', reject);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** `wharf server` as a child, the built CLI (see wharfEntry in lib/processes.ts). */
async function startWharf(): Promise<Target> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-bench-'));
  const child = spawn(process.execPath, [...wharfEntry(), 'server', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, WHARF_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('wharf server did not start')), 30_000);
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /Endpoint:\s+(http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`wharf server exited (${code})`)));
  });
  const credentials = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')).user;
  return {
    name: 'Wharf',
    endpoint,
    credentials,
    async stop() {
      await stopChild(child);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** moto's standalone server on 127.0.0.1; it accepts any credentials. */
async function startMoto(): Promise<Target> {
  const port = await freePort();
  const child = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + String(d)).slice(-2000)));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto server exited: ${err}`);
    try {
      await fetch(endpoint + '/');
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`moto server did not start: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { name: 'moto', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, stop: () => stopChild(child) };
}

function definition(family: string, i: number) {
  return {
    family,
    containerDefinitions: [
      {
        name: 'web',
        image: 'nginx:1.27',
        memory: 256,
        cpu: 128,
        portMappings: [{ containerPort: 80, hostPort: 0, protocol: 'tcp' as const }],
        environment: [{ name: 'BUILD', value: String(i) }],
        essential: true,
      },
    ],
  };
}

function summarise(server: string, operation: string, mode: string, times: number[], wallMs: number): ApiFigures {
  const sorted = Float64Array.from(times).sort();
  const pick = (p: number) => +sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!.toFixed(2);
  return { server, operation, mode, calls: times.length, p50Ms: pick(0.5), p99Ms: pick(0.99), perSecond: Math.round(times.length / (wallMs / 1000)) };
}

/** Runs `total` calls from `workers` loops, timing each. */
async function drive(workers: number, total: number, call: (i: number) => Promise<unknown>): Promise<{ times: number[]; wallMs: number }> {
  const times: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t0 = performance.now();
        await call(i);
        times.push(performance.now() - t0);
      }
    }),
  );
  return { times, wallMs: performance.now() - start };
}

async function measure(target: Target, revisions: number, describes: number): Promise<ApiFigures[]> {
  const ecs = new ECSClient({ endpoint: target.endpoint, region: REGION, credentials: target.credentials, maxAttempts: 1 });
  const fam = (i: number) => `bench-${i % FAMILIES}`;
  const out: ApiFigures[] = [];
  try {
    const register = (i: number) => ecs.send(new RegisterTaskDefinitionCommand(definition(fam(i), i)));
    // Warm-up (JIT, connections) outside the figures; these count toward the revisions.
    const warm = Math.min(50, revisions / 20);
    for (let i = 0; i < warm; i++) await register(i);
    const sequential = Math.min(1000, Math.floor(revisions / 10));
    let r = await drive(1, sequential, (i) => register(warm + i));
    out.push(summarise(target.name, 'RegisterTaskDefinition', '1 client', r.times, r.wallMs));
    r = await drive(CONCURRENCY, revisions - warm - sequential, (i) => register(warm + sequential + i));
    out.push(summarise(target.name, 'RegisterTaskDefinition', `${CONCURRENCY} clients`, r.times, r.wallMs));

    const perFamily = revisions / FAMILIES;
    // Deterministic spread of references: half family:revision, half family alone.
    const ref = (i: number) => (i % 2 === 0 ? `${fam(i)}:${1 + ((i * 7919) % perFamily)}` : fam(i));
    r = await drive(1, Math.floor(describes / 5), (i) => ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref(i) })));
    out.push(summarise(target.name, 'DescribeTaskDefinition', '1 client', r.times, r.wallMs));
    r = await drive(CONCURRENCY, describes, (i) => ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref(i) })));
    out.push(summarise(target.name, 'DescribeTaskDefinition', `${CONCURRENCY} clients`, r.times, r.wallMs));

    // Sanity: the last revision of a family is where it should be.
    const last = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: fam(0) }));
    if (last.taskDefinition!.revision !== perFamily) {
      throw new Error(`${target.name}: expected ${fam(0)} at revision ${perFamily}, found ${last.taskDefinition!.revision}`);
    }
  } finally {
    ecs.destroy();
  }
  return out;
}

export interface ApiBenchResult {
  revisions: number;
  results: ApiFigures[];
  /** moto / Wharf for p50 latency, and Wharf / moto for throughput, per row. */
  ratios: { operation: string; mode: string; p50Speedup: number; throughputRatio: number }[];
  machine: string;
}

export async function run(opts: { quick?: boolean } = {}): Promise<ApiBenchResult> {
  const revisions = opts.quick ? 1_000 : 10_000;
  const describes = opts.quick ? 1_000 : 10_000;
  const results: ApiFigures[] = [];
  for (const start of [startWharf, startMoto]) {
    const target = await start();
    try {
      results.push(...(await measure(target, revisions, describes)));
    } finally {
      await target.stop();
    }
  }
  const ratios = results
    .filter((r) => r.server === 'Wharf')
    .map((w) => {
      const m = results.find((x) => x.server === 'moto' && x.operation === w.operation && x.mode === w.mode)!;
      return { operation: w.operation, mode: w.mode, p50Speedup: +(m.p50Ms / w.p50Ms).toFixed(2), throughputRatio: +(w.perSecond / m.perSecond).toFixed(2) };
    });
  return { revisions, results, ratios, machine: `${os.cpus().length} cpu, node ${process.version}` };
}

export function toMarkdown(r: ApiBenchResult): string {
  const lines = [
    `RegisterTaskDefinition and DescribeTaskDefinition through the AWS SDK v3 over loopback HTTP, ${r.revisions.toLocaleString('en-US')} revisions registered (10 families), ${r.machine}. Wharf runs as \`wharf server\` (SQLite, synchronous=FULL: every acknowledged registration is on disk); moto's server (in-memory, no durability) is measured in the same run with the same client and load as a reference point.`,
    '',
    '| Server | Operation | Load | Calls | p50 ms | p99 ms | Calls/s |',
    '|---|---|---|---:|---:|---:|---:|',
    ...r.results.map((x) => `| ${x.server} | ${x.operation} | ${x.mode} | ${x.calls} | ${x.p50Ms} | ${x.p99Ms} | ${x.perSecond} |`),
    '',
    '| Operation | Load | moto p50 / Wharf p50 | Wharf calls/s / moto calls/s |',
    '|---|---|---:|---:|',
    ...r.ratios.map((x) => `| ${x.operation} | ${x.mode} | ${x.p50Speedup} | ${x.throughputRatio} |`),
  ];
  return lines.join('\n') + '\n';
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
