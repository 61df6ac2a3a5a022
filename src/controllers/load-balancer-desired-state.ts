/**
 * The stored ELBv2 records of every region -> the data plane's one DesiredState (pure).
 *
 *   load balancer   id = the 16 hex of its ARN, its type and `address`, its listeners
 *   listener        HTTP/HTTPS/TCP; HTTPS: the PEM file Certificates[0].CertificateArn names
 *                   (an absolute path or a file:// URL: Wharf has no certificate manager)
 *   rule            by priority; conditions in both of ELB's forms (legacy `Values`, and
 *                   PathPatternConfig / HostHeaderConfig / HttpHeaderConfig); actions by Order
 *   target group    only those some listener or rule forwards to, with their health check and
 *                   attributes; its registered targets (instance targets resolved to an address
 *                   where the instance's published host ports answer)
 *
 * What the data plane cannot carry is left out, with the reason, so that one bad record set never
 * stops the others (HAProxy refuses a whole configuration over one bad line): a listener that
 * cannot be built (a certificate HAProxy would not load, a condition or action not understood)
 * or that `validate` (the config generator) rejects with its groups (an unknown target group, a
 * matcher HAProxy cannot express, ...) is left out alone, the load balancer's other listeners are
 * served; a load balancer that still fails with the listeners left (with those already taken:
 * ports, addresses) is left out whole.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { ElbAction, ElbRuleCondition, ListenerRecord, LoadBalancerRecord, RuleRecord, TargetGroupRecord, TargetRecord } from '../control/elbv2-records';
import { certificateFile, elbIdOf } from '../control/elbv2-records';
import type { Action, Condition, DesiredState, Listener, LoadBalancer, Target, TargetGroup, TargetGroupAttributes } from '../loadbalancer/model';
import { targetKey } from '../loadbalancer/model';

/** One region's ELBv2 records, as read from its state cache. */
export interface RegionElbRecords {
  region: string;
  loadBalancers: LoadBalancerRecord[];
  /** By load balancer id. */
  listeners: Map<string, ListenerRecord[]>;
  /** By listener id. */
  rules: Map<string, RuleRecord[]>;
  targetGroups: TargetGroupRecord[];
  /** By target group id. */
  targets: Map<string, TargetRecord[]>;
}

export interface DesiredStateInput {
  regions: RegionElbRecords[];
  /** The address on this host where an instance's published host ports answer; undefined when
   * the instance id names no container instance (such targets are not served). */
  instanceAddress(region: string, instanceId: string): string | undefined;
  /** Throws when the data plane cannot carry this state (haproxy-config's generateConfig). */
  validate(desired: DesiredState): void;
  /** What keeps haproxy from loading a certificate's PEM file (it refuses the whole configuration
   * then), or undefined when it loads: `certificateProblem` over the file system. */
  certificateProblem?(file: string): string | undefined;
}

/** A load balancer left out of the data plane, or only one of its listeners (`listenerArn`). */
export interface RejectedLoadBalancer {
  region: string;
  loadBalancerArn: string;
  listenerArn?: string;
  reason: string;
}

export interface DesiredStateResult {
  desired: DesiredState;
  rejected: RejectedLoadBalancer[];
  /**
   * Per target group id: the data plane's target key (`address:port`) -> the registered target
   * (for instance targets, the instance id and host port), to map health back to the records.
   */
  registered: Map<string, Map<string, { Id: string; Port: number }>>;
  /** The region of each target group in `desired`. */
  groupRegion: Map<string, string>;
}

/** A certificate ARN as Wharf takes it (elbv2-records.ts): the PEM file's path, if it names one. */
export function certificatePath(arn: string | undefined): string | undefined {
  return arn ? certificateFile(arn) : undefined;
}

/**
 * Why haproxy would not load `file` as a listener's certificate (`ssl crt`), or undefined when it
 * would: the file must hold a certificate, and its private key, in the file or beside it in
 * `<file>.key` (haproxy's ssl-load-extra-files), and the key must be the certificate's. `read`
 * answers a file's text, or undefined when it cannot be read.
 */
