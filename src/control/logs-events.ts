/**
 * Log events: PutLogEvents writes one batch record per call; GetLogEvents and FilterLogEvents read
 * batches back; retention removes what has expired.
 *
 * Every event has an ordinal in its stream, `seq * 10,000 + index` (a batch holds at most 10,000
 * events), and a stream is read in ordinal order, which is the order events were put. (CloudWatch
 * sorts a stream by timestamp; the two agree when a stream's producer puts its events in time
 * order, as the awslogs driver and the agent do.) GetLogEvents' tokens are positions between
 * ordinals, so they mean what CloudWatch's mean:
 *
 *   f/<p>  the events from ordinal p on      -> nextForwardToken  = f/<last returned + 1>
 *   b/<p>  the events before ordinal p       -> nextBackwardToken = b/<first returned>
 *
 * and when nothing is returned each is the token passed in (or, with none, the stream's end),
 * which is how `aws logs get-log-events` and followers know they are at the end.
 */
import { createHash } from 'node:crypto';
import { WharfError } from '../core/errors';
import { matchesLogFilter, parseLogFilterPattern, type LogFilter } from '../core/log-filter-pattern';
import { StoreConflictError, casUpdate, type TxnOp } from '../store/store';
import {
  EVENTS_PER_BATCH,
  MAX_BATCHES_PER_STREAM,
  checkGroupName,
  checkStreamName,
  decodePageToken,
  encodePageToken,
  groupNameOf,
  groupNotFound,
  logKeys,
  pageLimit,
  streamNotFound,
  type LogBatchRecord,
  type LogGroupRecord,
  type LogStreamRecord,
  type LogsContext,
} from './logs-records';

const DAY_MS = 86_400_000;
/** CloudWatch refuses events more than 14 days old or 2 hours ahead of its clock. */
const TOO_OLD_MS = 14 * DAY_MS;
const TOO_NEW_MS = 2 * 3_600_000;
/** GetLogEvents and FilterLogEvents answer at most 1 MB of events, as CloudWatch does. */
const MAX_ANSWER_BYTES = 1_048_576;

const eventBytes = (message: string) => Buffer.byteLength(message, 'utf8') + 26;

/** The oldest timestamp the group still keeps (-Infinity without a retention policy). */
function retentionCutoff(g: LogGroupRecord | undefined, now: number): number {
  return g?.retentionInDays !== undefined ? now - g.retentionInDays * DAY_MS : -Infinity;
}

async function groupAndStream(lctx: LogsContext, group: string, stream: string) {
  const g = await lctx.store.get<LogGroupRecord>(logKeys.group(group));
  if (!g) throw groupNotFound();
  const s = await lctx.store.get<LogStreamRecord>(logKeys.stream(group, stream));
  if (!s) throw streamNotFound();
  return { g, s };
}

interface InputLogEvent {
  timestamp: number;
  message: string;
}

