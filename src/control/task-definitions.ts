/**
 * Task definitions: RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
 * ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.
 *
 * Revisions are numbered per family from 1 and never reused: the family record holds the last
 * revision ever given, and registering bumps it in the same transaction that creates the
 * revision, so concurrent registrations and restarts can never hand out a number twice.
 */
import { parseArn, taskDefinitionArn, taskDefinitionRefOf } from '../core/arn';
import { WharfError, clientError, invalidParameter } from '../core/errors';
import { keys, type FamilyRecord, type TaskDefinitionRecord } from '../core/resources';
import type {
  DeleteTaskDefinitionsRequest,
  DeleteTaskDefinitionsResponse,
  DeregisterTaskDefinitionRequest,
  DeregisterTaskDefinitionResponse,
  DescribeTaskDefinitionRequest,
  DescribeTaskDefinitionResponse,
  Failure,
  ListTaskDefinitionFamiliesRequest,
  ListTaskDefinitionFamiliesResponse,
  ListTaskDefinitionsRequest,
  ListTaskDefinitionsResponse,
  RegisterTaskDefinitionRequest,
  RegisterTaskDefinitionResponse,
  TaskDefinition,
} from '../core/shapes/ecs';
import { validateAndNormalizeTaskDefinition } from '../core/task-definition';
import { epochSeconds } from '../lib';
import { StoreConflictError, casUpdate } from '../store/store';
import { committed, type Caller, type ControlContext } from './context';
import { paginate } from './pagination';

/** ECS's quota of revisions per family. */
const MAX_REVISIONS = 1_000_000;
/** ECS's limit on a task definition's size (its JSON, tags aside): 64 KiB. */
const MAX_TASK_DEFINITION_BYTES = 65_536;

/** The wire form: the stored record without tags (they are returned beside it). */
export function taskDefinitionToWire(td: TaskDefinitionRecord): TaskDefinition {
  const { tags: _tags, ...rest } = td;
  return rest;
}

/**
 * The task definition a `taskDefinition` parameter names: `family` (its latest ACTIVE revision),
 * `family:revision`, or an ARN. Undefined when there is none.
 */
export function findTaskDefinition(ctx: ControlContext, ref: string): TaskDefinitionRecord | undefined {
  const r = refOf(ref);
  if (!r) return undefined;
  const rev = r.revision ?? ctx.state.latestActiveRevision.get(r.family);
  if (rev === undefined) return undefined;
  return ctx.state.taskDefinitions.get(r.family, String(rev).padStart(10, '0'))?.value;
}

/**
 * `taskDefinitionRefOf`, but a revision that is not a number (`web:latest`, `web:0`) is ECS's
 * InvalidParameterException (as ECS answers `:latest`) rather than an unknown definition.
 */
function refOf(ref: string): { family: string; revision?: number } | undefined {
  const r = taskDefinitionRefOf(ref);
  if (r) return r;
  const a = parseArn(ref);
  if (a && a.type !== 'task-definition') return undefined;
  const body = a ? a.resource : ref;
  const i = body.lastIndexOf(':');
  if (i >= 0) throw invalidParameter(`Invalid revision number. Number: ${body.slice(i + 1)}`);
  return undefined;
}

/** For RunTask / StartTask / CreateService / UpdateService: the definition must exist and be ACTIVE. */
export function requireActiveTaskDefinition(ctx: ControlContext, ref: string | undefined): TaskDefinitionRecord {
  if (!ref) throw invalidParameter('taskDefinition is required.');
  const td = findTaskDefinition(ctx, ref);
  if (!td) throw clientError('Unable to describe task definition.');
  if (td.status !== 'ACTIVE') throw clientError(`TaskDefinition is inactive: ${td.taskDefinitionArn}`);
  return td;
}