export function certificateProblem(file: string, read: (file: string) => string | undefined): string | undefined {
  const pem = read(file);
  if (pem === undefined) return `cannot read the certificate file ${file}`;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return `the certificate file ${file} holds no PEM certificate`;
  }
  const keyOf = (text: string | undefined): KeyObject | undefined => {
    if (text === undefined || !text.includes('PRIVATE KEY-----')) return undefined;
    try {
      return createPrivateKey(text);
    } catch {
      return undefined;
    }
  };
  const key = keyOf(pem) ?? keyOf(read(`${file}.key`));
  if (!key) return `the certificate file ${file} holds no private key (nor does ${file}.key)`;
  if (!cert.checkPrivateKey(key)) return `the private key in ${file} is not the certificate's`;
  return undefined;
}

export function conditionOf(c: ElbRuleCondition): Condition {
  switch (c.Field) {
    case 'path-pattern':
      return { field: 'path-pattern', values: c.PathPatternConfig?.Values ?? c.Values ?? [] };
    case 'host-header':
      return { field: 'host-header', values: c.HostHeaderConfig?.Values ?? c.Values ?? [] };
    case 'http-header':
      if (!c.HttpHeaderConfig) throw new Error('an http-header condition needs HttpHeaderConfig');
      return { field: 'http-header', headerName: c.HttpHeaderConfig.HttpHeaderName, values: c.HttpHeaderConfig.Values };
    default:
      throw new Error(`condition field ${JSON.stringify((c as { Field: unknown }).Field)} is not supported`);
  }
}

export function actionOf(a: ElbAction): Action {
  switch (a.Type) {
    case 'forward': {
      const groups = a.ForwardConfig?.TargetGroups ?? (a.TargetGroupArn ? [{ TargetGroupArn: a.TargetGroupArn }] : []);
      if (groups.length === 0) throw new Error('a forward action names no target group');
      return { type: 'forward', targetGroups: groups.map((g) => ({ targetGroupId: elbIdOf(g.TargetGroupArn), weight: g.Weight ?? 1 })) };
    }
    case 'fixed-response': {
      const f = a.FixedResponseConfig;
      return { type: 'fixed-response', statusCode: Number(f.StatusCode), ...(f.ContentType ? { contentType: f.ContentType } : {}), ...(f.MessageBody !== undefined ? { messageBody: f.MessageBody } : {}) };
    }
    case 'redirect': {
      const r = a.RedirectConfig;
      const out: Action = { type: 'redirect', statusCode: r.StatusCode === 'HTTP_301' ? 301 : 302 };
      if (r.Protocol !== undefined) out.protocol = r.Protocol;
      if (r.Host !== undefined) out.host = r.Host;
      if (r.Port !== undefined) out.port = r.Port;
      if (r.Path !== undefined) out.path = r.Path;
      if (r.Query !== undefined) out.query = r.Query;
      return out;
    }
    default:
      throw new Error(`action type ${JSON.stringify((a as { Type: unknown }).Type)} is not supported`);
  }
}

/** Actions in ELB's order (by Order, the listed order when absent). */
function actionsOf(actions: ElbAction[]): Action[] {
  return actions
    .map((a, i) => ({ a, order: a.Order ?? 50_001 + i }))
    .sort((x, y) => x.order - y.order)
    .map((x) => actionOf(x.a));
}

const num = (v: string | undefined, fallback: number): number => {
  const n = Number(v);
  return v !== undefined && v !== '' && Number.isFinite(n) ? n : fallback;
};

