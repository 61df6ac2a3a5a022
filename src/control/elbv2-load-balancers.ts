/**
 * ELBv2 load balancers: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and their
 * attributes. A load balancer lives in the region's default VPC (control/vpc.ts), in the subnets
 * it names (an application load balancer in at least two zones, as on ELB), and gets its own
 * IPv4 address on this host from `allocateLoadBalancerAddress`, which the data plane binds its
 * listeners to. It is `active` at once: nothing is provisioned that could take time.
 */
import { partitionOf } from '../core/regions';
import type { TxnOp } from '../store/store';
import type { ControlContext } from './context';
import { checkElbName, checkTags, commit, elbError, elbWrite, loadBalancerNotFound, pageOf, validationError } from './elbv2-common';
import {
  allLoadBalancers,
  allocateLoadBalancerAddress,
  elbArn,
  elbIdOf,
  findLoadBalancer,
  listenerKey,
  listenersOf,
  loadBalancerKey,
  newElbId,
  ruleKey,
  rulesOf,
  type ElbTag,
  type LoadBalancerRecord,
} from './elbv2-records';
import { securityGroupById } from './security-groups';
import { ensureDefaultNetwork, subnetById } from './vpc';

export interface CreateLoadBalancerInput {
  Name: string;
  Subnets?: string[];
  SubnetMappings?: { SubnetId?: string; AllocationId?: string; PrivateIPv4Address?: string; IPv6Address?: string }[];
  SecurityGroups?: string[];
  Scheme?: string;
  Tags?: ElbTag[];
  Type?: string;
  IpAddressType?: string;
  CustomerOwnedIpv4Pool?: string;
}

/** Route 53's hosted zone of ELB's DNS names, per region (ELB's service endpoints table). */
const HOSTED_ZONES: Record<string, { application: string; network: string }> = {
  'us-east-1': { application: 'Z35SXDOTRQ7X7K', network: 'Z26RNL4JYFTOTI' },
  'us-east-2': { application: 'Z3AADJGX6KTTL2', network: 'ZLMOA37VPKANP' },
  'us-west-1': { application: 'Z368ELLRRE2KJ0', network: 'Z24FKFUX50B4VW' },
  'us-west-2': { application: 'Z1H1FL5HABSF5', network: 'Z18D5FSROUN65G' },
  'eu-west-1': { application: 'Z32O12XQLNTSW2', network: 'Z2IFOLAFXWLO4F' },
  'eu-west-2': { application: 'ZHURV8PSTC4K8', network: 'ZD4D7Y8KGAS4G' },
  'eu-west-3': { application: 'Z3Q77PNBQS71R4', network: 'Z1CMS0P5QUZ6D5' },
  'eu-central-1': { application: 'Z215JYRZR1TBD5', network: 'Z3F0SRJ5LGBH90' },
  'ap-northeast-1': { application: 'Z14GRHDCWA56QT', network: 'Z31USIVHYNEOWT' },
  'ap-southeast-1': { application: 'Z1LMS91P8CMLE5', network: 'ZKVM4W9LS7TM' },
  'ap-southeast-2': { application: 'Z1GM3OXH4ZPM65', network: 'ZCT6FZBF4DROD' },
};

function hostedZone(region: string, type: 'application' | 'network'): string {
  const known = HOSTED_ZONES[region];
  if (known) return known[type];
  // Regions not in the table get a stable id of the same shape.
  let h = 0;
  for (const c of `${region}/${type}`) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `Z${h.toString(36).toUpperCase().padStart(12, '0').slice(0, 12)}`;
}

/** ELB's DNS names: `name-1234567890.region.elb.amazonaws.com` (application, `internal-` first
 * when internal) and `name-<16 hex>.elb.region.amazonaws.com` (network). */
function dnsNameOf(region: string, name: string, id: string, type: 'application' | 'network', scheme: string): string {
  const suffix = partitionOf(region) === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
  const prefix = scheme === 'internal' ? 'internal-' : '';
  if (type === 'network') return `${prefix}${name}-${id}.elb.${region}.${suffix}`.toLowerCase();
  const digits = String(Number.parseInt(id.slice(0, 12), 16) % 10_000_000_000);
  return `${prefix}${name}-${digits}.${region}.elb.${suffix}`.toLowerCase();
}