export async function putLogEvents(lctx: LogsContext, input: { logGroupName?: string; logStreamName?: string; logEvents?: InputLogEvent[] }) {
  const group = checkGroupName(input.logGroupName);
  const stream = checkStreamName(input.logStreamName);
  const events = input.logEvents ?? [];
  if (events.length === 0) throw new WharfError('InvalidParameterException', "1 validation error detected: Value '[]' at 'logEvents' failed to satisfy constraint: Member must have length greater than or equal to 1");
  if (events.length > EVENTS_PER_BATCH) throw new WharfError('InvalidParameterException', `1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to ${EVENTS_PER_BATCH}`);
  for (let i = 1; i < events.length; i++) {
    if (events[i]!.timestamp < events[i - 1]!.timestamp) throw new WharfError('InvalidParameterException', 'Log events in a single PutLogEvents request must be in chronological order.');
  }
  if (events[events.length - 1]!.timestamp - events[0]!.timestamp > DAY_MS) {
    throw new WharfError('InvalidParameterException', 'The batch of log events in a single PutLogEvents request cannot span more than 24 hours.');
  }
  for (let attempt = 0; ; attempt++) {
    const { g, s } = await groupAndStream(lctx, group, stream);
    const now = lctx.clock.now();
    // Refused events are reported by index, as CloudWatch does, and the rest are kept. The
    // batch is in time order, so the too-old ones are a prefix and the too-new ones a suffix.
    const oldest = Math.max(now - TOO_OLD_MS, retentionCutoff(g.value, now));
    let from = 0;
    while (from < events.length && events[from]!.timestamp < oldest) from++;
    let to = events.length;
    while (to > from && events[to - 1]!.timestamp > now + TOO_NEW_MS) to--;
    const rejected: Record<string, number> = {};
    if (from > 0) {
      const tooOld = events[from - 1]!.timestamp < now - TOO_OLD_MS;
      rejected[tooOld ? 'tooOldLogEventEndIndex' : 'expiredLogEventEndIndex'] = from;
    }
    if (to < events.length) rejected.tooNewLogEventStartIndex = to;
    const kept = events.slice(from, to);
    const cur = s.value;
    if (kept.length === 0) return { nextSequenceToken: String(cur.nextSeq), ...(Object.keys(rejected).length ? { rejectedLogEventsInfo: rejected } : {}) };
    const bytes = kept.reduce((n, e) => n + eventBytes(e.message), 0);
    const batch: LogBatchRecord = { seq: cur.nextSeq, ingestionTime: now, events: kept.map((e) => [e.timestamp, e.message]) };
    const next: LogStreamRecord = {
      ...cur,
      nextSeq: cur.nextSeq + 1,
      storedBytes: cur.storedBytes + bytes,
      firstEventTimestamp: Math.min(cur.firstEventTimestamp ?? Infinity, kept[0]!.timestamp),
      lastEventTimestamp: Math.max(cur.lastEventTimestamp ?? -Infinity, kept[kept.length - 1]!.timestamp),
      lastIngestionTime: now,
    };
    const ops: TxnOp[] = [
      { op: 'check', key: logKeys.group(group), expectedRevision: g.modRevision },
      { op: 'update', key: logKeys.stream(group, stream), value: next, expectedRevision: s.modRevision },
      { op: 'create', key: logKeys.batch(group, stream, batch.seq), value: batch },
    ];
    // Past the cap the oldest batch goes in the same write (one in, one out).
    if (next.nextSeq - next.firstSeq > MAX_BATCHES_PER_STREAM) {
      const dropSeq = next.firstSeq;
      const dropped = await lctx.store.get<LogBatchRecord>(logKeys.batch(group, stream, dropSeq));
      if (dropped) {
        ops.push({ op: 'delete', key: dropped.key, expectedRevision: dropped.modRevision });
        next.storedBytes -= dropped.value.events.reduce((n, [, m]) => n + eventBytes(m), 0);
      }
      next.firstSeq = dropSeq + 1;
    }
    try {
      await lctx.store.txn(ops);
      return { nextSequenceToken: String(next.nextSeq), ...(Object.keys(rejected).length ? { rejectedLogEventsInfo: rejected } : {}) };
    } catch (e) {
      // Another writer of the stream (or the group deleted): read again and retry.
      if (!(e instanceof StoreConflictError) || attempt >= 20) throw e;
    }
  }
}

interface Ev {
  ord: number;
  timestamp: number;
  message: string;
  ingestionTime: number;
}

function batchEvents(b: LogBatchRecord): Ev[] {
  return b.events.map(([timestamp, message], i) => ({ ord: b.seq * EVENTS_PER_BATCH + i, timestamp, message, ingestionTime: b.ingestionTime }));
}

const TOKEN_RE = /^([fb])\/(\d{1,56})(?:\/s)?$/;
const token = (dir: 'f' | 'b', pos: number) => `${dir}/${String(pos).padStart(56, '0')}/s`;

function parseToken(t: string): { dir: 'f' | 'b'; pos: number } {
  const m = TOKEN_RE.exec(t);
  const pos = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(pos)) throw new WharfError('InvalidParameterException', 'The specified nextToken is invalid.');
  return { dir: m[1] as 'f' | 'b', pos };
}

