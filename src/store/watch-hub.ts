/**
 * In-process fan-out of committed changes to watchers, shared by the embedded backends (sqlite,
 * memory). It owns the ordering promises of `Store.watch`:
 *
 *  - a watcher first gets its history (read by the backend when `watch` was called), then live
 *    batches, in revision order, each txn's events in one callback;
 *  - live batches are delivered synchronously from `publish`, i.e. inside the write call and so
 *    before the write's promise resolves (read-your-writes for a cache fed by watch);
 *  - a callback that writes to the store (re-entrant publish) does not overtake: batches queue
 *    and one loop drains them, so every watcher still sees revisions in order;
 *  - a callback that throws is reported and otherwise ignored: the store and other watchers
 *    carry on, and the throwing watcher keeps receiving later batches (dropping it silently
 *    would make a cache miss changes).
 *
 * Values travel as JSON text and are parsed per watcher, so one watcher mutating an event's
 * value cannot change what another watcher (or the store) sees.
 */
import type { Watcher, WatchEvent } from './store';

/** A committed change with its value still as JSON text. */
export interface RawEvent {
  type: 'put' | 'delete';
  key: string;
  json: string;
  revision: number;
  createRevision: number;
}

interface WatchEntry {
  prefix: string;
  onEvents: (events: WatchEvent[]) => void;
  /** History not yet delivered (null once flushed). */
  pending: RawEvent[][] | null;
  /** Highest revision this watcher has been given (or was covered by its history read). */
  upTo: number;
  cancelled: boolean;
}

export class WatchHub {
  private readonly watchers = new Set<WatchEntry>();
  private readonly queue: RawEvent[][] = [];
  private dispatching = false;

  constructor(private readonly onCallbackError: (err: unknown) => void) {}

  /**
   * Registers a watcher. `history` holds the batches after its fromRevision up to `upTo` (the
   * store revision at the time of the read), oldest first. History is delivered on a microtask
   * (so the caller holds the Watcher before its callback first runs) or earlier, just before
   * the next live batch, whichever comes first.
   */
  add(prefix: string, history: RawEvent[][], upTo: number, onEvents: (events: WatchEvent[]) => void): Watcher {
    const entry: WatchEntry = { prefix, onEvents, pending: history.length > 0 ? history : null, upTo, cancelled: false };
    this.watchers.add(entry);
    // Microtasks never run while a dispatch is on the stack (callbacks are synchronous), so this
    // cannot interleave with publish; it may find the history already flushed by a publish.
    if (entry.pending) queueMicrotask(() => this.drain(entry));
    return {
      cancel: () => {
        entry.cancelled = true;
        entry.pending = null;
        this.watchers.delete(entry);
      },
    };
  }

  /** Delivers one committed txn's events (all of one revision) to every matching watcher. */
  publish(events: RawEvent[]): void {
    if (events.length === 0) return;
    this.queue.push(events);
    // A callback that wrote to the store: the running loop below delivers this batch next.
    if (this.dispatching) return;
    this.drain();
  }

  cancelAll(): void {
    for (const w of this.watchers) {
      w.cancelled = true;
      w.pending = null;
    }
    this.watchers.clear();
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Flushes `first`'s history (if given), then every queued batch, in order. */
  private drain(first?: WatchEntry): void {
    this.dispatching = true;
    try {
      if (first) this.flushHistory(first);
      for (let batch = this.queue.shift(); batch; batch = this.queue.shift()) {
        // Copy: a callback may add or cancel watchers while we iterate.
        for (const w of [...this.watchers]) {
          this.flushHistory(w);
          this.deliver(w, batch);
        }
      }
    } finally {
      this.dispatching = false;
    }
  }

  private flushHistory(w: WatchEntry): void {
    const pending = w.pending;
    if (!pending) return;
    w.pending = null;
    for (const batch of pending) {
      if (w.cancelled) return;
      this.call(w, batch);
    }
  }

  private deliver(w: WatchEntry, batch: RawEvent[]): void {
    if (w.cancelled) return;
    const revision = batch[0].revision;
    // Already covered by this watcher's history read (a watch registered from inside a callback
    // while older batches were still queued).
    if (revision <= w.upTo) return;
    w.upTo = revision;
    const mine = w.prefix === '' ? batch : batch.filter((e) => e.key.startsWith(w.prefix));
    if (mine.length > 0) this.call(w, mine);
  }

  private call(w: WatchEntry, batch: RawEvent[]): void {
    const events: WatchEvent[] = batch.map((e) => ({
      type: e.type,
      key: e.key,
      value: JSON.parse(e.json) as unknown,
      revision: e.revision,
      createRevision: e.createRevision,
    }));
    try {
      w.onEvents(events);
    } catch (err) {
      try {
        this.onCallbackError(err);
      } catch {
        // The error reporter itself failed; nothing sensible left to do.
      }
    }
  }
}
