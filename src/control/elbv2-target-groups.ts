/**
 * ELBv2 target groups: Create/Describe/Modify/DeleteTargetGroup and their attributes, with ELB's
 * per-protocol health check defaults. A target group is HTTP or HTTPS (for application load
 * balancers) or TCP (for network ones), of target type ip or instance, in the region's VPC.
 * DescribeTargetGroups derives LoadBalancerArns from the listeners and rules forwarding to it.
 */
import type { ControlContext } from './context';
import { checkElbName, checkTags, commit, elbError, elbWrite, hasControlCharacter, pageOf, targetGroupNotFound, targetGroupUsage, validationError } from './elbv2-common';
import { allTargetGroups, elbArn, elbIdOf, findLoadBalancer, findTargetGroup, newElbId, targetGroupKey, targetKeyOf, targetsOf, type ElbTag, type TargetGroupRecord } from './elbv2-records';
import { ensureDefaultNetwork } from './vpc';

type Protocol = TargetGroupRecord['Protocol'];

interface HealthCheckInput {
  HealthCheckProtocol?: string;
  HealthCheckPort?: string;
  HealthCheckEnabled?: boolean;
  HealthCheckPath?: string;
  HealthCheckIntervalSeconds?: number;
  HealthCheckTimeoutSeconds?: number;
  HealthyThresholdCount?: number;
  UnhealthyThresholdCount?: number;
  Matcher?: { HttpCode?: string; GrpcCode?: string };
}

export interface CreateTargetGroupInput extends HealthCheckInput {
  Name: string;
  Protocol?: string;
  ProtocolVersion?: string;
  Port?: number;
  VpcId?: string;
  TargetType?: string;
  Tags?: ElbTag[];
  IpAddressType?: string;
  TargetControlPort?: number;
}

const SUPPORTED: readonly string[] = ['HTTP', 'HTTPS', 'TCP'];

/** The attributes ELB shows for a target group of each kind, with its defaults. */
export function targetGroupAttributeDefaults(protocol: Protocol, targetType: 'ip' | 'instance'): Record<string, string> {
  if (protocol === 'TCP') {
    return {
      'deregistration_delay.timeout_seconds': '300',
      'deregistration_delay.connection_termination.enabled': 'false',
      // Targets see the load balancer's address: Wharf's data plane does not keep the client's.
      'preserve_client_ip.enabled': 'false',
      'proxy_protocol_v2.enabled': 'false',
      'stickiness.enabled': 'false',
      'stickiness.type': 'source_ip',
      'load_balancing.cross_zone.enabled': 'use_load_balancer_configuration',
      'target_health_state.unhealthy.connection_termination.enabled': 'true',
    };
  }
  return {
    'deregistration_delay.timeout_seconds': '300',
    'slow_start.duration_seconds': '0',
    'stickiness.enabled': 'false',
    'stickiness.type': 'lb_cookie',
    'stickiness.lb_cookie.duration_seconds': '86400',
    'stickiness.app_cookie.cookie_name': '',
    'stickiness.app_cookie.duration_seconds': '86400',
    'load_balancing.algorithm.type': 'round_robin',
    'load_balancing.algorithm.anomaly_mitigation': 'off',
    'load_balancing.cross_zone.enabled': 'use_load_balancer_configuration',
  };
}

