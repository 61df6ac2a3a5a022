/**
 * Crash safety of SqliteStore: a writer process is killed with SIGKILL in the middle of a stream
 * of txns, and the store reopened afterwards must hold every acknowledged write, no torn txn,
 * and a revision counter that carries on above every revision already handed out.
 * Runs the child with `node --import tsx`, so no build is needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';

const WRITER = path.join(__dirname, 'fixtures', 'store-crash-writer.ts');
const REPO = path.join(__dirname, '..', '..');
const CLIENTS = 4;
const RUNS = 4;

interface Ack {
  revision: number;
  run: string;
  client: number;
  i: number;
}

interface RunResult {
  ready: number;
  acks: Ack[];
  signal: NodeJS.Signals | null;
}

/** Starts the writer, lets it acknowledge `killAfter` txns, then SIGKILLs it mid-stream. */
function crashRun(dbPath: string, run: string, killAfter: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dbPath, run, String(CLIENTS)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    let ready = -1;
    const acks: Ack[] = [];
    // Read to the end of the pipe, past the kill: lines written just before death still count.
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const [tag, ...rest] = line.split(' ');
      if (tag === 'READY') ready = Number(rest[0]);
      else if (tag === 'ACK') {
        acks.push({ revision: Number(rest[0]), run: rest[1], client: Number(rest[2]), i: Number(rest[3]) });
        if (acks.length === killAfter) child.kill('SIGKILL');
      }
    });
    let exited: { signal: NodeJS.Signals | null } | undefined;
    let closed = false;
    const finish = () => {
      if (!exited || !closed) return;
      if (ready < 0) reject(new Error(`writer never became ready (signal ${exited.signal}): ${stderr}`));
      else resolve({ ready, acks, signal: exited.signal });
    };
    lines.on('close', () => {
      closed = true;
      finish();
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      exited = { signal };
      finish();
    });
  });
}

test('SIGKILL mid-stream loses no acknowledged txn, tears none, and never reuses a revision', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-store-crash-'));
  const dbPath = path.join(dir, 'wharf.db');
  try {
    const allAcked = new Set<number>();
    let revisionAfterLastRun = 0;

    for (let r = 0; r < RUNS; r++) {
      const run = `r${r}`;
      const killAfter = 30 + Math.floor(Math.random() * 300);
      const { ready, acks, signal } = await crashRun(dbPath, run, killAfter);
      const ctx = `run ${run}, killed after ${killAfter} acks`;

      assert.equal(signal, 'SIGKILL', `${ctx}: the writer must have died by the kill, not on its own`);
      assert.ok(acks.length >= killAfter, ctx);
      // The writer resumed from the stored revision counter, not from zero.
      assert.equal(ready, revisionAfterLastRun, `${ctx}: revision at open`);
      for (const a of acks) {
        assert.ok(a.revision > revisionAfterLastRun, `${ctx}: revision ${a.revision} not above ${revisionAfterLastRun}`);
        assert.ok(!allAcked.has(a.revision), `${ctx}: revision ${a.revision} handed out twice`);
        allAcked.add(a.revision);
      }

      const store = SqliteStore.open({ path: dbPath });
      try {
        // Every acknowledged txn is there in full, at the revision it was acknowledged with.
        for (const a of acks) {
          for (const side of ['a', 'b']) {
            const e = await store.get<{ i: number }>(`${side}/${a.run}/${a.client}/${a.i}`);
            assert.ok(e, `${ctx}: acknowledged ${side}/${a.run}/${a.client}/${a.i} (rev ${a.revision}) is missing`);
            assert.equal(e.modRevision, a.revision, ctx);
            assert.equal(e.value.i, a.i, ctx);
          }
        }

        // Nothing is half-written: pairs are complete, and each client's counter agrees with
        // exactly the pairs that exist (a client only starts txn i+1 after txn i committed).
        const as = await store.list('a/');
        const bs = new Map((await store.list('b/')).map((e) => [e.key.slice(2), e]));
        assert.equal(as.length, bs.size, `${ctx}: a/ and b/ key counts differ`);
        const present = new Map<string, number[]>();
        let maxRevision = 0;
        for (const a of as) {
          const rest = a.key.slice(2);
          const b = bs.get(rest);
          assert.ok(b, `${ctx}: a/${rest} exists without b/${rest}`);
          assert.equal(b.modRevision, a.modRevision, `${ctx}: pair ${rest} written at two revisions`);
          const [runId, client, i] = rest.split('/');
          const k = `${runId}/${client}`;
          present.set(k, [...(present.get(k) ?? []), Number(i)]);
          maxRevision = Math.max(maxRevision, a.modRevision);
        }
        const counters = await store.list<number>('counter/');
        assert.equal(counters.length, present.size, ctx);
        for (const c of counters) {
          const k = c.key.slice('counter/'.length);
          const is = (present.get(k) ?? []).sort((x, y) => x - y);
          assert.deepEqual(
            is,
            Array.from({ length: c.value + 1 }, (_, i) => i),
            `${ctx}: client ${k} counter ${c.value} disagrees with its pairs`,
          );
          maxRevision = Math.max(maxRevision, c.modRevision);
        }

        // The stored revision counter matches the newest data: every txn here writes, so the
        // newest key revision is the store revision.
        const revision = await store.revision();
        assert.equal(revision, maxRevision, `${ctx}: revision counter vs newest data`);
        assert.ok(revision >= Math.max(...acks.map((a) => a.revision)), ctx);
        revisionAfterLastRun = revision;
      } finally {
        await store.close();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
