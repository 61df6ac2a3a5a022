/**
 * A small pool of pause containers started ahead of their tasks, per awsvpc network (subnet), so
 * that an awsvpc task's start pays only its own containers' create and start.
 *
 * Starting a pause container is the slowest step of an awsvpc start: a network namespace, a veth
 * pair on the subnet's bridge, an address from Docker's IPAM, the engine's own iptables work.
 * A pooled one has all of that done: a task that takes one gives the pool's cgroup its limits,
 * creates its containers in the pause container's namespace, and (before any of them starts) has
 * the firewall rebuilt with its groups. What cannot be known ahead is kept off the pause
 * container: its labels name no task (the task's containers carry LABELS.pauseId and the groups
 * instead: agent/firewall.ts reads them there), its cgroup is the pool's own `pool-<hex>` (the
 * task's limits are written into it when taken), and a task that publishes ports
 * (assignPublicIp ENABLED) never takes one, since ports are published on the pause container at
 * its creation.
 *
 *   take(network) --- ready one? --> the task's (the pool forgets it; its task removes it)
 *        |                 no  ----> the task makes its own, as without a pool
 *        +--> network wanted: refill to `size` ready ones, one at a time, once no task start
 *             is in progress (or after `refillDelayMs` of them), so a refill never competes
 *             with the start it is meant to speed up
 *
 * Bounded: `size` ready per network, and only networks a task asked for since the agent
 * started. The pool's containers carry the agent's container-instance label and
 * LABELS.pausePool: the agent removes those it does not own at its start (orphans, with the rest)
 * and the pool removes its own at close(). Addresses stay Docker's (IPAM of the subnet's bridge
 * on this host); the control plane learns a task's address from its report, as before.
 */
import { randomBytes } from 'node:crypto';
import { LABELS } from '../api/agent/protocol';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime, NetworkIpam } from './runtime/container-runtime';
import { startPooledPause } from './task-resources';

export interface PausePoolOptions {
  /** Ready pause containers kept per network. */
  size: number;
  image: string;
  containerInstanceArn: string;
  /** The resolvers every awsvpc task of this agent gets (the pause container holds them). */
  dns?: string[];
  logger?: Logger;
  /** Longest a refill waits for task starts in progress to end (default 2 s). */
  refillDelayMs?: number;
}

/** A started pause container handed to a task. */
export interface PooledPause {
  id: string;
  ip: string;
  mac?: string;
  /** Its parent cgroup's id (in place of the task id): the task's limits go there. */
  cgroupId: string;
}

interface Wanted {
  network: string;
  ipam?: NetworkIpam;
}

const keyOf = (network: string, ipam?: NetworkIpam) => `${network}|${ipam?.subnet ?? ''}|${ipam?.gateway ?? ''}`;

export class PausePool {
  private readonly ready = new Map<string, PooledPause[]>();
  private readonly wanted = new Map<string, Wanted>();
  /** Ids of the pool's containers not handed out yet (ready, or being made). */
  private readonly owned = new Set<string>();
  /** Cgroup ids of the containers being made (their ids are not known yet). */
  private readonly making = new Set<string>();
  private starts = 0;
  private filling = false;
  /** The fill loop in progress (settled when none is): close() waits for it. */
  private fillRun: Promise<void> = Promise.resolve();
  private fillAgain = false;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private unwatch?: () => void;

  constructor(
    private readonly rt: ContainerRuntime,
    private readonly o: PausePoolOptions,
  ) {}

  /**
   * A ready pause container on `network` with this range, now, or undefined. Either way the
   * network is wanted from now on, and the pool refills it.
   */
  take(network: string, ipam?: NetworkIpam): PooledPause | undefined {
    if (this.closed || this.o.size <= 0) return undefined;
    const key = keyOf(network, ipam);
    this.wanted.set(key, { network, ipam });
    const p = this.ready.get(key)?.shift();
    if (p) this.owned.delete(p.id);
    this.scheduleFill();
    return p;
  }

