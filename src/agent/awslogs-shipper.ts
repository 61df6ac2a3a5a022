/**
 * The `awslogs` log driver, done by the agent: Docker keeps writing json-file (so `wharf logs` and
 * `docker logs` still work), and the agent follows each awslogs container's output and puts it to
 * the control plane's CloudWatch Logs API with its instance credential, in the stream ECS names
 * (`<awslogs-stream-prefix>/<container>/<task id>`, or the container's id without a prefix), in
 * the region `awslogs-region` names.
 *
 *   prepare(target)       before the container starts: CreateLogGroup when awslogs-create-group
 *                         is true, then CreateLogStream; a missing group fails the start with
 *                         the reason ECS gives
 *   follow(id, target)    reads `docker logs --follow --timestamps` from where the stream ends,
 *                         batches lines (1 s or 1,000 lines) and puts them; a batch that cannot
 *                         be put (control plane away) is kept and retried with backoff, in
 *                         order, so a control-plane restart loses no line
 *   (container gone)      Docker ends the log stream; the output is read once more without
 *                         following (a last line without a newline is written only as the
 *                         container exits, and the follow stream may end before passing it on),
 *                         the rest is flushed and shipping stops
 *
 * Lines are the container's own: Docker's 16 KiB pieces of a long line are joined again (without
 * the timestamps `--timestamps` puts before each piece), and a line longer than CloudWatch's
 * event limit becomes several events, as Docker's awslogs driver does.
 *
 * Resume: within one agent process, from the last line shipped (Docker's nanosecond timestamp);
 * after an agent restart, from the stream's lastEventTimestamp (DescribeLogStreams), skipping
 * lines at or before that millisecond.
 */
import type { Readable } from 'node:stream';
import type { Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import { backoffMs } from '../lib/backoff';
import type { ContainerRuntime } from './runtime/container-runtime';
import type { ContainerDefinition } from '../core/shapes/ecs';
import { awslogsCreatesGroup, awslogsMultilinePattern, awslogsStreamName } from '../core/awslogs-options';

export interface AwslogsTarget {
  group: string;
  /** The stream's name; undefined until the container exists when there is no prefix. */
  stream: string;
  region: string;
  createGroup: boolean;
  /** awslogs-multiline-pattern (or awslogs-datetime-format): a matching line starts a new event. */
  multiline?: RegExp;
  /** awslogs-force-flush-interval-seconds, in ms: how long a multiline event may wait for more lines. */
  multilineFlushMs?: number;
}

/** How the shipper reaches the logs API (HttpControlPlaneClient.logsCall); errors carry `code`. */
export interface LogsApi {
  logsCall<T = Record<string, unknown>>(operation: string, body: unknown, region: string): Promise<T>;
}

/** The awslogs target of a container definition, or undefined when it does not use awslogs. */
export function awslogsTargetOf(def: ContainerDefinition, taskId: string, dockerId: string | undefined, instanceRegion: string): AwslogsTarget | undefined {
  const lc = def.logConfiguration;
  const o = lc?.options ?? {};
  if (lc?.logDriver !== 'awslogs' || !o['awslogs-group']) return undefined;
  const stream = awslogsStreamName(o, def.name ?? '', taskId, dockerId);
  if (!stream) return undefined;
  const target: AwslogsTarget = { group: o['awslogs-group'], stream, region: o['awslogs-region'] ?? instanceRegion, createGroup: awslogsCreatesGroup(o) };
  const multiline = awslogsMultilinePattern(o);
  if (multiline) {
    target.multiline = multiline;
    target.multilineFlushMs = Number(o['awslogs-force-flush-interval-seconds'] || 5) * 1000;
  }
  return target;
}

/** ECS's reason when the group is missing (the Docker awslogs driver's error, as ECS reports it). */
export const MISSING_GROUP_REASON =
  'CannotStartContainerError: Error response from daemon: failed to initialize logging driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist.';

const codeOf = (e: unknown) => (e as { code?: string })?.code ?? '';
/** Refusals no retry can change: the batch is dropped (and said so) rather than retried forever. */
const PERMANENT = new Set(['AccessDeniedException', 'ResourceNotFoundException', 'InvalidParameterException', 'UnknownOperationException', 'UnsupportedFeatureException']);

export interface AwslogsShipperOptions {
  api: LogsApi;
  runtime: ContainerRuntime;
  clock: Clock;
  logger?: Logger;
  flushIntervalMs?: number;
  maxBatchEvents?: number;
  /** Lines held while the control plane is away; past it the oldest are dropped (and counted). */
  maxBufferedEvents?: number;
}

/** Docker's RFC 3339 timestamp as a sortable key (nanoseconds, fixed width) and as epoch ms. */
function parseDockerTime(ts: string): { key: string; ms: number } | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(ts);
  if (!m) return undefined;
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  const ms = Date.parse(`${m[1]}.${frac.slice(0, 3)}Z`);
  return Number.isNaN(ms) ? undefined : { key: `${m[1]}.${frac}`, ms };
}