export function attributesOf(tg: TargetGroupRecord): TargetGroupAttributes {
  const at = tg.Attributes ?? {};
  const out: TargetGroupAttributes = {
    deregistrationDelaySeconds: num(at['deregistration_delay.timeout_seconds'], 300),
    slowStartSeconds: num(at['slow_start.duration_seconds'], 0),
    algorithm: at['load_balancing.algorithm.type'] === 'least_outstanding_requests' ? 'least_outstanding_requests' : 'round_robin',
  };
  if (tg.Protocol === 'TCP') {
    out.tcpCloseOnDeregistration = at['deregistration_delay.connection_termination.enabled'] === 'true';
    out.tcpCloseOnUnhealthy = at['target_health_state.unhealthy.connection_termination.enabled'] !== 'false';
  }
  if (at['stickiness.enabled'] === 'true') {
    const type = at['stickiness.type'] ?? (tg.Protocol === 'TCP' ? 'source_ip' : 'lb_cookie');
    // app_cookie (the application's own cookie) has no counterpart in the data plane's model.
    if (type === 'lb_cookie') out.stickiness = { type, durationSeconds: num(at['stickiness.lb_cookie.duration_seconds'], 86_400) };
    else if (type === 'source_ip') out.stickiness = { type, durationSeconds: num(at['stickiness.source_ip.duration_seconds'], 86_400) };
  }
  return out;
}

/** An application load balancer's X-Forwarded-For attributes, ELB's defaults where unset. */
export function xForwardedForOf(rec: LoadBalancerRecord): NonNullable<LoadBalancer['xForwardedFor']> {
  const mode = rec.Attributes?.['routing.http.xff_header_processing.mode'];
  return { mode: mode === 'preserve' || mode === 'remove' ? mode : 'append', clientPort: rec.Attributes?.['routing.http.xff_client_port.enabled'] === 'true' };
}

function groupOf(tg: TargetGroupRecord, targets: Target[]): TargetGroup {
  const port = tg.HealthCheckPort && tg.HealthCheckPort !== 'traffic-port' ? Number(tg.HealthCheckPort) : 'traffic-port';
  return {
    id: elbIdOf(tg.TargetGroupArn),
    protocol: tg.Protocol,
    port: tg.Port,
    targetType: tg.TargetType,
    healthCheck: {
      enabled: tg.HealthCheckEnabled,
      protocol: tg.HealthCheckProtocol,
      path: tg.HealthCheckPath ?? '/',
      port,
      intervalSeconds: tg.HealthCheckIntervalSeconds,
      timeoutSeconds: tg.HealthCheckTimeoutSeconds,
      healthyThreshold: tg.HealthyThresholdCount,
      unhealthyThreshold: tg.UnhealthyThresholdCount,
      matcher: tg.Matcher?.HttpCode ?? '200',
    },
    attributes: attributesOf(tg),
    targets,
  };
}

function listenerOf(l: ListenerRecord, rules: RuleRecord[], problem: (file: string) => string | undefined): Listener {
  const out: Listener = {
    id: elbIdOf(l.ListenerArn),
    port: l.Port,
    protocol: l.Protocol,
    defaultActions: actionsOf(l.DefaultActions),
    rules:
      l.Protocol === 'TCP'
        ? []
        : rules
            .map((r) => ({ priority: Number(r.Priority), conditions: r.Conditions.map(conditionOf), actions: actionsOf(r.Actions) }))
            .sort((a, b) => a.priority - b.priority),
  };
  if (l.Protocol === 'HTTPS') {
    const file = certificatePath(l.Certificates?.[0]?.CertificateArn);
    if (!file) throw new Error(`HTTPS listener ${l.ListenerArn} needs Certificates[0].CertificateArn naming a PEM file (an absolute path or a file:// URL)`);
    const wrong = problem(file);
    if (wrong) throw new Error(`HTTPS listener ${l.ListenerArn}: ${wrong}`);
    out.certificatePemFile = file;
  }
  return out;
}

function forwardedGroups(lb: LoadBalancer): string[] {
  const ids = new Set<string>();
  for (const l of lb.listeners) {
    for (const a of [...l.defaultActions, ...l.rules.flatMap((r) => r.actions)]) {
      if (a.type === 'forward') for (const g of a.targetGroups) ids.add(g.targetGroupId);
    }
  }
  return [...ids];
}

