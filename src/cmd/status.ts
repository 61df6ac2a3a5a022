/**
 * `wharf status`: which replica leads, each replica's health, and each etcd member's.
 *
 * Where the replicas come from: the replica registry (`replicas/` in the store, cmd/replicas.ts)
 * when the store is etcd (`--store`, or what `wharf up --ha` left in DATA_DIR/ha/state.json), plus
 * any `--endpoint`s; without etcd, the one server at --endpoint (a single SQLite server is its
 * own only replica, and leads). Each replica is asked for its /healthz, which names the replica
 * and says whether it leads; etcd members are asked for their /health.
 */
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { getJson } from './get-json';
import { errorMessage, replicaStatus, type ReplicaStatus } from './replica-health';
import { parseEtcdUrl } from './server';
import { DEFAULT_ENDPOINT, defaultDataDir } from './client';
import { readHaState } from './up-ha';
import { REPLICAS_PREFIX, type ReplicaRecord } from './replicas';
import { LEADER_KEY } from '../store/etcd';

export const STATUS_HELP = `wharf status: which replica leads, each replica's health, and each etcd member's

Flags:
  --endpoint URL[,URL]   replicas to ask (default: those of the etcd store's replica registry,
                         else $WHARF_ENDPOINT or ${DEFAULT_ENDPOINT})
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
  store: string;
  /** Who holds the leader key in etcd (a replica id); absent without etcd. */
  leaderKey?: string;
  replicas: ReplicaStatus[];
  etcd: EtcdMemberStatus[];
}

/**
 * Registry records whose heartbeat is older than this are left out: a replica killed in an
 * earlier run stays in the registry, and is no part of this one. (A replica that `wharf up --ha`
 * started, or that --endpoint names, is listed however long it has been gone.)
 */
const FORGET_AFTER_MS = 10_000;

async function memberStatus(endpoint: string): Promise<EtcdMemberStatus> {
  try {
    const { status, body } = await getJson(`${endpoint}/health`, 2000);
    const healthy = status === 200 && (body as { health?: string }).health === 'true';
    return { endpoint, healthy, ...(healthy ? {} : { error: `/health answered ${status} ${JSON.stringify(body)}` }) };
  } catch (e) {
    return { endpoint, healthy: false, error: errorMessage(e) };
  }
}

/** The replica registry and the leader key, read from etcd (empty when etcd cannot be read). */
async function readRegistry(store: string): Promise<{ records: Map<string, ReplicaRecord>; leaderKey?: string; error?: string }> {
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

export async function clusterStatus(o: { endpoints: string[]; store?: string; now?: number }): Promise<ClusterStatus> {
  const now = o.now ?? Date.now();
  if (!o.store) {
    return { store: 'no etcd store (the server given; a single server keeps its state in SQLite)', replicas: await Promise.all(o.endpoints.map(replicaStatus)), etcd: [] };
  }
  const { endpoints: members } = parseEtcdUrl(o.store);
  const [registry, etcd] = await Promise.all([readRegistry(o.store), Promise.all(members.map(memberStatus))]);
  const recent = [...registry.records].filter(([, r]) => now - r.heartbeatAt < FORGET_AFTER_MS);
  const endpoints = [...new Set([...o.endpoints, ...recent.map(([, r]) => r.endpoint)])].sort();
  const replicas = await Promise.all(
    endpoints.map(async (endpoint) => {
      const s = await replicaStatus(endpoint);
      const rec = recent.find(([, r]) => r.endpoint === endpoint);
      return { ...s, ...(s.replica === undefined && rec ? { replica: rec[0] } : {}), ...(rec ? { heartbeatAgeSeconds: Math.round((now - rec[1].heartbeatAt) / 100) / 10 } : {}) };
    }),
  );
  return { store: o.store, ...(registry.leaderKey !== undefined ? { leaderKey: registry.leaderKey } : {}), replicas, etcd };
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
