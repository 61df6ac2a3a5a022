/**
 * `wharf status`: which replica leads, each replica's health, and each etcd member's.
 *
 * Where the replicas come from: the --endpoint(s) given, the replica registry (`replicas/` in the
 * store, cmd/replicas.ts) when the etcd store is known (`--store`, or what `wharf up --ha` left in
 * DATA_DIR/ha/state.json), and what the replicas asked say themselves: each one's /healthz names
 * the replica, says whether it leads, what kind of store it keeps its state in, and (on etcd) the
 * replicas of the registry as it reads them, which are asked in turn. So any one replica's URL
 * shows the whole installation and its real leader. etcd members are asked for their /health
 * when the store URL is known (the replicas do not publish their etcd's addresses).
 */
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { getJson } from './get-json';
import { errorMessage, replicaHealth, type ReplicaStatus } from './replica-health';
import { parseEtcdUrl } from './server';
import { DEFAULT_ENDPOINT, defaultDataDir } from './client';
import { readHaState } from './up-ha';
import { LISTED_FOR_MS, REPLICAS_PREFIX, heartbeatAgeSeconds, type ListedReplica, type ReplicaRecord } from './replicas';
import { LEADER_KEY } from '../store/etcd';

export const STATUS_HELP = `wharf status: which replica leads, each replica's health, and each etcd member's

Flags:
  --endpoint URL[,URL]   replicas to ask (default: those of the etcd store's replica registry,
                         else $WHARF_ENDPOINT or ${DEFAULT_ENDPOINT}); the replicas they know of
                         are asked too, so one replica's URL shows them all
  --store etcd://...     the etcd store of a distributed installation (default: the one
                         'wharf up --ha' started for --data-dir)
  --data-dir DIR         (default $WHARF_DATA_DIR or ~/.wharf)
  --json                 print the status as JSON
  -h, --help             this help

Exit status: 0 when one healthy replica leads and every replica and etcd member is healthy, 1 otherwise.
`;

export interface EtcdMemberStatus {
  endpoint: string;
  healthy: boolean;
  error?: string;
}

export interface ClusterStatus {
  /** The etcd store's URL when known; else what the replicas say of their store. */
  store: string;
  /** The kind of store, as given or as the replicas report it; absent when no replica said. */
  storeKind?: 'etcd' | 'sqlite';
  /** Who holds the leader key in etcd (a replica id); absent without etcd. */
  leaderKey?: string;
  replicas: ReplicaStatus[];
  etcd: EtcdMemberStatus[];
}

async function memberStatus(endpoint: string): Promise<EtcdMemberStatus> {
  try {
    const { status, body } = await getJson(`${endpoint}/health`, 2000);
    const healthy = status === 200 && (body as { health?: string }).health === 'true';
    return { endpoint, healthy, ...(healthy ? {} : { error: `/health answered ${status} ${JSON.stringify(body)}` }) };
  } catch (e) {
    return { endpoint, healthy: false, error: errorMessage(e) };
  }
}

/** What etcd holds about the replicas: the registry's records and who holds the leader key. */
export interface EtcdRegistry {
  records: Map<string, ReplicaRecord>;
  leaderKey?: string;
  /** Why etcd could not be read (records empty then). */
  error?: string;
}

/** The replica registry and the leader key, read from etcd (empty when etcd cannot be read). */
async function readRegistry(store: string): Promise<EtcdRegistry> {
  const { endpoints, prefix } = parseEtcdUrl(store);
  const client = new Etcd3({ hosts: endpoints, dialTimeout: 2000 });
  try {
    const keys = `${prefix}k/`;
    const all = await client.getAll().prefix(keys + REPLICAS_PREFIX).strings();
    const records = new Map(Object.entries(all).map(([k, v]) => [k.slice(keys.length + REPLICAS_PREFIX.length), JSON.parse(v) as ReplicaRecord]));
    const leader = await client.get(keys + LEADER_KEY).string();
    return { records, ...(leader !== null ? { leaderKey: leader } : {}) };
  } catch (e) {
    return { records: new Map(), error: errorMessage(e) };
  } finally {
    client.close();
  }
}