const isIpv4 = (s: string): boolean => /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s) && s.split('.').every((o) => Number(o) <= 255);

export function desiredStateOf(input: DesiredStateInput): DesiredStateResult {
  const result: DesiredStateResult = { desired: { loadBalancers: [], targetGroups: [] }, rejected: [], registered: new Map(), groupRegion: new Map() };
  const groupsTaken = new Map<string, TargetGroup>();
  for (const r of input.regions) {
    const groupRecords = new Map(r.targetGroups.map((tg) => [elbIdOf(tg.TargetGroupArn), tg]));
    // Each group is built once (a group may serve several load balancers of its region).
    const built = new Map<string, TargetGroup>();
    const buildGroup = (id: string): TargetGroup => {
      const have = built.get(id);
      if (have) return have;
      const tg = groupRecords.get(id);
      if (!tg) throw new Error(`target group ${id} does not exist`);
      const byKey = new Map<string, { Id: string; Port: number }>();
      const targets: Target[] = [];
      for (const t of r.targets.get(id) ?? []) {
        // An ip target that is not an IPv4 address (the API refuses those) is never handed to HAProxy.
        const address = tg.TargetType === 'instance' ? input.instanceAddress(r.region, t.Id) : isIpv4(t.Id) ? t.Id : undefined;
        if (!address || !Number.isInteger(t.Port) || t.Port < 1 || t.Port > 65535) continue;
        const target = { id: address, port: t.Port };
        const key = targetKey(target);
        if (byKey.has(key)) continue;
        byKey.set(key, { Id: t.Id, Port: t.Port });
        targets.push(target);
      }
      const g = groupOf(tg, targets);
      built.set(id, g);
      result.registered.set(id, byKey);
      return g;
    };
    for (const rec of r.loadBalancers) {
      const id = elbIdOf(rec.LoadBalancerArn);
      const lb: LoadBalancer = { id, type: rec.Type, address: rec.address, listeners: [], ...(rec.Type === 'application' ? { xForwardedFor: xForwardedForOf(rec) } : {}) };
      for (const l of r.listeners.get(id) ?? []) {
        try {
          const listener = listenerOf(l, r.rules.get(elbIdOf(l.ListenerArn)) ?? [], input.certificateProblem ?? (() => undefined));
          // Alone with its groups: what fails here is this listener's, and only it is left out.
          input.validate({ loadBalancers: [{ ...lb, listeners: [listener] }], targetGroups: forwardedGroups({ ...lb, listeners: [listener] }).map(buildGroup) });
          lb.listeners.push(listener);
        } catch (e) {
          result.rejected.push({ region: r.region, loadBalancerArn: rec.LoadBalancerArn, listenerArn: l.ListenerArn, reason: (e as Error).message });
        }
      }
      try {
        const groups = forwardedGroups(lb).map(buildGroup);
        // Checked alone first, then with the load balancers already taken (ports, addresses).
        input.validate({ loadBalancers: [lb], targetGroups: groups });
        const fresh = groups.filter((g) => !groupsTaken.has(g.id));
        input.validate({ loadBalancers: [...result.desired.loadBalancers, lb], targetGroups: [...groupsTaken.values(), ...fresh] });
        result.desired.loadBalancers.push(lb);
        for (const g of fresh) {
          groupsTaken.set(g.id, g);
          result.groupRegion.set(g.id, r.region);
        }
      } catch (e) {
        result.rejected.push({ region: r.region, loadBalancerArn: rec.LoadBalancerArn, reason: (e as Error).message });
      }
    }
  }
  result.desired.targetGroups = [...groupsTaken.values()];
  for (const id of [...result.registered.keys()]) if (!groupsTaken.has(id)) result.registered.delete(id);
  return result;
}
