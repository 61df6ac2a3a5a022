import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HaSupervisor, type SupervisedProcess } from './ha-supervisor';

/** A process that runs until `kill()`, and whose restart succeeds unless told to fail. */
class FakeProcess implements SupervisedProcess {
  running = true;
  pidNow = 100;
  restarts: number[] = [];
  failNext = 0;
  constructor(
    readonly name: string,
    private readonly clock: { t: number },
  ) {}
  pid() {
    return this.pidNow;
  }
  alive() {
    return this.running;
  }
  howItEnded() {
    return this.running ? undefined : 'killed by SIGKILL';
  }
  kill() {
    this.running = false;
  }
  async restart(): Promise<number> {
    this.restarts.push(this.clock.t);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('listen EADDRINUSE: address already in use 127.0.0.1:4100');
    }
    this.running = true;
    return ++this.pidNow;
  }
}

function setup(names: string[]) {
  const clock = { t: 0 };
  const lines: string[] = [];
  const procs = names.map((n) => new FakeProcess(n, clock));
  const sup = new HaSupervisor(procs, { say: (l) => lines.push(l), now: () => clock.t, firstBackoffMs: 1000, maxBackoffMs: 30_000, stableMs: 60_000 });
  /** Advances the clock by ms, a look every 100 ms, letting restarts settle. */
  const run = async (ms: number) => {
    for (let end = clock.t + ms; clock.t < end; clock.t += 100) {
      sup.check();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { clock, lines, procs, sup, run };
}

test('a process that dies is started again at once, and the log says which, how it ended and its new pid', async () => {
  const { lines, procs, run } = setup(['replica 2', 'etcd member m1']);
  await run(500);
  assert.deepEqual(lines, [], 'nothing to do while all run');
  procs[0]!.kill();
  await run(200);
  assert.equal(procs[0]!.restarts.length, 1);
  assert.equal(procs[0]!.alive(), true);
  assert.equal(procs[1]!.restarts.length, 0, 'the others are left alone');
  assert.deepEqual(lines, ['wharf: replica 2 (pid 100) ended: killed by SIGKILL; starting it again', 'wharf: replica 2 started again (pid 101)']);
});

test('a process that keeps dying is restarted with growing waits (1, 2, 4 s ...), at most 30 s apart; once stable, at once again', async () => {
  const { clock, lines, procs, run } = setup(['etcd member m2']);
  const p = procs[0]!;
  // Dies right after each restart.
  for (let i = 0; i < 8; i++) {
    p.kill();
    const before = p.restarts.length;
    while (p.restarts.length === before) await run(100);
  }
  const gaps = p.restarts.slice(1).map((t, i) => t - p.restarts[i]!);
  // The first restart at once, then waits of 1, 2, 4, 8, 16, 30, 30 s (give or take a look).
  const expected = [1000, 2000, 4000, 8000, 16000, 30000, 30000];
  gaps.forEach((g, i) => assert.ok(Math.abs(g - expected[i]!) <= 200, `gap ${i}: ${g} ms, expected about ${expected[i]} ms`));
  assert.match(lines.join('\n'), /etcd member m2 \(pid \d+\) ended: killed by SIGKILL; starting it again in 30 s \(restart 8 in a row\)/);
  // Up for a minute: the next death is restarted at once.
  await run(60_000);
  p.kill();
  const at = clock.t;
  await run(200);
  assert.ok(p.restarts[p.restarts.length - 1]! - at <= 100);
});

test('a restart that fails is tried again later, saying why', async () => {
  const { lines, procs, run } = setup(['replica 1']);
  const p = procs[0]!;
  p.failNext = 2;
  p.kill();
  await run(4000);
  assert.equal(p.alive(), true);
  assert.equal(p.restarts.length, 3);
  assert.ok(p.restarts[1]! - p.restarts[0]! >= 1000 && p.restarts[2]! - p.restarts[1]! >= 2000, String(p.restarts));
  assert.match(lines.join('\n'), /replica 1 did not start again: listen EADDRINUSE: address already in use 127\.0\.0\.1:4100; trying again in 1 s/);
  assert.match(lines[lines.length - 1]!, /replica 1 started again \(pid 101\)/);
});

test('once stopped, nothing is restarted', async () => {
  const { procs, sup, run } = setup(['replica 3']);
  await sup.stop();
  procs[0]!.kill();
  await run(2000);
  assert.equal(procs[0]!.restarts.length, 0);
});
