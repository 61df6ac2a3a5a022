/**
 * HAProxy's view of the targets -> the stored health records (`elbhealth/<tg id>/<id>:<port>`),
 * pure: which records to write and which to delete. Only changes are written (State, Reason,
 * Description, or a record older than its target's registration), so a steady load balancer
 * writes nothing.
 *
 *   registered, seen by HAProxy       its state (initial / healthy / unhealthy / unavailable)
 *   deregistered, still draining      draining
 *   registered, group in no listener  unused, Target.NotInUse (ELB's words)
 *   neither registered nor draining   the record is deleted: DescribeTargetHealth stops listing
 *                                     it, and a service waiting out the drain stops its task
 *
 * A registration younger than HealthCheckIntervalSeconds x UnhealthyThresholdCount cannot be
 * unhealthy yet (ELB: it must fail that many checks; until then it is `initial`). HAProxy's view
 * is per address, not per registration: a task registered at an address another target held
 * (a target registered by hand, or a drained task's reused IP) was reported with that target's
 * failing state the instant it was registered, and the service scheduler, trusting its own
 * registration's health (grace period 0), started a replacement for a task that was fine and
 * stopped it again a moment later. Within that window, until the target is seen healthy, an
 * unhealthy observation leaves the record of this registration as it is, or writes `initial`
 * when there is none.
 */
import type { TargetHealthRecord, TargetHealthStateCode, TargetRecord } from '../control/elbv2-records';
import { INITIAL_HEALTH_CHECKING, type TargetHealth } from '../loadbalancer/target-health';

export interface ObservedHealth {
  Id: string;
  Port: number;
  health: TargetHealth;
}

export interface HealthPlan {
  put: TargetHealthRecord[];
  delete: { Id: string; Port: number }[];
}

export const NOT_IN_USE: TargetHealth = {
  state: 'unused',
  reason: 'Target.NotInUse',
  description: 'Target group is not configured to receive traffic from the load balancer',
};

const keyOf = (t: { Id: string; Port: number }) => `${t.Id}:${t.Port}`;

/** The group's health check timing (HealthCheckIntervalSeconds, UnhealthyThresholdCount). */
export interface HealthCheckTiming {
  intervalSeconds: number;
  unhealthyThreshold: number;
}

/**
 * One target group's plan. `observed` is undefined when the data plane does not carry the group
 * (no listener or rule forwards to it, or its load balancer was left out); a target registered
 * but not observed (an instance target whose instance is unknown) keeps its record as it is.
 */
export function planTargetHealth(registered: TargetRecord[], observed: ObservedHealth[] | undefined, stored: TargetHealthRecord[], now: number, check?: HealthCheckTiming): HealthPlan {
  const plan: HealthPlan = { put: [], delete: [] };
  const storedByKey = new Map(stored.map((s) => [keyOf(s), s]));
  const want = new Map<string, { Id: string; Port: number; health: TargetHealth }>();
  if (observed) for (const o of observed) want.set(keyOf(o), o);
  else for (const t of registered) want.set(keyOf(t), { Id: t.Id, Port: t.Port, health: NOT_IN_USE });
  const registeredAt = new Map(registered.map((t) => [keyOf(t), t.registeredAt]));
  for (const [key, w] of want) {
    const s = storedByKey.get(key);
    const since = registeredAt.get(key);
    // A record older than the target's registration is the previous target's at this address
    // (a task replaced at a reused IP): it is written again, since readers trust only records
    // written after the registration they look at.
    const stale = s !== undefined && s.updatedAt < (since ?? 0);
    let health = w.health;
    const young = since !== undefined && check !== undefined && now - since < check.intervalSeconds * check.unhealthyThreshold * 1000;
    if (health.state === 'unhealthy' && young && !(s && !stale && s.State === 'healthy')) {
      // Never healthy since its registration and too young to have failed its checks: this is
      // what the address did before the registration (a target seen healthy since then and now
      // failing is HAProxy's fall count at work: written as it is).
      if (s && !stale) continue;
      health = INITIAL_HEALTH_CHECKING;
    }
    if (s && !stale && s.State === health.state && s.Reason === health.reason && s.Description === health.description) continue;
    const rec: TargetHealthRecord = { Id: w.Id, Port: w.Port, State: health.state as TargetHealthStateCode, updatedAt: now };
    if (health.reason !== undefined) rec.Reason = health.reason;
    if (health.description !== undefined) rec.Description = health.description;
    plan.put.push(rec);
  }
  const isRegistered = new Set(registered.map(keyOf));
  for (const s of stored) {
    const key = keyOf(s);
    if (!want.has(key) && !isRegistered.has(key)) plan.delete.push({ Id: s.Id, Port: s.Port });
  }
  return plan;
}
