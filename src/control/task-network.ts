/**
 * What an awsvpc task's network configuration means in the region's VPC (control/vpc.ts): the
 * subnets and security groups must exist (ECS answers InvalidParameterException with EC2's reason,
 * as it does when its own DescribeSubnets call fails), be of one VPC, and the groups default to the
 * VPC's default group. The subnets decide where the task may run: only hosts in their zones, and
 * the task's ENI is in the subnet of the zone it lands in.
 *
 * Synchronous over the cache: the region's default network exists from the region's start
 * (`ensureDefaultNetwork`, cmd/regions.ts), so no request writes it.
 */
import { invalidParameter } from '../core/errors';
import type { TaskDefinitionRecord } from '../core/resources';
import type { NetworkConfiguration, PlacementConstraint } from '../core/shapes/ecs';
import { effectiveNetworkMode } from '../core/task-definition';
import type { SecurityGroupRecord, SubnetRecord } from '../core/vpc';
import type { ControlContext } from './context';
import { securityGroupById, securityGroupsOf } from './security-groups';
import { subnetById } from './vpc';

export interface AwsvpcChoice {
  /** The subnet ids asked for, in the request's order. */
  subnets: string[];
  /** The task's groups: those asked for, or the VPC's default group. */
  securityGroups: string[];
  assignPublicIp?: 'ENABLED' | 'DISABLED';
}

/** awsvpc needs a network configuration; other modes refuse one. */
export function resolveNetwork(
  ctx: ControlContext,
  td: TaskDefinitionRecord,
  nc: NetworkConfiguration | undefined,
  launchType: 'EC2' | 'FARGATE' | 'EXTERNAL' = 'EC2',
): AwsvpcChoice | undefined {
  const mode = effectiveNetworkMode(td);
  const vpc = nc?.awsvpcConfiguration;
  if (mode !== 'awsvpc') {
    if (vpc) throw invalidParameter('Network Configuration is not valid for the given networkMode of this task definition.');
    return undefined;
  }
  if (!vpc) throw invalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.");
  if (!vpc.subnets || vpc.subnets.length < 1 || vpc.subnets.length > 16) {
    throw invalidParameter('subnets can have at least 1 and at most 16 items.');
  }
  if ((vpc.securityGroups?.length ?? 0) > 5) throw invalidParameter('securityGroups can have at most 5 items.');
  const missing = vpc.subnets.filter((s) => !subnetById(ctx, s));
  if (missing.length > 0) {
    throw invalidParameter(`Error retrieving subnet information for [${missing.join(', ')}]: The subnet ID '${missing[0]}' does not exist (ErrorCode: InvalidSubnetID.NotFound)`);
  }
  const subnets = vpc.subnets.map((s) => subnetById(ctx, s)!);
  const vpcId = subnets[0]!.VpcId;
  if (subnets.some((s) => s.VpcId !== vpcId)) throw invalidParameter('The subnets must all belong to the same VPC.');
  const groups = (vpc.securityGroups ?? []).map((id): SecurityGroupRecord => {
    const g = securityGroupById(ctx, id);
    if (!g) throw invalidParameter(`Error retrieving security group information for [${id}]: The security group '${id}' does not exist (ErrorCode: InvalidGroup.NotFound)`);
    if (g.VpcId !== vpcId) throw invalidParameter(`Security group ${id} and subnet ${subnets[0]!.SubnetId} belong to different networks.`);
    return g;
  });
  if (vpc.assignPublicIp === 'ENABLED' && launchType === 'EC2') throw invalidParameter('Assign public IP is not supported for this launch type.');
  const securityGroups = groups.length > 0 ? [...new Set(groups.map((g) => g.GroupId))] : [defaultGroupOf(ctx, vpcId).GroupId];
  const out: AwsvpcChoice = { subnets: [...new Set(vpc.subnets)], securityGroups };
  if (vpc.assignPublicIp) out.assignPublicIp = vpc.assignPublicIp;
  return out;
}

function defaultGroupOf(ctx: ControlContext, vpcId: string): SecurityGroupRecord {
  const g = securityGroupsOf(ctx).find((x) => x.VpcId === vpcId && x.GroupName === 'default');
  if (!g) throw new Error(`VPC ${vpcId} has no default security group`);
  return g;
}

/** For each zone of the chosen subnets, the first subnet asked for in it. */
export function subnetByZone(ctx: ControlContext, choice: AwsvpcChoice): Record<string, string> {
  const out: Record<string, string> = {};
  for (const id of choice.subnets) {
    const s: SubnetRecord | undefined = subnetById(ctx, id);
    if (s && out[s.AvailabilityZone] === undefined) out[s.AvailabilityZone] = s.SubnetId;
  }
  return out;
}

/**
 * The constraint that keeps a task to hosts in its subnets' zones (a host advertises its zone as
 * `ecs.availability-zone`): the scheduler's memberOf filter, so the reason of a task that finds no
 * such host is the scheduler's own.
 */
export function zoneConstraint(zones: string[]): PlacementConstraint {
  return { type: 'memberOf', expression: `attribute:ecs.availability-zone in [${zones.join(', ')}]` };
}
