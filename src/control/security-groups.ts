/**
 * Security groups, the EC2 subset Wharf serves: CreateSecurityGroup, AuthorizeSecurityGroupIngress,
 * RevokeSecurityGroupIngress, DeleteSecurityGroup, DescribeSecurityGroups. A group's ingress rules
 * are what the agents enforce on the subnet bridges (agent/firewall.ts): a task accepts only what
 * one of its groups allows. Egress is always everything (the rule every group is created with);
 * Wharf serves no egress operations.
 *
 * Rules are kept as EC2 describes them: one IpPermission per (protocol, port range), holding all of
 * its sources, so DescribeSecurityGroups shows what was authorized in AWS's own grouping.
 */
import type { IngressRule } from '../api/agent/protocol';
import { WharfError } from '../core/errors';
import { keys } from '../core/resources';
import { parseCidr, type IpPermission, type SecurityGroupRecord, type VpcRecord } from '../core/vpc';
import { hexId } from '../lib';
import { StoreConflictError } from '../store/store';
import { committed, type ControlContext } from './context';
import { ALL_EGRESS, applyFilters, ec2Arn, ensureDefaultNetwork, vpcsOf, type Ec2Filter } from './vpc';

type Tag = { Key: string; Value: string };

export function securityGroupById(ctx: ControlContext, id: string): SecurityGroupRecord | undefined {
  return ctx.state.network.get('groups', id)?.value as SecurityGroupRecord | undefined;
}

export function securityGroupsOf(ctx: ControlContext): SecurityGroupRecord[] {
  return [...ctx.state.network.children('groups').values()].map((e) => e.value as SecurityGroupRecord).sort((a, b) => a.GroupId.localeCompare(b.GroupId));
}

function groupNotFound(id: string): WharfError {
  return new WharfError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
}

/** The group a request names by GroupId, or by GroupName in the default VPC. */
async function requireGroup(ctx: ControlContext, input: { GroupId?: string; GroupName?: string }): Promise<SecurityGroupRecord> {
  const net = await ensureDefaultNetwork(ctx);
  if (input.GroupId !== undefined) {
    if (!/^sg-[0-9a-f]+$/.test(input.GroupId)) throw new WharfError('InvalidGroupId.Malformed', `Invalid id: "${input.GroupId}" (expecting "sg-...")`);
    const g = securityGroupById(ctx, input.GroupId);
    if (!g) throw groupNotFound(input.GroupId);
    return g;
  }
  if (input.GroupName !== undefined) {
    const g = securityGroupsOf(ctx).find((x) => x.GroupName === input.GroupName && x.VpcId === net.vpc.VpcId);
    if (!g) throw new WharfError('InvalidGroup.NotFound', `The security group '${input.GroupName}' does not exist in default VPC '${net.vpc.VpcId}'`);
    return g;
  }
  throw new WharfError('MissingParameter', 'The request must contain the parameter groupName or groupId');
}

function tagsFor(specs: { ResourceType?: string; Tags?: Tag[] }[] | undefined, type: string): Tag[] {
  const out: Tag[] = [];
  for (const s of specs ?? []) {
    if (s.ResourceType !== type) throw new WharfError('InvalidParameterValue', `'${s.ResourceType ?? ''}' is not a valid taggable resource type for this operation.`);
    for (const t of s.Tags ?? []) out.push({ Key: t.Key ?? '', Value: t.Value ?? '' });
  }
  return out;
}

