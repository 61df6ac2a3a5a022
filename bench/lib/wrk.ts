/**
 * wrk (Debian's `wrk`, C) as the HTTP load generator, and the CPU each process spent while it ran.
 *
 * wrk rather than autocannon: on a 2-core machine the generator shares the CPU with what it
 * measures, and wrk spends a fraction of autocannon's CPU per request; its percentiles are in
 * microseconds, where autocannon's are whole milliseconds (too coarse for a sub-millisecond hop).
 * One wrk thread, so the generator never takes more than one core.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aptInstall, findCommand, hasApt, isRoot } from '../../src/cmd/docker-setup';

/** Makes sure each command is on the machine: apt-get installs the missing ones as root on Debian. */
export function ensureCommands(commands: Record<string, string>, say: (line: string) => void): void {
  const missing = Object.entries(commands).filter(([cmd]) => findCommand(cmd) === undefined);
  if (missing.length === 0) return;
  const packages = missing.map(([, pkg]) => pkg);
  if (isRoot() && hasApt() && aptInstall(packages, say) && missing.every(([cmd]) => findCommand(cmd) !== undefined)) return;
  throw new Error(`the benchmark needs ${missing.map(([c]) => c).join(', ')}: apt-get install -y ${packages.join(' ')}`);
}

/** wrk's done() hook prints its figures as one JSON line; delay() paces each connection when asked. */
const SCRIPT = `
local pause = 0
function init(args) pause = tonumber(args[1] or "0") end
function delay() return pause end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d,"non2xx":%d,"meanUs":%.1f,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status, latency.mean, latency:percentile(50), latency:percentile(99)))
end
`;

export interface WrkResult {
  requestsPerSec: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Responses other than 2xx/3xx. */
  non2xx: number;
  /** CPU seconds wrk itself used. */
  cpuSeconds: number;
}

const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) a process has used so far, all its threads; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return 0;
  }
}

/** The machine's busy CPU seconds so far (all cpus, everything but idle and iowait). */
export function machineBusySeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((s, v) => s + v, 0);
  return (total - f[3]! - f[4]!) / TICK;
}

/** The ids of a process's children (HAProxy's workers under its master). */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Pins every thread of the processes to the cpu list ("0", "1", "0-1"). */
export function pin(pids: number[], cpus: string): void {
  for (const pid of pids) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

let scriptFile: string | undefined;

/** Removes the script file wrk() wrote (call when the benchmark is done). */
export function wrkCleanup(): void {
  if (scriptFile) fs.rmSync(path.dirname(scriptFile), { recursive: true, force: true });
  scriptFile = undefined;
}

/**
 * One wrk run. `pauseMs` > 0 paces each connection (a request, then the pause): a fixed rate of
 * about connections * 1000 / (pauseMs + latency) requests per second. `cpus` pins wrk with taskset.
 */
export async function wrk(url: string, o: { connections: number; seconds: number; pauseMs?: number; cpus?: string }): Promise<WrkResult> {
  if (!scriptFile) {
    scriptFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-wrk-')), 'report.lua');
    fs.writeFileSync(scriptFile, SCRIPT);
  }
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', '-s', scriptFile, url, '--', String(o.pauseMs ?? 0)];
  // The shell reports the CPU of the wrk it waited for (cutime + cstime of its own stat line).
  const sh = ['sh', '-c', 'wrk "$@"; s=$?; echo "WRK_CPU $(cat /proc/$$/stat)"; exit $s', 'sh', ...args];
  const argv = o.cpus ? ['taskset', '-c', o.cpus, ...sh] : sh;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.on('data', (c: Buffer) => (text += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`))));
  });
  const json = /WRK_RESULT (\{.*\})/.exec(out)?.[1];
  const stat = /WRK_CPU (.*)/.exec(out)?.[1];
  if (!json || !stat) throw new Error(`wrk printed no result: ${out}`);
  const r = JSON.parse(json) as Record<string, number>;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    requestsPerSec: r.requests! / (r.durationUs! / 1e6),
    meanMs: r.meanUs! / 1000,
    p50Ms: r.p50Us! / 1000,
    p99Ms: r.p99Us! / 1000,
    errors: r.connectErrors! + r.readErrors! + r.writeErrors! + r.timeouts!,
    non2xx: r.non2xx!,
    cpuSeconds: (Number(f[13]) + Number(f[14])) / TICK,
  };
}
