/**
 * ELBv2 targets: RegisterTargets, DeregisterTargets and DescribeTargetHealth. ip targets are IPv4
 * addresses in the VPC's range; instance targets are the EC2 instance ids of the region's
 * container instances (or, for hosts without one, their container instance ids). Health comes from the registered targets and the health records the load
 * balancer controller writes (`elbhealth/`):
 *
 *   group used by no load balancer         -> unused      Target.NotInUse
 *   health checks disabled                 -> unavailable Target.HealthCheckDisabled
 *   registered, no health record since     -> initial     Elb.RegistrationInProgress
 *   registered, health record              -> the record's State / Reason / Description
 *   deregistered, record says draining     -> draining    Target.DeregistrationInProgress
 *   asked for by name, not registered      -> unused      Target.NotRegistered
 */
import { cidrContains } from '../core/vpc';
import type { ContainerInstanceRecord } from '../core/resources';
import type { ControlContext } from './context';
import { commit, elbError, elbWrite, targetGroupUsage, validationError } from './elbv2-common';
import { requireTargetGroup } from './elbv2-target-groups';
import { elbIdOf, healthOf, targetKeyOf, targetsOf, type TargetGroupRecord, type TargetHealthRecord, type TargetRecord } from './elbv2-records';
import { ensureDefaultNetwork, subnetsOf } from './vpc';

interface TargetInput {
  Id: string;
  Port?: number;
  AvailabilityZone?: string;
  QuicServerId?: string;
}

/**
 * The region's container instances by EC2 instance id and by container instance id: Wharf's own
 * hosts register without an EC2 instance, so an instance target may name the container instance
 * id instead (the load balancer controller resolves either).
 */