/** The attributes ELB shows for each type, with its defaults. */
export const LOAD_BALANCER_ATTRIBUTES: Record<'application' | 'network', Record<string, string>> = {
  application: {
    'access_logs.s3.enabled': 'false',
    'access_logs.s3.bucket': '',
    'access_logs.s3.prefix': '',
    'client_keep_alive.seconds': '3600',
    'connection_logs.s3.enabled': 'false',
    'connection_logs.s3.bucket': '',
    'connection_logs.s3.prefix': '',
    'deletion_protection.enabled': 'false',
    'idle_timeout.timeout_seconds': '60',
    'routing.http.desync_mitigation_mode': 'defensive',
    'routing.http.drop_invalid_header_fields.enabled': 'false',
    'routing.http.preserve_host_header.enabled': 'false',
    'routing.http.x_amzn_tls_version_and_cipher_suite.enabled': 'false',
    'routing.http.xff_client_port.enabled': 'false',
    'routing.http.xff_header_processing.mode': 'append',
    'routing.http2.enabled': 'true',
    'waf.fail_open.enabled': 'false',
    'zonal_shift.config.enabled': 'false',
  },
  network: {
    'access_logs.s3.enabled': 'false',
    'access_logs.s3.bucket': '',
    'access_logs.s3.prefix': '',
    'deletion_protection.enabled': 'false',
    'dns_record.client_routing_policy': 'any_availability_zone',
    'load_balancing.cross_zone.enabled': 'false',
    'zonal_shift.config.enabled': 'false',
  },
};

const BOOLEAN = /^(true|false)$/;
const VALUE_RULES: Record<string, { test: (v: string) => boolean; says: string }> = {
  'client_keep_alive.seconds': { test: (v) => /^\d+$/.test(v) && +v >= 60 && +v <= 604800, says: 'an integer from 60 to 604800' },
  'idle_timeout.timeout_seconds': { test: (v) => /^\d+$/.test(v) && +v >= 1 && +v <= 4000, says: 'an integer from 1 to 4000' },
  'routing.http.desync_mitigation_mode': { test: (v) => ['monitor', 'defensive', 'strictest'].includes(v), says: "one of 'monitor', 'defensive', 'strictest'" },
  'routing.http.xff_header_processing.mode': { test: (v) => ['append', 'preserve', 'remove'].includes(v), says: "one of 'append', 'preserve', 'remove'" },
  'dns_record.client_routing_policy': {
    test: (v) => ['any_availability_zone', 'availability_zone_affinity', 'partial_availability_zone_affinity'].includes(v),
    says: "one of 'any_availability_zone', 'availability_zone_affinity', 'partial_availability_zone_affinity'",
  },
  'access_logs.s3.bucket': { test: () => true, says: '' },
  'access_logs.s3.prefix': { test: () => true, says: '' },
  'connection_logs.s3.bucket': { test: () => true, says: '' },
  'connection_logs.s3.prefix': { test: () => true, says: '' },
};

function checkAttribute(type: 'application' | 'network', key: string, value: string): void {
  if (!(key in LOAD_BALANCER_ATTRIBUTES[type])) throw validationError(`Load balancer attribute key '${key}' is not recognized`);
  const rule = VALUE_RULES[key];
  if (rule ? !rule.test(value) : !BOOLEAN.test(value)) throw validationError(`Load balancer attribute '${key}' must be ${rule ? rule.says : "'true' or 'false'"}, not '${value}'`);
  // Wharf has no S3: logs that could never be written are refused rather than kept as a promise.
  if ((key === 'access_logs.s3.enabled' || key === 'connection_logs.s3.enabled') && value === 'true') {
    throw elbError('InvalidConfigurationRequest', `Wharf has no S3: '${key}' cannot be enabled`);
  }
}

/** The zones and subnets a request names, checked against the region's VPC. */
function subnetsOfRequest(ctx: ControlContext, input: CreateLoadBalancerInput, type: 'application' | 'network'): { ZoneName: string; SubnetId: string }[] {
  if (input.Subnets && input.SubnetMappings) throw validationError('You can specify subnets or subnet mappings, not both');
  const mappings: NonNullable<CreateLoadBalancerInput['SubnetMappings']> = input.SubnetMappings ?? (input.Subnets ?? []).map((SubnetId) => ({ SubnetId }));
  const out: { ZoneName: string; SubnetId: string }[] = [];
  for (const m of mappings) {
    if (m.AllocationId || m.PrivateIPv4Address || m.IPv6Address) throw validationError('Wharf does not support Elastic IP allocations or fixed addresses in subnet mappings');
    if (!m.SubnetId) throw validationError('A subnet mapping must name a subnet');
    const subnet = subnetById(ctx, m.SubnetId);
    if (!subnet) throw elbError('SubnetNotFound', `The subnet ID '${m.SubnetId}' is not valid`);
    if (out.some((o) => o.SubnetId === subnet.SubnetId)) throw validationError(`The subnet ID '${m.SubnetId}' is specified more than once`);
    if (out.some((o) => o.ZoneName === subnet.AvailabilityZone)) throw elbError('InvalidConfigurationRequest', 'A load balancer cannot be attached to multiple subnets in the same Availability Zone');
    out.push({ ZoneName: subnet.AvailabilityZone, SubnetId: subnet.SubnetId });
  }
  if (type === 'application' && out.length < 2) throw validationError('At least two subnets in two different Availability Zones must be specified');
  if (out.length === 0) throw validationError('At least one subnet must be specified');
  return out;
}