export async function getLogEvents(
  lctx: LogsContext,
  input: { logGroupName?: string; logGroupIdentifier?: string; logStreamName?: string; startTime?: number; endTime?: number; nextToken?: string; limit?: number; startFromHead?: boolean },
) {
  const group = groupNameOf(input);
  const stream = checkStreamName(input.logStreamName);
  const limit = pageLimit(input.limit, EVENTS_PER_BATCH, EVENTS_PER_BATCH);
  const given = input.nextToken !== undefined ? parseToken(input.nextToken) : undefined;
  const { g, s } = await groupAndStream(lctx, group, stream);
  const cutoff = retentionCutoff(g.value, lctx.clock.now());
  const st = s.value;
  const end = st.nextSeq * EVENTS_PER_BATCH;
  const wanted = (e: Ev) => e.timestamp >= cutoff && (input.startTime === undefined || e.timestamp >= input.startTime) && (input.endTime === undefined || e.timestamp < input.endTime);
  const batch = async (seq: number) => (await lctx.store.get<LogBatchRecord>(logKeys.batch(group, stream, seq)))?.value;
  const dir = given?.dir ?? (input.startFromHead ? 'f' : 'b');
  const pos = given?.pos ?? (dir === 'f' ? 0 : end);
  const out: Ev[] = [];
  let bytes = 0;
  if (dir === 'f') {
    scan: for (let seq = Math.max(Math.floor(pos / EVENTS_PER_BATCH), st.firstSeq); seq < st.nextSeq; seq++) {
      const b = await batch(seq);
      for (const e of b ? batchEvents(b) : []) {
        if (e.ord < pos || !wanted(e)) continue;
        bytes += eventBytes(e.message);
        if (out.length >= limit || (bytes > MAX_ANSWER_BYTES && out.length > 0)) break scan;
        out.push(e);
      }
    }
  } else {
    scan: for (let seq = Math.min(Math.floor((pos - 1) / EVENTS_PER_BATCH), st.nextSeq - 1); seq >= st.firstSeq && pos > 0; seq--) {
      const b = await batch(seq);
      const evs = b ? batchEvents(b) : [];
      for (let i = evs.length - 1; i >= 0; i--) {
        const e = evs[i]!;
        if (e.ord >= pos || !wanted(e)) continue;
        bytes += eventBytes(e.message);
        if (out.length >= limit || (bytes > MAX_ANSWER_BYTES && out.length > 0)) break scan;
        out.push(e);
      }
    }
    out.reverse();
  }
  const first = out[0];
  const last = out[out.length - 1];
  // Nothing returned: both tokens stay where the caller is (its own token back, or the position
  // it started from), which is CloudWatch's "you have reached the end".
  const here = given ? input.nextToken! : undefined;
  return {
    events: out.map((e) => ({ timestamp: e.timestamp, message: e.message, ingestionTime: e.ingestionTime })),
    nextForwardToken: last ? token('f', last.ord + 1) : dir === 'f' && here ? here : token('f', pos),
    nextBackwardToken: first ? token('b', first.ord) : dir === 'b' && here ? here : token('b', pos),
  };
}

/** A stable id per event within its group, as FilterLogEvents' `eventId` (followers dedupe on it). */
function eventId(stream: string, ord: number): string {
  const h = BigInt(`0x${createHash('sha256').update(stream).digest('hex').slice(0, 13)}`).toString().padStart(16, '0');
  return `${h}${String(ord).padStart(20, '0')}`;
}

interface FilterPage {
  t: number;
  s: string;
  o: number;
}
const isFilterPage = (v: unknown): v is FilterPage => {
  const p = v as FilterPage;
  return typeof p?.t === 'number' && typeof p?.s === 'string' && typeof p?.o === 'number';
};

/** Orders FilterLogEvents' events: by timestamp, then stream, then position in the stream. */
function compare(a: FilterPage, b: FilterPage): number {
  return a.t - b.t || (a.s < b.s ? -1 : a.s > b.s ? 1 : 0) || a.o - b.o;
}

