/**
 * The CloudWatch Logs subset Wharf serves (JSON 1.1, target prefix Logs_20140328, SigV4 name
 * `logs`): log groups, retention, log streams and their events, enough that `aws logs
 * get-log-events`, `aws logs tail --follow`, boto3 and the SDKs work unchanged, and that the agent
 * can ship containers' output for the `awslogs` driver (agent/awslogs-shipper.ts).
 *
 * Records and keys: logs-records.ts. Events: logs-events.ts. Unlike the rest of the control plane
 * these operations read the store directly, not the state cache (see logs-records.ts for why).
 */
import { WharfError } from '../core/errors';
import { StoreConflictError, type TxnOp } from '../store/store';
import type { Caller } from './context';
import { filterLogEvents, getLogEvents, putLogEvents, sweepExpiredEvents } from './logs-events';
import {
  RETENTION_DAYS,
  checkGroupName,
  checkStreamName,
  decodePageToken,
  encodePageToken,
  groupNameOf,
  groupNotFound,
  logGroupArn,
  logKeys,
  logStreamArn,
  pageLimit,
  streamNotFound,
  type LogGroupRecord,
  type LogStreamRecord,
  type LogsContext,
} from './logs-records';

export { LOGS_SIGNING_NAME, LOGS_TARGET_PREFIX } from './logs-records';
export type { LogsContext } from './logs-records';

function groupView(lctx: LogsContext, g: LogGroupRecord, storedBytes: number) {
  const arn = logGroupArn(lctx.partition, g.logGroupName);
  return {
    logGroupName: g.logGroupName,
    creationTime: g.creationTime,
    ...(g.retentionInDays !== undefined ? { retentionInDays: g.retentionInDays } : {}),
    ...(g.kmsKeyId !== undefined ? { kmsKeyId: g.kmsKeyId } : {}),
    metricFilterCount: 0,
    arn: `${arn}:*`,
    logGroupArn: arn,
    storedBytes,
    logGroupClass: 'STANDARD',
  };
}

function streamView(lctx: LogsContext, group: string, s: LogStreamRecord) {
  return {
    logStreamName: s.logStreamName,
    creationTime: s.creationTime,
    ...(s.firstEventTimestamp !== undefined ? { firstEventTimestamp: s.firstEventTimestamp, lastEventTimestamp: s.lastEventTimestamp, lastIngestionTime: s.lastIngestionTime } : {}),
    uploadSequenceToken: String(s.nextSeq),
    arn: logStreamArn(lctx.partition, group, s.logStreamName),
    storedBytes: s.storedBytes,
  };
}

export async function createLogGroup(lctx: LogsContext, input: { logGroupName?: string; kmsKeyId?: string; tags?: Record<string, string>; logGroupClass?: string }): Promise<Record<string, never>> {
  const name = checkGroupName(input.logGroupName);
  // CloudWatch keeps aws/ (any case) for its own groups; /aws/... stays open to everyone.
  if (name.toLowerCase().startsWith('aws/')) throw new WharfError('InvalidParameterException', 'Log groups starting with AWS/ are reserved for AWS.');
  if (input.logGroupClass !== undefined && input.logGroupClass !== 'STANDARD') {
    throw new WharfError('InvalidParameterException', `Wharf keeps every log group in the STANDARD class; ${input.logGroupClass} is not supported.`);
  }
  const rec: LogGroupRecord = { logGroupName: name, creationTime: lctx.clock.now(), ...(input.kmsKeyId ? { kmsKeyId: input.kmsKeyId } : {}), ...(input.tags ? { tags: input.tags } : {}) };
  try {
    await lctx.store.create(logKeys.group(name), rec);
  } catch (e) {
    if (e instanceof StoreConflictError) throw new WharfError('ResourceAlreadyExistsException', 'The specified log group already exists');
    throw e;
  }
  return {};
}

async function requireGroup(lctx: LogsContext, name: string) {
  const g = await lctx.store.get<LogGroupRecord>(logKeys.group(name));
  if (!g) throw groupNotFound();
  return g;
}

/**
 * Deletes keys in transactions of at most 500 (a group may hold many batches). A delete fails on a
 * key already gone (another delete got there first): that chunk is then done key by key.
 */