const int = (lo: number, hi: number) => (v: string) => /^\d+$/.test(v) && +v >= lo && +v <= hi;
const ATTRIBUTE_RULES: Record<string, { test: (v: string) => boolean; says: string }> = {
  'deregistration_delay.timeout_seconds': { test: int(0, 3600), says: 'an integer from 0 to 3600' },
  'slow_start.duration_seconds': { test: (v) => v === '0' || int(30, 900)(v), says: '0 or an integer from 30 to 900' },
  'stickiness.lb_cookie.duration_seconds': { test: int(1, 604800), says: 'an integer from 1 to 604800' },
  'stickiness.app_cookie.duration_seconds': { test: int(1, 604800), says: 'an integer from 1 to 604800' },
  'stickiness.app_cookie.cookie_name': { test: () => true, says: '' },
  'load_balancing.algorithm.type': { test: (v) => ['round_robin', 'least_outstanding_requests'].includes(v), says: "'round_robin' or 'least_outstanding_requests'" },
  'load_balancing.algorithm.anomaly_mitigation': { test: (v) => v === 'off', says: "'off' (Wharf has no weighted random routing)" },
  'load_balancing.cross_zone.enabled': { test: (v) => ['true', 'false', 'use_load_balancer_configuration'].includes(v), says: "'true', 'false' or 'use_load_balancer_configuration'" },
};

function checkTargetGroupAttribute(tg: TargetGroupRecord, key: string, value: string): void {
  if (!(key in tg.Attributes)) throw validationError(`Target group attribute key '${key}' is not recognized`);
  const rule = ATTRIBUTE_RULES[key];
  if (key === 'stickiness.type') {
    const allowed = tg.Protocol === 'TCP' ? ['source_ip'] : ['lb_cookie'];
    if (!allowed.includes(value)) throw validationError(`Target group attribute 'stickiness.type' must be ${allowed.map((a) => `'${a}'`).join(' or ')} for a ${tg.Protocol} target group (Wharf has no app_cookie stickiness)`);
    return;
  }
  if (rule ? !rule.test(value) : !/^(true|false)$/.test(value)) throw validationError(`Target group attribute '${key}' must be ${rule ? rule.says : "'true' or 'false'"}, not '${value}'`);
  if (key === 'proxy_protocol_v2.enabled' && value === 'true') throw validationError('Wharf does not send the proxy protocol: proxy_protocol_v2.enabled cannot be true');
  if (key === 'preserve_client_ip.enabled' && value === 'true') throw validationError("Wharf's load balancers do not preserve client IP addresses (targets see the load balancer's): preserve_client_ip.enabled cannot be true");
}

/** Health check settings after defaults, checked as ELB checks them. */
function healthCheckOf(protocol: Protocol, input: HealthCheckInput, base?: TargetGroupRecord): Pick<
  TargetGroupRecord,
  'HealthCheckEnabled' | 'HealthCheckProtocol' | 'HealthCheckPort' | 'HealthCheckPath' | 'HealthCheckIntervalSeconds' | 'HealthCheckTimeoutSeconds' | 'HealthyThresholdCount' | 'UnhealthyThresholdCount' | 'Matcher'
