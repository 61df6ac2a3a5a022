/**
 * The ELBv2 operations Wharf serves, by name, for server/'s query-protocol dispatch (the model's
 * other operations are refused there as not implemented). Inputs arrive decoded into the ELBv2
 * model's shapes (api/query-protocol.ts); answers are the model's output shapes.
 */
import type { Caller, ControlContext } from './context';
import { checkArnParameters } from './elbv2-common';
import * as listeners from './elbv2-listeners';
import * as lbs from './elbv2-load-balancers';
import * as rules from './elbv2-rules';
import * as tags from './elbv2-tags';
import * as targets from './elbv2-targets';
import * as groups from './elbv2-target-groups';

export type ElbHandler = (input: any, caller: Caller) => Promise<unknown>;

export { ELBV2_SIGNING_NAME } from './elbv2-records';

export function elbv2Handlers(ctx: ControlContext): Record<string, ElbHandler> {
  const handlers: Record<string, ElbHandler> = {
    CreateLoadBalancer: (i) => lbs.createLoadBalancer(ctx, i),
    DescribeLoadBalancers: (i) => lbs.describeLoadBalancers(ctx, i),
    DeleteLoadBalancer: (i) => lbs.deleteLoadBalancer(ctx, i),
    DescribeLoadBalancerAttributes: (i) => lbs.describeLoadBalancerAttributes(ctx, i),
    ModifyLoadBalancerAttributes: (i) => lbs.modifyLoadBalancerAttributes(ctx, i),
    CreateTargetGroup: (i) => groups.createTargetGroup(ctx, i),
    DescribeTargetGroups: (i) => groups.describeTargetGroups(ctx, i),
    ModifyTargetGroup: (i) => groups.modifyTargetGroup(ctx, i),
    DeleteTargetGroup: (i) => groups.deleteTargetGroup(ctx, i),
    DescribeTargetGroupAttributes: (i) => groups.describeTargetGroupAttributes(ctx, i),
    ModifyTargetGroupAttributes: (i) => groups.modifyTargetGroupAttributes(ctx, i),
    CreateListener: (i) => listeners.createListener(ctx, i),
    DescribeListeners: (i) => listeners.describeListeners(ctx, i),
    ModifyListener: (i) => listeners.modifyListener(ctx, i),
    DeleteListener: (i) => listeners.deleteListener(ctx, i),
    CreateRule: (i) => rules.createRule(ctx, i),
    DescribeRules: (i) => rules.describeRules(ctx, i),
    ModifyRule: (i) => rules.modifyRule(ctx, i),
    DeleteRule: (i) => rules.deleteRule(ctx, i),
    SetRulePriorities: (i) => rules.setRulePriorities(ctx, i),
    RegisterTargets: (i) => targets.registerTargets(ctx, i),
    DeregisterTargets: (i) => targets.deregisterTargets(ctx, i),
    DescribeTargetHealth: (i) => targets.describeTargetHealth(ctx, i),
    AddTags: (i) => tags.addTags(ctx, i),
    RemoveTags: (i) => tags.removeTags(ctx, i),
    DescribeTags: (i) => tags.describeTags(ctx, i),
  };
  // A malformed ARN is refused the same way by every operation, before it looks anything up.
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handle]) => [
      name,
      async (i: unknown, caller: Caller) => {
        checkArnParameters(i);
        return handle(i, caller);
      },
    ]),
  );
}
