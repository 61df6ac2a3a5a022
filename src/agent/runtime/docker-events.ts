/**
 * The Docker Engine's event stream, shared by every watcher of one DockerRuntime: opened when the
 * first watcher comes, opened again a second after it ends (the engine restarted, say), closed
 * with the runtime. Container events go to the watchers as RuntimeEvents; image events only tell
 * the runtime that image names may have moved (its digest cache). When a stream opens after an
 * earlier one ended, the watchers get `resync`: what happened in the gap was not heard.
 */
import type Docker from 'dockerode';
import type { RuntimeEvent } from './container-runtime';

type Destroyable = NodeJS.ReadableStream & { destroy?: () => void };

export class DockerEventStream {
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();
  private stream?: Destroyable;
  /** An events request is on its way: a second watcher must not open a second stream. */
  private opening = false;
  /** Whether a stream was ever open: the next one then follows a gap. */
  private everOpened = false;
  private closed = false;

  /**
   * @param imagesMayHaveMoved called on every image event and whenever a stream opens or ends:
   *   while no stream is open, image changes go unheard.
   */
  constructor(
    private readonly docker: Docker,
    private readonly imagesMayHaveMoved: () => void,
    private readonly reopenAfterMs = 1000,
  ) {}

  /** Whether a stream is open now (image events are being heard). */
  get isOpen(): boolean {
    return this.stream !== undefined;
  }

  watch(listener: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    if (!this.stream && !this.opening) void this.open();
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    const s = this.stream;
    this.stream = undefined;
    this.imagesMayHaveMoved();
    s?.destroy?.();
  }

  /** Every watcher gets every event: one that throws (its own bug) costs neither the others nor the stream. */
  private emit(e: RuntimeEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // see above
      }
    }
  }

  private retryLater(): void {
    if (!this.closed) setTimeout(() => void this.open(), this.reopenAfterMs).unref();
  }

  private async open(): Promise<void> {
    if (this.closed || this.listeners.size === 0 || this.opening) return;
    this.opening = true;
    try {
      const stream = (await this.docker.getEvents({ filters: JSON.stringify({ type: ['container', 'image'] }) } as Docker.GetEventsOptions).finally(() => {
        this.opening = false;
      })) as Destroyable;
      if (this.closed) {
        // close() ran while the stream was being opened: it had nothing to close yet.
        stream.destroy?.();
        return;
      }
      this.stream = stream;
      this.imagesMayHaveMoved();
      if (this.everOpened) this.emit({ id: '', action: 'resync' });
      this.everOpened = true;
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.onLine(line);
        }
      });
      const ended = () => {
        if (this.stream !== stream) return;
        this.stream = undefined;
        this.imagesMayHaveMoved();
        this.retryLater();
      };
      stream.on('end', ended);
      stream.on('close', ended);
      stream.on('error', ended);
    } catch {
      this.retryLater();
    }
  }

  private onLine(line: string): void {
    let ev: { Type?: string; Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try {
      ev = JSON.parse(line) as typeof ev;
    } catch {
      return; // a malformed line only costs a wake-up; the runners also re-inspect on a timer
    }
    if (ev.Type === 'image') {
      this.imagesMayHaveMoved();
      return;
    }
    const raw = ev.Action ?? ev.status ?? '';
    const action: RuntimeEvent['action'] = raw.startsWith('health_status')
      ? 'health'
      : (['create', 'start', 'die', 'oom', 'destroy'] as const).find((a) => a === raw) ?? 'other';
    const id = ev.Actor?.ID ?? ev.id;
    // Docker sends a container's labels among its event's attributes (with name, image, ...).
    const labels = ev.Actor?.Attributes;
    if (id) this.emit(labels ? { id, action, labels } : { id, action });
  }
}
