/**
 * `wharf up --ha`: distributed mode on one machine, to try it out. A three-member etcd cluster
 * (kept under DATA_DIR/ha/etcd and left running when `wharf up` stops, so the next `wharf up --ha`
 * adopts it, or starts its members again on the same data and ports) and three
 * `wharf server --store etcd://...` replicas on consecutive ports.
 *
 * The replicas are child processes, not three startServer calls in this process: a replica is
 * then what it is in production (its own event loop, heap and etcd lease), so `kill -9` of one
 * shows a failover, and `wharf status` sees three processes that can fail one at a time. They
 * share the data dir's key files (credentials, join tokens, secrets key), which this process
 * makes before any replica starts, so that no two replicas race to create them.
 *
 * DATA_DIR/ha/state.json says where everything is, for `wharf status`. DATA_DIR/ha/replica-N.json
 * says which process is replica N (pid, endpoint): when `wharf up` itself dies (kill -9), its
 * replicas keep running, and the next `wharf up --ha` adopts each one that is still a
 * `wharf server` of this data dir answering on its endpoint as that very pid (ha-replicas.ts),
 * and starts only the missing ones, so a replica never runs twice.
 *
 * While it runs, `wharf up --ha` keeps them all running (ha-supervisor.ts): a replica or an etcd
 * member that dies is started again, as what it was, with growing waits if it keeps dying.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { adoptableReplica, awaitSpawnedReplica, forgetReplica, recordReplica, replicaFlags, stopAdopted } from './ha-replicas';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ensureEtcdCluster, etcdMemberPid, isEtcdMemberProcess, restartEtcdMember, type PersistentEtcdMember } from '../store/etcd';
import { loadOrCreateCredentials } from './credentials';
import { loadOrCreateSecretCipher, tightenDataDir } from './data-dir';
import { hostPort, processAlive } from '../lib';
import { HaSupervisor, type SupervisedProcess } from './ha-supervisor';
import { parseDnsFlag } from './dns';
import { replicaStatus } from './replica-health';

export const HA_STATE_FILE = join('ha', 'state.json');

/** What `wharf up --ha` leaves in DATA_DIR/ha/state.json. */
export interface HaState {
  store: string;
  replicas: string[];
  etcd: { name: string; clientUrl: string }[];
}

export interface HaReplica {
  endpoint: string;
  pid: number;
  log: string;
  /** Left running by an earlier `wharf up --ha` (killed) and adopted by this one. */
  adopted?: boolean;
}

export interface RunningHa {
  store: string;
  replicas: HaReplica[];
  etcd: PersistentEtcdMember[];
  /** Stops the replicas (SIGTERM: each resigns its lead and deregisters); etcd keeps running. */
  stop(): Promise<void>;
}

export interface HaOptions {
  host: string;
  /** The first replica's port; the others take the next ones (0: any free ports). */
  port: number;
  dataDir: string;
  /** `wharf server` flags every replica gets (region, account, sync, ...). */
  serverArgs: string[];
  /**
   * The DNS flags every replica gets: the first to start binds the addresses, the others stand
   * by and take them over when it dies (cmd/dns.ts).
   */
  dnsArgs: string[];
  /** TLS: every replica serves this certificate. */
  tls?: { certFile: string; keyFile: string };
  /** How this command runs `wharf` (default: this very node process and script). */
  command?: string[];
  /** The first of the six loopback ports of a new etcd cluster (`--etcd-ports`); default: free ports. */
  etcdFirstPort?: number;
  /** Look at the replicas and members this often, to start a dead one again (default 1000 ms). */
  superviseEveryMs?: number;
  say: (s: string) => void;
}

