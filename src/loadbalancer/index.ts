/**
 * loadbalancer/: the data plane of ELBv2 load balancers. HAProxy (Debian's package) run and
 * supervised by Wharf (haproxy-supervisor.ts), its configuration generated from a desired state
 * in ELBv2's words (model.ts -> haproxy-config.ts), and targets added, drained and removed
 * through its Runtime API without reloads (runtime-api.ts, reconciler.ts). Health checks run in
 * HAProxy with each target group's settings, except a new target's first, made at registration
 * (first-check.ts); target-health.ts maps their results to ELBv2's
 * TargetHealth states and reason codes.
 *
 * May import: lib, core, api (it is a client of the control plane, like agent/).
 */
export * from './model';
export { LoadBalancerReconciler, type ApplyResult, type TargetHealthDescription } from './reconciler';
export type { TargetHealth, TargetHealthState } from './target-health';