/**
 * Asks the replicas at `endpoints`, then every replica they list that was not asked yet (a few
 * rounds at most: replicas list each other), and returns each one's answer and what they listed.
 */
async function askReplicas(endpoints: string[]): Promise<{ answers: Map<string, ReplicaStatus>; stores: Set<'etcd' | 'sqlite'>; listed: ListedReplica[] }> {
  const answers = new Map<string, ReplicaStatus>();
  const stores = new Set<'etcd' | 'sqlite'>();
  const listed: ListedReplica[] = [];
  let next = [...new Set(endpoints)];
  for (let round = 0; round < 4 && next.length > 0; round++) {
    const got = await Promise.all(next.map(replicaHealth));
    for (const h of got) {
      answers.set(h.status.endpoint, h.status);
      if (h.store) stores.add(h.store);
      listed.push(...h.replicas.filter((r) => r.heartbeatAgeSeconds * 1000 < LISTED_FOR_MS).map((r) => ({ ...r, endpoint: normalEndpoint(r.endpoint) })));
    }
    next = [...new Set(listed.map((r) => r.endpoint))].filter((e) => !answers.has(e));
  }
  return { answers, stores, listed };
}

const normalEndpoint = (e: string) => e.replace(/\/+$/, '');

/**
 * One line per replica: a replica reached under two URLs (one given, one it announces) is shown
 * once, by the URL that answered (else the first).
 */
function oneEachReplica(replicas: ReplicaStatus[]): ReplicaStatus[] {
  const byId = new Map<string, ReplicaStatus>();
  const out: ReplicaStatus[] = [];
  for (const r of [...replicas].sort((a, b) => Number(b.healthy) - Number(a.healthy))) {
    if (r.replica === undefined) out.push(r);
    else if (!byId.has(r.replica)) {
      byId.set(r.replica, r);
      out.push(r);
    }
  }
  return out.sort((a, b) => a.endpoint.localeCompare(b.endpoint));
}

/**
 * `clock` is read once etcd's registry has been read: a heartbeat that landed while the read was
 * under way is then older than the moment it is compared with, not younger (a negative age).
 * `readRegistry` is etcd's (tests give their own).
 */
export async function clusterStatus(o: { endpoints: string[]; store?: string; clock?: () => number; readRegistry?: (store: string) => Promise<EtcdRegistry> }): Promise<ClusterStatus> {
  const clock = o.clock ?? Date.now;
  const given = o.endpoints.map(normalEndpoint);
  let registry: EtcdRegistry | undefined;
  let etcd: EtcdMemberStatus[] = [];
  if (o.store) {
    const { endpoints: members } = parseEtcdUrl(o.store);
    [registry, etcd] = await Promise.all([(o.readRegistry ?? readRegistry)(o.store), Promise.all(members.map(memberStatus))]);
  }
  const now = clock();
  const recent = [...(registry?.records ?? [])]
    .filter(([, r]) => now - r.heartbeatAt < LISTED_FOR_MS)
    .map(([replica, r]): ListedReplica => ({ replica, endpoint: normalEndpoint(r.endpoint), heartbeatAgeSeconds: heartbeatAgeSeconds(r.heartbeatAt, now) }));
  const asked = await askReplicas([...given, ...recent.map((r) => r.endpoint)]);
  // The heartbeat of a replica: as etcd has it when the store was read, else the freshest any
  // replica reported.
  const records = registry && registry.error === undefined ? recent : asked.listed;
  const recordOf = (endpoint: string) => records.filter((r) => r.endpoint === endpoint).sort((a, b) => a.heartbeatAgeSeconds - b.heartbeatAgeSeconds)[0];
  const replicas = oneEachReplica(
    [...asked.answers.values()].map((s) => {
      const rec = recordOf(s.endpoint);
      return { ...s, ...(s.replica === undefined && rec ? { replica: rec.replica } : {}), ...(rec ? { heartbeatAgeSeconds: rec.heartbeatAgeSeconds } : {}) };
    }),
  );
  const kind = o.store ? 'etcd' : asked.stores.has('etcd') ? 'etcd' : asked.stores.has('sqlite') ? 'sqlite' : undefined;
  const store =
    o.store ??
    (kind === 'etcd'
      ? 'etcd, as the replicas report (its members are not checked: give --store etcd://... or the data dir of wharf up --ha)'
      : kind === 'sqlite'
        ? 'SQLite (a single server keeps its state in its data dir)'
        : 'unknown (no replica said which)');
  return { store, ...(kind ? { storeKind: kind } : {}), ...(registry?.leaderKey !== undefined ? { leaderKey: registry.leaderKey } : {}), replicas, etcd };
}