export async function createLoadBalancer(ctx: ControlContext, input: CreateLoadBalancerInput): Promise<{ LoadBalancers: LoadBalancerRecord[] }> {
  const name = input.Name;
  checkElbName(name, 'load balancer');
  if (name.startsWith('internal-')) throw validationError(`The load balancer name '${name}' cannot begin with 'internal-'`);
  const type = input.Type ?? 'application';
  if (type !== 'application' && type !== 'network') throw validationError(`Wharf supports load balancers of type 'application' and 'network', not '${type}'`);
  const scheme = input.Scheme ?? 'internet-facing';
  if ((input.IpAddressType ?? 'ipv4') !== 'ipv4') throw validationError(`Wharf supports IP address type 'ipv4' only, not '${input.IpAddressType}'`);
  if (input.CustomerOwnedIpv4Pool !== undefined) throw validationError('Wharf has no customer-owned IP pools');
  const net = await ensureDefaultNetwork(ctx);
  const zones = subnetsOfRequest(ctx, input, type);
  let groups: string[] | undefined;
  if (input.SecurityGroups !== undefined) {
    groups = [...new Set(input.SecurityGroups)];
    for (const g of groups) {
      const sg = securityGroupById(ctx, g);
      if (!sg || sg.VpcId !== net.vpc.VpcId) throw elbError('InvalidSecurityGroup', `Security group '${g}' does not exist`);
    }
  } else if (type === 'application') {
    groups = [net.defaultGroup.GroupId];
  }
  const tags = checkTags(input.Tags);
  return elbWrite(ctx, async () => {
    const existing = ctx.state.elbLoadBalancers.get('', name)?.value as LoadBalancerRecord | undefined;
    if (existing) {
      const same =
        existing.Type === type &&
        existing.Scheme === scheme &&
        sameSet(existing.AvailabilityZones.map((z) => z.SubnetId), zones.map((z) => z.SubnetId)) &&
        sameSet(existing.SecurityGroups ?? [], groups ?? []);
      // ELB answers a repeated create with the same settings with the load balancer it made.
      if (same) return { LoadBalancers: [shown(existing)] };
      throw elbError('DuplicateLoadBalancerName', `A load balancer with the same name '${name}' exists, but with different settings`);
    }
    const taken = [...allLoadBalancers(ctx).map((lb) => lb.address), ...(ctx.elbAddressesInUse?.() ?? [])];
    const address = allocateLoadBalancerAddress(ctx.partition.region, taken);
    if (!address) throw elbError('TooManyLoadBalancers', 'The quota for the number of load balancers in this region has been reached');
    const id = newElbId();
    const lb: LoadBalancerRecord = {
      LoadBalancerArn: elbArn(ctx, `loadbalancer/${type === 'application' ? 'app' : 'net'}/${name}/${id}`),
      LoadBalancerName: name,
      DNSName: dnsNameOf(ctx.partition.region, name, id, type, scheme),
      CanonicalHostedZoneId: hostedZone(ctx.partition.region, type),
      CreatedTime: Math.floor(ctx.clock.now() / 1000),
      Scheme: scheme as LoadBalancerRecord['Scheme'],
      VpcId: net.vpc.VpcId,
      State: { Code: 'active' },
      Type: type,
      AvailabilityZones: zones,
      ...(groups ? { SecurityGroups: groups } : {}),
      IpAddressType: 'ipv4',
      Attributes: { ...LOAD_BALANCER_ATTRIBUTES[type] },
      Tags: tags,
      address,
    };
    await commit(ctx, [{ op: 'create', key: loadBalancerKey(name), value: lb }]);
    return { LoadBalancers: [shown(lb)] };
  });
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

export function requireLoadBalancer(ctx: ControlContext, arn: string): { lb: LoadBalancerRecord; revision: number } {
  const found = findLoadBalancer(ctx, arn);
  if (!found) throw loadBalancerNotFound();
  return found;
}

export async function describeLoadBalancers(
  ctx: ControlContext,
  input: { LoadBalancerArns?: string[]; Names?: string[]; Marker?: string; PageSize?: number },
): Promise<{ LoadBalancers: LoadBalancerRecord[]; NextMarker?: string }> {
  if (input.LoadBalancerArns?.length && input.Names?.length) throw validationError('Load balancer names and load balancer ARNs cannot be specified at the same time');
  let list = allLoadBalancers(ctx);
  if (input.LoadBalancerArns?.length) {
    list = input.LoadBalancerArns.map((arn) => requireLoadBalancer(ctx, arn).lb);
  } else if (input.Names?.length) {
    list = input.Names.map((n) => {
      const lb = ctx.state.elbLoadBalancers.get('', n)?.value as LoadBalancerRecord | undefined;
      if (!lb) throw elbError('LoadBalancerNotFound', `Load balancers '[${n}]' not found`);
      return lb;
    });
  }
  const { page, NextMarker } = pageOf(list, (lb) => lb.LoadBalancerArn, input);
  const shownPage = page.map(shown);
  return NextMarker ? { LoadBalancers: shownPage, NextMarker } : { LoadBalancers: shownPage };
}

/**
 * A load balancer as the API shows it: each zone lists the address its listeners answer on (the
 * one address on this host, `LoadBalancerAddresses[].IpAddress`; ELB shows zone addresses for
 * network load balancers only, Wharf for both types, since no public DNS resolves the name).
 */
function shown(lb: LoadBalancerRecord): LoadBalancerRecord {
  return { ...lb, AvailabilityZones: lb.AvailabilityZones.map((z) => ({ ...z, LoadBalancerAddresses: [{ IpAddress: lb.address }] })) };
}

/** Deletes a load balancer with its listeners and their rules. An unknown ARN is not an error
 * (ELB's DeleteLoadBalancer is idempotent). Its target groups stay, no longer in use. */
export async function deleteLoadBalancer(ctx: ControlContext, input: { LoadBalancerArn: string }): Promise<Record<string, never>> {
  return elbWrite(ctx, async () => {
    const found = findLoadBalancer(ctx, input.LoadBalancerArn);
    if (!found) return {};
    const { lb, revision } = found;
    if (lb.Attributes['deletion_protection.enabled'] === 'true') {
      throw elbError('OperationNotPermitted', `Load balancer '${lb.LoadBalancerArn}' cannot be deleted because deletion protection is enabled`);
    }
    const lbId = elbIdOf(lb.LoadBalancerArn);
    const ops: TxnOp[] = [{ op: 'delete', key: loadBalancerKey(lb.LoadBalancerName), expectedRevision: revision }];
    for (const l of listenersOf(ctx, lbId)) {
      const listenerId = elbIdOf(l.ListenerArn);
      ops.push({ op: 'delete', key: listenerKey(lbId, listenerId) });
      for (const r of rulesOf(ctx, listenerId)) ops.push({ op: 'delete', key: ruleKey(listenerId, elbIdOf(r.RuleArn)) });
    }
    await commit(ctx, ops);
    return {};
  });
}

type Attribute = { Key: string; Value: string };
const asList = (attrs: Record<string, string>): Attribute[] => Object.entries(attrs).map(([Key, Value]) => ({ Key, Value }));

export async function describeLoadBalancerAttributes(ctx: ControlContext, input: { LoadBalancerArn: string }): Promise<{ Attributes: Attribute[] }> {
  return { Attributes: asList(requireLoadBalancer(ctx, input.LoadBalancerArn).lb.Attributes) };
}

export async function modifyLoadBalancerAttributes(ctx: ControlContext, input: { LoadBalancerArn: string; Attributes: { Key?: string; Value?: string }[] }): Promise<{ Attributes: Attribute[] }> {
  return elbWrite(ctx, async () => {
    const { lb, revision } = requireLoadBalancer(ctx, input.LoadBalancerArn);
    const attrs = { ...lb.Attributes };
    for (const a of input.Attributes) {
      const key = a.Key ?? '';
      const value = a.Value ?? '';
      checkAttribute(lb.Type, key, value);
      attrs[key] = value;
    }
    const next: LoadBalancerRecord = { ...lb, Attributes: attrs };
    await commit(ctx, [{ op: 'update', key: loadBalancerKey(lb.LoadBalancerName), value: next, expectedRevision: revision }]);
    return { Attributes: asList(attrs) };
  });
}