export async function registerTaskDefinition(
  ctx: ControlContext,
  input: RegisterTaskDefinitionRequest,
  caller: Caller,
): Promise<RegisterTaskDefinitionResponse> {
  const { tags: _tags, ...definition } = input;
  const size = Buffer.byteLength(JSON.stringify(definition));
  // ECS's own words (ClientException); the HTTP body limit alone would let a 900 KB definition in.
  if (size > MAX_TASK_DEFINITION_BYTES) throw clientError(`Actual length: '${size}'. Max allowed length is '${MAX_TASK_DEFINITION_BYTES}' bytes.`);
  const { taskDefinition, tags } = validateAndNormalizeTaskDefinition(input);
  const family = taskDefinition.family!;
  for (let attempt = 0; ; attempt++) {
    const fam = await ctx.store.get<FamilyRecord>(keys.family(family));
    const revision = (fam?.value.lastRevision ?? 0) + 1;
    if (revision > MAX_REVISIONS) {
      throw new WharfError('LimitExceededException', `The family ${family} has reached the limit of ${MAX_REVISIONS} revisions.`);
    }
    const record: TaskDefinitionRecord = {
      ...taskDefinition,
      taskDefinitionArn: taskDefinitionArn(ctx.partition, family, revision),
      family,
      revision,
      status: 'ACTIVE',
      registeredAt: epochSeconds(ctx.clock.now()),
      registeredBy: caller.principalArn,
      tags,
    };
    const famValue: FamilyRecord = { family, lastRevision: revision };
    try {
      const rev = await ctx.store.txn([
        fam
          ? { op: 'update', key: keys.family(family), value: famValue, expectedRevision: fam.modRevision }
          : { op: 'create', key: keys.family(family), value: famValue },
        { op: 'create', key: keys.taskDefinition(family, revision), value: record },
      ]);
      await committed(ctx, rev);
      return { taskDefinition: taskDefinitionToWire(record), tags };
    } catch (e) {
      // Another registration of the same family won the race: take the next number.
      if (!(e instanceof StoreConflictError) || attempt > 100) throw e;
    }
  }
}

export async function describeTaskDefinition(ctx: ControlContext, input: DescribeTaskDefinitionRequest): Promise<DescribeTaskDefinitionResponse> {
  const td = findTaskDefinition(ctx, input.taskDefinition);
  if (!td) throw clientError('Unable to describe task definition.');
  const out: DescribeTaskDefinitionResponse = { taskDefinition: taskDefinitionToWire(td) };
  if (input.include?.includes('TAGS')) out.tags = td.tags;
  return out;
}

const revKey = (td: TaskDefinitionRecord) => `${td.family}\u0000${String(td.revision).padStart(10, '0')}`;

export async function listTaskDefinitions(ctx: ControlContext, input: ListTaskDefinitionsRequest): Promise<ListTaskDefinitionsResponse> {
  const status = input.status ?? 'ACTIVE';
  const desc = input.sort === 'DESC';
  const items: TaskDefinitionRecord[] = [];
  const families = input.familyPrefix !== undefined ? [input.familyPrefix] : [...ctx.state.taskDefinitions.byParent.keys()];
  for (const f of families) {
    for (const e of ctx.state.taskDefinitions.children(f).values()) if (e.value.status === status) items.push(e.value);
  }
  // Pagination walks keys in ascending order; for DESC the key is inverted so order flips.
  const key = desc ? (td: TaskDefinitionRecord) => invert(revKey(td)) : revKey;
  const { page, nextToken } = paginate(items, key, input, { default: 100, max: 100, operation: 'ListTaskDefinitions' });
  return { taskDefinitionArns: page.map((td) => td.taskDefinitionArn), nextToken };
}

/** Maps a string to one that sorts in the opposite order (for keys of bounded code points). */
function invert(s: string): string {
  let out = '';
  for (const ch of s) out += String.fromCharCode(0xffff - ch.charCodeAt(0));
  return out + '\uffff';
}

