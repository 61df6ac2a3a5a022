/**
 * Placement engine benchmark (engine alone, no store, no API).
 *
 * Cluster: N container instances over 3 availability zones, mixed sizes (5 instance types),
 * custom attributes (stack, team, rack). Request: one task per decision for one of 40 services,
 * strategies spread(attribute:ecs.availability-zone) + binpack(memory), constraint
 * memberOf(attribute:stack in [prod, shared] and attribute:ecs.instance-type != t3.medium).
 * Each decision's placement is applied to the snapshot, as the state layer would after commit.
 *
 * Reported per cluster size: decisions/s (place() alone and place()+apply), p50/p99 µs per
 * decision; and a brute-force baseline (opts.scan: every instance examined per decision)
 * measured in the same run at 1k and 10k instances.
 *
 * Run: npx tsx bench/scheduler-engine.ts     (seeded: the same cluster and requests every run)
 */
import { InMemoryClusterSnapshot, instanceFromSpec, place, seededRandom, type PlacementRequest } from '../src/scheduler';

const TYPES = [
  { type: 't3.medium', cpu: 2048, memory: 3800 },
  { type: 'm5.large', cpu: 2048, memory: 7680 },
  { type: 'm5.xlarge', cpu: 4096, memory: 15600 },
  { type: 'c5.2xlarge', cpu: 8192, memory: 15600 },
  { type: 'r5.xlarge', cpu: 4096, memory: 31600 },
];
const ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
const SERVICES = 40;
const EXPRESSION = 'attribute:stack in [prod, shared] and attribute:ecs.instance-type != t3.medium';

function buildCluster(n: number, seed: number): InMemoryClusterSnapshot {
  const r = seededRandom(seed);
  const snap = new InMemoryClusterSnapshot();
  for (let i = 0; i < n; i++) {
    const t = TYPES[Math.floor(r() * TYPES.length)]!;
    snap.upsert(
      instanceFromSpec({
        id: i.toString(16).padStart(32, '0'),
        registeredAt: 1_700_000_000_000 + i * 1000,
        agentVersion: '1.80.0',
        attributes: {
          'ecs.availability-zone': ZONES[i % 3]!,
          'ecs.instance-type': t.type,
          'ecs.os-type': 'linux',
          stack: r() < 0.7 ? 'prod' : r() < 0.5 ? 'shared' : 'staging',
          team: `team-${Math.floor(r() * 8)}`,
          rack: `rack-${Math.floor(r() * 50)}`,
        },
        registered: { cpu: t.cpu, memory: t.memory, tcpPorts: [22, 2375, 2376, 51678, 51679] },
      }),
    );
  }
  return snap;
}

