/**
 * Sends task and container state changes to the control plane in order, per task, retrying with
 * backoff (1 s growing to 30 s) so that reports survive control-plane restarts. A change the
 * control plane refuses outright (ClientException, InvalidParameterException) is dropped, as
 * the ECS agent does; at most `concurrency` tasks are in flight at once.
 *
 * Reports still waiting are superseded, not piled up: a task report carries the task's whole
 * current state (status, timestamps, every container), so it replaces whatever of that task has
 * not been sent yet, and a container report replaces a waiting one of the same container. When
 * the control plane keeps up nothing waits and every transition is sent; when it is slow or
 * away, the agent sends the latest state once instead of the history (PENDING then RUNNING
 * becomes RUNNING), which is all the control plane keeps anyway.
 */
import type { WharfSubmitContainerStateChange, WharfTaskStateChange } from '../api/agent/protocol';
import { backoffMs } from '../lib/backoff';
import { systemClock, type Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import { ControlPlaneError, type ControlPlaneClient } from './control-plane-client';

type Report = { kind: 'task'; change: WharfTaskStateChange } | { kind: 'container'; change: WharfSubmitContainerStateChange };

/** Whether `later` makes sending `earlier` (not yet sent, same task) pointless. */
function supersedes(later: Report, earlier: Report): boolean {
  if (later.kind === 'task') return true;
  return earlier.kind === 'container' && earlier.change.containerName === later.change.containerName;
}

export class StateReporter {
  private readonly queues = new Map<string, Report[]>();
  private readonly active = new Set<string>();
  private readonly ready: string[] = [];
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly client: ControlPlaneClient,
    private readonly o: { clock?: Clock; logger?: Logger; concurrency?: number; baseRetryMs?: number; maxRetryMs?: number } = {},
  ) {}

  submitTask(change: WharfTaskStateChange): void {
    this.enqueue(change.task ?? '', { kind: 'task', change });
  }

  submitContainer(change: WharfSubmitContainerStateChange): void {
    this.enqueue(change.task ?? '', { kind: 'container', change });
  }

  /** Resolves once every queued report has been delivered or dropped. */
  flush(): Promise<void> {
    if (this.queues.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  close(): void {
    this.closed = true;
  }

  private enqueue(task: string, r: Report): void {
    const q = this.queues.get(task);
    if (q) {
      // The head is being sent while a drain is active: it stays; the rest may be superseded.
      const first = this.active.has(task) ? 1 : 0;
      for (let i = q.length - 1; i >= first; i--) if (supersedes(r, q[i]!)) q.splice(i, 1);
      q.push(r);
    } else {
      this.queues.set(task, [r]);
      this.ready.push(task);
    }
    this.pump();
  }

  private pump(): void {
    const limit = this.o.concurrency ?? 10;
    while (!this.closed && this.active.size < limit && this.ready.length) {
      const task = this.ready.shift()!;
      if (this.active.has(task)) continue; // its running drain picks the new report up
      this.active.add(task);
      void this.drain(task);
    }
  }

  private async drain(task: string): Promise<void> {
    const clock = this.o.clock ?? systemClock;
    let attempt = 0;
    for (;;) {
      const q = this.queues.get(task);
      const head = q?.[0];
      if (q && !head) this.queues.delete(task); // emptied by a refusal: nothing left to send
      if (!q || !head || this.closed) break;
      try {
        if (head.kind === 'task') await this.client.submitTaskStateChange(head.change);
        else await this.client.submitContainerStateChange(head.change);
        q.shift();
        attempt = 0;
      } catch (err) {
        if (err instanceof ControlPlaneError && err.permanent) {
          this.o.logger?.warn({ task, err: err.message }, 'state change refused; dropped');
          q.shift();
          continue;
        }
        const ms = backoffMs(attempt++, this.o.baseRetryMs ?? 1000, this.o.maxRetryMs ?? 30_000);
        this.o.logger?.debug({ task, err: (err as Error).message, retryInMs: ms }, 'state change not delivered; retrying');
        await new Promise<void>((r) => clock.setTimeout(r, ms));
      }
      if (q.length === 0) this.queues.delete(task);
    }
    this.active.delete(task);
    if (this.queues.has(task) && !this.closed) this.ready.push(task);
    this.pump();
    if (this.queues.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}
