/**
 * Elastic Load Balancing (ELBv2) as Wharf keeps it: the stored records, their keys and ids. Three
 * parts of Wharf meet here, each through the store only:
 *   - the ELBv2 API (control/elbv2-*.ts) creates and changes load balancers, listeners, rules,
 *     target groups and registered targets, and answers DescribeTargetHealth from the registered
 *     targets and the health records;
 *   - the load balancer controller (controllers/load-balancer-controller.ts) turns these records
 *     into the data plane's desired state (loadbalancer/model.ts), and writes back one health
 *     record per target whenever HAProxy's view of it changes (and deletes it once a drained
 *     target is gone);
 *   - ECS services with `loadBalancers` register and deregister their tasks as targets, and read
 *     the health records to count healthy tasks and to wait out draining.
 *
 * Records keep ELBv2's own field names (the API answers them as they are) plus a few fields of
 * Wharf's own, in lower camel case, that the API never shows.
 *
 * Keys (per region, like everything else):
 *   elbloadbalancers/<name>            one per name (ELB names are unique per region), so a
 *                                      duplicate name fails the create atomically
 *   elbtargetgroups/<name>
 *   elblisteners/<load balancer id>/<listener id>
 *   elbrules/<listener id>/<rule id>    non-default rules only (the default rule is the listener's
 *                                      DefaultActions)
 *   elbtargets/<target group id>/<url-encoded target id>:<port>
 *   elbhealth/<target group id>/<url-encoded target id>:<port>
 * Ids are the 16 hex digits that end each ARN; they are also the data plane's ids.
 */
import { randomBytes } from 'node:crypto';
import { AWS_REGIONS, partitionOf } from '../core/regions';
import type { ControlContext } from './context';

/** The SigV4 signing name of ELBv2 (the query-protocol dispatch picks the API by it). */
export const ELBV2_SIGNING_NAME = 'elasticloadbalancing';

export interface ElbTag {
  Key: string;
  Value?: string;
}

export type ElbAction =
  | { Type: 'forward'; Order?: number; TargetGroupArn?: string; ForwardConfig?: { TargetGroups: { TargetGroupArn: string; Weight?: number }[]; TargetGroupStickinessConfig?: { Enabled?: boolean; DurationSeconds?: number } } }
  | { Type: 'fixed-response'; Order?: number; FixedResponseConfig: { StatusCode: string; ContentType?: string; MessageBody?: string } }
  | { Type: 'redirect'; Order?: number; RedirectConfig: { StatusCode: 'HTTP_301' | 'HTTP_302'; Protocol?: string; Host?: string; Port?: string; Path?: string; Query?: string } };

export interface ElbRuleCondition {
  Field: 'path-pattern' | 'host-header' | 'http-header';
  Values?: string[];
  PathPatternConfig?: { Values: string[] };
  HostHeaderConfig?: { Values: string[] };
  HttpHeaderConfig?: { HttpHeaderName: string; Values: string[] };
}

export interface LoadBalancerRecord {
  LoadBalancerArn: string;
  LoadBalancerName: string;
  DNSName: string;
  CanonicalHostedZoneId: string;
  /** Epoch seconds. */
  CreatedTime: number;
  Scheme: 'internet-facing' | 'internal';
  VpcId: string;
  State: { Code: 'provisioning' | 'active' | 'active_impaired' | 'failed'; Reason?: string };
  Type: 'application' | 'network';
  AvailabilityZones: { ZoneName: string; SubnetId: string; LoadBalancerAddresses?: { IpAddress: string }[] }[];
  /** Application load balancers (and network ones created with groups). */
  SecurityGroups?: string[];
  IpAddressType: 'ipv4';
  /** ModifyLoadBalancerAttributes / DescribeLoadBalancerAttributes, as Key -> Value. */
  Attributes: Record<string, string>;
  Tags: ElbTag[];
  /** Wharf: the IPv4 address its listeners bind on this host (loadbalancer/model.ts). */
  address: string;
}

