/**
 * CreateService/UpdateService's `loadBalancers`, validated as ECS does;
 * controllers/service-load-balancer-controller.ts registers the tasks.
 *
 * ECS looks each target group up in ELB when it is called, and so does Wharf (the region's ELBv2
 * records): a group that does not exist, that no listener or rule forwards to, or whose target
 * type cannot hold the tasks would otherwise leave the service registering nothing, IN_PROGRESS
 * for ever. awsvpc tasks have addresses of their own, so they need `ip` targets; bridge and host
 * tasks share their instance's address, so they need `instance` targets.
 */
import { invalidParameter } from '../core/errors';
import type { TaskDefinitionRecord } from '../core/resources';
import type { LoadBalancer } from '../core/shapes/ecs';
import { effectiveNetworkMode } from '../core/task-definition';
import type { ControlContext } from './context';
import { isElbArn, targetGroupUsage } from './elbv2-common';
import { findTargetGroup } from './elbv2-records';
import { containerPortExists } from './service-registries';

/**
 * The service's load balancers as stored. `checkTargetGroups` looks the groups up in ELB: always
 * on CreateService; on UpdateService when the load balancers or the task definition are given
 * (a group deleted since then must not block a mere desiredCount change).
 */
export function validateLoadBalancers(ctx: ControlContext, list: LoadBalancer[] | undefined, td: TaskDefinitionRecord, checkTargetGroups: boolean): LoadBalancer[] {
  const lbs = list ?? [];
  if (lbs.length > 5) throw invalidParameter('A service can have at most 5 target groups.');
  if (lbs.filter((l) => l.loadBalancerName).length > 1) throw invalidParameter('A service can use at most one Classic Load Balancer.');
  const seen = new Set<string>();
  for (const l of lbs) {
    if (!l.targetGroupArn && !l.loadBalancerName) throw invalidParameter('A load balancer needs a targetGroupArn or a loadBalancerName.');
    if (l.targetGroupArn && !isElbArn(l.targetGroupArn, 'target group')) throw invalidParameter(`Invalid targetGroupArn '${l.targetGroupArn}'.`);
    if (!l.containerName || l.containerPort === undefined) throw invalidParameter('containerName and containerPort are required for each load balancer.');
    if (!containerPortExists(td, l.containerName, l.containerPort)) {
      throw invalidParameter(`The container ${l.containerName} did not have a container port ${l.containerPort} defined.`);
    }
    // The same group, container and port twice would register every task twice over (ECS refuses it).
    const key = JSON.stringify([l.targetGroupArn ?? l.loadBalancerName, l.containerName, l.containerPort]);
    if (seen.has(key)) {
      throw invalidParameter(`The load balancer with ${l.targetGroupArn ? `targetGroupArn ${l.targetGroupArn}` : `loadBalancerName ${l.loadBalancerName}`}, containerName ${l.containerName} and containerPort ${l.containerPort} is specified more than once.`);
    }
    seen.add(key);
  }
  if (checkTargetGroups) checkTargetGroupsOf(ctx, lbs, td);
  return lbs.map((l) => ({ ...l }));
}

function checkTargetGroupsOf(ctx: ControlContext, lbs: LoadBalancer[], td: TaskDefinitionRecord): void {
  const arns = lbs.map((l) => l.targetGroupArn).filter((a): a is string => !!a);
  if (!arns.length) return;
  const usage = targetGroupUsage(ctx);
  const mode = effectiveNetworkMode(td);
  for (const arn of arns) {
    // Looked up in this region only: an ARN of another region names no group here.
    const tg = findTargetGroup(ctx, arn)?.tg;
    if (!tg) throw invalidParameter(`The target group with targetGroupArn ${arn} does not exist.`);
    if (!usage.get(arn)?.size) throw invalidParameter(`The target group with targetGroupArn ${arn} does not have an associated load balancer.`);
    const wanted = mode === 'awsvpc' ? 'ip' : mode === 'bridge' || mode === 'host' ? 'instance' : undefined;
    if (wanted && tg.TargetType !== wanted) {
      throw invalidParameter(`The provided target group ${arn} has target type ${tg.TargetType}, which is incompatible with the ${mode} network mode specified in the task definition.`);
    }
  }
}
