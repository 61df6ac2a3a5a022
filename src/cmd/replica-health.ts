/**
 * What a replica's /healthz says about it (cmd/server.ts): its id, whether it leads, and the DNS
 * addresses it answers on or stands by for. Read by `wharf status` and by `wharf up --ha`.
 */
import { getJson } from './get-json';

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

export const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The replica at endpoint as its /healthz describes it; unhealthy (with why) when it does not answer. */
export async function replicaStatus(endpoint: string): Promise<ReplicaStatus> {
  try {
    const { status, body } = await getJson(`${endpoint}/healthz`, 2000);
    const b = body as { status?: string; error?: string; replica?: string; leader?: boolean; dns?: ReplicaStatus['dns'] };
    const healthy = status === 200 && b.status === 'ok';
    return { endpoint, replica: b.replica, healthy, leader: healthy && b.leader === true, ...(b.dns ? { dns: b.dns } : {}), ...(healthy ? {} : { error: `/healthz answered ${status}${b.status && b.status !== 'ok' ? `: ${b.status}${b.error ? ` (${b.error})` : ''}` : ''}` }) };
  } catch (e) {
    return { endpoint, healthy: false, leader: false, error: errorMessage(e) };
  }
}