async function deleteAll(lctx: LogsContext, keys: string[]): Promise<void> {
  const gone = (e: unknown) => {
    if (!(e instanceof StoreConflictError)) throw e;
  };
  for (let i = 0; i < keys.length; i += 500) {
    const chunk = keys.slice(i, i + 500);
    try {
      await lctx.store.txn(chunk.map((key): TxnOp => ({ op: 'delete', key })));
    } catch (e) {
      gone(e);
      for (const key of chunk) await lctx.store.delete(key).catch(gone);
    }
  }
}

export async function deleteLogGroup(lctx: LogsContext, input: { logGroupName?: string }): Promise<Record<string, never>> {
  const name = checkGroupName(input.logGroupName);
  const g = await requireGroup(lctx, name);
  try {
    await lctx.store.delete(logKeys.group(name), g.modRevision);
  } catch (e) {
    if (e instanceof StoreConflictError) throw groupNotFound();
    throw e;
  }
  // The group is gone for every reader from here on; its streams and events follow.
  const streams = await lctx.store.list(logKeys.streams(name));
  const batches = await lctx.store.list(logKeys.batchesOfGroup(name));
  await deleteAll(lctx, [...streams.map((e) => e.key), ...batches.map((e) => e.key)]);
  return {};
}

interface GroupPage {
  after: string;
}
const isGroupPage = (v: unknown): v is GroupPage => typeof (v as GroupPage)?.after === 'string';

export async function describeLogGroups(lctx: LogsContext, input: { logGroupNamePrefix?: string; logGroupNamePattern?: string; nextToken?: string; limit?: number; logGroupIdentifiers?: string[] }) {
  if (input.logGroupNamePrefix !== undefined && input.logGroupNamePattern !== undefined) {
    throw new WharfError('InvalidParameterException', 'LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.');
  }
  const limit = pageLimit(input.limit, 50, 50);
  const after = decodePageToken(input.nextToken, isGroupPage)?.after;
  const prefix = input.logGroupNamePrefix ?? '';
  let groups = (await lctx.store.list<LogGroupRecord>(logKeys.groups() + encodeURIComponent(prefix))).map((e) => e.value);
  if (input.logGroupNamePattern !== undefined) groups = groups.filter((g) => g.logGroupName.toLowerCase().includes(input.logGroupNamePattern!.toLowerCase()));
  if (input.logGroupIdentifiers !== undefined) {
    const wanted = new Set(input.logGroupIdentifiers.map((id) => groupNameOf({ logGroupIdentifier: id })));
    groups = groups.filter((g) => wanted.has(g.logGroupName));
  }
  groups.sort((a, b) => (a.logGroupName < b.logGroupName ? -1 : a.logGroupName > b.logGroupName ? 1 : 0));
  if (after !== undefined) groups = groups.filter((g) => g.logGroupName > after);
  const page = groups.slice(0, limit);
  const out = [];
  for (const g of page) {
    const streams = await lctx.store.list<LogStreamRecord>(logKeys.streams(g.logGroupName));
    out.push(groupView(lctx, g, streams.reduce((n, s) => n + s.value.storedBytes, 0)));
  }
  return { logGroups: out, ...(groups.length > limit ? { nextToken: encodePageToken({ after: page[page.length - 1]!.logGroupName }) } : {}) };
}

export async function putRetentionPolicy(lctx: LogsContext, input: { logGroupName?: string; retentionInDays?: number }): Promise<Record<string, never>> {
  const name = checkGroupName(input.logGroupName);
  const days = input.retentionInDays;
  if (days === undefined || !RETENTION_DAYS.includes(days)) {
    throw new WharfError('InvalidParameterException', `1 validation error detected: Value '${days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [${RETENTION_DAYS.join(', ')}]`);
  }
  await changeGroup(lctx, name, (g) => ({ ...g, retentionInDays: days }));
  // Events already past the new period go now, not at the next sweep.
  await sweepExpiredEvents(lctx, name);
  return {};
}

export async function deleteRetentionPolicy(lctx: LogsContext, input: { logGroupName?: string }): Promise<Record<string, never>> {
  const name = checkGroupName(input.logGroupName);
  await changeGroup(lctx, name, ({ retentionInDays: _r, ...g }) => g);
  return {};
}

async function changeGroup(lctx: LogsContext, name: string, change: (g: LogGroupRecord) => LogGroupRecord): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const g = await requireGroup(lctx, name);
    try {
      await lctx.store.update(logKeys.group(name), change(g.value), g.modRevision);
      return;
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 10) throw e;
    }
  }
}