function instancesByEc2Id(ctx: ControlContext): Map<string, ContainerInstanceRecord> {
  const out = new Map<string, ContainerInstanceRecord>();
  for (const e of ctx.state.instances.all()) {
    const i = e.value;
    if (i.status === 'INACTIVE') continue;
    if (i.ec2InstanceId) out.set(i.ec2InstanceId, i);
    out.set(i.containerInstanceArn.slice(i.containerInstanceArn.lastIndexOf('/') + 1), i);
  }
  return out;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export async function registerTargets(ctx: ControlContext, input: { TargetGroupArn: string; Targets: TargetInput[] }): Promise<Record<string, never>> {
  const net = await ensureDefaultNetwork(ctx);
  return elbWrite(ctx, async () => {
    const { tg } = requireTargetGroup(ctx, input.TargetGroupArn);
    const tgId = elbIdOf(tg.TargetGroupArn);
    const instances = tg.TargetType === 'instance' ? instancesByEc2Id(ctx) : undefined;
    const now = ctx.clock.now();
    const records = new Map<string, TargetRecord>();
    for (const t of input.Targets) {
      if (t.QuicServerId !== undefined) throw validationError('Wharf has no QUIC target groups');
      if (t.AvailabilityZone !== undefined && t.AvailabilityZone !== 'all' && !subnetsOf(ctx).some((s) => s.AvailabilityZone === t.AvailabilityZone)) {
        throw validationError(`Availability Zone '${t.AvailabilityZone}' is not valid`);
      }
      let zone: string | undefined;
      if (tg.TargetType === 'ip') {
        if (!IPV4.test(t.Id)) throw validationError(`The IP address '${t.Id}' is not a valid IPv4 address`);
        if (!cidrContains(net.vpc.CidrBlock, t.Id)) throw elbError('InvalidTarget', `The IP address '${t.Id}' is not within the CIDR block of the target group's VPC '${tg.VpcId}' (${net.vpc.CidrBlock})`);
        zone = subnetsOf(ctx).find((s) => cidrContains(s.CidrBlock, t.Id))?.AvailabilityZone;
      } else if (!instances!.has(t.Id)) {
        throw elbError('InvalidTarget', `The following targets are not valid instances in this region: '${t.Id}'`);
      }
      const port = t.Port ?? tg.Port;
      const rec: TargetRecord = { Id: t.Id, Port: port, ...(zone ? { AvailabilityZone: zone } : {}), registeredAt: now };
      records.set(targetKeyOf(tgId, t.Id, port), rec);
    }
    // Registering a target again is a no-op on ELB: its record (and registration time) stays.
    const ops = [...records].filter(([key]) => !ctx.state.elbTargets.get(tgId, key.slice(key.lastIndexOf('/') + 1))).map(([key, value]) => ({ op: 'create' as const, key, value }));
    await commit(ctx, ops);
    return {};
  });
}

export async function deregisterTargets(ctx: ControlContext, input: { TargetGroupArn: string; Targets: TargetInput[] }): Promise<Record<string, never>> {
  return elbWrite(ctx, async () => {
    const { tg } = requireTargetGroup(ctx, input.TargetGroupArn);
    const tgId = elbIdOf(tg.TargetGroupArn);
    const registered = new Set(targetsOf(ctx, tgId).map((t) => targetKeyOf(tgId, t.Id, t.Port)));
    const keys = new Set<string>();
    for (const t of input.Targets) {
      const key = targetKeyOf(tgId, t.Id, t.Port ?? tg.Port);
      if (!registered.has(key)) throw elbError('InvalidTarget', `The target '${t.Id}' on port ${t.Port ?? tg.Port} is not registered in target group '${tg.TargetGroupArn}'`);
      keys.add(key);
    }
    await commit(ctx, [...keys].map((key) => ({ op: 'delete' as const, key })));
    return {};
  });
}

type Health = { State: string; Reason?: string; Description?: string };

const NOT_IN_USE: Health = { State: 'unused', Reason: 'Target.NotInUse', Description: 'Target group is not configured to receive traffic from the load balancer' };
const NOT_REGISTERED: Health = { State: 'unused', Reason: 'Target.NotRegistered', Description: 'Target is not registered to the target group' };
const DISABLED: Health = { State: 'unavailable', Reason: 'Target.HealthCheckDisabled', Description: 'Health checks disabled' };
const REGISTERING: Health = { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' };
const DEREGISTERING: Health = { State: 'draining', Reason: 'Target.DeregistrationInProgress', Description: 'Target deregistration is in progress' };

function fromRecord(h: TargetHealthRecord): Health {
  return { State: h.State, ...(h.Reason ? { Reason: h.Reason } : {}), ...(h.Description ? { Description: h.Description } : {}) };
}

export async function describeTargetHealth(
  ctx: ControlContext,
  input: { TargetGroupArn: string; Targets?: TargetInput[]; Include?: string[] },
): Promise<{ TargetHealthDescriptions: unknown[] }> {
  const { tg } = requireTargetGroup(ctx, input.TargetGroupArn);
  if (input.Include?.some((i) => i !== 'All')) throw validationError('Wharf has no anomaly detection: Include may only be All');
  const tgId = elbIdOf(tg.TargetGroupArn);
  const inUse = targetGroupUsage(ctx).has(tg.TargetGroupArn);
  const registered = new Map(targetsOf(ctx, tgId).map((t) => [`${t.Id}:${t.Port}`, t]));
  const health = new Map(healthOf(ctx, tgId).map((h) => [`${h.Id}:${h.Port}`, h]));
  const healthOfTarget = (t: TargetRecord): Health => {
    if (!inUse) return NOT_IN_USE;
    if (!tg.HealthCheckEnabled) return DISABLED;
    const h = health.get(`${t.Id}:${t.Port}`);
    // A record older than this registration is about an earlier one (deregistered, then back).
    return h && h.updatedAt >= t.registeredAt ? fromRecord(h) : REGISTERING;
  };
  const out: unknown[] = [];
  const describe = (Id: string, Port: number, zone: string | undefined, h: Health) =>
    out.push({ Target: { Id, Port, ...(zone ? { AvailabilityZone: zone } : {}) }, HealthCheckPort: healthCheckPortOf(tg, Port), TargetHealth: h });
  if (input.Targets?.length) {
    for (const t of input.Targets) {
      const port = t.Port ?? tg.Port;
      const reg = registered.get(`${t.Id}:${port}`);
      if (reg) describe(reg.Id, reg.Port, reg.AvailabilityZone, healthOfTarget(reg));
      else if (health.get(`${t.Id}:${port}`)?.State === 'draining') describe(t.Id, port, t.AvailabilityZone, DEREGISTERING);
      else describe(t.Id, port, t.AvailabilityZone, NOT_REGISTERED);
    }
  } else {
    for (const t of registered.values()) describe(t.Id, t.Port, t.AvailabilityZone, healthOfTarget(t));
    for (const h of health.values()) if (h.State === 'draining' && !registered.has(`${h.Id}:${h.Port}`)) describe(h.Id, h.Port, undefined, DEREGISTERING);
  }
  return { TargetHealthDescriptions: out };
}

function healthCheckPortOf(tg: TargetGroupRecord, port: number): string {
  return tg.HealthCheckPort === 'traffic-port' ? String(port) : tg.HealthCheckPort;
}
