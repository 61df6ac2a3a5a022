/**
 * Durability of RegisterTaskDefinition: the real `wharf server` (FULL sync) is SIGKILLed in the
 * middle of a stream of registrations from several concurrent SDK clients, then restarted on the
 * same data dir. Every acknowledged revision must describe exactly as acknowledged, each family's
 * revisions must be 1..N with nothing but unacknowledged ones at the tail, and new registrations
 * must carry on above the old maximum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  DescribeTaskDefinitionCommand,
  ECSClient,
  ListTaskDefinitionsCommand,
  RegisterTaskDefinitionCommand,
  paginateListTaskDefinitions,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { REPO, REGION } from './helpers/wharf-server';

const FAMILIES = ['alpha', 'beta', 'gamma'];
const CLIENTS = 6;

interface Running {
  child: ChildProcess;
  endpoint: string;
  exited: Promise<NodeJS.Signals | null>;
}

/** Starts `wharf server` as a child and waits for its banner (which names the endpoint). */
function startChild(dataDir: string): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', 'server', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
      cwd: REPO,
      env: { ...process.env, WHARF_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out} ${err}`)), 30_000);
    child.stderr!.on('data', (d) => (err += String(d)));
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /Endpoint:\s+(http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, endpoint: m[1]!, exited });
      }
    });
    child.on('error', reject);
  });
}

function client(endpoint: string, dataDir: string): ECSClient {
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')).user;
  return new ECSClient({ endpoint, region: REGION, credentials: creds, maxAttempts: 1 });
}

/** A definition whose content says who registered it, so a torn or mixed-up record shows. */
function definition(family: string, clientNo: number, seq: number) {
  return {
    family,
    containerDefinitions: [
      {
        name: 'app',
        image: `busybox:${clientNo}`,
        memory: 32 + clientNo,
        environment: [
          { name: 'CLIENT', value: String(clientNo) },
          { name: 'SEQ', value: String(seq) },
        ],
      },
    ],
    tags: [{ key: 'writer', value: `${clientNo}-${seq}` }],
  };
}

test('SIGKILL during concurrent RegisterTaskDefinition loses no acknowledged revision and reuses no number', { timeout: 90_000 }, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-durability-'));
  try {
    const first = await startChild(dataDir);
    const acked = new Map<string, TaskDefinition>(); // "family:revision" -> what the server acknowledged
    const ackedTags = new Map<string, string>();
    let stop = false;
    let killAt = 0;
    const killed = new Promise<void>((resolve) => {
      killAt = 150 + Math.floor(Math.random() * 100);
      const check = setInterval(() => {
        if (acked.size >= killAt) {
          clearInterval(check);
          first.child.kill('SIGKILL');
          resolve();
        }
      }, 2);
    });
    const writers = Array.from({ length: CLIENTS }, async (_, c) => {
      const ecs = client(first.endpoint, dataDir);
      let seq = 0;
      try {
        while (!stop) {
          const family = FAMILIES[(c + seq) % FAMILIES.length]!;
          try {
            const r = await ecs.send(new RegisterTaskDefinitionCommand(definition(family, c, seq)));
            acked.set(`${family}:${r.taskDefinition!.revision}`, r.taskDefinition!);
            ackedTags.set(`${family}:${r.taskDefinition!.revision}`, `${c}-${seq}`);
          } catch {
            return; // the server is gone
          }
          seq++;
        }
      } finally {
        ecs.destroy();
      }
    });
    await killed;
    stop = true;
    await Promise.all(writers);
    assert.equal(await first.exited, 'SIGKILL');
    assert.ok(acked.size >= killAt, `acknowledged ${acked.size} before the kill`);

    const second = await startChild(dataDir);
    const ecs = client(second.endpoint, dataDir);
    try {
      // Every acknowledged revision is there and identical (also its tags).
      for (const [ref, td] of acked) {
        const d = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref, include: ['TAGS'] }));
        const { $metadata: _m, ...got } = d as any;
        assert.deepEqual(got.taskDefinition, td, `${ref} describes as acknowledged`);
        assert.deepEqual(got.tags, [{ key: 'writer', value: ackedTags.get(ref) }]);
      }
      // Per family: revisions 1..N without gaps. A revision nobody saw acknowledged (committed,
      // but the answer died with the server) must still be a whole record of one call.
      const maxBefore = new Map<string, number>();
      for (const f of FAMILIES) {
        const revs: number[] = [];
        for await (const p of paginateListTaskDefinitions({ client: ecs }, { familyPrefix: f })) {
          for (const a of p.taskDefinitionArns!) revs.push(Number(a.split(':').pop()));
        }
        const ackedRevs = [...acked.keys()].filter((k) => k.startsWith(`${f}:`)).map((k) => Number(k.split(':')[1]));
        const ackedMax = Math.max(0, ...ackedRevs);
        assert.deepEqual(revs, Array.from({ length: revs.length }, (_, i) => i + 1), `${f}: revisions are 1..N`);
        assert.ok(revs.length >= ackedMax, `${f}: nothing acknowledged is missing`);
        for (const r of revs.filter((x) => !acked.has(`${f}:${x}`))) {
          const d = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${f}:${r}`, include: ['TAGS'] }));
          const env = d.taskDefinition!.containerDefinitions![0]!.environment!;
          const c = env.find((e) => e.name === 'CLIENT')!.value;
          assert.equal(d.taskDefinition!.containerDefinitions![0]!.image, `busybox:${c}`, 'an unacknowledged revision is whole, not torn');
          assert.equal(d.tags![0]!.value, `${c}-${env.find((e) => e.name === 'SEQ')!.value}`);
        }
        maxBefore.set(f, revs.length);
      }
      // New registrations carry on above the old maximum.
      for (const f of FAMILIES) {
        const r = await ecs.send(new RegisterTaskDefinitionCommand(definition(f, 99, 0)));
        assert.equal(r.taskDefinition!.revision, maxBefore.get(f)! + 1, `${f} continues above ${maxBefore.get(f)}`);
      }
      const active = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: FAMILIES[0] }));
      assert.ok(active.taskDefinitionArns!.length > 0);
    } finally {
      ecs.destroy();
      second.child.kill('SIGTERM');
      await second.exited;
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
