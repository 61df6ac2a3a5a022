/**
 * The replica records of `wharf up --ha` (DATA_DIR/ha/replica-N.json: pid and endpoint), and
 * whether the process a record names may be adopted by a later `wharf up --ha`.
 *
 * A pid alone proves nothing (pids are reused), nor does an endpoint that answers (another
 * installation may have its port now). A record is adopted only when all three hold: the pid's
 * command line is `... server --store <this store> --listen <the endpoint's host:port> --data-dir <this data dir>`
 * (Linux /proc; the data dir compared as a real path, resolved against the process's own working
 * directory), and the endpoint's /healthz names a replica id of that pid (`host-PID-random`,
 * cmd/server.ts). Anything else is a stale record: a new replica is started in its place.
 */
import { readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getJson } from './get-json';
import { processAlive } from '../lib';

export interface ReplicaRecord {
  pid: number;
  endpoint: string;
}

const recordFile = (haDir: string, n: number) => join(haDir, `replica-${n}.json`);

export function recordReplica(haDir: string, n: number, r: ReplicaRecord): void {
  writeFileSync(recordFile(haDir, n), JSON.stringify(r) + '\n', { mode: 0o600 });
}

export function forgetReplica(haDir: string, n: number): void {
  rmSync(recordFile(haDir, n), { force: true });
}

function readRecord(haDir: string, n: number): ReplicaRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(recordFile(haDir, n), 'utf8')) as Partial<ReplicaRecord>;
    return Number.isInteger(r.pid) && typeof r.endpoint === 'string' ? { pid: r.pid!, endpoint: r.endpoint } : undefined;
  } catch {
    return undefined;
  }
}

/** pid's command line (Linux /proc), as the argv it was started with. */
function argvOf(pid: number): string[] {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  if (argv[argv.length - 1] === '') argv.pop();
  return argv;
}

/**
 * Whether pid runs `wharf server --listen HOST:PORT --data-dir DATA_DIR` (its own argv, /proc),
 * and, when store is given, `--store STORE` (a replica of another etcd cluster is not adopted).
 */
export function isReplicaProcess(pid: number, listen: string, dataDir: string, store?: string): boolean {
  try {
    const argv = argvOf(pid);
    const after = (flag: string) => {
      const i = argv.indexOf(flag);
      return i >= 0 ? argv[i + 1] : undefined;
    };
    const dir = after('--data-dir');
    if (!argv.includes('server') || after('--listen') !== listen || dir === undefined) return false;
    if (store !== undefined && after('--store') !== store) return false;
    return realpathSync(resolve(readlinkSync(`/proc/${pid}/cwd`), dir)) === realpathSync(dataDir);
  } catch {
    // No /proc (not Linux), or the process is gone or not ours: nothing to adopt.
    return false;
  }
}

/**
 * The flags pid was started with after `--data-dir DIR` (`wharf up --ha` puts the flags that can
 * change between runs there: region, sync, DNS, TLS, ...); undefined when it cannot be read.
 */
export function replicaFlags(pid: number): string[] | undefined {
  try {
    const argv = argvOf(pid);
    const i = argv.indexOf('--data-dir');
    return i >= 0 ? argv.slice(i + 2) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Replica n's recorded process, if it is still this data dir's replica and answers as itself
 * (given up to waitMs to answer: it may have been starting when `wharf up` died).
 */
export async function adoptableReplica(haDir: string, n: number, dataDir: string, store?: string, waitMs = 30_000): Promise<ReplicaRecord | undefined> {
  const r = readRecord(haDir, n);
  if (!r || !processAlive(r.pid)) return undefined;
  let listen: string;
  try {
    listen = new URL(r.endpoint).host;
  } catch {
    return undefined;
  }
  const until = Date.now() + waitMs;
  while (isReplicaProcess(r.pid, listen, dataDir, store)) {
    const who = await answeredBy(r.endpoint, r.pid);
    if (who === 'self') return r;
    // Another process answers there: the record is not that process's.
    if (who === 'other') return undefined;
    if (Date.now() > until) throw new Error(`replica ${n} (pid ${r.pid}, ${r.endpoint}) runs but does not answer /healthz; stop it (kill ${r.pid}) and start again`);
    await new Promise((res) => setTimeout(res, 250));
  }
  return undefined;
}

/**
 * Who answers /healthz at endpoint: the process pid (its replica id is `host-PID-random`), another
 * one, or nobody yet.
 */
async function answeredBy(endpoint: string, pid: number): Promise<'self' | 'other' | 'none'> {
  try {
    const { status, body } = await getJson(`${endpoint}/healthz`, 1000);
    const id = (body as { replica?: unknown }).replica;
    if (status === 200 && typeof id === 'string' && id.includes(`-${pid}-`)) return 'self';
    return status === 200 ? 'other' : 'none';
  } catch {
    return 'none';
  }
}

/** What a spawned replica's log says about why it ended: its last `wharf: ...` line (main.ts's fatal error). */
export function exitReason(logText: string): string | undefined {
  const lines = logText.split('\n').map((l) => l.trim()).filter(Boolean);
  const fatal = lines.filter((l) => l.startsWith('wharf: ')).pop();
  return fatal?.slice('wharf: '.length) ?? lines.pop();
}

/**
 * Waits until the replica `wharf up --ha` just spawned (pid) answers on its endpoint as itself.
 * An answer from another process (a foreign `wharf server`, a stray replica of an earlier run on
 * that port) does not count: the spawned one then fails to listen and exits, and that is the
 * error, with the reason its log gives. `exited` says whether the spawned process has ended;
 * `log()` reads what it wrote.
 */
export async function awaitSpawnedReplica(o: { n: number; pid: number; endpoint: string; exited: () => boolean; log: () => string; timeoutMs?: number; pollMs?: number }): Promise<void> {
  const until = Date.now() + (o.timeoutMs ?? 60_000);
  let other = false;
  for (;;) {
    const who = await answeredBy(o.endpoint, o.pid);
    if (who === 'self') return;
    other ||= who === 'other';
    if (o.exited()) {
      const reason = exitReason(o.log()) ?? 'no output';
      throw new Error(`replica ${o.n} exited: ${reason}${other ? ` (another process answers on ${o.endpoint})` : ''}`);
    }
    if (Date.now() > until) {
      throw new Error(other ? `replica ${o.n} (pid ${o.pid}): another process answers on ${o.endpoint}` : `replica ${o.n} (${o.endpoint}) did not answer within ${Math.round((o.timeoutMs ?? 60_000) / 1000)} s: ${o.log().trim().split('\n').slice(-15).join('\n')}`);
    }
    await new Promise((res) => setTimeout(res, o.pollMs ?? 200));
  }
}

/** Stops an adopted replica (not a child: no exit event) as a child is stopped: SIGTERM, SIGKILL after graceMs. */
export async function stopAdopted(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // gone already
    }
  };
  signal('SIGTERM');
  const until = Date.now() + graceMs;
  let killed = false;
  while (processAlive(pid)) {
    if (!killed && Date.now() > until) {
      signal('SIGKILL');
      killed = true;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}