> {
  const hcProtocol = (input.HealthCheckProtocol ?? base?.HealthCheckProtocol ?? (protocol === 'TCP' ? 'TCP' : protocol)) as Protocol;
  if (!SUPPORTED.includes(hcProtocol)) throw validationError(`Health check protocol '${hcProtocol}' is not supported; use HTTP, HTTPS or TCP`);
  if (protocol !== 'TCP' && hcProtocol === 'TCP') throw validationError(`Health check protocol 'TCP' is not supported for target groups with the ${protocol} protocol`);
  const http = hcProtocol !== 'TCP';
  const protocolChanged = base !== undefined && hcProtocol !== base.HealthCheckProtocol;
  const port = input.HealthCheckPort ?? base?.HealthCheckPort ?? 'traffic-port';
  if (port !== 'traffic-port' && !(/^\d+$/.test(port) && +port >= 1 && +port <= 65535)) throw validationError(`Health check port '${port}' must be 'traffic-port' or a port from 1 to 65535`);
  const path = input.HealthCheckPath ?? (protocolChanged ? undefined : base?.HealthCheckPath) ?? (http ? '/' : undefined);
  if (!http && input.HealthCheckPath !== undefined) throw validationError('A health check path cannot be specified for TCP health checks');
  if (path !== undefined && !path.startsWith('/')) throw validationError(`Health check path '${path}' must begin with '/'`);
  if (path !== undefined && hasControlCharacter(path)) throw validationError(`Health check path '${path}' contains characters that are not allowed`);
  if (!http && input.Matcher !== undefined) throw validationError('A health check matcher cannot be specified for TCP health checks');
  if (input.Matcher?.GrpcCode !== undefined) throw validationError('Wharf has no gRPC health checks: use Matcher HttpCode');
  const defaultMatcher = protocol === 'TCP' ? '200-399' : '200';
  const matcher = http ? (input.Matcher?.HttpCode ?? (protocolChanged ? undefined : base?.Matcher?.HttpCode) ?? defaultMatcher) : undefined;
  if (matcher !== undefined) checkMatcher(matcher, protocol === 'TCP' ? 599 : 499);
  // ELB: HTTP/HTTPS groups (application) time out after 5 s; TCP groups after 10 s for TCP and
  // HTTPS checks and 6 s for HTTP checks.
  const defaultTimeout = protocol !== 'TCP' ? 5 : hcProtocol === 'HTTP' ? 6 : 10;
  const interval = input.HealthCheckIntervalSeconds ?? base?.HealthCheckIntervalSeconds ?? 30;
  const timeout = input.HealthCheckTimeoutSeconds ?? (protocolChanged ? undefined : base?.HealthCheckTimeoutSeconds) ?? defaultTimeout;
  // An application load balancer's (HTTP/HTTPS group) timeout must be below the interval; a network
  // load balancer's (TCP group) may equal it, so interval 10 with TCP's default timeout 10 is valid.
  if (protocol !== 'TCP' && timeout >= interval) throw validationError('Health check interval must be greater than the timeout.');
  if (protocol === 'TCP' && timeout > interval) throw validationError(`Health check timeout '${timeout}' must be smaller than or equal to the interval '${interval}'`);
  return {
    HealthCheckEnabled: input.HealthCheckEnabled ?? base?.HealthCheckEnabled ?? true,
    HealthCheckProtocol: hcProtocol,
    HealthCheckPort: port,
    ...(path !== undefined ? { HealthCheckPath: path } : {}),
    HealthCheckIntervalSeconds: interval,
    HealthCheckTimeoutSeconds: timeout,
    HealthyThresholdCount: input.HealthyThresholdCount ?? base?.HealthyThresholdCount ?? 5,
    UnhealthyThresholdCount: input.UnhealthyThresholdCount ?? base?.UnhealthyThresholdCount ?? 2,
    ...(matcher !== undefined ? { Matcher: { HttpCode: matcher } } : {}),
  };
}

/** ELB's matcher: codes and ranges, comma-separated, each from 200 to `max`. */
function checkMatcher(code: string, max: number): void {
  const ok = code.split(',').every((part) => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part.trim());
    if (!m) return false;
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    return lo >= 200 && hi <= max && lo <= hi;
  });
  if (!ok) throw validationError(`Health check matcher HTTP code '${code}' must be values or ranges between 200 and ${max}`);
}

