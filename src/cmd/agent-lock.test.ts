import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockAgentDir } from './agent';

const dataDir = mkdtempSync(join(tmpdir(), 'wharf-agent-lock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

const gone = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

/** Another process holding the agent lock of the data dir, as a running `wharf agent` does. */
function holder(): Promise<ChildProcess> {
  const code = `require(${JSON.stringify(join(__dirname, 'agent.ts'))}).lockAgentDir(${JSON.stringify(join(dataDir, 'agent'))}); global.gc(); console.log('locked'); setInterval(() => {}, 1000);`;
  const c = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  return new Promise((resolve, reject) => {
    c.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve(c));
    c.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
  });
}

/** `wharf agent` on the data dir; its exit code and what it wrote to stderr. */
async function wharfAgent(): Promise<{ code: number | null; stderr: string }> {
  // --region and --join-token: nothing to ask a server for before the agent starts (the endpoint is not listening).
  const args = ['--import', 'tsx', join(__dirname, 'main.ts'), 'agent', '--data-dir', dataDir, '--region', 'us-east-1', '--join-token', 'AKIDEXAMPLE:secret', '--endpoint', 'http://127.0.0.1:9'];
  const c = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WHARF_LOG_LEVEL: 'silent' } });
  children.push(c);
  let stderr = '';
  c.stderr!.on('data', (d: Buffer) => (stderr += d));
  await gone(c);
  return { code: c.exitCode, stderr };
}

test('a second wharf agent on a data dir is refused, naming the running one; the lock of a killed one is taken over, and a released one is free', async () => {
  const first = await holder();
  const refused = await wharfAgent();
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr.trim(),
    `wharf: another wharf agent is already running on this data dir (pid ${first.pid}): ${join(dataDir, 'agent')} (two agents on one data dir are one container instance and would run every task twice; stop it, or give this agent a --data-dir of its own)`,
  );

  first.kill('SIGKILL');
  await gone(first);
  const lock = lockAgentDir(join(dataDir, 'agent')); // its lock died with it
  assert.match((await wharfAgent()).stderr, new RegExp(`already running on this data dir \\(pid ${process.pid}\\)`));
  lock.release();
  lockAgentDir(join(dataDir, 'agent')).release();
});
