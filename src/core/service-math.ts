/**
 * The arithmetic of ECS services, pure: rolling-deployment bounds, the circuit-breaker threshold,
 * restart-throttle delays and deployment-configuration defaults (ECS-REFERENCE 6.4, 6.6, 6.10,
 * 6.11). Every rounding here is one a user can observe, so each comes with worked examples.
 */
import { WharfError, invalidParameter } from './errors';
import type { DeploymentConfiguration } from './shapes/ecs';

export interface DeploymentBounds {
  /** L: tasks that must stay RUNNING and healthy, across all deployments. */
  minHealthy: number;
  /** U: tasks allowed RUNNING or PENDING, across all deployments. */
  maxRunning: number;
}

/**
 * L = ceil(desired x min% / 100), U = floor(desired x max% / 100).
 *
 * Worked examples (desired, min%, max% -> L, U):
 *   4, 50, 200  -> ceil(2)   = 2, floor(8)   = 8   start 4 new at once, stop 2 old at once
 *   10, 100, 200 -> 10, 20                         start 10 new, stop old once new are healthy
 *   3, 0, 100   -> 0, 3                            stop all 3 old first, then start 3 new
 *   3, 50, 150  -> ceil(1.5) = 2, floor(4.5) = 4   one new beside the old, one old may stop
 *   2, 75, 125  -> ceil(1.5) = 2, floor(2.5) = 2   neither a start nor a stop fits: stalls
 *   1, 100, 200 -> 1, 2                            zero-downtime one-by-one
 * The percentages are integers, so the product is computed in integers and divided once: no
 * floating-point surprise such as 0.29 x 100 = 28.999...
 */
export function deploymentBounds(desired: number, minimumHealthyPercent: number, maximumPercent: number): DeploymentBounds {
  return {
    minHealthy: Math.max(0, Math.ceil((desired * minimumHealthyPercent) / 100 - 1e-9)),
    maxRunning: Math.floor((desired * maximumPercent) / 100 + 1e-9),
  };
}

/**
 * The default circuit-breaker threshold: min(200, max(3, ceil(0.5 x desired))).
 *   desired 1 -> max(3, 1) = 3;  4 -> max(3, 2) = 3;  7 -> ceil(3.5) = 4;  25 -> ceil(12.5) = 13;
 *   400 -> 200;  800 -> min(200, 400) = 200.
 */
export function circuitBreakerThreshold(desired: number): number {
  return Math.min(200, Math.max(3, Math.ceil(desired / 2)));
}

export interface ThrottleConfig {
  /** Start failures tolerated before launches are delayed at all. */
  afterFailures: number;
  /** First delay; it doubles with each further failure. */
  baseMs: number;
  /** ECS caps the delay at 15 minutes. */
  maxMs: number;
}

export const DEFAULT_THROTTLE: ThrottleConfig = { afterFailures: 3, baseMs: 10_000, maxMs: 15 * 60_000 };

/**
 * Delay before the next launch after `failures` consecutive tasks stopped without reaching
 * RUNNING. With the defaults (3, 10 s, 15 min):
 *   failures 1, 2 -> 0 (launch again at once);  3 -> 10 s;  4 -> 20 s;  5 -> 40 s;  ...
 *   9 -> 640 s;  10 and more -> 900 s (the cap).
 */
export function throttleDelayMs(failures: number, c: ThrottleConfig = DEFAULT_THROTTLE): number {
  if (failures < c.afterFailures) return 0;
  const n = Math.min(failures - c.afterFailures, 40);
  return Math.min(c.maxMs, c.baseMs * 2 ** n);
}

/**
 * deploymentConfiguration with ECS's defaults: REPLICA 200 / 100, DAEMON 100 / 0; circuit
 * breaker off. Validation: 0 <= min <= 100; REPLICA max >= 100 (below it desiredCount could never
 * be reached), DAEMON max is 100 (one task per instance, a surge cannot exist).
 */
export function normalizeDeploymentConfiguration(
  given: DeploymentConfiguration | undefined,
  scheduling: 'REPLICA' | 'DAEMON',
  previous?: DeploymentConfiguration,
): DeploymentConfiguration {
  const dflt = scheduling === 'DAEMON' ? { max: 100, min: 0 } : { max: 200, min: 100 };
  const max = given?.maximumPercent ?? previous?.maximumPercent ?? dflt.max;
  const min = given?.minimumHealthyPercent ?? previous?.minimumHealthyPercent ?? dflt.min;
  if (!Number.isInteger(min) || min < 0 || min > 100) throw invalidParameter('minimumHealthyPercent must be an integer between 0 and 100.');
  if (!Number.isInteger(max) || max < 0) throw invalidParameter('maximumPercent must be a non-negative integer.');
  if (scheduling === 'REPLICA' && max < 100) throw invalidParameter('maximumPercent must be at least 100 for a REPLICA service.');
  if (scheduling === 'DAEMON' && max !== 100) throw invalidParameter('maximumPercent must be 100 for a DAEMON service.');
  if (max < min) throw invalidParameter('maximumPercent must be greater than or equal to minimumHealthyPercent.');
  const cb = given?.deploymentCircuitBreaker ?? previous?.deploymentCircuitBreaker ?? { enable: false, rollback: false };
  if (typeof cb.enable !== 'boolean' || typeof cb.rollback !== 'boolean') {
    throw invalidParameter('deploymentCircuitBreaker requires both enable and rollback as booleans.');
  }
  for (const k of ['alarms', 'strategy', 'bakeTimeInMinutes', 'lifecycleHooks', 'linearConfiguration', 'canaryConfiguration'] as const) {
    const v = given?.[k];
    if (v === undefined) continue;
    if (k === 'strategy' && v === 'ROLLING') continue;
    if (k === 'alarms' && (v as { enable?: boolean }).enable === false) continue;
    const why = k === 'alarms' ? 'Wharf has no CloudWatch alarms; enable false is accepted' : 'rolling deployments only';
    throw new WharfError('UnsupportedFeatureException', `deploymentConfiguration.${k} is not supported by Wharf yet (${why}).`);
  }
  const out: DeploymentConfiguration = { maximumPercent: max, minimumHealthyPercent: min, deploymentCircuitBreaker: { enable: cb.enable, rollback: cb.rollback } };
  // Accepted only in the forms that change nothing (above), and kept as given, so tools that
  // compare what they sent with what DescribeServices shows (Terraform, CloudFormation) see no drift.
  const alarms = given?.alarms ?? previous?.alarms;
  if (alarms) out.alarms = { alarmNames: [...(alarms.alarmNames ?? [])], enable: false, rollback: alarms.rollback ?? false };
  const strategy = given?.strategy ?? previous?.strategy;
  if (strategy) out.strategy = strategy;
  return out;
}