export async function createLogStream(lctx: LogsContext, input: { logGroupName?: string; logStreamName?: string }): Promise<Record<string, never>> {
  const group = checkGroupName(input.logGroupName);
  const stream = checkStreamName(input.logStreamName);
  const g = await requireGroup(lctx, group);
  const rec: LogStreamRecord = { logStreamName: stream, creationTime: lctx.clock.now(), storedBytes: 0, nextSeq: 0, firstSeq: 0 };
  try {
    // The group must still be there when the stream is made (a DeleteLogGroup racing this).
    await lctx.store.txn([
      { op: 'check', key: logKeys.group(group), expectedRevision: g.modRevision },
      { op: 'create', key: logKeys.stream(group, stream), value: rec },
    ]);
  } catch (e) {
    if (!(e instanceof StoreConflictError)) throw e;
    if (e.key === logKeys.group(group)) throw groupNotFound();
    throw new WharfError('ResourceAlreadyExistsException', 'The specified log stream already exists');
  }
  return {};
}

export async function deleteLogStream(lctx: LogsContext, input: { logGroupName?: string; logStreamName?: string }): Promise<Record<string, never>> {
  const group = checkGroupName(input.logGroupName);
  const stream = checkStreamName(input.logStreamName);
  await requireGroup(lctx, group);
  const s = await lctx.store.get(logKeys.stream(group, stream));
  if (!s) throw streamNotFound();
  try {
    await lctx.store.delete(logKeys.stream(group, stream), s.modRevision);
  } catch (e) {
    if (e instanceof StoreConflictError) throw streamNotFound();
    throw e;
  }
  await deleteAll(lctx, (await lctx.store.list(logKeys.batchesOfStream(group, stream))).map((e) => e.key));
  return {};
}

interface StreamPage {
  after: string;
  by: string;
}
const isStreamPage = (v: unknown): v is StreamPage => typeof (v as StreamPage)?.after === 'string' && typeof (v as StreamPage)?.by === 'string';

