// Runs every scenario in testdata/: a cluster snapshot, a placement request, and the placements
// or failures ECS would answer. Each runs twice: on the indexed snapshot (the fast path) and
// with opts.scan (the plain definition); both must satisfy the expectation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isWharfError } from '../core/errors';
import { place } from './engine';
import { InMemoryClusterSnapshot } from './in-memory-snapshot';
import { instanceFromSpec, type InstanceSpec } from './instance-ops';
import { seededRandom } from '../lib/seeded-random';
import type { PlacementRequest, PlacementResult } from './types';

interface Scenario {
  description: string;
  seed?: number;
  instances: InstanceSpec[];
  request: PlacementRequest;
  expect: {
    /** Per task, the instance id or the allowed ids. */
    placements?: (string | string[])[];
    failures?: { instance?: string; reason: string }[];
    distinctInstances?: boolean;
    distinctInstancesFrom?: number;
    tcpPorts?: number[][];
    gpuIds?: string[][];
    reproducible?: boolean;
    error?: string;
    errorContains?: string;
  };
}

const dir = join(__dirname, 'testdata');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('there are at least 12 scenarios', () => {
  assert.ok(files.length >= 12, `only ${files.length} scenarios`);
});

for (const file of files) {
  const sc = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Scenario;
  for (const mode of ['indexed', 'scan'] as const) {
    test(`${file.replace(/\.json$/, '')} (${mode}): ${sc.description}`, () => {
      const run = (): PlacementResult => {
        const snap = new InMemoryClusterSnapshot(sc.instances.map((i) => instanceFromSpec(i)));
        return place(sc.request, snap, { random: seededRandom(sc.seed ?? 7), scan: mode === 'scan' });
      };
      const e = sc.expect;
      if (e.error) {
        assert.throws(run, (err: unknown) => {
          assert.ok(isWharfError(err, e.error as never), `expected ${e.error}, got ${String(err)}`);
          if (e.errorContains) assert.match((err as Error).message, new RegExp(e.errorContains.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
          return true;
        });
        return;
      }
      const res = run();
      const ids = res.placements.map((p) => p.instanceId);
      if (e.placements) {
        assert.equal(ids.length, e.placements.length, `placements ${JSON.stringify(ids)}`);
        e.placements.forEach((want, k) => {
          const allowed = Array.isArray(want) ? want : [want];
          assert.ok(allowed.includes(ids[k]!), `task ${k} went to ${ids[k]}, expected one of ${allowed.join(', ')} (all: ${JSON.stringify(ids)})`);
        });
        res.placements.forEach((p, k) => assert.equal(p.taskIndex, k));
      }
      if (e.distinctInstances) assert.equal(new Set(ids).size, ids.length, `not distinct: ${ids}`);
      if (e.distinctInstancesFrom !== undefined) {
        const tail = ids.slice(e.distinctInstancesFrom);
        assert.equal(new Set(tail).size, tail.length, `not distinct: ${ids}`);
      }
      const failures = e.failures ?? [];
      assert.equal(res.failures.length, failures.length, `failures ${JSON.stringify(res.failures)}`);
      failures.forEach((want, k) => {
        const got = res.failures[k]!;
        assert.equal(got.reason, want.reason);
        if (want.instance === undefined) assert.equal(got.arn, undefined);
        else assert.ok(got.arn?.endsWith(`/${want.instance}`), `failure arn ${got.arn}, expected instance ${want.instance}`);
        assert.equal(got.taskIndex, ids.length + k);
      });
      if (e.tcpPorts) assert.deepEqual(res.placements.map((p) => p.tcpPorts), e.tcpPorts);
      if (e.gpuIds) assert.deepEqual(res.placements.map((p) => p.gpuIds), e.gpuIds);
      if (e.reproducible) assert.deepEqual(run().placements, res.placements);
    });
  }
}