export async function createTargetGroup(ctx: ControlContext, input: CreateTargetGroupInput): Promise<{ TargetGroups: TargetGroupRecord[] }> {
  const name = input.Name;
  checkElbName(name, 'target group');
  const targetType = input.TargetType ?? 'instance';
  if (targetType !== 'ip' && targetType !== 'instance') throw validationError(`Wharf supports target types 'ip' and 'instance', not '${targetType}'`);
  if (input.Protocol === undefined) throw validationError('A protocol must be specified');
  if (input.Port === undefined) throw validationError('A port must be specified');
  if (input.VpcId === undefined) throw validationError('A VPC ID must be specified');
  if (!SUPPORTED.includes(input.Protocol)) throw validationError(`Wharf supports target groups with the HTTP, HTTPS or TCP protocol, not '${input.Protocol}'`);
  const protocol = input.Protocol as Protocol;
  if (input.ProtocolVersion !== undefined && (protocol === 'TCP' || input.ProtocolVersion !== 'HTTP1')) throw validationError(`Protocol version '${input.ProtocolVersion}' is not supported: Wharf forwards HTTP/1.1 (HTTP1)`);
  if ((input.IpAddressType ?? 'ipv4') !== 'ipv4') throw validationError(`Wharf supports IP address type 'ipv4' only, not '${input.IpAddressType}'`);
  if (input.TargetControlPort !== undefined) throw validationError('Wharf has no target control port');
  const net = await ensureDefaultNetwork(ctx);
  if (input.VpcId !== net.vpc.VpcId) throw validationError(`The VPC ID '${input.VpcId}' is not found`);
  const tags = checkTags(input.Tags);
  const health = healthCheckOf(protocol, input);
  return elbWrite(ctx, async () => {
    const existing = ctx.state.elbTargetGroups.get('', name)?.value as TargetGroupRecord | undefined;
    if (existing) {
      const same =
        existing.Protocol === protocol &&
        existing.Port === input.Port &&
        existing.VpcId === input.VpcId &&
        existing.TargetType === targetType &&
        (Object.keys(health) as (keyof typeof health)[]).every((k) => JSON.stringify(existing[k]) === JSON.stringify(health[k]));
      if (same) return { TargetGroups: [withLoadBalancers(ctx, existing)] };
      throw elbError('DuplicateTargetGroupName', `A target group with the same name '${name}' exists, but with different settings`);
    }
    const tg: TargetGroupRecord = {
      TargetGroupArn: elbArn(ctx, `targetgroup/${name}/${newElbId()}`),
      TargetGroupName: name,
      Protocol: protocol,
      ...(protocol !== 'TCP' ? { ProtocolVersion: 'HTTP1' } : {}),
      Port: input.Port!,
      VpcId: net.vpc.VpcId,
      TargetType: targetType,
      IpAddressType: 'ipv4',
      ...health,
      Attributes: targetGroupAttributeDefaults(protocol, targetType),
      Tags: tags,
      CreatedTime: Math.floor(ctx.clock.now() / 1000),
    };
    await commit(ctx, [{ op: 'create', key: targetGroupKey(name), value: tg }]);
    return { TargetGroups: [withLoadBalancers(ctx, tg)] };
  });
}

/** The wire form: the record plus the load balancers forwarding to it. */
function withLoadBalancers(ctx: ControlContext, tg: TargetGroupRecord, usage = targetGroupUsage(ctx)): TargetGroupRecord & { LoadBalancerArns: string[] } {
  return { ...tg, LoadBalancerArns: [...(usage.get(tg.TargetGroupArn) ?? [])] };
}

export function requireTargetGroup(ctx: ControlContext, arn: string): { tg: TargetGroupRecord; revision: number } {
  const found = findTargetGroup(ctx, arn);
  if (!found) throw targetGroupNotFound();
  return found;
}

export async function describeTargetGroups(
  ctx: ControlContext,
  input: { LoadBalancerArn?: string; TargetGroupArns?: string[]; Names?: string[]; Marker?: string; PageSize?: number },
): Promise<{ TargetGroups: TargetGroupRecord[]; NextMarker?: string }> {
  const given = [input.LoadBalancerArn !== undefined, !!input.TargetGroupArns?.length, !!input.Names?.length].filter(Boolean).length;
  if (given > 1) throw validationError('Only one of load balancer ARN, target group ARNs or names can be specified');
  const usage = targetGroupUsage(ctx);
  let list = allTargetGroups(ctx);
  if (input.LoadBalancerArn !== undefined) {
    if (!findLoadBalancer(ctx, input.LoadBalancerArn)) throw elbError('LoadBalancerNotFound', `Load balancer '${input.LoadBalancerArn}' not found`);
    list = list.filter((tg) => usage.get(tg.TargetGroupArn)?.has(input.LoadBalancerArn!));
  } else if (input.TargetGroupArns?.length) {
    list = input.TargetGroupArns.map((arn) => requireTargetGroup(ctx, arn).tg);
  } else if (input.Names?.length) {
    list = input.Names.map((n) => {
      const tg = ctx.state.elbTargetGroups.get('', n)?.value as TargetGroupRecord | undefined;
      if (!tg) throw elbError('TargetGroupNotFound', `Target groups '[${n}]' not found`);
      return tg;
    });
  }
  const { page, NextMarker } = pageOf(list, (tg) => tg.TargetGroupArn, input);
  const TargetGroups = page.map((tg) => withLoadBalancers(ctx, tg, usage));
  return NextMarker ? { TargetGroups, NextMarker } : { TargetGroups };
}