/** Healthy: exactly one healthy replica leads, and every replica and member answers. */
export const statusHealthy = (s: ClusterStatus): boolean =>
  s.replicas.length > 0 && s.replicas.every((r) => r.healthy) && s.replicas.filter((r) => r.leader).length === 1 && s.etcd.every((m) => m.healthy);

export function renderStatus(s: ClusterStatus): string {
  const lines = [`Store: ${s.store}`, '', 'Replicas:'];
  const width = Math.max(8, ...s.replicas.map((r) => r.endpoint.length));
  for (const r of s.replicas) {
    const role = !r.healthy ? '-' : r.leader ? 'LEADER' : 'follower';
    const health = r.healthy ? 'healthy' : `UNREACHABLE (${r.error})`;
    const age = r.heartbeatAgeSeconds !== undefined ? `  heartbeat ${r.heartbeatAgeSeconds}s ago` : '';
    lines.push(`  ${r.endpoint.padEnd(width)}  ${role.padEnd(8)}  ${health}  ${r.replica ?? ''}${age}`);
    const dns = [...(r.dns?.serving.length ? [`serves ${r.dns.serving.join(', ')}`] : []), ...(r.dns?.standingBy.length ? [`stands by for ${r.dns.standingBy.join(', ')}`] : [])];
    if (r.healthy && dns.length > 0) lines.push(`  ${''.padEnd(width)}  DNS: ${dns.join('; ')}`);
  }
  const leaders = s.replicas.filter((r) => r.leader);
  if (leaders.length === 0) lines.push('  (no replica leads now: controllers are not running)');
  if (s.leaderKey !== undefined) lines.push(`  leader key in etcd: ${s.leaderKey}`);
  if (s.etcd.length > 0) {
    lines.push('', 'etcd members:');
    for (const m of s.etcd) lines.push(`  ${m.endpoint}  ${m.healthy ? 'healthy' : `UNHEALTHY (${m.error})`}`);
  }
  return lines.join('\n') + '\n';
}

export async function cmdStatus(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      endpoint: { type: 'string' },
      store: { type: 'string', default: process.env.WHARF_STORE },
      'data-dir': { type: 'string', default: defaultDataDir() },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(STATUS_HELP);
  const ha = readHaState(values['data-dir']!);
  // The data dir's store holds with --endpoint too (as --help says): a follower's endpoint alone
  // cannot tell who leads, the store's leader key and registry can.
  const store = values.store?.startsWith('etcd:') ? values.store : ha?.store;
  const given = values.endpoint?.split(',').filter(Boolean);
  const endpoints = given ?? (store ? (store === ha?.store ? ha.replicas : []) : [process.env.WHARF_ENDPOINT ?? DEFAULT_ENDPOINT]);
  const s = await clusterStatus({ endpoints, store });
  process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
  if (!statusHealthy(s)) process.exitCode = 1;
}