export async function describeLogStreams(
  lctx: LogsContext,
  input: { logGroupName?: string; logGroupIdentifier?: string; logStreamNamePrefix?: string; orderBy?: 'LogStreamName' | 'LastEventTime'; descending?: boolean; nextToken?: string; limit?: number },
) {
  const group = groupNameOf(input);
  const orderBy = input.orderBy ?? 'LogStreamName';
  if (orderBy === 'LastEventTime' && input.logStreamNamePrefix !== undefined) {
    throw new WharfError('InvalidParameterException', 'Cannot order by LastEventTime with a logStreamNamePrefix.');
  }
  const limit = pageLimit(input.limit, 50, 50);
  const token = decodePageToken(input.nextToken, isStreamPage);
  await requireGroup(lctx, group);
  const prefix = input.logStreamNamePrefix ?? '';
  const streams = (await lctx.store.list<LogStreamRecord>(logKeys.streams(group) + encodeURIComponent(prefix))).map((e) => e.value);
  // A sort key per stream, unique (the name breaks ties) and ordered as the caller asked.
  const keyOf = (s: LogStreamRecord) => (orderBy === 'LastEventTime' ? `${String(s.lastEventTimestamp ?? 0).padStart(16, '0')}\u0000${s.logStreamName}` : s.logStreamName);
  const desc = input.descending === true;
  const sorted = streams.map((s) => ({ k: keyOf(s), s })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  if (desc) sorted.reverse();
  let rest = sorted;
  if (token) {
    if (token.by !== `${orderBy}${desc ? '-' : '+'}`) throw new WharfError('InvalidParameterException', 'The specified nextToken is invalid.');
    rest = sorted.filter((x) => (desc ? x.k < token.after : x.k > token.after));
  }
  const page = rest.slice(0, limit);
  return {
    logStreams: page.map((x) => streamView(lctx, group, x.s)),
    ...(rest.length > limit ? { nextToken: encodePageToken({ after: page[page.length - 1]!.k, by: `${orderBy}${desc ? '-' : '+'}` }) } : {}),
  };
}

/** A log group's name from a TagResource-style ARN (`...:log-group:NAME`, with or without `:*`). */
function groupOfArn(arn: string | undefined): string {
  const m = /^arn:aws[a-z-]*:logs:[a-z0-9-]*:\d*:log-group:([^:]+)(:\*)?$/.exec(arn ?? '');
  if (!m) throw new WharfError('InvalidParameterException', `Wharf tags only log groups: '${arn ?? ''}' is not a log group ARN (arn:aws:logs:<region>:<account>:log-group:<name>).`);
  return checkGroupName(m[1], 'resourceArn');
}

/** A log group has at most 50 tags, as CloudWatch allows. */
const MAX_TAGS = 50;

async function changeTags(lctx: LogsContext, name: string, change: (tags: Record<string, string>) => Record<string, string>): Promise<void> {
  await changeGroup(lctx, name, (g) => {
    const tags = change({ ...(g.tags ?? {}) });
    if (Object.keys(tags).length > MAX_TAGS) throw new WharfError('TooManyTagsException', `A log group can have at most ${MAX_TAGS} tags.`);
    const { tags: _old, ...rest } = g;
    return Object.keys(tags).length > 0 ? { ...rest, tags } : rest;
  });
}

async function tagsOf(lctx: LogsContext, name: string) {
  return { tags: { ...((await requireGroup(lctx, name)).value.tags ?? {}) } };
}

export const listTagsForResource = (lctx: LogsContext, input: { resourceArn?: string }) => tagsOf(lctx, groupOfArn(input.resourceArn));
export const listTagsLogGroup = (lctx: LogsContext, input: { logGroupName?: string }) => tagsOf(lctx, checkGroupName(input.logGroupName));

export async function tagResource(lctx: LogsContext, input: { resourceArn?: string; tags?: Record<string, string> }): Promise<Record<string, never>> {
  await changeTags(lctx, groupOfArn(input.resourceArn), (t) => ({ ...t, ...(input.tags ?? {}) }));
  return {};
}

export async function tagLogGroup(lctx: LogsContext, input: { logGroupName?: string; tags?: Record<string, string> }): Promise<Record<string, never>> {
  await changeTags(lctx, checkGroupName(input.logGroupName), (t) => ({ ...t, ...(input.tags ?? {}) }));
  return {};
}

const without = (keys: string[] | undefined) => (t: Record<string, string>) => {
  for (const k of keys ?? []) delete t[k];
  return t;
};

export async function untagResource(lctx: LogsContext, input: { resourceArn?: string; tagKeys?: string[] }): Promise<Record<string, never>> {
  await changeTags(lctx, groupOfArn(input.resourceArn), without(input.tagKeys));
  return {};
}

/** UntagLogGroup's `tags` is the list of keys to remove. */
export async function untagLogGroup(lctx: LogsContext, input: { logGroupName?: string; tags?: string[] }): Promise<Record<string, never>> {
  await changeTags(lctx, checkGroupName(input.logGroupName), without(input.tags));
  return {};
}

type LogsHandler = (input: any, caller: Caller) => Promise<unknown>;

/** The operations agents may call (logs-agent-authorization.ts judges each on its resources). */
export const LOGS_AGENT_OPERATIONS = ['CreateLogGroup', 'CreateLogStream', 'PutLogEvents', 'DescribeLogStreams'] as const;

export function logsHandlers(lctx: LogsContext): Record<string, LogsHandler> {
  const table: Record<string, (lctx: LogsContext, input: any) => Promise<unknown>> = {
    CreateLogGroup: createLogGroup,
    DescribeLogGroups: describeLogGroups,
    DeleteLogGroup: deleteLogGroup,
    PutRetentionPolicy: putRetentionPolicy,
    DeleteRetentionPolicy: deleteRetentionPolicy,
    CreateLogStream: createLogStream,
    DescribeLogStreams: describeLogStreams,
    DeleteLogStream: deleteLogStream,
    PutLogEvents: putLogEvents,
    GetLogEvents: getLogEvents,
    FilterLogEvents: filterLogEvents,
    ListTagsForResource: listTagsForResource,
    ListTagsLogGroup: listTagsLogGroup,
    TagResource: tagResource,
    UntagResource: untagResource,
    TagLogGroup: tagLogGroup,
    UntagLogGroup: untagLogGroup,
  };
  const out: Record<string, LogsHandler> = {};
  for (const [op, fn] of Object.entries(table)) {
    out[op] = async (input: Record<string, unknown>, caller: Caller) => {
      if (caller?.isAgent) {
        if (!lctx.agentCheck) throw new WharfError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: logs:${op}`);
        lctx.agentCheck(op, input, caller, lctx.partition.region);
      }
      return fn(lctx, input);
    };
  }
  return out;
}