function requests(): PlacementRequest[] {
  return Array.from({ length: SERVICES }, (_, s) => ({
    needs: { cpu: 8, memory: 32 + (s % 4) * 16 },
    count: 1,
    group: `service:svc-${s}`,
    service: `svc-${s}`,
    strategies: [
      { type: 'spread', field: 'attribute:ecs.availability-zone' },
      { type: 'binpack', field: 'memory' },
    ],
    constraints: [{ type: 'memberOf', expression: EXPRESSION }],
  }));
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

export interface EngineFigures {
  instances: number;
  placements: number;
  mode: 'indexed' | 'scan';
  decisionsPerSecond: number;
  decisionsPerSecondWithApply: number;
  p50Micros: number;
  p99Micros: number;
  failures: number;
}

function measure(instances: number, placements: number, mode: 'indexed' | 'scan'): EngineFigures {
  const snap = buildCluster(instances, 1234 + instances);
  const reqs = requests();
  const random = seededRandom(99);
  const times = new Float64Array(placements);
  let failures = 0;
  let decisionTotal = 0;
  // Warm-up outside the timed loop builds the lazily created indexes and JIT-compiles.
  for (let i = 0; i < Math.min(2000, placements / 10); i++) {
    const req = reqs[i % reqs.length]!;
    snap.applyPlacements(req, place(req, snap, { random, scan: mode === 'scan' }));
  }
  const start = performance.now();
  for (let i = 0; i < placements; i++) {
    const req = reqs[i % reqs.length]!;
    const t0 = performance.now();
    const res = place(req, snap, { random, scan: mode === 'scan' });
    const t1 = performance.now();
    times[i] = (t1 - t0) * 1000;
    decisionTotal += t1 - t0;
    if (res.failures.length) failures++;
    snap.applyPlacements(req, res);
  }
  const wall = performance.now() - start;
  const sorted = times.slice().sort();
  return {
    instances,
    placements,
    mode,
    decisionsPerSecond: Math.round(placements / (decisionTotal / 1000)),
    decisionsPerSecondWithApply: Math.round(placements / (wall / 1000)),
    p50Micros: +percentile(sorted, 0.5).toFixed(2),
    p99Micros: +percentile(sorted, 0.99).toFixed(2),
    failures,
  };
}

export function run(opts: { quick?: boolean } = {}): { results: EngineFigures[]; scanRatio: Record<string, number> } {
  const q = opts.quick ? 10 : 1;
  const results: EngineFigures[] = [
    measure(1_000, 100_000 / q, 'indexed'),
    measure(10_000, 1_000_000 / q, 'indexed'),
    measure(100_000, 1_000_000 / q, 'indexed'),
    measure(1_000, 20_000 / q, 'scan'),
    measure(10_000, 5_000 / q, 'scan'),
  ];
  const find = (n: number, m: string) => results.find((r) => r.instances === n && r.mode === m)!;
  const scanRatio = {
    '1000': +(find(1_000, 'scan').p50Micros / find(1_000, 'indexed').p50Micros).toFixed(1),
    '10000': +(find(10_000, 'scan').p50Micros / find(10_000, 'indexed').p50Micros).toFixed(1),
  };
  return { results, scanRatio };
}

/** Goal (issue 4): placements per second at 10,000 instances. */
export const GOAL_PER_SECOND = 50_000;

export function toMarkdown(r: { results: EngineFigures[]; scanRatio: Record<string, number> }): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const rows = r.results.map(
    (f) => `| ${n(f.instances)} | ${n(f.placements)} | ${f.mode} | ${n(f.decisionsPerSecond)} | ${n(f.decisionsPerSecondWithApply)} | ${f.p50Micros} | ${f.p99Micros} | ${f.failures} |`,
  );
  const indexed = r.results.filter((f) => f.mode === 'indexed');
  const at10k = indexed.find((f) => f.instances === 10_000);
  const goal = at10k
    ? `Goal ${n(GOAL_PER_SECOND)} placements/s at 10,000 instances: ${at10k.decisionsPerSecond >= GOAL_PER_SECOND ? 'met' : 'not met'} (${n(at10k.decisionsPerSecond)}/s over ${n(at10k.placements)} placements, p99 ${at10k.p99Micros} us).`
    : '';
  return [
    'The engine alone (`npx tsx bench/run.ts scheduler-engine`): seeded clusters over 3 AZs, 5 instance types and custom',
    'attributes, strategies spread(attribute:ecs.availability-zone) + binpack(memory) and a memberOf constraint.',
    '"WithApply" adds updating the in-memory snapshot after each decision; "scan" is a brute-force engine that examines',
    'every instance per decision, measured in the same run.',
    '',
    '| instances | placements | mode | decisions/s | decisions/s with apply | p50 us | p99 us | failures |',
    '|---:|---:|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `${goal} Cost per decision (p50) from ${indexed.map((f) => n(f.instances)).join(' / ')} instances: ${indexed.map((f) => f.p50Micros).join(' / ')} us. ` +
      `Brute-force scan / indexed, p50: ${Object.entries(r.scanRatio).map(([k, v]) => `${v}x at ${n(Number(k))}`).join(', ')}.`,
    '',
  ].join('\n');
}

if (require.main === module || /scheduler-engine\.[jt]s$/.test(process.argv[1] ?? '')) {
  const out = run({ quick: process.argv.includes('--quick') });
  console.table(out.results);
  console.log('brute-force / indexed, p50 per decision:', out.scanRatio);
}