/**
 * Docker hands a line longer than 16 KiB to its log driver in pieces of 16 KiB, and `docker logs
 * --timestamps` writes each piece with the line's timestamp in front and no newline between
 * them: `<ts> <16 KiB><ts> <16 KiB><ts> <rest>\n`, every <ts> the same.
 */
const DOCKER_PIECE_BYTES = 16 * 1024;
/** CloudWatch's largest event: 256 KiB, less the 26 bytes it counts for each event. */
export const MAX_EVENT_BYTES = 262_144 - 26;
/** CloudWatch's largest PutLogEvents batch, counting 26 bytes for each event. */
const MAX_BATCH_BYTES = 1_048_576;
const DOCKER_TS_AT = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z /y;

/** The char index in `s` where its UTF-8 bytes reach `bytes` (s.length when they never do). */
function charIndexAtByte(s: string, bytes: number): number {
  let n = 0;
  let i = 0;
  while (i < s.length && n < bytes) {
    const cp = s.codePointAt(i)!;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return i;
}

/**
 * Splits a message into CloudWatch events of at most MAX_EVENT_BYTES, at character boundaries,
 * as Docker's awslogs driver does with longer lines.
 */
export function splitEventMessage(message: string, maxBytes = MAX_EVENT_BYTES): string[] {
  const out: string[] = [];
  let rest = message;
  while (Buffer.byteLength(rest, 'utf8') > maxBytes) {
    const cut = charIndexAtByte(rest, maxBytes + 1) - 1;
    // A character must not be cut in two: step back over a surrogate pair's first half.
    const at = cut > 0 && /[\uD800-\uDBFF]/.test(rest[cut - 1]!) ? cut - 1 : cut;
    out.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  out.push(rest);
  return out;
}

/**
 * Reads `docker logs --timestamps` output into lines: `emit(timestamp, message)` once per line the
 * container wrote, with a long line's 16 KiB pieces joined again and their inner timestamps
 * dropped. Pieces are kept by timestamp, so a line of the other stream (stderr between stdout's
 * pieces) comes out on its own. end() gives out a last line with no newline and unfinished pieces.
 */
export class DockerLogReader {
  private rest = '';
  /** Pieces of long lines not yet finished, by their timestamp. */
  private readonly pieces = new Map<string, string>();

  constructor(private readonly emit: (timestamp: string, message: string) => void) {}

  feed(chunk: string): void {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop() ?? '';
    for (const l of lines) this.line(l);
  }

  /** The timestamps of long lines whose last piece has not come. */
  openTimestamps(): Set<string> {
    return new Set(this.pieces.keys());
  }

  end(): void {
    if (this.rest !== '') this.line(this.rest);
    this.rest = '';
    for (const [ts, text] of this.pieces) this.emit(ts, text);
    this.pieces.clear();
  }

  private line(l: string): void {
    let s = l;
    for (;;) {
      const sp = s.indexOf(' ');
      if (sp <= 0) return;
      const ts = s.slice(0, sp);
      let body = s.slice(sp + 1);
      const next = pieceEnd(body);
      if (next >= 0) {
        this.pieces.set(ts, (this.pieces.get(ts) ?? '') + body.slice(0, next));
        s = body.slice(next);
        continue;
      }
      if (body.endsWith('\r')) body = body.slice(0, -1);
      const before = this.pieces.get(ts);
      this.pieces.delete(ts);
      this.emit(ts, before !== undefined ? before + body : body);
      return;
    }
  }
}

/** Where the next piece's timestamp starts in `body` when body opens with a 16 KiB piece, else -1. */
function pieceEnd(body: string): number {
  if (body.length < DOCKER_PIECE_BYTES / 4 || Buffer.byteLength(body, 'utf8') <= DOCKER_PIECE_BYTES) return -1;
  const at = charIndexAtByte(body, DOCKER_PIECE_BYTES);
  // A piece cut inside a character is stored with replacement characters, a few bytes longer.
  for (let i = at; i <= at + 3 && i < body.length; i++) {
    DOCKER_TS_AT.lastIndex = i;
    if (DOCKER_TS_AT.test(body)) return i;
  }
  return -1;
}

/**
 * awslogs-multiline-pattern, as Docker's awslogs driver does it: a line matching the pattern
 * starts a new event and the lines after it join that event, each ending with a newline. An event
 * goes out when the next one starts, when one more line would take it past CloudWatch's event
 * limit, when it has waited `flushMs` (awslogs-force-flush-interval-seconds, 5 s by default), and
 * when the container's output ends. Its timestamp is its first line's.
 */
export class MultilineEvents {
  private current?: { ms: number; key: string; text: string; bytes: number };
  private timer?: { cancel(): void };

  constructor(
    private readonly pattern: RegExp,
    private readonly flushMs: number,
    private readonly clock: Clock,
    private readonly emit: (e: { ms: number; key: string; text: string }) => void,
  ) {}

  add(ms: number, key: string, line: string): void {
    const bytes = Buffer.byteLength(line, 'utf8');
    if (this.current && (this.pattern.test(line) || this.current.bytes + bytes > MAX_EVENT_BYTES)) this.flush();
    const text = bytes < MAX_EVENT_BYTES ? `${line}\n` : line;
    if (!this.current) {
      this.current = { ms, key, text, bytes: Buffer.byteLength(text, 'utf8') };
      const started = this.current;
      this.timer = this.clock.setTimeout(() => {
        if (this.current === started) this.flush();
      }, this.flushMs);
    } else {
      this.current.text += text;
      this.current.bytes += Buffer.byteLength(text, 'utf8');
      this.current.key = key;
    }
  }

  flush(): void {
    this.timer?.cancel();
    this.timer = undefined;
    const e = this.current;
    this.current = undefined;
    if (e) this.emit(e);
  }
}

interface Follower {
  target: AwslogsTarget;
  buffer: { timestamp: number; message: string; key: string }[];
  /** Docker timestamp key of the last line put (in-process resume point). */
  shippedKey?: string;
  flushing?: Promise<void>;
  timer?: { cancel(): void };
  failures: number;
  ended: boolean;
  source?: Readable;
  dropped: number;
}

export class AwslogsShipper {
  private readonly followers = new Map<string, Follower>();
  /** Resume points by stream, kept across containers of the same stream (restarts in place). */
  private readonly shipped = new Map<string, string>();
  private closed = false;

  constructor(private readonly o: AwslogsShipperOptions) {}

  /**
   * Makes the group (when asked) and the stream. Returns the reason the container must not start
   * (its group is missing), or undefined. Transient failures are retried a few times first.
   */
  async prepare(t: AwslogsTarget): Promise<string | undefined> {
    const tolerate = async (op: string, body: unknown, exists: string) => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.o.api.logsCall(op, body, t.region);
          return;
        } catch (e) {
          if (codeOf(e) === exists) return;
          if (PERMANENT.has(codeOf(e)) || attempt >= 5) throw e;
          await new Promise((r) => setTimeout(r, backoffMs(attempt, 200, 3000)));
        }
      }
    };
    try {
      if (t.createGroup) await tolerate('CreateLogGroup', { logGroupName: t.group }, 'ResourceAlreadyExistsException');
      await tolerate('CreateLogStream', { logGroupName: t.group, logStreamName: t.stream }, 'ResourceAlreadyExistsException');
      return undefined;
    } catch (e) {
      if (codeOf(e) === 'ResourceNotFoundException') return MISSING_GROUP_REASON;
      return `CannotStartContainerError: failed to initialize logging driver: failed to create Cloudwatch log stream: ${(e as Error).message}`.slice(0, 1024);
    }
  }

  /** Ships `dockerId`'s output to `target` until the container is gone (idempotent per container). */
  follow(dockerId: string, target: AwslogsTarget): void {
    if (this.closed || this.followers.has(dockerId)) return;
    const f: Follower = { target, buffer: [], failures: 0, ended: false, dropped: 0 };
    this.followers.set(dockerId, f);
    void this.run(dockerId, f).catch((err: unknown) => this.o.logger?.warn({ err, dockerId, logStream: target.stream }, 'awslogs: following the container output failed'));
  }

  private async resumeKey(t: AwslogsTarget): Promise<{ key?: string; ms?: number }> {
    const key = this.shipped.get(`${t.region}|${t.group}|${t.stream}`);
    if (key) return { key };
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.o.api.logsCall<{ logStreams?: { logStreamName: string; lastEventTimestamp?: number }[] }>('DescribeLogStreams', { logGroupName: t.group, logStreamNamePrefix: t.stream }, t.region);
        const s = out.logStreams?.find((x) => x.logStreamName === t.stream);
        return { ms: s?.lastEventTimestamp };
      } catch (e) {
        if (PERMANENT.has(codeOf(e)) || this.closed) return {};
        await new Promise((r) => setTimeout(r, backoffMs(attempt, 200, 5000)));
      }
    }
  }

  private async run(dockerId: string, f: Follower): Promise<void> {
    const resume = await this.resumeKey(f.target);
    f.shippedKey = resume.key;
    const sinceSec = resume.key ? Math.floor(Date.parse(`${resume.key.slice(0, 23)}Z`) / 1000) : resume.ms !== undefined ? Math.floor(resume.ms / 1000) : undefined;
    const source = await this.o.runtime.logs(dockerId, { follow: true, timestamps: true, ...(sinceSec !== undefined ? { since: sinceSec } : {}) });
    f.source = source;
    /** Docker key of the last line taken (or skipped as already shipped). */
    let seenKey: string | undefined;
    const push = (ms: number, key: string, message: string) => {
      for (const piece of splitEventMessage(message)) f.buffer.push({ timestamp: ms, message: piece, key });
      const max = this.o.maxBufferedEvents ?? 100_000;
      if (f.buffer.length > max) {
        f.dropped += f.buffer.length - max;
        f.buffer.splice(0, f.buffer.length - max);
      }
      if (f.buffer.length >= (this.o.maxBatchEvents ?? 1000)) this.kick(f);
    };
    const multiline = f.target.multiline ? new MultilineEvents(f.target.multiline, f.target.multilineFlushMs ?? 5000, this.o.clock, (e) => {
      if (this.closed) return;
      push(e.ms, e.key, e.text);
      this.arm(f);
    }) : undefined;
    const take = (ts: string, message: string) => {
      const t = parseDockerTime(ts);
      if (!t) return;
      if (seenKey === undefined || t.key > seenKey) seenKey = t.key;
      // Already shipped (the resume point falls inside the second Docker was asked from).
      if (resume.key !== undefined && t.key <= resume.key) return;
      if (resume.key === undefined && resume.ms !== undefined && t.ms <= resume.ms) return;
      if (multiline) multiline.add(t.ms, t.key, message);
      else if (message !== '') push(t.ms, t.key, message);
    };
    const reader = new DockerLogReader(take);
    source.setEncoding('utf8');
    source.on('data', (chunk: string) => {
      reader.feed(chunk);
      this.arm(f);
    });
    await new Promise<void>((resolve) => {
      source.on('end', resolve);
      source.on('close', resolve);
      source.on('error', (err) => {
        this.o.logger?.warn({ err, dockerId }, 'awslogs: the container output stream failed');
        resolve();
      });
    });
    if (!this.closed) await this.catchUp(dockerId, reader, seenKey, sinceSec, take);
    multiline?.flush();
    f.ended = true;
    // The container is gone (or stopped): what is left goes out, then this follower ends.
    while (f.buffer.length > 0 && !this.closed) {
      await this.flush(f);
      if (f.buffer.length > 0) await new Promise((r) => setTimeout(r, backoffMs(f.failures, 250, 5000)));
    }
    f.timer?.cancel();
    this.followers.delete(dockerId);
  }

  /**
   * Once the follow stream has ended, reads the container's output once more, without following.
   * Docker writes a last line that has no newline only when the container exits, and its follow
   * stream can end before passing that write on; the stored log has it. Lines already taken are
   * skipped by their timestamp, except those of a long line whose pieces were still arriving.
   * When the container cannot be read any more, what the follow stream gave is all there is.
   */
  private async catchUp(dockerId: string, reader: DockerLogReader, seenKey: string | undefined, resumeSec: number | undefined, take: (ts: string, message: string) => void): Promise<void> {
    const open = reader.openTimestamps();
    const keys = [seenKey, ...[...open].map((ts) => parseDockerTime(ts)?.key)].filter((k): k is string => k !== undefined).sort();
    const fromKey = keys[0];
    let text = '';
    try {
      // From the first line not yet taken; with none taken, from where the follow stream began.
      const since = fromKey !== undefined ? Math.floor(Date.parse(`${fromKey.slice(0, 23)}Z`) / 1000) : resumeSec;
      const again = await this.o.runtime.logs(dockerId, { timestamps: true, ...(since !== undefined ? { since } : {}) });
      again.setEncoding('utf8');
      for await (const chunk of again) text += chunk as string;
    } catch {
      reader.end();
      return;
    }
    const rest = new DockerLogReader((ts, message) => {
      const key = parseDockerTime(ts)?.key;
      if (key === undefined) return;
      if (seenKey !== undefined && key <= seenKey && !open.has(ts)) return;
      take(ts, message);
    });
    rest.feed(text);
    rest.end();
  }

  private arm(f: Follower): void {
    if (f.timer || f.ended) return;
    f.timer = this.o.clock.setTimeout(() => {
      f.timer = undefined;
      this.kick(f);
    }, this.o.flushIntervalMs ?? 1000);
  }

  private kick(f: Follower): void {
    if (f.flushing || f.ended) return;
    f.flushing = this.flush(f).finally(() => {
      f.flushing = undefined;
      if (f.buffer.length > 0 && !f.ended) {
        // Failing: wait before the next attempt; otherwise go on with what gathered meanwhile.
        if (f.failures > 0) {
          f.timer?.cancel();
          f.timer = this.o.clock.setTimeout(() => {
            f.timer = undefined;
            this.kick(f);
          }, backoffMs(f.failures, 250, 5000));
        } else this.arm(f);
      }
    });
  }

  /** Puts the oldest buffered lines (one batch). Keeps them on a transient failure. */
  private async flush(f: Follower): Promise<void> {
    if (f.flushing && f.ended) await f.flushing;
    if (f.buffer.length === 0) return;
    const n = Math.min(f.buffer.length, this.o.maxBatchEvents ?? 1000);
    let batch = f.buffer.slice(0, n);
    // One call may span at most 24 hours; lines out of order (stdout and stderr interleave) are
    // put at the time of the line before them, so the batch stays in order.
    const first = batch[0]!.timestamp;
    const within = batch.findIndex((e) => e.timestamp - first > 86_400_000);
    if (within > 0) batch = batch.slice(0, within);
    // And at most 1 MiB, counting 26 bytes for each event.
    let bytes = 0;
    const fits = batch.findIndex((e) => (bytes += Buffer.byteLength(e.message, 'utf8') + 26) > MAX_BATCH_BYTES);
    if (fits > 0) batch = batch.slice(0, fits);
    let last = -Infinity;
    const events = batch.map((e) => ({ timestamp: (last = Math.max(last, e.timestamp)), message: e.message }));
    const t = f.target;
    try {
      await this.o.api.logsCall('PutLogEvents', { logGroupName: t.group, logStreamName: t.stream, logEvents: events }, t.region);
      f.failures = 0;
    } catch (e) {
      if (!PERMANENT.has(codeOf(e))) {
        f.failures++;
        if (f.failures === 1) this.o.logger?.warn({ err: e, logStream: t.stream }, 'awslogs: cannot put log events yet; keeping them and retrying');
        return;
      }
      this.o.logger?.warn({ err: e, logStream: t.stream, events: batch.length }, 'awslogs: the control plane refused these log events; they are dropped');
    }
    f.buffer.splice(0, batch.length);
    f.shippedKey = batch[batch.length - 1]!.key;
    this.shipped.set(`${t.region}|${t.group}|${t.stream}`, f.shippedKey);
    if (f.dropped > 0) {
      this.o.logger?.warn({ logStream: t.stream, dropped: f.dropped }, 'awslogs: lines dropped while the control plane was away (buffer full)');
      f.dropped = 0;
    }
  }

  /** Stops every follower (agent shutdown); lines not put yet are shipped by the next agent from the stream's end. */
  close(): void {
    this.closed = true;
    for (const f of this.followers.values()) {
      f.timer?.cancel();
      f.source?.destroy();
    }
  }
}
