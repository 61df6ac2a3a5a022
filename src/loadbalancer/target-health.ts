/**
 * HAProxy's view of a server -> ELBv2's TargetHealth (state, reason code, description), pure.
 *
 *   registered --(slot filled, first checks)--> initial --one good check--> healthy
 *                                                  |                            | fall bad checks
 *                                                  +--fall bad checks--> unhealthy <-+
 *   deregistered --> draining (until the deregistration delay ends) --> unused (not listed)
 *
 * HAProxy has no "initial" state: a new target is put DOWN on purpose (reconciler.ts) and stays
 * DOWN until a check passes (the reconciler's own first check at registration, first-check.ts, or
 * HAProxy's next one; the reconciler then puts it up: ELB wants one passing check for a new
 * target, `rise` = healthyThreshold only for one coming back). Until it has been seen UP once it is
 * `initial`, unless its checks have been failing for unhealthyThreshold intervals, when ELB would
 * call it unhealthy too.
 */
import type { ServerState } from './runtime-api';
import type { TargetGroup } from './model';

export type TargetHealthState = 'initial' | 'healthy' | 'unhealthy' | 'unused' | 'draining' | 'unavailable';

export interface TargetHealth {
  state: TargetHealthState;
  reason?: string;
  description?: string;
}

/** What the reconciler remembers of a registered target. */
export interface TargetRecord {
  registeredAt: number;
  seenHealthy: boolean;
}

const TIMEOUTS = new Set(['L4TOUT', 'L6TOUT', 'L7TOUT']);
const PASSED = new Set(['L4OK', 'L6OK', 'L7OK', 'L7OKC']);

/** Why the last check failed, in ELB's reason codes (TCP groups only ever say FailedHealthChecks). */
export function failureReason(group: TargetGroup, server: Pick<ServerState, 'checkStatus' | 'checkCode'>): TargetHealth {
  const http = group.healthCheck.protocol !== 'TCP';
  if (http && server.checkStatus === 'L7STS') {
    return { state: 'unhealthy', reason: 'Target.ResponseCodeMismatch', description: `Health checks failed with these codes: [${server.checkCode}]` };
  }
  if (http && TIMEOUTS.has(server.checkStatus)) return { state: 'unhealthy', reason: 'Target.Timeout', description: 'Request timed out' };
  return { state: 'unhealthy', reason: 'Target.FailedHealthChecks', description: 'Health checks failed' };
}

export const REGISTRATION_IN_PROGRESS: TargetHealth = {
  state: 'initial',
  reason: 'Elb.RegistrationInProgress',
  description: 'Target registration is in progress',
};
export const INITIAL_HEALTH_CHECKING: TargetHealth = {
  state: 'initial',
  reason: 'Elb.InitialHealthChecking',
  description: 'Initial health checks in progress',
};
export const DRAINING: TargetHealth = {
  state: 'draining',
  reason: 'Target.DeregistrationInProgress',
  description: 'Target deregistration is in progress',
};

export function targetHealth(group: TargetGroup, server: ServerState | undefined, record: TargetRecord, now: number): TargetHealth {
  if (!server) return REGISTRATION_IN_PROGRESS;
  if (!group.healthCheck.enabled) return { state: 'unavailable', reason: 'Target.HealthCheckDisabled', description: 'Health checks disabled' };
  // "UP", "UP 1/2" (failing, not yet down), "NOLB"; slot states are the reconciler's business.
  if (server.opState === 2 || server.status.startsWith('UP')) return { state: 'healthy' };
  if (record.seenHealthy) return failureReason(group, server);
  const hc = group.healthCheck;
  const failingLongEnough = now - record.registeredAt >= hc.intervalSeconds * hc.unhealthyThreshold * 1000;
  if (server.checkStatus && !PASSED.has(server.checkStatus) && server.checkStatus !== 'INI' && failingLongEnough) return failureReason(group, server);
  return INITIAL_HEALTH_CHECKING;
}
