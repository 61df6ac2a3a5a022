/**
 * What a replica's /healthz says about it (cmd/server.ts): its id, whether it leads, the DNS
 * addresses it answers on or stands by for, the kind of store it keeps its state in, and (on
 * etcd) the replicas of the registry as it reads them. Read by `wharf status` and by `wharf up --ha`.
 */
import { getJson } from './get-json';
import type { ListedReplica } from './replicas';

export interface ReplicaStatus {
  endpoint: string;
  /** The replica's id (from its /healthz; from the registry when it does not answer). */
  replica?: string;
  healthy: boolean;
  leader: boolean;
  /** Why it is not healthy. */
  error?: string;
  /** Registry only: seconds since its last heartbeat. */
  heartbeatAgeSeconds?: number;
  /** The DNS addresses it answers on, and those it stands by for (another replica holds them). */
  dns?: { serving: string[]; standingBy: string[] };
}

/** What /healthz tells beyond the replica itself (absent from servers older than these fields). */
export interface ReplicaHealth {
  status: ReplicaStatus;
  /** Where the replica keeps the state: one SQLite file, or an etcd cluster shared with others. */
  store?: 'etcd' | 'sqlite';
  /** etcd: the replicas it knows from the registry, itself included. */
  replicas: ListedReplica[];
}

export const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

function listedReplicas(v: unknown): ListedReplica[] {
  if (!Array.isArray(v)) return [];
  return v.filter(
    (r): r is ListedReplica => typeof r === 'object' && r !== null && typeof (r as ListedReplica).replica === 'string' && typeof (r as ListedReplica).endpoint === 'string' && typeof (r as ListedReplica).heartbeatAgeSeconds === 'number',
  );
}

/** The replica at endpoint as its /healthz describes it; unhealthy (with why) when it does not answer. */
export async function replicaHealth(endpoint: string): Promise<ReplicaHealth> {
  try {
    const { status, body } = await getJson(`${endpoint}/healthz`, 2000);
    const b = body as { status?: string; error?: string; replica?: string; leader?: boolean; dns?: ReplicaStatus['dns']; store?: unknown; replicas?: unknown };
    const healthy = status === 200 && b.status === 'ok';
    return {
      status: { endpoint, replica: b.replica, healthy, leader: healthy && b.leader === true, ...(b.dns ? { dns: b.dns } : {}), ...(healthy ? {} : { error: `/healthz answered ${status}${b.status && b.status !== 'ok' ? `: ${b.status}${b.error ? ` (${b.error})` : ''}` : ''}` }) },
      ...(b.store === 'etcd' || b.store === 'sqlite' ? { store: b.store } : {}),
      replicas: listedReplicas(b.replicas),
    };
  } catch (e) {
    return { status: { endpoint, healthy: false, leader: false, error: errorMessage(e) }, replicas: [] };
  }
}

/** The replica at endpoint as its /healthz describes it; unhealthy (with why) when it does not answer. */
export async function replicaStatus(endpoint: string): Promise<ReplicaStatus> {
  return (await replicaHealth(endpoint)).status;
}