  /** A task start begins; call the function returned when it is over. Refills wait for none. */
  startBegins(): () => void {
    this.starts++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.starts--;
      if (this.starts === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.fill();
      }
    };
  }

  /** Whether a container is one of the pool's own (ready, or being made; not handed to any task). */
  owns(c: { id: string; labels: Record<string, string> }): boolean {
    return this.owned.has(c.id) || this.making.has(c.labels[LABELS.pausePool] ?? '');
  }

  /** How many are ready on `network` (for tests and logs). */
  readyCount(network: string, ipam?: NetworkIpam): number {
    return this.ready.get(keyOf(network, ipam))?.length ?? 0;
  }

  /** Stops refilling and removes every pause container the pool still owns, with its cgroup. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.unwatch?.();
    const all = [...this.ready.values()].flat();
    this.ready.clear();
    await Promise.all(
      all.map(async (p) => {
        this.owned.delete(p.id);
        await this.rt.removeContainer(p.id).catch(() => undefined);
        await this.rt.removeTaskCgroup(p.cgroupId).catch(() => undefined);
      }),
    );
    // A container being made when the pool closed is removed by the fill loop once it exists:
    // wait for that, or an agent that exits right after would leave it behind.
    await this.fillRun;
  }

  private scheduleFill(): void {
    if (this.closed) return;
    if (this.starts === 0) return this.fill();
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.fill();
    }, this.o.refillDelayMs ?? 2000);
    this.timer.unref?.();
  }

  /** Makes what is missing, one container at a time, until every wanted network has `size`. */
  private fill(): void {
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = true;
    this.fillRun = (async () => {
      try {
        do {
          this.fillAgain = false;
          for (const [key, w] of this.wanted) {
            while (!this.closed && (this.ready.get(key)?.length ?? 0) < this.o.size) {
              const p = await this.make(w);
              if (this.closed) {
                this.owned.delete(p.id);
                await this.rt.removeContainer(p.id).catch(() => undefined);
                await this.rt.removeTaskCgroup(p.cgroupId).catch(() => undefined);
                break;
              }
              const list = this.ready.get(key);
              if (list) list.push(p);
              else this.ready.set(key, [p]);
            }
          }
        } while (this.fillAgain && !this.closed);
      } catch (err) {
        // The next take asks again; a task meanwhile makes its own pause container.
        this.o.logger?.warn({ err: (err as Error).message }, 'pause container pool not refilled');
      } finally {
        this.filling = false;
      }
    })();
  }

  private async make(w: Wanted): Promise<PooledPause> {
    this.watch();
    const cgroupId = `pool-${randomBytes(8).toString('hex')}`;
    // The parent cgroup (no limits until a task takes it); none where the engine cannot have one.
    this.making.add(cgroupId);
    try {
      const cg = await this.rt.createTaskCgroup(cgroupId, {});
      const started = await startPooledPause(this.rt, {
        name: `wharf-pause-${cgroupId}`,
        image: this.o.image,
        network: w.network,
        ipam: w.ipam,
        labels: { [LABELS.pause]: 'true', [LABELS.pausePool]: cgroupId, [LABELS.containerInstance]: this.o.containerInstanceArn },
        cgroupParent: cg.cgroupParent,
        dns: this.o.dns,
      });
      this.owned.add(started.id);
      return { ...started, cgroupId };
    } catch (err) {
      await this.rt.removeTaskCgroup(cgroupId).catch(() => undefined);
      throw err;
    } finally {
      this.making.delete(cgroupId);
    }
  }

  /** A ready one that dies or goes (removed by hand, the engine restarted) is no longer offered. */
  private watch(): void {
    this.unwatch ??= this.rt.watchEvents((e) => {
      if ((e.action !== 'die' && e.action !== 'destroy') || !this.owned.has(e.id)) return;
      this.owned.delete(e.id);
      for (const [key, list] of this.ready) {
        const i = list.findIndex((p) => p.id === e.id);
        if (i < 0) continue;
        const [gone] = list.splice(i, 1);
        void this.rt.removeContainer(gone!.id).catch(() => undefined);
        void this.rt.removeTaskCgroup(gone!.cgroupId).catch(() => undefined);
        if (this.wanted.has(key)) this.scheduleFill();
      }
    });
  }
}