export const HA_REPLICAS = 3;
const KEY_PREFIX = 'wharf/';

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function readHaState(dataDir: string): HaState | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, HA_STATE_FILE), 'utf8')) as HaState;
  } catch {
    return undefined;
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** A replica slot of this run: the process that is replica n now. */
interface ReplicaSlot extends HaReplica {
  n: number;
  /** Our child (started by this run); absent for an adopted replica. */
  child?: ChildProcess;
}

const endedHow = (c: ChildProcess) => (c.signalCode ? `killed by ${c.signalCode}` : c.exitCode !== null ? `exited with ${c.exitCode}` : undefined);

export async function startHa(o: HaOptions): Promise<RunningHa> {
  const haDir = join(o.dataDir, 'ha');
  mkdirSync(haDir, { recursive: true, mode: 0o700 });
  const etcdDir = join(haDir, 'etcd');
  const members = await ensureEtcdCluster(etcdDir, 3, { firstPort: o.etcdFirstPort });
  for (const m of members) o.say(`wharf: etcd member ${m.name} ${m.clientUrl} ${m.startedPid ? `started (pid ${m.startedPid})` : 'already running: adopted'}`);
  const store = `etcd://${members.map((m) => m.clientUrl.replace(/^https?:\/\//, '')).join(',')}/${KEY_PREFIX}`;
  // The shared key files exist before any replica starts (see the header).
  tightenDataDir(o.dataDir);
  loadOrCreateCredentials(o.dataDir);
  loadOrCreateSecretCipher(o.dataDir);
  // Replicas an earlier `wharf up --ha` left running (it was killed) are adopted, not doubled.
  const adopted = await Promise.all(Array.from({ length: HA_REPLICAS }, (_, i) => adoptableReplica(haDir, i + 1, o.dataDir, store)));
  const ports: number[] = [];
  for (let i = 0; i < HA_REPLICAS; i++) {
    const a = adopted[i];
    ports.push(a ? Number(new URL(a.endpoint).port) : o.port === 0 ? await freePort(o.host) : o.port + i);
  }
  const [bin, ...pre] = o.command ?? [process.execPath, ...process.execArgv, process.argv[1]!];
  const slots: ReplicaSlot[] = [];
  let supervisor: HaSupervisor | undefined;
  const stop = async () => {
    // First no more restarts (one under way ends first, its process then stopped below).
    await supervisor?.stop();
    await Promise.all(
      slots.map(async (r) => {
        if (!r.child) return stopAdopted(r.pid);
        const c = r.child;
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
        await exited(c);
        clearTimeout(t);
      }),
    );
    for (let i = 0; i < HA_REPLICAS; i++) forgetReplica(haDir, i + 1);
  };
  // Everything after --data-dir: what an adopted replica must have been started with too.
  const flags = [...o.serverArgs, ...o.dnsArgs, ...(o.tls ? ['--tls-cert', o.tls.certFile, '--tls-key', o.tls.keyFile] : [])];
  /** Starts replica n (1-based) on its port; resolves once it answers as itself. */
  const spawnReplica = async (n: number): Promise<ReplicaSlot> => {
    const log = join(haDir, `replica-${n}.log`);
    const listen = hostPort(o.host, ports[n - 1]!);
    const endpoint = `${o.tls ? 'https' : 'http'}://${listen}`;
    const fd = openSync(log, 'a', 0o600);
    // The log is appended to across runs: this child's reason to exit is what follows here.
    const logStart = fstatSync(fd).size;
    const args = [...pre, 'server', '--store', store, '--listen', listen, '--data-dir', o.dataDir, ...flags];
    const child = spawn(bin!, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const slot: ReplicaSlot = { n, endpoint, pid: child.pid!, log, child };
    // Recorded at once: if this process dies from here on, the next start finds the replica.
    recordReplica(haDir, n, { pid: child.pid!, endpoint });
    try {
      // Up only when it answers as itself: a port some other server holds also answers /healthz.
      await awaitSpawnedReplica({ n, pid: child.pid!, endpoint, exited: () => child.exitCode !== null || child.signalCode !== null, log: () => logSince(log, logStart) });
    } catch (e) {
      // Not left behind (a restart that failed is tried again; a first start stops them all).
      child.kill('SIGKILL');
      await exited(child);
      throw e;
    }
    return slot;
  };
  try {
    // One after another: each is up (and registered in replicas/) before the next starts.
    for (let i = 0; i < HA_REPLICAS; i++) {
      const log = join(haDir, `replica-${i + 1}.log`);
      const a = adopted[i];
      // A replica left running with other flags (another --region, --sync, --dns, ...) is
      // replaced, one at a time as the others keep serving, so this run's flags hold everywhere.
      const theirs = a ? replicaFlags(a.pid) : undefined;
      if (a && JSON.stringify(theirs) !== JSON.stringify(flags)) {
        o.say(`wharf: replica ${i + 1} ${a.endpoint} (pid ${a.pid}) runs with other flags (${(theirs ?? []).join(' ') || 'none'}): replacing it`);
        await stopAdopted(a.pid);
        forgetReplica(haDir, i + 1);
      } else if (a) {
        slots.push({ n: i + 1, endpoint: a.endpoint, pid: a.pid, log, adopted: true });
        o.say(`wharf: replica ${i + 1} ${a.endpoint} already running (pid ${a.pid}): adopted`);
        continue;
      }
      const slot = await spawnReplica(i + 1);
      slots.push(slot);
      o.say(`wharf: replica ${i + 1} ${slot.endpoint} started (pid ${slot.pid})`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  supervisor = new HaSupervisor([...slots.map((slot) => superviseReplica(slot, spawnReplica)), ...superviseMembers(etcdDir, members, o.say)], { say: o.say, pollMs: o.superviseEveryMs });
  supervisor.start();
  const state: HaState = { store, replicas: slots.map((r) => r.endpoint), etcd: members.map((m) => ({ name: m.name, clientUrl: m.clientUrl })) };
  writeFileSync(join(o.dataDir, HA_STATE_FILE), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  return { store, replicas: slots, etcd: members, stop };
}

/** Replica slot n, kept running: started again (as our child, on its port) when its process dies. */
function superviseReplica(slot: ReplicaSlot, spawnReplica: (n: number) => Promise<ReplicaSlot>): SupervisedProcess {
  return {
    name: `replica ${slot.n} ${slot.endpoint}`,
    pid: () => slot.pid,
    alive: () => (slot.child ? slot.child.exitCode === null && slot.child.signalCode === null : processAlive(slot.pid)),
    howItEnded: () => (slot.child ? endedHow(slot.child) : undefined),
    restart: async () => {
      const again = await spawnReplica(slot.n);
      Object.assign(slot, { pid: again.pid, child: again.child, adopted: undefined });
      return again.pid;
    },
  };
}

/**
 * The etcd members, kept running: one whose process is gone is started again on its data dir and
 * ports (the same member). Members run detached (they outlive `wharf up`), so each is known by its
 * pid, found in /proc when it was adopted; one whose process cannot be found is not supervised.
 */
function superviseMembers(dir: string, members: PersistentEtcdMember[], say: (s: string) => void): SupervisedProcess[] {
  return members.flatMap((m) => {
    let pid = m.startedPid ?? etcdMemberPid(dir, m.name);
    if (pid === undefined) {
      say(`wharf: etcd member ${m.name}: its process cannot be found (no /proc?), so it is not started again if it dies`);
      return [];
    }
    return [
      {
        name: `etcd member ${m.name} ${m.clientUrl}`,
        pid: () => pid,
        alive: () => pid !== undefined && processAlive(pid) && isEtcdMemberProcess(pid, dir, m.name),
        restart: async () => (pid = await restartEtcdMember(dir, m, members)),
      },
    ];
  });
}

function logSince(file: string, offset: number): string {
  try {
    return readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

/** `--etcd-ports FIRST`: the first of six consecutive ports (three members, a client and a peer port each). */
export function parseEtcdPorts(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n + 5 > 65535) throw new Error(`--etcd-ports wants the first of six ports (1-65530), not '${String(v)}'`);
  return n;
}

/** The `wharf up` flags that every replica takes as `wharf server` flags. */
const PASSED_TO_REPLICAS = ['region', 'regions', 'account-id', 'sync', 'heap-growth', 'scale-command', 'vpc-base', 'load-balancers', 'haproxy'] as const;

/**
 * `wharf up --ha`'s control plane, in the shape `wharf up` uses for its one server: the first
 * replica's endpoint for the banner, the DNS addresses some replica answers on (every replica
 * is given the same ones: one holds each and the others take it over when it dies, so the local
 * agents' tasks keep one resolver address through a failover), the key files' credentials.
 */
export async function upReplicas(values: Record<string, unknown>, host: string, port: number, tls: { certFile: string; keyFile: string } | undefined) {
  const serverArgs = PASSED_TO_REPLICAS.flatMap((k) => (values[k] === undefined ? [] : [`--${k}`, String(values[k])]));
  const dataDir = String(values['data-dir']);
  const ha = await startHa({
    host,
    port,
    dataDir,
    serverArgs,
    dnsArgs: values.dns === undefined ? [] : ['--dns', String(values.dns)],
    tls,
    etcdFirstPort: parseEtcdPorts(values['etcd-ports']),
    say: (s) => process.stderr.write(s + '\n'),
  });
  const served = (await Promise.all(ha.replicas.map((r) => replicaStatus(r.endpoint)))).flatMap((r) => (r.healthy ? (r.dns?.serving ?? []) : []));
  return {
    endpoint: ha.replicas[0]!.endpoint,
    dns: served.length > 0 ? (parseDnsFlag([...new Set(served)].join(','))?.listen ?? []) : [],
    credentials: loadOrCreateCredentials(dataDir),
    ha,
    close: () => ha.stop(),
  };
}

export function haBanner(ha: RunningHa): string {
  const lines = ['Distributed mode (--ha): any replica serves the whole API; the elected leader runs the controllers.', '  Replicas:'];
  ha.replicas.forEach((r, i) => lines.push(`    ${i + 1}. ${r.endpoint}   (pid ${r.pid}${r.adopted ? ', adopted' : ''}, log ${r.log})`));
  lines.push(`  etcd members (${ha.store}):`);
  for (const m of ha.etcd) lines.push(`    ${m.name}  ${m.clientUrl}`);
  lines.push('  A replica or member that dies is started again (the log above says so).');
  lines.push('  The etcd members keep running when this stops; the next `wharf up --ha` adopts them.');
  lines.push('  Which replica leads, and the health of each replica and member:  wharf status', '', '');
  return lines.join('\n');
}
