/**
 * What the CloudWatch Logs subset keeps in the store, and how it names it. Log data lives in its
 * own part of the store (`logs/<region>/`, store/regions.ts `regionLogStore`), outside the
 * region's view that the state cache loads and watches: events are read straight from the store,
 * so no replica holds them in memory and the cache is not fed a write per flush.
 *
 *   groups/<g>                 LogGroupRecord
 *   streams/<g>/<s>            LogStreamRecord (its batch counter and event bounds)
 *   batches/<g>/<s>/<seq>      LogBatchRecord: one PutLogEvents call's events
 *
 * `<g>` and `<s>` are url-encoded (names may hold `/`); `<seq>` is zero-padded so keys sort by it.
 * A stream keeps at most MAX_BATCHES_PER_STREAM batches: the oldest go first.
 */
import { WharfError } from '../core/errors';
import { partitionOf } from '../core/regions';
import type { Partition } from '../core/arn';
import type { Clock, Logger } from '../lib';
import type { Store } from '../store/store';
import type { Caller } from './context';
import type { IamRequest } from './iam-resources';

export const LOGS_TARGET_PREFIX = 'Logs_20140328';
export const LOGS_SIGNING_NAME = 'logs';

/** How many batches (PutLogEvents calls, or agent flushes) one stream keeps; older ones are dropped. */
export const MAX_BATCHES_PER_STREAM = 2000;
/** At most this many events in one PutLogEvents call (the API's own bound), so an event's ordinal is seq * 10,000 + index. */
export const EVENTS_PER_BATCH = 10_000;

export interface LogGroupRecord {
  logGroupName: string;
  creationTime: number;
  retentionInDays?: number;
  kmsKeyId?: string;
  tags?: Record<string, string>;
}

export interface LogStreamRecord {
  logStreamName: string;
  creationTime: number;
  firstEventTimestamp?: number;
  lastEventTimestamp?: number;
  lastIngestionTime?: number;
  storedBytes: number;
  /** The seq the next batch gets. */
  nextSeq: number;
  /** The oldest seq that may still be stored (older ones were dropped). */
  firstSeq: number;
}

/** One batch: `[timestamp, message]` pairs, in the order they were put. */
export interface LogBatchRecord {
  seq: number;
  ingestionTime: number;
  events: [number, string][];
}

/**
 * Who may do what to a region's logs on behalf of an agent (logs-agent-authorization.ts); cmd/
 * wires it to the instance's own region's state.
 */
export type LogsAgentCheck = (operation: string, input: Record<string, unknown>, caller: Caller, logsRegion: string) => void;

export interface LogsContext {
  /** The region's log part of the store (`logs/<region>/`). */
  store: Store;
  partition: Partition;
  clock: Clock;
  log: Logger;
  /** Judges agents' calls; without it agents are refused every logs call. */
  agentCheck?: LogsAgentCheck;
}

const enc = encodeURIComponent;
export const logKeys = {
  group: (g: string) => `groups/${enc(g)}`,
  groups: () => 'groups/',
  stream: (g: string, s: string) => `streams/${enc(g)}/${enc(s)}`,
  streams: (g: string) => `streams/${enc(g)}/`,
  batch: (g: string, s: string, seq: number) => `batches/${enc(g)}/${enc(s)}/${String(seq).padStart(12, '0')}`,
  batchesOfStream: (g: string, s: string) => `batches/${enc(g)}/${enc(s)}/`,
  batchesOfGroup: (g: string) => `batches/${enc(g)}/`,
};

export function logGroupArn(p: Partition, group: string): string {
  return `arn:${partitionOf(p.region)}:logs:${p.region}:${p.accountId}:log-group:${group}`;
}

export function logStreamArn(p: Partition, group: string, stream: string): string {
  return `${logGroupArn(p, group)}:log-stream:${stream}`;
}

// CloudWatch's own texts.
export const groupNotFound = () => new WharfError('ResourceNotFoundException', 'The specified log group does not exist.');
export const streamNotFound = () => new WharfError('ResourceNotFoundException', 'The specified log stream does not exist.');

