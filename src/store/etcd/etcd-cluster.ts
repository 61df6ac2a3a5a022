/**
 * Starts etcd members on loopback (a single one, or a cluster of several) in a directory of their
 * own: for the etcd backend's tests, and for anyone trying distributed mode on one machine. Uses
 * Debian's `etcd` (package etcd-server, 3.4). Each member listens on two free loopback ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  process: ChildProcess;
}

export interface EtcdCluster {
  members: EtcdMember[];
  endpoints: string[];
  /** Stops one member (SIGKILL: as a machine loss) and returns it. */
  kill(name: string): Promise<void>;
  /** Stops every member and removes their data. */
  stop(): Promise<void>;
}

/** n distinct free loopback ports: all are held open until every one is chosen. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Whether nothing listens on a loopback port (a listen on it succeeds). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Names and loopback addresses for a new cluster of `size` members: member i (from 0) has the
 * client port firstPort + 2i and the peer port firstPort + 2i + 1 (etcd's own 2379/2380 pairing),
 * or free ports when no firstPort is given.
 */
async function newMembers(size: number, firstPort?: number): Promise<{ name: string; clientUrl: string; peerUrl: string }[]> {
  const ports = firstPort === undefined ? await freePorts(2 * size) : Array.from({ length: 2 * size }, (_, i) => firstPort + i);
  if (firstPort !== undefined) {
    for (const [i, port] of ports.entries()) {
      if (!(await portFree(port))) throw new Error(`port ${port} (the ${i % 2 === 0 ? 'client' : 'peer'} port of etcd member m${Math.floor(i / 2) + 1}) is in use on 127.0.0.1: choose other --etcd-ports`);
    }
  }
  return Array.from({ length: size }, (_, i) => ({ name: `m${i + 1}`, clientUrl: `http://127.0.0.1:${ports[2 * i]}`, peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}` }));
}

/**
 * Room for group commits (control/placement-batch.ts, the task report batcher): etcd's defaults
 * (128 ops, 1.5 MiB per txn) hold about three RunTasks of ten tasks. EtcdStore finds the op
 * limit itself (`probeMaxTxnOps`), so an etcd run without these only batches less.
 */
export const GROUP_COMMIT_LIMITS = ['--max-txn-ops', '1024', '--max-request-bytes', String(8 * 1024 * 1024)];

/**
 * The environment of members that share this machine: each Go runtime may run on at most its
 * share of the cores (GOMAXPROCS, at least 1), unless the caller set GOMAXPROCS itself. By
 * default every member's scheduler uses all of them and spins looking for work between Raft
 * messages; with three members on two cores that spinning and the thread handoffs cost about
 * 12% of etcd's CPU per transaction (3.0-3.7 against 3.5-4.0 CPU-ms per txn of 11 puts in three
 * paired runs, 3 members, 3 watchers, 16 txns at a time; throughput within noise).
 */
function sharedMachineEnv(members: number): NodeJS.ProcessEnv {
  if (process.env.GOMAXPROCS) return process.env;
  return { ...process.env, GOMAXPROCS: String(Math.max(1, Math.floor(cpus().length / members))) };
}

export async function answers(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * Whether an etcd member runs at clientUrl, healthy or not: /version answers always, while
 * /health says false during a leader election (a member just lost), and a member taken for
 * absent then would be started a second time on its own data.
 */
async function memberRuns(clientUrl: string): Promise<boolean> {
  try {
    return (await fetch(`${clientUrl}/version`, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** Starts `size` members forming one cluster and waits until each answers /health. */
export async function startEtcdCluster(size = 1, opts: { dir?: string; binary?: string; /** More etcd flags (they win over ours). */ args?: string[] } = {}): Promise<EtcdCluster> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'wharf-etcd-'));
  const members: Omit<EtcdMember, 'process'>[] = await newMembers(size);
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const started: EtcdMember[] = members.map((m) => {
    const data = join(dir, m.name);
    mkdirSync(data, { recursive: true, mode: 0o700 });
    const args = [
      '--name', m.name, '--data-dir', data,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `wharf-${process.pid}`,
      '--log-level', 'error',
      ...GROUP_COMMIT_LIMITS,
      ...(opts.args ?? []),
    ];
    const p = spawn(opts.binary ?? 'etcd', args, { stdio: ['ignore', 'ignore', 'pipe'], env: sharedMachineEnv(size) });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    p.once('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`etcd ${m.name} exited ${code}: ${stderr}\n`);
    });
    return { ...m, process: p };
  });
  const until = Date.now() + 30_000;
  for (const m of started) {
    while (!(await answers(m.clientUrl))) {
      if (m.process.exitCode !== null) throw new Error(`etcd member ${m.name} exited with ${m.process.exitCode}`);
      if (Date.now() > until) throw new Error(`etcd member ${m.name} did not become healthy within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const stopOne = async (m: EtcdMember) => {
    m.process.kill('SIGKILL');
    await exited(m.process);
  };
  return {
    members: started,
    endpoints: started.map((m) => m.clientUrl),
    kill: async (name) => {
      const m = started.find((x) => x.name === name);
      if (!m) throw new Error(`no etcd member ${name}`);
      await stopOne(m);
    },
    stop: async () => {
      await Promise.all(started.map(stopOne));
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A member of a persistent local cluster (`ensureEtcdCluster`), as kept in its members.json. */
export interface PersistentEtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  /** The process id when this call started it; undefined when it was already running (adopted). */
  startedPid?: number;
}

/** The port of a member's URL. */
const portOf = (url: string) => Number(new URL(url).port);

/** pid's argv (Linux /proc), or undefined when it cannot be read. */
function argvOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
}

/** Whether pid is the etcd of member `name` on its data dir `dir/<name>` (its argv, /proc). */
export function isEtcdMemberProcess(pid: number, dir: string, name: string): boolean {
  const argv = argvOf(pid);
  if (!argv) return false;
  const after = (flag: string) => argv[argv.indexOf(flag) + 1];
  return argv.includes('--data-dir') && after('--data-dir') === join(dir, name) && after('--name') === name;
}

/**
 * The pid of the running etcd of member `name` of the cluster in `dir` (a scan of /proc: members
 * run detached, and one adopted from an earlier `wharf up --ha` is nobody's child); undefined
 * when none runs or there is no /proc.
 */
export function etcdMemberPid(dir: string, name: string): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  return pids.map(Number).find((pid) => isEtcdMemberProcess(pid, dir, name));
}

/** Starts member m of the cluster in dir, detached, appending to dir/<name>.log. */
function spawnMember(dir: string, m: PersistentEtcdMember, members: PersistentEtcdMember[], binary: string | undefined): ChildProcess {
  const data = join(dir, m.name);
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const log = openSync(join(dir, `${m.name}.log`), 'a', 0o600);
  const args = [
    '--name', m.name, '--data-dir', data,
    '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
    '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
    '--initial-cluster', members.map((x) => `${x.name}=${x.peerUrl}`).join(','), '--initial-cluster-state', 'new', '--initial-cluster-token', 'wharf-local',
    '--log-level', 'warn',
    ...GROUP_COMMIT_LIMITS,
  ];
  const p = spawn(binary ?? 'etcd', args, { detached: true, stdio: ['ignore', log, log], env: sharedMachineEnv(members.length) });
  p.on('error', () => undefined); // told by the caller: the member does not answer
  p.unref();
  closeSync(log);
  return p;
}

/**
 * Starts member m of the cluster in dir again, on its data (so as the same member: etcd ignores
 * the --initial-cluster flags once its data dir has a WAL) and its ports, after it died. Resolves
 * with its pid once it answers /version (not /health: with the quorum lost too it would not be
 * healthy until the others are back), rejects when it exits or does not answer within timeoutMs.
 */
export async function restartEtcdMember(dir: string, m: PersistentEtcdMember, members: PersistentEtcdMember[], opts: { binary?: string; timeoutMs?: number } = {}): Promise<number> {
  const p = spawnMember(dir, m, members, opts.binary);
  const until = Date.now() + (opts.timeoutMs ?? 30_000);
  const log = join(dir, `${m.name}.log`);
  while (!(await memberRuns(m.clientUrl))) {
    if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) throw new Error(`etcd exited (${p.signalCode ?? `code ${p.exitCode ?? 'unknown: not started'}`}); see ${log}`);
    if (Date.now() > until) {
      p.kill('SIGKILL');
      throw new Error(`etcd did not answer on ${m.clientUrl} within ${Math.round((opts.timeoutMs ?? 30_000) / 1000)} s; see ${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return p.pid!;
}

/**
 * A cluster of `size` members on loopback that outlives the caller (`wharf up --ha`): each member
 * keeps its data in `dir/<name>` and its addresses in `dir/members.json`, so the next call finds
 * the same cluster: a member that answers is adopted as it is, one that does not is started again
 * on its data and ports (etcd ignores the --initial-cluster flags once its data dir has a WAL).
 * Members run detached, logging to `dir/<name>.log`.
 *
 * Ports: `firstPort` for a new cluster gives member i the client port firstPort + 2i and the peer
 * port firstPort + 2i + 1; without it, free ports are chosen. Either way they are the cluster's
 * from then on (a member's peer address is part of the cluster's state): a firstPort that does
 * not match an existing cluster's is refused, saying what to do.
 */
export async function ensureEtcdCluster(dir: string, size = 3, opts: { binary?: string; firstPort?: number } = {}): Promise<PersistentEtcdMember[]> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'members.json');
  let members: PersistentEtcdMember[];
  // Only members recorded by an earlier call may be adopted: on a new cluster, whatever answers on
  // a port just chosen is some other process that took it in between (another cluster's member).
  const recorded = existsSync(file);
  if (recorded) {
    members = (JSON.parse(readFileSync(file, 'utf8')) as PersistentEtcdMember[]).map((m) => ({ name: m.name, clientUrl: m.clientUrl, peerUrl: m.peerUrl }));
    const first = members[0] ? portOf(members[0].clientUrl) : undefined;
    const consecutive = members.every((m, i) => portOf(m.clientUrl) === first! + 2 * i && portOf(m.peerUrl) === first! + 2 * i + 1);
    if (opts.firstPort !== undefined && !(consecutive && first === opts.firstPort)) {
      const ports = members.map((m) => `${m.name} ${portOf(m.clientUrl)}/${portOf(m.peerUrl)}`).join(', ');
      throw new Error(
        `--etcd-ports ${opts.firstPort}: the etcd cluster in ${dir} was made with other ports (client/peer: ${ports}), and a member's peer address is part of the cluster's state. ` +
          `Leave --etcd-ports out${consecutive ? ` (or give ${first})` : ''} to keep this cluster; to make a new one on other ports, stop wharf up, stop its etcd members and remove ${dir} (its state, clusters, services and tasks, goes with it).`,
      );
    }
  } else {
    // Ports are chosen once, and kept: a member's peer address is part of the cluster's state.
    members = await newMembers(size, opts.firstPort);
    writeFileSync(file, JSON.stringify(members, null, 2) + '\n', { mode: 0o600 });
  }
  const started = new Map<string, ChildProcess>();
  for (const m of members) {
    if (recorded && (await memberRuns(m.clientUrl))) continue;
    const p = spawnMember(dir, m, members, opts.binary);
    started.set(m.name, p);
    m.startedPid = p.pid;
  }
  // A member of a cluster that has lost quorum answers /health only once enough of the others run:
  // every member is started before any is waited for.
  const until = Date.now() + 30_000;
  for (const m of members) {
    while (!(await answers(m.clientUrl))) {
      const p = started.get(m.name);
      if (p && p.exitCode !== null) throw new Error(`etcd member ${m.name} exited with ${p.exitCode}; see ${join(dir, `${m.name}.log`)}`);
      if (Date.now() > until) throw new Error(`etcd member ${m.name} (${m.clientUrl}) did not become healthy within 30 s; see ${join(dir, `${m.name}.log`)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return members;
}
