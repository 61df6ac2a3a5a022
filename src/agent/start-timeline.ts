/**
 * Where a task's start spends its time: each step's start and end in ms since the runner began
 * starting the task (monotonic clock), logged once at debug level when the task's containers
 * have all started. Steps may overlap; the log shows them as they ran. Costs two
 * `performance.now()` calls per step, so it is always on.
 */
import type { Logger } from '../lib/logger';

export class StartTimeline {
  private readonly t0 = performance.now();
  private readonly steps: [string, number, number][] = [];
  private logged = false;

  /** Runs `fn` as the step `name`. */
  async time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now() - this.t0;
    try {
      return await fn();
    } finally {
      this.steps.push([name, Math.round(start), Math.round(performance.now() - this.t0)]);
    }
  }

  /** `name start-end` per step, in the order they ended. */
  summary(): string {
    return this.steps.map(([n, s, e]) => `${n} ${s}-${e}`).join(', ');
  }

  /** Logs the steps once (debug). */
  log(logger: Logger | undefined, taskArn: string): void {
    if (this.logged) return;
    this.logged = true;
    // `startedAt` (epoch ms) lets a profiler line the steps up with other processes' clocks.
    const startedAt = Math.round(performance.timeOrigin + this.t0);
    logger?.debug({ taskArn, startedAt, totalMs: Math.round(performance.now() - this.t0), steps: this.summary() }, 'task start steps');
  }
}
