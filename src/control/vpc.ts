/**
 * The region's default VPC and its subnets (core/vpc.ts has the layout): made on the region's
 * first use, stored under `network/` so every reader (the EC2 API, RunTask's checks, the agent
 * gateway) sees the same objects; and the EC2 operations that show them, DescribeVpcs and
 * DescribeSubnets. Their ids look like AWS's (`vpc-` / `subnet-` / `sg-` + 17 hex digits) and are
 * derived from the account and region, so a region's network keeps its ids across data dirs and
 * every host sharing a Docker Engine names a subnet's bridge the same way.
 */
import { createHash } from 'node:crypto';
import { WharfError } from '../core/errors';
import { keys } from '../core/resources';
import {
  availableAddresses,
  defaultSubnetCidr,
  defaultVpcCidr,
  regionZones,
  zoneId,
  type SecurityGroupRecord,
  type SubnetRecord,
  type VpcRecord,
} from '../core/vpc';
import { StoreConflictError } from '../store/store';
import { committed, type ControlContext } from './context';

/** An AWS-looking id: `prefix-` and 17 hex digits from the account, region and what it names. */
export function networkId(ctx: ControlContext, prefix: string, what: string): string {
  const h = createHash('sha256').update(`${ctx.partition.accountId}/${ctx.partition.region}/${what}`).digest('hex');
  return `${prefix}-${h.slice(0, 17)}`;
}

export function ec2Arn(ctx: ControlContext, resource: string): string {
  const partition = ctx.partition.region.startsWith('cn-') ? 'aws-cn' : ctx.partition.region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  return `arn:${partition}:ec2:${ctx.partition.region}:${ctx.partition.accountId}:${resource}`;
}

export interface DefaultNetwork {
  vpc: VpcRecord;
  subnets: SubnetRecord[];
  defaultGroup: SecurityGroupRecord;
}

/** The records of a region's default network, as first made. */
export function defaultNetworkRecords(ctx: ControlContext): DefaultNetwork {
  const owner = ctx.partition.accountId;
  const vpcId = networkId(ctx, 'vpc', 'default-vpc');
  const cidr = ctx.vpcCidr ?? defaultVpcCidr(ctx.partition.region);
  const vpc: VpcRecord = {
    VpcId: vpcId,
    CidrBlock: cidr,
    State: 'available',
    DhcpOptionsId: networkId(ctx, 'dopt', 'default-dhcp'),
    InstanceTenancy: 'default',
    IsDefault: true,
    OwnerId: owner,
    CidrBlockAssociationSet: [{ AssociationId: networkId(ctx, 'vpc-cidr-assoc', 'default-vpc'), CidrBlock: cidr, CidrBlockState: { State: 'associated' } }],
    Tags: [],
  };
  const subnets = regionZones(ctx.partition.region).map((zone, i): SubnetRecord => {
    const id = networkId(ctx, 'subnet', `default-subnet/${zone}`);
    const block = defaultSubnetCidr(cidr, i);
    return {
      SubnetId: id,
      SubnetArn: ec2Arn(ctx, `subnet/${id}`),
      VpcId: vpcId,
      CidrBlock: block,
      AvailabilityZone: zone,
      AvailabilityZoneId: zoneId(zone),
      AvailableIpAddressCount: availableAddresses(block),
      DefaultForAz: true,
      MapPublicIpOnLaunch: true,
      State: 'available',
      OwnerId: owner,
      AssignIpv6AddressOnCreation: false,
      Ipv6CidrBlockAssociationSet: [],
      Tags: [],
    };
  });
  const groupId = networkId(ctx, 'sg', 'default-group');
  const defaultGroup: SecurityGroupRecord = {
    GroupId: groupId,
    GroupName: 'default',
    Description: 'default VPC security group',
    VpcId: vpcId,
    OwnerId: owner,
    SecurityGroupArn: ec2Arn(ctx, `security-group/${groupId}`),
    // As on AWS: members of the default group accept everything from each other.
    IpPermissions: [{ IpProtocol: '-1', IpRanges: [], UserIdGroupPairs: [{ GroupId: groupId, UserId: owner }], Ipv6Ranges: [], PrefixListIds: [] }],
    IpPermissionsEgress: [ALL_EGRESS],
    Tags: [],
  };
  return { vpc, subnets, defaultGroup };
}

/** What every new group allows out: everything, anywhere (AWS's default egress rule). */
export const ALL_EGRESS = { IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }], UserIdGroupPairs: [], Ipv6Ranges: [], PrefixListIds: [] };

/**
 * The region's default network, made (in one transaction) if this is its first use. Two first
 * uses racing make the same records; the loser reads the winner's.
 */
