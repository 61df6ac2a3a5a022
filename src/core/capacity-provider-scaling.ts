/**
 * Managed scaling of an Auto Scaling group capacity provider, as ECS computes it (the "deep dive
 * on Amazon ECS cluster auto scaling" and the managed scaling section of the developer guide):
 *
 *   CapacityProviderReservation = M / N * 100
 *     N = instances in the group now
 *     M = instances the group needs: those running at least one task, and when tasks wait in
 *         PROVISIONING, N plus an estimate of the instances they need, kept between
 *         minimumScalingStepSize and maximumScalingStepSize
 *     N = 0: 200 when M > 0 (scale out from nothing), 100 when M = 0
 *
 * The target tracking policy ECS manages drives the reservation to targetCapacity, so the
 * desired group size is ceil(M * 100 / targetCapacity). Worked example: 4 instances, 3 of them
 * busy, target 75 -> reservation 75, desired ceil(3 * 100 / 75) = 4 (no change); target 100 ->
 * desired 3 (one idle instance may go). With managedTerminationProtection the desired size
 * never goes below the busy instances, and those are the ones a scale-in must keep.
 *
 * Pure: the controller (controllers/capacity-provider-controller.ts) gathers the inputs.
 */

export interface ScalingSettings {
  targetCapacity: number;
  minimumScalingStepSize: number;
  maximumScalingStepSize: number;
  terminationProtection: boolean;
}

/** What a waiting task needs, and what the largest instance of the group offers. */
export interface Needs {
  cpu: number;
  memory: number;
}

export interface ScalingInput {
  /** Instances in the group (ACTIVE or DRAINING). */
  instances: number;
  /** Of those, the ones running at least one task. */
  busyInstances: number;
  /** The tasks of the provider waiting in PROVISIONING for an instance. */
  provisioning: readonly Needs[];
  /** The largest registered resources of an instance of the group (absent: none yet). */
  instanceSize?: Needs;
  settings: ScalingSettings;
}

export interface ScalingResult {
  /** M. */
  needed: number;
  /** CapacityProviderReservation, in percent. */
  reservation: number;
  /** The group size the target tracking policy aims at. */
  desired: number;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/**
 * Instances the waiting tasks need: tasks with identical needs are grouped, each group needs
 * ceil(count / tasks-per-instance) instances of the largest size, and the estimate is the
 * largest group's (ECS's own approximation; the step sizes bound it). One instance per task
 * when no instance has registered yet or a task is larger than any instance.
 */
export function provisioningEstimate(provisioning: readonly Needs[], size: Needs | undefined): number {
  const groups = new Map<string, { n: number; needs: Needs }>();
  for (const p of provisioning) {
    const k = `${p.cpu}/${p.memory}`;
    const g = groups.get(k) ?? { n: 0, needs: p };
    g.n++;
    groups.set(k, g);
  }
  let most = 0;
  for (const { n, needs } of groups.values()) {
    let perInstance = 1;
    if (size) {
      const byCpu = needs.cpu > 0 ? Math.floor(size.cpu / needs.cpu) : Infinity;
      const byMem = needs.memory > 0 ? Math.floor(size.memory / needs.memory) : Infinity;
      perInstance = Math.max(1, Math.min(byCpu, byMem, n));
    }
    most = Math.max(most, Math.ceil(n / perInstance));
  }
  return most;
}

export function managedScaling(input: ScalingInput): ScalingResult {
  const { instances: n, busyInstances, settings: s } = input;
  const needed =
    input.provisioning.length > 0
      ? n + clamp(provisioningEstimate(input.provisioning, input.instanceSize), s.minimumScalingStepSize, s.maximumScalingStepSize)
      : busyInstances;
  const reservation = n === 0 ? (needed > 0 ? 200 : 100) : (needed / n) * 100;
  let desired = Math.max(0, Math.ceil((needed * 100) / s.targetCapacity - 1e-9));
  if (s.terminationProtection) desired = Math.max(desired, busyInstances);
  return { needed, reservation, desired };
}