export interface TargetGroupRecord {
  TargetGroupArn: string;
  TargetGroupName: string;
  Protocol: 'HTTP' | 'HTTPS' | 'TCP';
  ProtocolVersion?: string;
  Port: number;
  VpcId: string;
  TargetType: 'ip' | 'instance';
  IpAddressType: 'ipv4';
  HealthCheckEnabled: boolean;
  HealthCheckProtocol: 'HTTP' | 'HTTPS' | 'TCP';
  /** 'traffic-port' or a port number, as a string (ELB's shape). */
  HealthCheckPort: string;
  HealthCheckPath?: string;
  HealthCheckIntervalSeconds: number;
  HealthCheckTimeoutSeconds: number;
  HealthyThresholdCount: number;
  UnhealthyThresholdCount: number;
  Matcher?: { HttpCode: string };
  /** ModifyTargetGroupAttributes / DescribeTargetGroupAttributes, as Key -> Value (every key ELB
   * shows, defaults included, e.g. `deregistration_delay.timeout_seconds` = '300'). */
  Attributes: Record<string, string>;
  Tags: ElbTag[];
  CreatedTime: number;
}

export interface ListenerRecord {
  ListenerArn: string;
  LoadBalancerArn: string;
  Port: number;
  Protocol: 'HTTP' | 'HTTPS' | 'TCP';
  Certificates?: { CertificateArn: string; IsDefault?: boolean }[];
  SslPolicy?: string;
  DefaultActions: ElbAction[];
  Tags: ElbTag[];
}

/**
 * Wharf has no ACM: a listener's `CertificateArn` names a PEM file (certificate chain and private
 * key) by absolute path or `file://` URL. The path the data plane reads, or undefined if the name
 * is neither.
 */
export function certificateFile(certificateArn: string): string | undefined {
  if (certificateArn.startsWith('file://')) {
    try {
      return decodeURIComponent(new URL(certificateArn).pathname);
    } catch {
      return undefined;
    }
  }
  return certificateArn.startsWith('/') ? certificateArn : undefined;
}

export interface RuleRecord {
  RuleArn: string;
  ListenerArn: string;
  /** '1'..'50000' (the default rule is not stored: it is the listener's DefaultActions). */
  Priority: string;
  Conditions: ElbRuleCondition[];
  Actions: ElbAction[];
  Tags: ElbTag[];
}

/** A registered target. ip targets: `Id` is the IPv4 address; instance targets: the EC2 instance
 * id of a container instance (its address on this host is resolved by the controller). */
export interface TargetRecord {
  Id: string;
  Port: number;
  AvailabilityZone?: string;
  /** Epoch milliseconds of the registration (ELB's `initial` lasts until the first checks pass). */
  registeredAt: number;
}

export type TargetHealthStateCode = 'initial' | 'healthy' | 'unhealthy' | 'unused' | 'draining' | 'unavailable';

/** HAProxy's view of one target, written by the load balancer controller when it changes. */
export interface TargetHealthRecord {
  Id: string;
  Port: number;
  State: TargetHealthStateCode;
  /** ELB's reason codes, e.g. Elb.RegistrationInProgress, Target.FailedHealthChecks, Target.DeregistrationInProgress. */
  Reason?: string;
  Description?: string;
  /** Epoch milliseconds of the last change. */
  updatedAt: number;
}

export const targetChild = (id: string, port: number) => `${encodeURIComponent(id)}:${port}`;

export const loadBalancerKey = (name: string) => `elbloadbalancers/${name}`;
export const targetGroupKey = (name: string) => `elbtargetgroups/${name}`;
export const listenerKey = (loadBalancerId: string, listenerId: string) => `elblisteners/${loadBalancerId}/${listenerId}`;
export const ruleKey = (listenerId: string, ruleId: string) => `elbrules/${listenerId}/${ruleId}`;
export const targetKeyOf = (targetGroupId: string, id: string, port: number) => `elbtargets/${targetGroupId}/${targetChild(id, port)}`;
export const healthKey = (targetGroupId: string, id: string, port: number) => `elbhealth/${targetGroupId}/${targetChild(id, port)}`;

