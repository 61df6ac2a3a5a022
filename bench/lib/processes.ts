/**
 * What the end-to-end benchmarks need around the processes they start: free ports, the `wharf`
 * CLI as a child process, its memory and CPU from /proc, bounded HTTP requests and signed ECS
 * calls that do not depend on the SDK, and the server's live heap through its inspector.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { signRequest } from '../../src/lib/sigv4';

export const ROOT = path.join(__dirname, __filename.endsWith('.js') && path.basename(path.join(__dirname, '../..')) === 'dist' ? '../../..' : '../..');
const REGION = 'us-east-1';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The node arguments that run the `wharf` CLI as users run it: the compiled dist/src/cmd/main.js
 * (what `bin/wharf` and `npm start` run), not the sources through tsx. The two differ in more
 * than start-up: tsx compiles with esbuild's keepNames, which names every closure through a
 * helper that gives each function its own property store (about 10 per simulated task, 60 MiB of
 * the agent's heap at 25,600 tasks). So a benchmark refuses a dist/ that is missing or older than
 * any source file it was built from: `npm run bench` builds first.
 */
export function wharfEntry(): string[] {
  builtEntry ??= checkBuilt();
  return [builtEntry];
}

let builtEntry: string | undefined;

function checkBuilt(): string {
  const built = path.join(ROOT, 'dist', 'src', 'cmd', 'main.js');
  if (!fs.existsSync(built)) throw new Error(`bench: ${path.relative(ROOT, built)} is missing; run \`npm run build\` first (\`npm run bench\` does)`);
  const builtAt = fs.statSync(built).mtimeMs;
  const newer = newestSource(path.join(ROOT, 'src'));
  if (newer && newer.mtimeMs > builtAt) {
    throw new Error(`bench: dist/ is older than ${path.relative(ROOT, newer.file)}; run \`npm run build\` first (\`npm run bench\` does)`);
  }
  return built;
}

/** The most recently modified source file the build compiles (tests and the console excluded). */
function newestSource(dir: string): { file: string; mtimeMs: number } | undefined {
  let best: { file: string; mtimeMs: number } | undefined;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (file === path.join(ROOT, 'src', 'console')) continue;
      const sub = newestSource(file);
      if (sub && (!best || sub.mtimeMs > best.mtimeMs)) best = sub;
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
      const mtimeMs = fs.statSync(file).mtimeMs;
      if (!best || mtimeMs > best.mtimeMs) best = { file, mtimeMs };
    }
  }
  return best;
}

/** `wharf <args>` as a child process, the built CLI (see wharfEntry). */
export function wharf(args: string[], nodeArgs: string[], log: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  return spawn(process.execPath, [...nodeArgs, ...wharfEntry(), ...args], {
    cwd: ROOT,
    stdio: ['ignore', out, out],
    env: { ...process.env, WHARF_LOG_LEVEL: process.env.WHARF_LOG_LEVEL ?? 'warn' },
  });
}

export function memoryOf(pid: number | undefined): { rss: number; hwm: number } {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** utime + stime of a process, in seconds. */
export function cpuOf(pid: number | undefined): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * One HTTP request on a connection of its own, failing after `timeoutMs` with a timer that keeps
 * this process alive. The measurement's polls go through this, not the SDK: a poll that never
 * came back once stalled a whole run with nothing left to wake it.
 */
export function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs: number }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(opts.body);
  });
}

/** An ECS API call signed with the user's key, through `request`. */
export async function ecsCall<T>(endpoint: string, creds: { accessKeyId: string; secretAccessKey: string }, op: string, body: unknown, timeoutMs: number): Promise<T> {
  const url = `${endpoint}/`;
  const payload = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonEC2ContainerServiceV20141113.${op}` };
  Object.assign(headers, signRequest({ method: 'POST', url, headers, body: payload }, { ...creds, region: REGION, service: 'ecs' }));
  const res = await request(url, { method: 'POST', headers, body: payload, timeoutMs });
  if (res.status !== 200) throw new Error(`${op}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  return JSON.parse(res.text) as T;
}

/**
 * The server's live heap: a full garbage collection through its inspector (the server runs with
 * `--inspect=127.0.0.1:0`; the address is in its log), then process.memoryUsage() inside it.
 */
export async function liveHeapOf(serverLog: string): Promise<{ heapUsedMiB: number; rssMiB: number } | undefined> {
  const url = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(fs.readFileSync(serverLog, 'utf8'))?.[1];
  if (!url) return undefined;
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<{ result?: { result?: { value?: unknown } } }>((resolve, reject) => {
      const mine = ++id;
      const timer = setTimeout(() => reject(new Error(`${method} timed out`)), 60_000);
      const onMessage = (data: WebSocket.RawData) => {
        const m = JSON.parse(data.toString()) as { id?: number };
        if (m.id !== mine) return;
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(m as never);
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id: mine, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    const out = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const m = JSON.parse(String(out.result?.result?.value)) as { heapUsed: number; rss: number };
    return { heapUsedMiB: Math.round(m.heapUsed / 1048576), rssMiB: Math.round(m.rss / 1048576) };
  } finally {
    ws.close();
  }
}

export async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

