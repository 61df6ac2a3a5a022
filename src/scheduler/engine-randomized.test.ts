// Randomized check of the fast (indexed) engine against a brute-force reference written here
// independently: on many small random clusters, over many calls that also change the cluster
// between calls (tasks stop, attributes change, instances drain), every placement must
//  - never overbook (CPU, memory, ports, GPUs) and never break a constraint, and
//  - land on one of the optimal instances by the strategies (lexicographic score vectors),
// and every failure must come only when the reference finds no instance, naming the same
// closest instance and reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateClusterQuery, parseClusterQuery } from '../core/cluster-query';
import type { PlacementConstraint, PlacementStrategy } from '../core/shapes/ecs';
import { place } from './engine';
import { InMemoryClusterSnapshot } from './in-memory-snapshot';
import { instanceFromSpec, withTask, type InstanceSpec } from './instance-ops';
import { seededRandom } from '../lib/seeded-random';
import type { PlacementRequest, SnapshotInstance } from './types';

const ZONES = ['a', 'b', 'c'];
const TYPES = ['t2.small', 't2.large', 'm5.large', 'c5.xlarge'];
const GROUPS = ['family:web', 'family:db', 'service:api', 'service:worker'];
const EXPRESSIONS = [
  'attribute:zone != c',
  'attribute:type =~ t2.*',
  'not(task:group == family:db)',
  'attribute:rack in [r1, r2] or runningTasksCount < 3',
  'task:group == service:api || attribute:type == m5.large',
];
const STRATEGIES: PlacementStrategy[] = [
  { type: 'binpack', field: 'memory' },
  { type: 'binpack', field: 'cpu' },
  { type: 'spread', field: 'instanceId' },
  { type: 'spread', field: 'attribute:zone' },
  { type: 'spread', field: 'attribute:type' },
  { type: 'random' },
];

function pickOf<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function randomCluster(r: () => number, n: number): SnapshotInstance[] {
  const out: SnapshotInstance[] = [];
  for (let i = 0; i < n; i++) {
    const cpu = pickOf(r, [512, 1024, 2048, 4096]);
    const memory = pickOf(r, [1024, 2048, 4096, 8192]);
    const spec: InstanceSpec = {
      id: `i${i}`,
      status: r() < 0.1 ? 'DRAINING' : 'ACTIVE',
      agentConnected: r() > 0.1,
      attributes: { zone: pickOf(r, ZONES), type: pickOf(r, TYPES), ...(r() < 0.5 ? { rack: pickOf(r, ['r1', 'r2', 'r3']) } : {}) },
      registered: { cpu, memory, tcpPorts: r() < 0.3 ? [80] : [], gpuIds: r() < 0.3 ? ['g0', 'g1'] : [] },
      tasks: [],
    };
    const k = Math.floor(r() * 4);
    for (let t = 0; t < k; t++) {
      const group = pickOf(r, GROUPS);
      spec.tasks!.push({ group, ...(group.startsWith('service:') ? { service: group.slice(8) } : {}), cpu: 64, memory: 128 });
    }
    out.push(instanceFromSpec(spec));
  }
  return out;
}

function randomRequest(r: () => number): PlacementRequest {
  const group = pickOf(r, GROUPS);
  const strategies: PlacementStrategy[] = [];
  const ns = Math.floor(r() * 4);
  for (let i = 0; i < ns; i++) strategies.push(pickOf(r, STRATEGIES));
  const constraints: PlacementConstraint[] = [];
  if (r() < 0.5) constraints.push({ type: 'memberOf', expression: pickOf(r, EXPRESSIONS) });
  if (r() < 0.3) constraints.push({ type: 'distinctInstance' });
  const req: PlacementRequest = {
    needs: { cpu: pickOf(r, [0, 128, 256, 700]), memory: pickOf(r, [128, 512, 1500, 3000]), tcpPorts: r() < 0.2 ? [80] : [], gpus: r() < 0.15 ? 1 : 0 },
    count: 1 + Math.floor(r() * 6),
    group,
    strategies,
    constraints,
  };
  if (group.startsWith('service:')) req.service = group.slice(8);
  if (r() < 0.1) req.requiredAttributes = [{ name: 'rack' }];
  return req;
}

// ---- the reference: written from the definitions, sharing no code with the engine's search.

const STAGES = ['AGENT', 'RESOURCE:CPU', 'RESOURCE:MEMORY', 'RESOURCE:PORTS', 'RESOURCE:GPU', 'ATTRIBUTE', 'MemberOf placement constraint unsatisfied.', 'DistinctInstance placement constraint unsatisfied.'];

function firstFailure(req: PlacementRequest, i: SnapshotInstance): string | undefined {
  const n = req.needs;
  if (!i.agentConnected) return STAGES[0];
  if (n.cpu > 0 && i.remaining.cpu < n.cpu) return STAGES[1];
  if (n.memory > 0 && i.remaining.memory < n.memory) return STAGES[2];
  if ((n.tcpPorts ?? []).some((p) => i.remaining.tcpPorts.has(p))) return STAGES[3];
  if ((n.gpus ?? 0) > i.remaining.gpuIds.length) return STAGES[4];
  if ((req.requiredAttributes ?? []).some((a) => !i.attributes.has(a.name))) return STAGES[5];
  for (const c of req.constraints ?? []) if (c.type === 'memberOf' && !evaluateClusterQuery(parseClusterQuery(c.expression!), i)) return STAGES[6];
  if ((req.constraints ?? []).some((c) => c.type === 'distinctInstance') && (i.tasksByGroup.get(req.group) ?? 0) > 0) return STAGES[7];
  return undefined;
}