export async function createSecurityGroup(
  ctx: ControlContext,
  input: { GroupName: string; Description: string; VpcId?: string; TagSpecifications?: { ResourceType?: string; Tags?: Tag[] }[] },
): Promise<{ GroupId: string; SecurityGroupArn: string; Tags: Tag[] }> {
  const net = await ensureDefaultNetwork(ctx);
  const vpcId = input.VpcId ?? net.vpc.VpcId;
  if (!vpcsOf(ctx).some((v: VpcRecord) => v.VpcId === vpcId)) throw new WharfError('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
  const name = input.GroupName;
  if (name.length < 1 || name.length > 255) throw new WharfError('InvalidParameterValue', 'Value for parameter groupName is invalid. Group names must be between 1 and 255 characters.');
  if (/^sg-/i.test(name)) throw new WharfError('InvalidParameterValue', "Value (sg-...) for parameter GroupName is invalid. Group names may not be in the format sg-*.");
  if (name === 'default') throw new WharfError('InvalidGroup.Duplicate', `The security group 'default' already exists for VPC '${vpcId}'`);
  if (input.Description.length > 255) throw new WharfError('InvalidParameterValue', 'Value for parameter GroupDescription is invalid. Descriptions must be at most 255 characters.');
  const tags = tagsFor(input.TagSpecifications, 'security-group');
  if (securityGroupsOf(ctx).some((g) => g.GroupName === name && g.VpcId === vpcId)) {
    throw new WharfError('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`);
  }
  // Random ids, as AWS's: a group deleted and made again is a different group.
  const id = `sg-${hexId().slice(0, 17)}`;
  const g: SecurityGroupRecord = {
    GroupId: id,
    GroupName: name,
    Description: input.Description,
    VpcId: vpcId,
    OwnerId: ctx.partition.accountId,
    SecurityGroupArn: ec2Arn(ctx, `security-group/${id}`),
    IpPermissions: [],
    IpPermissionsEgress: [ALL_EGRESS],
    Tags: tags,
  };
  const rev = await ctx.store.create(keys.securityGroup(id), g);
  await committed(ctx, rev);
  // The name is unique per VPC. Of creates that raced past the check above, the first committed
  // stays: every later one sees it once its own write is in the cache, and withdraws.
  const earlier = [...ctx.state.network.children('groups').values()].some((e) => {
    const x = e.value as SecurityGroupRecord;
    return x.GroupId !== id && x.GroupName === name && x.VpcId === vpcId && e.createRevision < rev;
  });
  if (earlier) {
    await ctx.store.delete(keys.securityGroup(id));
    throw new WharfError('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`);
  }
  return { GroupId: id, SecurityGroupArn: g.SecurityGroupArn, Tags: tags };
}

interface PermissionInput {
  IpProtocol?: string;
  FromPort?: number;
  ToPort?: number;
  IpRanges?: { CidrIp?: string; Description?: string }[];
  UserIdGroupPairs?: { GroupId?: string; GroupName?: string; UserId?: string; Description?: string }[];
  Ipv6Ranges?: unknown[];
  PrefixListIds?: unknown[];
}

interface IngressInput {
  GroupId?: string;
  GroupName?: string;
  IpPermissions?: PermissionInput[];
  IpProtocol?: string;
  FromPort?: number;
  ToPort?: number;
  CidrIp?: string;
  SourceSecurityGroupName?: string;
}

const PROTOCOL_NUMBERS: Record<string, string> = { '6': 'tcp', '17': 'udp', '1': 'icmp', all: '-1' };

/** One source of one rule, flattened: what the store keeps grouped and the agents enforce. */
interface FlatRule {
  protocol: string;
  from?: number;
  to?: number;
  cidr?: string;
  group?: string;
  description?: string;
}

async function flatRules(ctx: ControlContext, group: SecurityGroupRecord, input: IngressInput): Promise<FlatRule[]> {
  const perms: PermissionInput[] = [...(input.IpPermissions ?? [])];
  if (input.IpProtocol !== undefined || input.CidrIp !== undefined || input.SourceSecurityGroupName !== undefined) {
    perms.push({
      IpProtocol: input.IpProtocol ?? '-1',
      FromPort: input.FromPort,
      ToPort: input.ToPort,
      IpRanges: input.CidrIp !== undefined ? [{ CidrIp: input.CidrIp }] : [],
      UserIdGroupPairs: input.SourceSecurityGroupName !== undefined ? [{ GroupName: input.SourceSecurityGroupName }] : [],
    });
  }
  if (perms.length === 0) throw new WharfError('MissingParameter', 'No inbound rule specified.');
  const out: FlatRule[] = [];
  for (const p of perms) {
    const raw = (p.IpProtocol ?? '').toLowerCase();
    if (raw === '') throw new WharfError('MissingParameter', 'The request must contain the parameter ipProtocol');
    const protocol = PROTOCOL_NUMBERS[raw] ?? raw;
    if (!['tcp', 'udp', 'icmp', '-1'].includes(protocol)) {
      throw new WharfError('InvalidParameterValue', `Invalid value '${p.IpProtocol}' for IP protocol. Unknown protocol.`);
    }
    let from: number | undefined;
    let to: number | undefined;
    if (protocol === 'tcp' || protocol === 'udp') {
      if (p.FromPort === undefined || p.ToPort === undefined) throw new WharfError('InvalidParameterValue', `Invalid value for portRange. Must specify both from and to ports with TCP/UDP.`);
      if (p.FromPort < 0 || p.ToPort > 65535 || p.FromPort > p.ToPort) throw new WharfError('InvalidParameterValue', `Invalid TCP/UDP port range (${p.FromPort}, ${p.ToPort}).`);
      from = p.FromPort;
      to = p.ToPort;
    } else if (protocol === 'icmp') {
      from = p.FromPort ?? -1;
      to = p.ToPort ?? -1;
    }
    if ((p.Ipv6Ranges?.length ?? 0) > 0 || (p.PrefixListIds?.length ?? 0) > 0) {
      throw new WharfError('InvalidParameterValue', 'Wharf enforces IPv4 ranges and security group sources only: Ipv6Ranges and PrefixListIds are not supported.');
    }
    const sources = (p.IpRanges?.length ?? 0) + (p.UserIdGroupPairs?.length ?? 0);
    if (sources === 0) throw new WharfError('MissingParameter', 'The request must contain the parameter ipPermissions.N.ipRanges or ipPermissions.N.groups');
    for (const r of p.IpRanges ?? []) {
      const cidr = r.CidrIp ?? '';
      if (!parseCidr(cidr)) throw new WharfError('InvalidParameterValue', `CIDR block ${cidr} is malformed`);
      out.push({ protocol, from, to, cidr, description: r.Description });
    }
    for (const pair of p.UserIdGroupPairs ?? []) {
      let source: SecurityGroupRecord | undefined;
      if (pair.GroupId !== undefined) {
        source = securityGroupById(ctx, pair.GroupId);
        if (!source) throw groupNotFound(pair.GroupId);
      } else if (pair.GroupName !== undefined) {
        source = securityGroupsOf(ctx).find((g) => g.GroupName === pair.GroupName && g.VpcId === group.VpcId);
        if (!source) throw new WharfError('InvalidGroup.NotFound', `The security group '${pair.GroupName}' does not exist`);
      } else throw new WharfError('MissingParameter', 'The request must contain the parameter groupId or groupName of each source group');
      if (source.VpcId !== group.VpcId) throw new WharfError('InvalidGroup.NotFound', `You have specified two resources that belong to different networks.`);
      out.push({ protocol, from, to, group: source.GroupId, description: pair.Description });
    }
  }
  return out;
}

function sameRule(a: FlatRule, b: FlatRule): boolean {
  return a.protocol === b.protocol && a.from === b.from && a.to === b.to && a.cidr === b.cidr && a.group === b.group;
}

function flatten(perms: IpPermission[]): FlatRule[] {
  const out: FlatRule[] = [];
  for (const p of perms) {
    for (const r of p.IpRanges ?? []) out.push({ protocol: p.IpProtocol, from: p.FromPort, to: p.ToPort, cidr: r.CidrIp, description: r.Description });
    for (const g of p.UserIdGroupPairs ?? []) out.push({ protocol: p.IpProtocol, from: p.FromPort, to: p.ToPort, group: g.GroupId, description: g.Description });
  }
  return out;
}

/** Flat rules grouped back as EC2 shows them: one permission per protocol and port range. */
function grouped(rules: FlatRule[], owner: string): IpPermission[] {
  const out: IpPermission[] = [];
  for (const r of rules) {
    let p = out.find((x) => x.IpProtocol === r.protocol && x.FromPort === r.from && x.ToPort === r.to);
    if (!p) {
      p = { IpProtocol: r.protocol, IpRanges: [], UserIdGroupPairs: [], Ipv6Ranges: [], PrefixListIds: [] };
      if (r.from !== undefined) p.FromPort = r.from;
      if (r.to !== undefined) p.ToPort = r.to;
      out.push(p);
    }
    if (r.cidr !== undefined) p.IpRanges!.push(r.description !== undefined ? { CidrIp: r.cidr, Description: r.description } : { CidrIp: r.cidr });
    if (r.group !== undefined) p.UserIdGroupPairs!.push(r.description !== undefined ? { GroupId: r.group, UserId: owner, Description: r.description } : { GroupId: r.group, UserId: owner });
  }
  return out;
}

function describeRule(r: FlatRule): string {
  const ports = r.protocol === '-1' ? 'ALL' : `${r.protocol.toUpperCase()}, from port: ${r.from}, to port: ${r.to}`;
  return `peer: ${r.cidr ?? r.group}, ${ports}, ALLOW`;
}

/** Rewrites a group's ingress rules with compare-and-swap, retrying on a concurrent change. */
async function updateIngress(ctx: ControlContext, groupId: string, change: (current: FlatRule[]) => FlatRule[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const e = ctx.state.network.get('groups', groupId);
    if (!e) throw groupNotFound(groupId);
    const g = e.value as SecurityGroupRecord;
    const next: SecurityGroupRecord = { ...g, IpPermissions: grouped(change(flatten(g.IpPermissions)), g.OwnerId) };
    try {
      await committed(ctx, await ctx.store.update(keys.securityGroup(groupId), next, e.modRevision));
      return;
    } catch (err) {
      if (!(err instanceof StoreConflictError) || attempt >= 20) throw err;
      await committed(ctx, await ctx.store.revision());
    }
  }
}

export async function authorizeSecurityGroupIngress(ctx: ControlContext, input: IngressInput): Promise<{ Return: boolean }> {
  const g = await requireGroup(ctx, input);
  const add = await flatRules(ctx, g, input);
  await updateIngress(ctx, g.GroupId, (current) => {
    for (const r of add) {
      if (current.some((c) => sameRule(c, r))) throw new WharfError('InvalidPermission.Duplicate', `the specified rule "${describeRule(r)}" already exists`);
    }
    return [...current, ...add];
  });
  return { Return: true };
}

export async function revokeSecurityGroupIngress(ctx: ControlContext, input: IngressInput): Promise<{ Return: boolean }> {
  const g = await requireGroup(ctx, input);
  const remove = await flatRules(ctx, g, input);
  await updateIngress(ctx, g.GroupId, (current) => {
    for (const r of remove) {
      if (!current.some((c) => sameRule(c, r))) throw new WharfError('InvalidPermission.NotFound', 'The specified rule does not exist in this security group.');
    }
    return current.filter((c) => !remove.some((r) => sameRule(c, r)));
  });
  return { Return: true };
}

export async function deleteSecurityGroup(ctx: ControlContext, input: { GroupId?: string; GroupName?: string }): Promise<{ Return: boolean; GroupId: string }> {
  const g = await requireGroup(ctx, input);
  if (g.GroupName === 'default') throw new WharfError('CannotDelete', `the specified group: "${g.GroupId}" name: "default" cannot be deleted by a user`);
  const referrer = securityGroupsOf(ctx).find((x) => x.GroupId !== g.GroupId && flatten(x.IpPermissions).some((r) => r.group === g.GroupId));
  if (referrer) throw new WharfError('DependencyViolation', `resource ${g.GroupId} has a dependent object`);
  for (const t of ctx.state.tasks.all()) {
    if (t.value.lastStatus !== 'STOPPED' && (t.value.wharf.securityGroups ?? []).includes(g.GroupId)) {
      throw new WharfError('DependencyViolation', `resource ${g.GroupId} has a dependent object`);
    }
  }
  await committed(ctx, await ctx.store.delete(keys.securityGroup(g.GroupId)));
  return { Return: true, GroupId: g.GroupId };
}

/**
 * What a task with these groups accepts: every source of every ingress rule of each group, as the
 * agents enforce them (a group source stands for the group's member tasks). Unknown groups (deleted
 * since) add nothing.
 */
export function ingressRulesOf(state: Pick<ControlContext, 'state'>['state'], groupIds: readonly string[]): IngressRule[] {
  const out: IngressRule[] = [];
  for (const id of groupIds) {
    const g = state.network.get('groups', id)?.value as SecurityGroupRecord | undefined;
    for (const r of g ? flatten(g.IpPermissions) : []) {
      const rule: IngressRule = { protocol: r.protocol };
      if ((r.protocol === 'tcp' || r.protocol === 'udp') && r.from !== undefined && r.to !== undefined) {
        rule.fromPort = r.from;
        rule.toPort = r.to;
      }
      if (r.cidr !== undefined) rule.cidr = r.cidr;
      if (r.group !== undefined) rule.group = r.group;
      if (!out.some((x) => JSON.stringify(x) === JSON.stringify(rule))) out.push(rule);
    }
  }
  return out;
}

const GROUP_FILTERS: Record<string, (g: SecurityGroupRecord) => (string | undefined)[]> = {
  'group-id': (g) => [g.GroupId],
  'group-name': (g) => [g.GroupName],
  'vpc-id': (g) => [g.VpcId],
  'description': (g) => [g.Description],
  'owner-id': (g) => [g.OwnerId],
  'ip-permission.group-id': (g) => flatten(g.IpPermissions).map((r) => r.group),
  'ip-permission.cidr': (g) => flatten(g.IpPermissions).map((r) => r.cidr),
  'ip-permission.protocol': (g) => g.IpPermissions.map((p) => p.IpProtocol),
};

export async function describeSecurityGroups(
  ctx: ControlContext,
  input: { GroupIds?: string[]; GroupNames?: string[]; Filters?: Ec2Filter[] },
): Promise<{ SecurityGroups: SecurityGroupRecord[] }> {
  const net = await ensureDefaultNetwork(ctx);
  let groups = securityGroupsOf(ctx);
  if (input.GroupIds?.length) {
    for (const id of input.GroupIds) if (!securityGroupById(ctx, id)) throw groupNotFound(id);
    groups = groups.filter((g) => input.GroupIds!.includes(g.GroupId));
  }
  if (input.GroupNames?.length) {
    for (const name of input.GroupNames) {
      if (!groups.some((g) => g.GroupName === name && g.VpcId === net.vpc.VpcId)) {
        throw new WharfError('InvalidGroup.NotFound', `The security group '${name}' does not exist in default VPC '${net.vpc.VpcId}'`);
      }
    }
    groups = groups.filter((g) => input.GroupNames!.includes(g.GroupName) && g.VpcId === net.vpc.VpcId);
  }
  return { SecurityGroups: applyFilters(groups, input.Filters, GROUP_FILTERS) };
}
