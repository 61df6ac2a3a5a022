/**
 * Which FARGATE_SPOT tasks to reclaim so that on-demand Fargate tasks fit the pool, as Fargate
 * does when it runs short of capacity: Spot tasks are interrupted (SIGTERM, the container's
 * stopTimeout, at most the two minutes Fargate gives, then SIGKILL; stopCode SpotInterruption,
 * "Your Spot Task was interrupted."), on-demand tasks take their room, and services replace the
 * interrupted tasks when capacity returns.
 *
 * For each on-demand task in turn: a host where it fits already needs nothing; otherwise the
 * host where the fewest Spot tasks (largest first) free enough room. Room that tasks already
 * being stopped will give back counts as free, so a second call while interruptions are under
 * way reclaims nothing more. Pure.
 */

export interface Room {
  cpu: number;
  memory: number;
}

export interface SpotHost {
  id: string;
  /** Remaining resources now, plus those of tasks already told to stop. */
  free: Room;
  /** Spot tasks still wanted on the host. */
  spot: readonly { taskId: string; cluster: string; cpu: number; memory: number }[];
}

export function chooseSpotToReclaim(hosts: readonly SpotHost[], need: Room, count: number): { taskId: string; cluster: string }[] {
  const state = hosts.map((h) => ({ free: { ...h.free }, spot: [...h.spot].sort((a, b) => b.memory - a.memory || b.cpu - a.cpu) }));
  const chosen: { taskId: string; cluster: string }[] = [];
  const fitsIn = (r: Room) => r.cpu >= need.cpu && r.memory >= need.memory;
  for (let k = 0; k < count; k++) {
    let best: { host: (typeof state)[number]; take: number } | undefined;
    for (const h of state) {
      const r = { ...h.free };
      let take = 0;
      while (!fitsIn(r) && take < h.spot.length) {
        r.cpu += h.spot[take]!.cpu;
        r.memory += h.spot[take]!.memory;
        take++;
      }
      if (fitsIn(r) && (!best || take < best.take)) best = { host: h, take };
    }
    if (!best) break;
    for (const t of best.host.spot.splice(0, best.take)) {
      best.host.free.cpu += t.cpu;
      best.host.free.memory += t.memory;
      chosen.push({ taskId: t.taskId, cluster: t.cluster });
    }
    best.host.free.cpu -= need.cpu;
    best.host.free.memory -= need.memory;
  }
  return chosen;
}
