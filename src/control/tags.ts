/** TagResource, UntagResource, ListTagsForResource for every taggable ECS resource. */
import { parseArn } from '../core/arn';
import { WharfError, clusterNotFound, invalidParameter } from '../core/errors';
import { keys } from '../core/resources';
import type {
  ListTagsForResourceRequest,
  ListTagsForResourceResponse,
  Tag,
  TagResourceRequest,
  TagResourceResponse,
  UntagResourceRequest,
  UntagResourceResponse,
} from '../core/shapes/ecs';
import { MAX_TAGS, mergeTags, userTagCount, validateTags } from '../core/tags';
import { casUpdate } from '../store/store';
import { clusterVisible } from './clusters';
import { committed, type ControlContext } from './context';

interface Tagged {
  tags?: Tag[];
  status?: string;
  lastStatus?: string;
}

const notFound = () => new WharfError('ResourceNotFoundException', 'The specified resource could not be found.');

/** The store key of the resource an ARN names; throws the error ECS gives when it is unknown. */
function resolve(ctx: ControlContext, resourceArn: string, forChange: boolean): { key: string; record: Tagged } {
  const a = parseArn(resourceArn);
  if (!a) throw invalidParameter(`Invalid resource ARN: ${resourceArn}`);
  if (a.region !== ctx.partition.region || a.accountId !== ctx.partition.accountId) throw notFound();
  const parts = a.resource.split('/');
  switch (a.type) {
    case 'cluster': {
      const c = ctx.state.clusters.get('', a.resource);
      if (!c || !clusterVisible(c.value, ctx.clock.now())) throw clusterNotFound();
      // A deleted cluster is still describable (its tags can be listed) but not changed.
      if (c.value.status !== 'ACTIVE' && forChange) throw invalidParameter('The specified cluster is inactive. Specify an active cluster and try again.');
      return { key: keys.cluster(a.resource), record: c.value };
    }
    case 'task-definition': {
      const i = a.resource.lastIndexOf(':');
      const family = a.resource.slice(0, i);
      const rev = Number(a.resource.slice(i + 1));
      const td = i > 0 ? ctx.state.taskDefinitions.get(family, String(rev).padStart(10, '0')) : undefined;
      if (!td || td.value.status === 'DELETE_IN_PROGRESS') throw notFound();
      return { key: keys.taskDefinition(family, rev), record: td.value };
    }
    case 'task': {
      if (parts.length !== 2) throw invalidParameter('Long arn format must be used for tagging operations.');
      const t = ctx.state.tasks.get(parts[0]!, parts[1]!);
      if (!t) throw notFound();
      if (t.value.lastStatus === 'STOPPED') throw invalidParameter('The specified task is stopped.');
      return { key: keys.task(parts[0]!, parts[1]!), record: t.value };
    }
    case 'container-instance': {
      if (parts.length !== 2) throw invalidParameter('Long arn format must be used for tagging operations.');
      const ci = ctx.state.instances.get(parts[0]!, parts[1]!);
      if (!ci || ci.value.status === 'INACTIVE') throw notFound();
      return { key: keys.instance(parts[0]!, parts[1]!), record: ci.value };
    }
    case 'service': {
      if (parts.length !== 2) throw invalidParameter('Long arn format must be used for tagging operations.');
      const s = ctx.state.services.get(parts[0]!, parts[1]!);
      if (!s || s.value.status === 'INACTIVE') throw new WharfError('ServiceNotFoundException', 'Service not found.');
      return { key: keys.service(parts[0]!, parts[1]!), record: s.value };
    }
    case 'capacity-provider': {
      const p = ctx.state.capacityProviders.get('', a.resource);
      if (!p || p.value.status !== 'ACTIVE') throw notFound();
      return { key: keys.capacityProvider(a.resource), record: p.value };
    }
    default:
      throw notFound();
  }
}

export async function tagResource(ctx: ControlContext, input: TagResourceRequest): Promise<TagResourceResponse> {
  const added = validateTags(input.tags);
  const { key } = resolve(ctx, input.resourceArn, true);
  const { revision } = await casUpdate<Tagged>(ctx.store, key, (cur) => {
    if (!cur) throw notFound();
    const tags = mergeTags(cur.value.tags, added);
    // InvalidParameterException, not LimitExceededException: SDKs retry the latter as throttling
    // (botocore's standard retry mode lists it), so the CLI sent the same request three more times.
    if (userTagCount(tags) > MAX_TAGS) throw invalidParameter(`At most ${MAX_TAGS} tags may be applied to a resource.`);
    return { ...cur.value, tags };
  });
  await committed(ctx, revision);
  return {};
}

export async function untagResource(ctx: ControlContext, input: UntagResourceRequest): Promise<UntagResourceResponse> {
  for (const k of input.tagKeys) {
    if (k.toLowerCase().startsWith('aws:')) throw invalidParameter(`Tag keys beginning with 'aws:' are reserved: '${k}'.`);
  }
  const { key } = resolve(ctx, input.resourceArn, true);
  const drop = new Set(input.tagKeys);
  const { revision } = await casUpdate<Tagged>(ctx.store, key, (cur) => {
    if (!cur) throw notFound();
    return { ...cur.value, tags: (cur.value.tags ?? []).filter((t) => !drop.has(t.key!)) };
  });
  await committed(ctx, revision);
  return {};
}

export async function listTagsForResource(ctx: ControlContext, input: ListTagsForResourceRequest): Promise<ListTagsForResourceResponse> {
  return { tags: resolve(ctx, input.resourceArn, false).record.tags ?? [] };
}
