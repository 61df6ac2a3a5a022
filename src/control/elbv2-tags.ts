/**
 * ELBv2 tags: AddTags, RemoveTags and DescribeTags on load balancers, target groups, listeners
 * and rules (the records keep their own `Tags`). Every ARN of a request must exist, and all of
 * them change in one transaction or none do.
 */
import type { TxnOp } from '../store/store';
import type { ControlContext } from './context';
import { checkTags, commit, defaultRuleListener, elbWrite, findListener, findRule, listenerNotFound, loadBalancerNotFound, mergeTags, ruleNotFound, targetGroupNotFound, validationError } from './elbv2-common';
import { findLoadBalancer, findTargetGroup, loadBalancerKey, targetGroupKey, type ElbTag } from './elbv2-records';

interface Tagged {
  key: string;
  revision: number;
  record: { Tags: ElbTag[] };
}

/** The stored record an ARN names, by its resource type. */
function taggedOf(ctx: ControlContext, arn: string): Tagged {
  const resource = arn.split(':')[5] ?? '';
  if (resource.startsWith('loadbalancer/')) {
    const f = findLoadBalancer(ctx, arn);
    if (!f) throw loadBalancerNotFound();
    return { key: loadBalancerKey(f.lb.LoadBalancerName), revision: f.revision, record: f.lb };
  }
  if (resource.startsWith('targetgroup/')) {
    const f = findTargetGroup(ctx, arn);
    if (!f) throw targetGroupNotFound();
    return { key: targetGroupKey(f.tg.TargetGroupName), revision: f.revision, record: f.tg };
  }
  if (resource.startsWith('listener/')) {
    const f = findListener(ctx, arn);
    if (!f) throw listenerNotFound();
    return { key: f.key, revision: f.revision, record: f.listener };
  }
  if (resource.startsWith('listener-rule/')) {
    const f = findRule(ctx, arn);
    if (f) return { key: f.key, revision: f.revision, record: f.rule };
    if (defaultRuleListener(ctx, arn)) throw validationError('Wharf keeps no tags on a default rule: tag its listener');
    throw ruleNotFound();
  }
  throw validationError(`'${arn}' is not a valid load balancer, target group, listener or rule ARN`);
}

export async function addTags(ctx: ControlContext, input: { ResourceArns: string[]; Tags: ElbTag[] }): Promise<Record<string, never>> {
  const tags = checkTags(input.Tags);
  return elbWrite(ctx, async () => {
    const ops: TxnOp[] = [...new Set(input.ResourceArns)].map((arn) => {
      const t = taggedOf(ctx, arn);
      return { op: 'update', key: t.key, value: { ...t.record, Tags: mergeTags(t.record.Tags, tags) }, expectedRevision: t.revision };
    });
    await commit(ctx, ops);
    return {};
  });
}

export async function removeTags(ctx: ControlContext, input: { ResourceArns: string[]; TagKeys: string[] }): Promise<Record<string, never>> {
  return elbWrite(ctx, async () => {
    const drop = new Set(input.TagKeys);
    const ops: TxnOp[] = [...new Set(input.ResourceArns)].map((arn) => {
      const t = taggedOf(ctx, arn);
      return { op: 'update', key: t.key, value: { ...t.record, Tags: t.record.Tags.filter((x) => !drop.has(x.Key)) }, expectedRevision: t.revision };
    });
    await commit(ctx, ops);
    return {};
  });
}

export async function describeTags(ctx: ControlContext, input: { ResourceArns: string[] }): Promise<{ TagDescriptions: { ResourceArn: string; Tags: ElbTag[] }[] }> {
  if (input.ResourceArns.length > 20) throw validationError('You can describe the tags of at most 20 resources at once');
  return { TagDescriptions: input.ResourceArns.map((arn) => ({ ResourceArn: arn, Tags: taggedOf(ctx, arn).record.Tags })) };
}
