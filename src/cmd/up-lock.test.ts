import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockUp } from './up-lock';

const dataDir = mkdtempSync(join(tmpdir(), 'wharf-up-lock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** Another process that takes the lock (as a running `wharf up` does) and keeps it. */
function holder(): Promise<ChildProcess> {
  // It keeps no reference to the lock, and collects its garbage before saying it holds it: the
  // lock must outlive both (a collected lock database closes, and its lock goes with it).
  const code = `require(${JSON.stringify(join(__dirname, 'up-lock.ts'))}).lockUp(${JSON.stringify(dataDir)}); global.gc(); console.log('locked'); setInterval(() => {}, 1000);`;
  const c = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  return new Promise((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve(c));
    c.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
}

const gone = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

test('a second wharf up on the data dir is refused, naming the running one; kill -9 of that one leaves no stale lock', async () => {
  const first = await holder();
  assert.throws(() => lockUp(dataDir), new RegExp(`^Error: wharf up is already running on this data dir \\(pid ${first.pid}\\)`));
  first.kill('SIGKILL');
  await gone(first);
  const lock = lockUp(dataDir);
  assert.equal(statSync(join(dataDir, 'up.lock')).mode & 0o777, 0o600);
  // Held by this process now: another process is refused, naming this one.
  const code = `try { require(${JSON.stringify(join(__dirname, 'up-lock.ts'))}).lockUp(${JSON.stringify(dataDir)}); } catch (e) { console.log(e.message); }`;
  const other = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  other.stdout!.on('data', (d: Buffer) => (out += d));
  await gone(other);
  assert.match(out, new RegExp(`wharf up is already running on this data dir \\(pid ${process.pid}\\)`));
  lock.release();
  lockUp(dataDir).release();
});