function scoreVector(req: PlacementRequest, i: SnapshotInstance, all: SnapshotInstance[]): number[] {
  const strategies = req.strategies && req.strategies.length ? req.strategies : req.service ? [{ type: 'spread', field: 'attribute:ecs.availability-zone' }, { type: 'spread', field: 'instanceId' }] : [];
  const countOn = (x: SnapshotInstance) => (req.service ? x.tasksByService.get(req.service) : x.tasksByGroup.get(req.group)) ?? 0;
  const out: number[] = [];
  for (const s of strategies) {
    if (s.type === 'random') break;
    if (s.type === 'binpack') out.push(s.field === 'cpu' ? i.remaining.cpu : i.remaining.memory);
    else if (s.field === 'instanceId') out.push(countOn(i));
    else {
      const a = s.field!.slice('attribute:'.length);
      out.push(all.filter((x) => x.attributes.get(a) === i.attributes.get(a)).reduce((n, x) => n + countOn(x), 0));
    }
  }
  return out;
}

const cmp = (a: number[], b: number[]) => {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return a[k]! - b[k]!;
  return 0;
};

for (const mode of ['indexed', 'scan'] as const) test(`the ${mode} engine agrees with a brute-force reference on random clusters`, () => {
  const r = seededRandom(mode === 'indexed' ? 20240601 : 977);
  let placed = 0;
  let failed = 0;
  for (let cluster = 0; cluster < 120; cluster++) {
    const n = 3 + Math.floor(r() * 30);
    const snap = new InMemoryClusterSnapshot(randomCluster(r, n));
    for (let call = 0; call < 25; call++) {
      const req = randomRequest(r);
      const res = place(req, snap, { random: r, scan: mode === 'scan' });
      let state = new Map(snap.instances().map((i) => [i.id, i] as const));
      for (const p of res.placements) {
        const all = [...state.values()];
        const feasible = all.filter((i) => i.status === 'ACTIVE' && firstFailure(req, i) === undefined);
        const chosen = state.get(p.instanceId)!;
        assert.ok(feasible.includes(chosen), `cluster ${cluster} call ${call}: ${p.instanceId} is not feasible (${chosen.status}, ${firstFailure(req, chosen)})`);
        const best = feasible.map((i) => scoreVector(req, i, all)).reduce((a, b) => (cmp(a, b) <= 0 ? a : b));
        assert.deepEqual(scoreVector(req, chosen, all), best, `cluster ${cluster} call ${call}: ${p.instanceId} is not optimal; ${JSON.stringify({ s: req.strategies, c: req.constraints, g: req.group, count: req.count, k: p.taskIndex })}`);
        assert.deepEqual(p.tcpPorts, req.needs.tcpPorts ?? []);
        assert.equal(p.gpuIds.length, req.needs.gpus ?? 0);
        const fp = { group: req.group, cpu: req.needs.cpu, memory: req.needs.memory, tcpPorts: p.tcpPorts, gpuIds: p.gpuIds, ...(req.service ? { service: req.service } : {}) };
        state.set(chosen.id, withTask(chosen, fp));
        placed++;
      }
      if (res.failures.length > 0) {
        failed++;
        const all = [...state.values()];
        const active = all.filter((i) => i.status === 'ACTIVE');
        assert.equal(active.filter((i) => firstFailure(req, i) === undefined).length, 0, 'failed although an instance fits');
        const ranked = active.map((i) => ({ i, stage: STAGES.indexOf(firstFailure(req, i)!) }));
        const top = Math.max(...ranked.map((x) => x.stage));
        const want = ranked.find((x) => x.stage === top);
        assert.equal(res.failures[0]!.reason, want ? STAGES[top] : 'No Container Instances were found in your cluster.');
        assert.equal(res.failures[0]!.arn, want?.i.arn);
        assert.equal(res.placements.length + res.failures.length, req.count);
      }
      // No instance overbooked after applying the call.
      for (const i of state.values()) {
        assert.ok(i.remaining.cpu >= 0 && i.remaining.memory >= 0 && i.remaining.gpuIds.length >= 0, `${i.id} overbooked`);
      }
      snap.applyPlacements(req, res);
      // Churn between calls so the indexes see every kind of update.
      const ids = snap.instances().map((i) => i.id);
      const victim = snap.instance(pickOf(r, ids))!;
      const u = r();
      if (u < 0.3 && victim.tasksByGroup.size > 0) {
        const group = [...victim.tasksByGroup.keys()][0]!;
        snap.applyTask(victim.id, { group, ...(group.startsWith('service:') ? { service: group.slice(8) } : {}), cpu: 0, memory: 0 }, -1);
      } else if (u < 0.45) {
        snap.upsert({ ...victim, attributes: new Map([...victim.attributes, ['zone', pickOf(r, ZONES)], ['type', pickOf(r, TYPES)]]) });
      } else if (u < 0.5) {
        snap.upsert({ ...victim, status: victim.status === 'ACTIVE' ? 'DRAINING' : 'ACTIVE' });
      } else if (u < 0.53) {
        snap.remove(victim.id);
      }
    }
  }
  assert.ok(placed > 1000, `only ${placed} placements exercised`);
  assert.ok(failed > 50, `only ${failed} failing calls exercised`);
});
