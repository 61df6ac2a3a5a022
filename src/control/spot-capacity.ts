/**
 * FARGATE_SPOT on the Fargate pool. Spot tasks run on the same hosts as on-demand ones; when an
 * on-demand Fargate task (launchType FARGATE, or the FARGATE provider) finds the pool full,
 * enough Spot tasks are interrupted to make room (core/spot-reclaim.ts chooses them): each is
 * stopped as Fargate stops it, stopCode SpotInterruption and "Your Spot Task was interrupted.",
 * through the ordinary stop path, so its containers get SIGTERM and their stopTimeout (at most
 * the two minutes Fargate allows) before SIGKILL. The task state change is the warning.
 *
 * Until the on-demand launch succeeds (or SPOT_HOLD_MS pass), new Spot tasks are not placed:
 * otherwise a service replacing its interrupted Spot task would take back the room the
 * on-demand task is waiting for. A replaced Spot task is placed once the hold ends.
 */
import { isFargateProvider } from '../core/capacity-provider-strategy';
import { FARGATE_POOL } from '../core/fargate-pool';
import { readResources } from '../core/instance-resources';
import { chooseSpotToReclaim, type SpotHost } from '../core/spot-reclaim';
import { isTerminal } from '../core/task-status';
import type { ControlContext } from './context';
import { requestStop } from './task-stop';

export const SPOT_INTERRUPTION = { stopCode: 'SpotInterruption', reason: 'Your Spot Task was interrupted.' } as const;

/** How long Spot placements wait for an on-demand launch that reclaimed room (2 min + margin). */
export const SPOT_HOLD_MS = 150_000;

/** Per region (its State): until when Spot placements are held, epoch ms. */
const holds = new WeakMap<object, number>();

/** Whether a placement through `provider` (undefined: a launch type) is on-demand Fargate. */
export function isOnDemandFargate(launchType: string, provider: string | undefined): boolean {
  return launchType === 'FARGATE' && (provider === undefined || provider === 'FARGATE');
}

export function spotHeld(ctx: ControlContext): boolean {
  return (holds.get(ctx.state) ?? 0) > ctx.clock.now();
}

/** An on-demand launch went through: Spot tasks may be placed again. */
export function releaseSpotHold(ctx: ControlContext): void {
  holds.delete(ctx.state);
}

/** The pool as the reclaim choice sees it. */
function poolHosts(ctx: ControlContext): SpotHost[] {
  const hosts: SpotHost[] = [];
  for (const e of ctx.state.instances.children(FARGATE_POOL).values()) {
    const ci = e.value;
    if (ci.status !== 'ACTIVE' || !ci.agentConnected) continue;
    const r = readResources(ci.remainingResources);
    const host: SpotHost = { id: ci.wharf.id, free: { cpu: r.cpu, memory: r.memory }, spot: [] };
    const spot: { taskId: string; cluster: string; cpu: number; memory: number }[] = [];
    for (const [taskId, cluster] of ctx.state.tasksByInstance.get(ci.wharf.id) ?? []) {
      const t = ctx.state.tasks.get(cluster, taskId)?.value;
      const res = t?.wharf.reservation;
      if (!t || !res || t.wharf.released || isTerminal(t.lastStatus)) continue;
      if (t.desiredStatus === 'STOPPED') {
        // Already being stopped (an earlier interruption): its room is as good as free.
        host.free.cpu += res.cpu;
        host.free.memory += res.memory;
      } else if (t.capacityProviderName === 'FARGATE_SPOT') {
        spot.push({ taskId, cluster, cpu: res.cpu, memory: res.memory });
      }
    }
    hosts.push({ ...host, spot });
  }
  return hosts;
}

/**
 * Interrupts the Spot tasks that free room for `count` on-demand tasks of these needs, and holds
 * Spot placements. Returns how many were interrupted (0: none would help, or room is already
 * being freed).
 */
export async function reclaimSpotCapacity(ctx: ControlContext, needs: { cpu: number; memory: number }, count: number): Promise<number> {
  const chosen = chooseSpotToReclaim(poolHosts(ctx), needs, count);
  holds.set(ctx.state, ctx.clock.now() + SPOT_HOLD_MS);
  for (const t of chosen) {
    await requestStop(ctx, t.cluster, t.taskId, SPOT_INTERRUPTION);
    ctx.log.info({ task: ctx.state.tasks.get(t.cluster, t.taskId)?.value.taskArn }, 'Spot task interrupted to make room for on-demand Fargate tasks');
  }
  return chosen.length;
}

/** Whether a provider's share may not be placed now (Spot, while on-demand room is reclaimed). */
export function heldBack(ctx: ControlContext, provider: string | undefined): boolean {
  return provider === 'FARGATE_SPOT' && isFargateProvider(provider) && spotHeld(ctx);
}