/** The 22 retention periods CloudWatch accepts (the model's `Days` documentation). */
export const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

const GROUP_NAME_RE = /^[.\-_/#A-Za-z0-9]+$/;
const STREAM_NAME_RE = /^[^:*]*$/;

/** The model's patterns (server/ checks lengths, not patterns), in AWS's validation wording. */
export function checkGroupName(name: unknown, member = 'logGroupName'): string {
  if (typeof name !== 'string' || name === '') throw new WharfError('InvalidParameterException', `1 validation error detected: Value at '${member}' failed to satisfy constraint: Member must not be null`);
  if (!GROUP_NAME_RE.test(name)) {
    throw new WharfError('InvalidParameterException', `1 validation error detected: Value '${name}' at '${member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+`);
  }
  return name;
}

export function checkStreamName(name: unknown, member = 'logStreamName'): string {
  if (typeof name !== 'string' || name === '') throw new WharfError('InvalidParameterException', `1 validation error detected: Value at '${member}' failed to satisfy constraint: Member must not be null`);
  if (!STREAM_NAME_RE.test(name)) {
    throw new WharfError('InvalidParameterException', `1 validation error detected: Value '${name}' at '${member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*`);
  }
  return name;
}

/**
 * The group an operation names: `logGroupName`, or `logGroupIdentifier` (a name or an ARN, with or
 * without the trailing `:*`); naming both is refused as CloudWatch refuses it.
 */
export function groupNameOf(input: { logGroupName?: string; logGroupIdentifier?: string }): string {
  if (input.logGroupName !== undefined && input.logGroupIdentifier !== undefined) {
    throw new WharfError('InvalidParameterException', 'LogGroup name and LogGroup ARN are mutually exclusive parameters.');
  }
  const id = input.logGroupIdentifier;
  if (id !== undefined) {
    const m = /^arn:aws[a-z-]*:logs:[a-z0-9-]*:\d*:log-group:([^:]+)(:\*)?$/.exec(id);
    return checkGroupName(m ? m[1] : id, 'logGroupIdentifier');
  }
  return checkGroupName(input.logGroupName);
}

/** Opaque page tokens: base64url JSON, refused when they do not parse. */
export function encodePageToken(v: unknown): string {
  return Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
}

export function decodePageToken<T>(token: string | undefined, valid: (v: unknown) => v is T): T | undefined {
  if (token === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (valid(v)) return v;
  } catch {
    // falls through to the refusal
  }
  throw new WharfError('InvalidParameterException', 'The specified nextToken is invalid.');
}

/** Checks an optional page size against the model's range (server/ checks it too; this gives the default). */
export function pageLimit(limit: number | undefined, dflt: number, max: number): number {
  const n = limit ?? dflt;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new WharfError('InvalidParameterException', `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and ${max}`);
  return n;
}

/** Operations that act on one stream (IAM resource `log-group:G:log-stream:S`); the others act on the group. */
const STREAM_OPERATIONS = new Set(['CreateLogStream', 'DeleteLogStream', 'PutLogEvents', 'GetLogEvents']);

/**
 * A logs call in IAM's terms (the Service Authorization Reference: `logs:<Operation>` on the log
 * group, or on the log stream for the stream operations); DescribeLogGroups is on `*`.
 */
export function logsIamRequest(operation: string, input: Record<string, unknown>, p: Partition): IamRequest {
  const action = `logs:${operation}`;
  let group = typeof input.logGroupName === 'string' ? input.logGroupName : undefined;
  const id = input.logGroupIdentifier ?? input.resourceArn;
  if (group === undefined && typeof id === 'string') group = /:log-group:([^:]+)/.exec(id)?.[1] ?? id;
  if (group === undefined || operation === 'DescribeLogGroups') return { action, resources: ['*'], context: {} };
  const stream = typeof input.logStreamName === 'string' ? input.logStreamName : undefined;
  return { action, resources: [STREAM_OPERATIONS.has(operation) && stream !== undefined ? logStreamArn(p, group, stream) : logGroupArn(p, group)], context: {} };
}
