import type { Clock } from './clock';
import { backoffMs } from './backoff';

/**
 * A work queue of keys for level-triggered reconcile loops. Enqueueing a key that is already
 * waiting is a no-op; a key is never processed by two workers at once; a key whose handler
 * throws is retried with backoff; a key enqueued while it is being processed runs once more
 * afterwards.
 */
export class KeyedQueue {
  private waiting = new Set<string>();
  private order: string[] = [];
  private active = new Set<string>();
  private dirty = new Set<string>();
  private failures = new Map<string, number>();
  private retryTimers = new Map<string, { cancel(): void }>();
  private running = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly handler: (key: string) => Promise<void>,
    private readonly clock: Clock,
    private readonly opts: { concurrency?: number; onError?: (key: string, err: unknown) => void } = {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.order.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped || this.retryTimers.has(key)) return;
    const t = this.clock.setTimeout(() => {
      this.retryTimers.delete(key);
      this.add(key);
    }, ms);
    this.retryTimers.set(key, t);
  }

  get size(): number {
    return this.waiting.size + this.active.size;
  }

  /** Resolves when nothing is waiting or running (retries scheduled for later don't count). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers.values()) t.cancel();
    this.retryTimers.clear();
    this.waiting.clear();
    this.order = [];
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 4;
    while (this.running < limit && this.order.length > 0) {
      const key = this.order.shift()!;
      if (!this.waiting.delete(key)) continue;
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
    if (this.size === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
      this.failures.delete(key);
    } catch (err) {
      const n = this.failures.get(key) ?? 0;
      this.failures.set(key, n + 1);
      this.opts.onError?.(key, err);
      this.addAfter(key, backoffMs(n));
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