export async function listTaskDefinitionFamilies(
  ctx: ControlContext,
  input: ListTaskDefinitionFamiliesRequest,
): Promise<ListTaskDefinitionFamiliesResponse> {
  const status = input.status ?? 'ALL';
  const families: string[] = [];
  for (const [family, revs] of ctx.state.taskDefinitions.byParent) {
    if (input.familyPrefix !== undefined && !family.startsWith(input.familyPrefix)) continue;
    const active = ctx.state.latestActiveRevision.has(family);
    const anyVisible = [...revs.values()].some((e) => e.value.status !== 'DELETE_IN_PROGRESS');
    if (!anyVisible) continue;
    if (status === 'ACTIVE' && !active) continue;
    if (status === 'INACTIVE' && active) continue;
    families.push(family);
  }
  const { page, nextToken } = paginate(families, (f) => f, input, { default: 100, max: 100, operation: 'ListTaskDefinitionFamilies' });
  return { families: page, nextToken };
}

function requireRevisionRef(ref: string): { family: string; revision: number } {
  const r = refOf(ref);
  if (!r) throw clientError('Unable to describe task definition.');
  if (r.revision === undefined) throw clientError('Revision is missing.');
  return { family: r.family, revision: r.revision };
}

export async function deregisterTaskDefinition(
  ctx: ControlContext,
  input: DeregisterTaskDefinitionRequest,
): Promise<DeregisterTaskDefinitionResponse> {
  const { family, revision } = requireRevisionRef(input.taskDefinition);
  const { value, revision: rev } = await casUpdate<TaskDefinitionRecord>(ctx.store, keys.taskDefinition(family, revision), (cur) => {
    if (!cur || cur.value.status === 'DELETE_IN_PROGRESS') throw clientError('Unable to describe task definition.');
    if (cur.value.status === 'INACTIVE') return undefined;
    return { ...cur.value, status: 'INACTIVE', deregisteredAt: epochSeconds(ctx.clock.now()) };
  });
  await committed(ctx, rev);
  return { taskDefinition: taskDefinitionToWire(value!) };
}

export async function deleteTaskDefinitions(ctx: ControlContext, input: DeleteTaskDefinitionsRequest): Promise<DeleteTaskDefinitionsResponse> {
  if (input.taskDefinitions.length < 1 || input.taskDefinitions.length > 10) {
    throw invalidParameter('taskDefinitions must contain between 1 and 10 task definitions.');
  }
  const taskDefinitions: TaskDefinition[] = [];
  const failures: Failure[] = [];
  for (const ref of input.taskDefinitions) {
    const r = taskDefinitionRefOf(ref);
    if (!r || r.revision === undefined) {
      failures.push({ arn: ref, reason: 'The specified task definition identifier is invalid. Specify a valid name or ARN and try again.' });
      continue;
    }
    const arn = taskDefinitionArn(ctx.partition, r.family, r.revision);
    const cur = ctx.state.taskDefinitions.get(r.family, String(r.revision).padStart(10, '0'))?.value;
    if (!cur) {
      failures.push({ arn, reason: 'The specified task definition does not exist. Specify a valid account, family, revision and try again.' });
      continue;
    }
    if (cur.status === 'ACTIVE') {
      failures.push({ arn, reason: 'The specified task definition is still in ACTIVE status. Please deregister the target and try again.' });
      continue;
    }
    const { value, revision } = await casUpdate<TaskDefinitionRecord>(ctx.store, keys.taskDefinition(r.family, r.revision), (c) => {
      if (!c || c.value.status === 'DELETE_IN_PROGRESS') return undefined;
      return { ...c.value, status: 'DELETE_IN_PROGRESS', deleteRequestedAt: epochSeconds(ctx.clock.now()) };
    });
    // Gone from the store since the cache was read (deleted by another request): a failure of
    // this item, not of the whole call, since the items before it are already committed.
    if (!value) {
      failures.push({ arn, reason: 'The specified task definition does not exist. Specify a valid account, family, revision and try again.' });
      continue;
    }
    await committed(ctx, revision);
    taskDefinitions.push(taskDefinitionToWire(value));
  }
  return { taskDefinitions, failures };
}