/** 16 lowercase hex digits, as the last segment of ELB's ARNs. */
export const newElbId = () => randomBytes(8).toString('hex');

/** The id (last segment) of any ELBv2 ARN. */
export const elbIdOf = (arn: string): string => arn.slice(arn.lastIndexOf('/') + 1);

export function elbArn(ctx: ControlContext, resource: string): string {
  return `arn:${partitionOf(ctx.partition.region)}:elasticloadbalancing:${ctx.partition.region}:${ctx.partition.accountId}:${resource}`;
}

/** Entries in the order they were created (the store's create revision). */
function byCreation<T>(entries: Iterable<{ value: unknown; createRevision: number }>): T[] {
  return [...entries].sort((a, b) => a.createRevision - b.createRevision).map((e) => e.value as T);
}

export const allLoadBalancers = (ctx: ControlContext): LoadBalancerRecord[] => byCreation(ctx.state.elbLoadBalancers.all());
export const allTargetGroups = (ctx: ControlContext): TargetGroupRecord[] => byCreation(ctx.state.elbTargetGroups.all());
export const listenersOf = (ctx: ControlContext, loadBalancerId: string): ListenerRecord[] => byCreation(ctx.state.elbListeners.children(loadBalancerId).values());
export const rulesOf = (ctx: ControlContext, listenerId: string): RuleRecord[] => byCreation(ctx.state.elbRules.children(listenerId).values());
export const targetsOf = (ctx: ControlContext, targetGroupId: string): TargetRecord[] => byCreation(ctx.state.elbTargets.children(targetGroupId).values());
export const healthOf = (ctx: ControlContext, targetGroupId: string): TargetHealthRecord[] => byCreation(ctx.state.elbHealth.children(targetGroupId).values());

export function findTargetGroup(ctx: ControlContext, arn: string): { tg: TargetGroupRecord; revision: number } | undefined {
  const id = elbIdOf(arn);
  for (const e of ctx.state.elbTargetGroups.all()) {
    const tg = e.value as TargetGroupRecord;
    if (elbIdOf(tg.TargetGroupArn) === id && tg.TargetGroupArn === arn) return { tg, revision: e.modRevision };
  }
  return undefined;
}

export function findLoadBalancer(ctx: ControlContext, arn: string): { lb: LoadBalancerRecord; revision: number } | undefined {
  for (const e of ctx.state.elbLoadBalancers.all()) {
    const lb = e.value as LoadBalancerRecord;
    if (lb.LoadBalancerArn === arn) return { lb, revision: e.modRevision };
  }
  return undefined;
}

/**
 * Load balancer addresses. Each load balancer listens on its own IPv4 address, so two can both
 * listen on port 80; the address must be reachable from the host and from tasks (whose own
 * network namespaces make 127.0.0.0/8 their own loopback), so it lives on a host interface of
 * Wharf's (the load balancer controller puts it there), in ELB_ADDRESS_PREFIX.0.0/16. One process
 * serves every region with one HAProxy, so each region has its own /24: the third octet is the
 * region's index in AWS_REGIONS, the fourth 1..254 (ELB's default quota is 50 per region).
 */
export const ELB_ADDRESS_PREFIX = '10.99';

export function allocateLoadBalancerAddress(region: string, taken: Iterable<string>): string | undefined {
  const index = AWS_REGIONS.indexOf(region);
  if (index < 0 || index > 255) return undefined;
  const used = new Set(taken);
  for (let i = 1; i < 255; i++) {
    const a = `${ELB_ADDRESS_PREFIX}.${index}.${i}`;
    if (!used.has(a)) return a;
  }
  return undefined;
}