export async function ensureDefaultNetwork(ctx: ControlContext): Promise<DefaultNetwork> {
  const fresh = defaultNetworkRecords(ctx);
  const existing = ctx.state.network.get('vpcs', fresh.vpc.VpcId)?.value as VpcRecord | undefined;
  if (!existing) {
    try {
      const rev = await ctx.store.txn([
        { op: 'create', key: keys.vpc(fresh.vpc.VpcId), value: fresh.vpc },
        ...fresh.subnets.map((s) => ({ op: 'create' as const, key: keys.subnet(s.SubnetId), value: s })),
        { op: 'create', key: keys.securityGroup(fresh.defaultGroup.GroupId), value: fresh.defaultGroup },
      ]);
      await committed(ctx, rev);
    } catch (e) {
      if (!(e instanceof StoreConflictError)) throw e;
      await committed(ctx, await ctx.store.revision());
    }
  }
  return {
    vpc: ctx.state.network.get('vpcs', fresh.vpc.VpcId)!.value as VpcRecord,
    subnets: subnetsOf(ctx).filter((s) => s.VpcId === fresh.vpc.VpcId),
    defaultGroup: ctx.state.network.get('groups', fresh.defaultGroup.GroupId)!.value as SecurityGroupRecord,
  };
}

export function subnetsOf(ctx: ControlContext): SubnetRecord[] {
  return [...ctx.state.network.children('subnets').values()].map((e) => e.value as SubnetRecord).sort((a, b) => a.AvailabilityZone.localeCompare(b.AvailabilityZone));
}

export function vpcsOf(ctx: ControlContext): VpcRecord[] {
  return [...ctx.state.network.children('vpcs').values()].map((e) => e.value as VpcRecord);
}

export function subnetById(ctx: ControlContext, id: string): SubnetRecord | undefined {
  return ctx.state.network.get('subnets', id)?.value as SubnetRecord | undefined;
}

// ---------------------------------------------------------------------------------------------
// Filters (EC2's `Filter.N.Name` / `Filter.N.Value.M`): a record passes when, for every filter,
// one of its values matches (`*` and `?` are wildcards, as in EC2).

export interface Ec2Filter {
  Name?: string;
  Values?: string[];
}

function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** Keeps the records every filter matches; `fields` says what each filter name reads. */
export function applyFilters<T>(records: T[], filters: Ec2Filter[] | undefined, fields: Record<string, (r: T) => (string | undefined)[]>): T[] {
  const fs = (filters ?? []).map((f) => {
    const name = f.Name ?? '';
    // Own names only: `constructor` or `toString` must not find Object's.
    const read = Object.prototype.hasOwnProperty.call(fields, name) ? fields[name] : undefined;
    if (!read) throw new WharfError('InvalidParameterValue', `The filter '${name}' is invalid`);
    return { read, patterns: (f.Values ?? []).map(wildcard) };
  });
  return records.filter((r) => fs.every((f) => f.read(r).some((v) => v !== undefined && f.patterns.some((p) => p.test(v)))));
}

const SUBNET_FILTERS: Record<string, (s: SubnetRecord) => (string | undefined)[]> = {
  'vpc-id': (s) => [s.VpcId],
  'subnet-id': (s) => [s.SubnetId],
  'availability-zone': (s) => [s.AvailabilityZone],
  'availability-zone-id': (s) => [s.AvailabilityZoneId],
  'availabilityZone': (s) => [s.AvailabilityZone],
  'default-for-az': (s) => [String(s.DefaultForAz)],
  'defaultForAz': (s) => [String(s.DefaultForAz)],
  'cidr-block': (s) => [s.CidrBlock],
  'cidrBlock': (s) => [s.CidrBlock],
  'state': (s) => [s.State],
  'owner-id': (s) => [s.OwnerId],
  'map-public-ip-on-launch': (s) => [String(s.MapPublicIpOnLaunch)],
};

const VPC_FILTERS: Record<string, (v: VpcRecord) => (string | undefined)[]> = {
  'vpc-id': (v) => [v.VpcId],
  'is-default': (v) => [String(v.IsDefault)],
  'isDefault': (v) => [String(v.IsDefault)],
  'cidr': (v) => [v.CidrBlock],
  'cidr-block-association.cidr-block': (v) => v.CidrBlockAssociationSet.map((a) => a.CidrBlock),
  'state': (v) => [v.State],
  'owner-id': (v) => [v.OwnerId],
};

export async function describeSubnets(ctx: ControlContext, input: { SubnetIds?: string[]; Filters?: Ec2Filter[] }): Promise<{ Subnets: SubnetRecord[] }> {
  await ensureDefaultNetwork(ctx);
  let subnets = subnetsOf(ctx);
  if (input.SubnetIds?.length) {
    for (const id of input.SubnetIds) {
      if (!subnetById(ctx, id)) throw new WharfError('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
    }
    subnets = subnets.filter((s) => input.SubnetIds!.includes(s.SubnetId));
  }
  return { Subnets: applyFilters(subnets, input.Filters, SUBNET_FILTERS) };
}

export async function describeVpcs(ctx: ControlContext, input: { VpcIds?: string[]; Filters?: Ec2Filter[] }): Promise<{ Vpcs: VpcRecord[] }> {
  await ensureDefaultNetwork(ctx);
  let vpcs = vpcsOf(ctx);
  if (input.VpcIds?.length) {
    for (const id of input.VpcIds) {
      if (!vpcs.some((v) => v.VpcId === id)) throw new WharfError('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`);
    }
    vpcs = vpcs.filter((v) => input.VpcIds!.includes(v.VpcId));
  }
  return { Vpcs: applyFilters(vpcs, input.Filters, VPC_FILTERS) };
}
