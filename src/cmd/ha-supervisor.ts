/**
 * `wharf up --ha` keeps its processes running: a replica or an etcd member that dies (kill -9,
 * OOM, a crash) is started again as what it was (same port; an etcd member on its own data dir,
 * so with its identity), and the installation is back to three of each without restarting
 * `wharf up`. Looked at every `pollMs`; every restart and its outcome is logged.
 *
 * Backoff, so that a process that dies at once does not spin: the first restart is at once, each
 * further one within `stableMs` of the last waits twice as long as the one before (1, 2, 4, ...
 * up to 30 s); a process that has run for `stableMs` starts again from no wait.
 *
 *      running ──(dies)──> dead ──(wait: 0, then 1 s, 2 s, ... 30 s)──> restarting
 *         ^                  ^                                             │
 *         └────(started)─────┼─────────────────────────────────────────────┤
 *                            └──────────────(failed to start)──────────────┘
 */

/** One process the supervisor keeps running. */
export interface SupervisedProcess {
  /** How the log names it: 'replica 2', 'etcd member m1'. */
  name: string;
  /** The pid now, if known. */
  pid(): number | undefined;
  /** Whether it runs. */
  alive(): boolean;
  /** How it ended, when known ('killed by SIGKILL', 'exited with 1'). */
  howItEnded?(): string | undefined;
  /** Starts it again as what it was; resolves with the new pid once it answers, rejects saying why not. */
  restart(): Promise<number>;
}

export interface SupervisorOptions {
  say: (line: string) => void;
  /** How often each process is looked at (default 1000 ms). */
  pollMs?: number;
  /** The wait before the second restart in a row (default 1000 ms); it doubles up to maxBackoffMs. */
  firstBackoffMs?: number;
  maxBackoffMs?: number;
  /** A process that ran this long after a restart counts as stable: its next restart is at once (default 60 s). */
  stableMs?: number;
  now?: () => number;
}

interface Slot {
  p: SupervisedProcess;
  /** Restarts in a row, none of which stayed up for stableMs. */
  inARow: number;
  /** When the current process was started by us (undefined: found running). */
  startedAt?: number;
  /** Not before this time may it be started again. */
  notBefore: number;
  /** Set once its death is logged, until it runs again. */
  deadSeen: boolean;
  restarting?: Promise<void>;
}

export class HaSupervisor {
  private readonly slots: Slot[];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(
    processes: SupervisedProcess[],
    private readonly o: SupervisorOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.slots = processes.map((p) => ({ p, inARow: 0, notBefore: 0, deadSeen: false }));
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.check(), this.o.pollMs ?? 1000);
    this.timer.unref();
  }

  /** Stops watching; waits for a restart under way to end (its process is then the caller's to stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(this.slots.map((s) => s.restarting));
  }

  /** The wait before the next restart of a process that has been restarted `inARow` times without staying up. */
  backoffMs(inARow: number): number {
    if (inARow === 0) return 0;
    return Math.min(this.o.maxBackoffMs ?? 30_000, (this.o.firstBackoffMs ?? 1000) * 2 ** (inARow - 1));
  }

  /** One look at every process (exported for tests; the timer calls it). */
  check(): void {
    if (this.stopped) return;
    const now = this.now();
    for (const s of this.slots) {
      if (s.restarting) continue;
      if (s.p.alive()) {
        // Up long enough since we started it: the next death starts a new series.
        if (s.startedAt !== undefined && now - s.startedAt >= (this.o.stableMs ?? 60_000)) s.inARow = 0;
        continue;
      }
      if (!s.deadSeen) {
        s.deadSeen = true;
        const wait = this.backoffMs(s.inARow);
        s.notBefore = now + wait;
        const how = s.p.howItEnded?.();
        const pid = s.p.pid();
        this.o.say(`wharf: ${s.p.name}${pid !== undefined ? ` (pid ${pid})` : ''} ${how ? `ended: ${how}` : 'is gone'}; starting it again${wait > 0 ? ` in ${seconds(wait)} (restart ${s.inARow + 1} in a row)` : ''}`);
      }
      if (now < s.notBefore) continue;
      s.restarting = this.restart(s).finally(() => (s.restarting = undefined));
    }
  }

  private async restart(s: Slot): Promise<void> {
    s.inARow += 1;
    try {
      const pid = await s.p.restart();
      s.startedAt = this.now();
      s.deadSeen = false;
      this.o.say(`wharf: ${s.p.name} started again (pid ${pid})`);
    } catch (e) {
      const wait = this.backoffMs(s.inARow);
      s.notBefore = this.now() + wait;
      this.o.say(`wharf: ${s.p.name} did not start again: ${e instanceof Error ? e.message : String(e)}; trying again in ${seconds(wait)}`);
    }
  }
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