export async function filterLogEvents(
  lctx: LogsContext,
  input: {
    logGroupName?: string;
    logGroupIdentifier?: string;
    logStreamNames?: string[];
    logStreamNamePrefix?: string;
    startTime?: number;
    endTime?: number;
    filterPattern?: string;
    nextToken?: string;
    limit?: number;
  },
) {
  const group = groupNameOf(input);
  if (input.logStreamNames !== undefined && input.logStreamNamePrefix !== undefined) {
    throw new WharfError('InvalidParameterException', 'You cannot specify both logStreamNames and logStreamNamePrefix.');
  }
  const parsed = parseLogFilterPattern(input.filterPattern);
  if ('error' in parsed) throw new WharfError('InvalidParameterException', parsed.error);
  const filter: LogFilter = parsed;
  const limit = pageLimit(input.limit, EVENTS_PER_BATCH, EVENTS_PER_BATCH);
  const after = decodePageToken(input.nextToken, isFilterPage);
  const g = await lctx.store.get<LogGroupRecord>(logKeys.group(group));
  if (!g) throw groupNotFound();
  const cutoff = retentionCutoff(g.value, lctx.clock.now());
  let streams = (await lctx.store.list<LogStreamRecord>(logKeys.streams(group) + encodeURIComponent(input.logStreamNamePrefix ?? ''))).map((e) => e.value);
  if (input.logStreamNames) {
    const names = new Set(input.logStreamNames);
    streams = streams.filter((s) => names.has(s.logStreamName));
  }
  // Streams with nothing in the window are not read at all.
  const start = Math.max(input.startTime ?? -Infinity, cutoff);
  // endTime is inclusive here ("Events with a timestamp later than this time are not returned"),
  // unlike GetLogEvents' ("... equal to or later than this time are not included").
  streams = streams.filter((s) => s.lastEventTimestamp !== undefined && s.lastEventTimestamp >= start && (input.endTime === undefined || (s.firstEventTimestamp ?? 0) <= input.endTime));
  const found: (FilterPage & { e: Ev })[] = [];
  for (const s of streams) {
    for (const b of await lctx.store.list<LogBatchRecord>(logKeys.batchesOfStream(group, s.logStreamName))) {
      for (const e of batchEvents(b.value)) {
        if (e.timestamp < start || (input.endTime !== undefined && e.timestamp > input.endTime)) continue;
        const at = { t: e.timestamp, s: s.logStreamName, o: e.ord };
        if (after && compare(at, after) <= 0) continue;
        if (matchesLogFilter(filter, e.message)) found.push({ ...at, e });
      }
    }
  }
  found.sort(compare);
  const page: typeof found = [];
  let bytes = 0;
  for (const f of found) {
    bytes += eventBytes(f.e.message);
    if (page.length >= limit || (bytes > MAX_ANSWER_BYTES && page.length > 0)) break;
    page.push(f);
  }
  const last = page[page.length - 1];
  return {
    events: page.map((f) => ({ logStreamName: f.s, timestamp: f.t, message: f.e.message, ingestionTime: f.e.ingestionTime, eventId: eventId(f.s, f.o) })),
    searchedLogStreams: streams.map((s) => ({ logStreamName: s.logStreamName, searchedCompletely: page.length === found.length })),
    ...(last && page.length < found.length ? { nextToken: encodePageToken({ t: last.t, s: last.s, o: last.o }) } : {}),
  };
}

/**
 * Deletes the batches of `group` (every group with a retention policy when absent) whose events
 * have all expired, and takes their bytes off their streams. Reads already hide expired events;
 * this frees the store. Returns how many batches went.
 */
export async function sweepExpiredEvents(lctx: LogsContext, group?: string): Promise<number> {
  const groups = group !== undefined ? [await lctx.store.get<LogGroupRecord>(logKeys.group(group))].filter((g) => g !== undefined) : await lctx.store.list<LogGroupRecord>(logKeys.groups());
  const now = lctx.clock.now();
  let removed = 0;
  for (const g of groups) {
    const cutoff = retentionCutoff(g.value, now);
    if (cutoff === -Infinity) continue;
    const name = g.value.logGroupName;
    const byStream = new Map<string, { keys: { key: string; rev: number }[]; bytes: number }>();
    for (const b of await lctx.store.list<LogBatchRecord>(logKeys.batchesOfGroup(name))) {
      if (!b.value.events.every(([t]) => t < cutoff)) continue;
      const stream = decodeURIComponent(b.key.split('/')[2]!);
      const acc = byStream.get(stream) ?? { keys: [], bytes: 0 };
      acc.keys.push({ key: b.key, rev: b.modRevision });
      acc.bytes += b.value.events.reduce((n, [, m]) => n + eventBytes(m), 0);
      byStream.set(stream, acc);
    }
    for (const [stream, acc] of byStream) {
      for (const k of acc.keys) {
        try {
          await lctx.store.delete(k.key, k.rev);
          removed++;
        } catch (e) {
          if (!(e instanceof StoreConflictError)) throw e;
        }
      }
      await casUpdate<LogStreamRecord>(lctx.store, logKeys.stream(name, stream), (cur) => (cur ? { ...cur.value, storedBytes: Math.max(0, cur.value.storedBytes - acc.bytes) } : undefined));
    }
  }
  return removed;
}