export async function modifyTargetGroup(ctx: ControlContext, input: HealthCheckInput & { TargetGroupArn: string }): Promise<{ TargetGroups: TargetGroupRecord[] }> {
  return elbWrite(ctx, async () => {
    const { tg, revision } = requireTargetGroup(ctx, input.TargetGroupArn);
    const next: TargetGroupRecord = { ...tg, ...healthCheckOf(tg.Protocol, input, tg) };
    if (next.HealthCheckPath === undefined) delete next.HealthCheckPath;
    if (next.Matcher === undefined || next.HealthCheckProtocol === 'TCP') delete next.Matcher;
    if (next.HealthCheckProtocol === 'TCP') delete next.HealthCheckPath;
    await commit(ctx, [{ op: 'update', key: targetGroupKey(tg.TargetGroupName), value: next, expectedRevision: revision }]);
    return { TargetGroups: [withLoadBalancers(ctx, next)] };
  });
}

/** Deletes a target group no listener or rule uses, with its registered targets. Unknown ARNs
 * are not an error, as on ELB. */
export async function deleteTargetGroup(ctx: ControlContext, input: { TargetGroupArn: string }): Promise<Record<string, never>> {
  return elbWrite(ctx, async () => {
    const found = findTargetGroup(ctx, input.TargetGroupArn);
    if (!found) return {};
    const { tg, revision } = found;
    if (targetGroupUsage(ctx).has(tg.TargetGroupArn)) throw elbError('ResourceInUse', `Target group '${tg.TargetGroupArn}' is currently in use by a listener or a rule`);
    const id = elbIdOf(tg.TargetGroupArn);
    await commit(ctx, [
      { op: 'delete', key: targetGroupKey(tg.TargetGroupName), expectedRevision: revision },
      ...targetsOf(ctx, id).map((t) => ({ op: 'delete' as const, key: targetKeyOf(id, t.Id, t.Port) })),
    ]);
    return {};
  });
}

type Attribute = { Key: string; Value: string };
const asList = (attrs: Record<string, string>): Attribute[] => Object.entries(attrs).map(([Key, Value]) => ({ Key, Value }));

export async function describeTargetGroupAttributes(ctx: ControlContext, input: { TargetGroupArn: string }): Promise<{ Attributes: Attribute[] }> {
  return { Attributes: asList(requireTargetGroup(ctx, input.TargetGroupArn).tg.Attributes) };
}

export async function modifyTargetGroupAttributes(ctx: ControlContext, input: { TargetGroupArn: string; Attributes: { Key?: string; Value?: string }[] }): Promise<{ Attributes: Attribute[] }> {
  return elbWrite(ctx, async () => {
    const { tg, revision } = requireTargetGroup(ctx, input.TargetGroupArn);
    const attrs = { ...tg.Attributes };
    for (const a of input.Attributes) {
      checkTargetGroupAttribute(tg, a.Key ?? '', a.Value ?? '');
      attrs[a.Key!] = a.Value!;
    }
    const next: TargetGroupRecord = { ...tg, Attributes: attrs };
    await commit(ctx, [{ op: 'update', key: targetGroupKey(tg.TargetGroupName), value: next, expectedRevision: revision }]);
    return { Attributes: asList(attrs) };
  });
}
