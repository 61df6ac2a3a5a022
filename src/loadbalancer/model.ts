/**
 * The desired state of the load balancer data plane, in ELBv2's words but not its wire shapes:
 * the ELBv2 control plane (another layer) turns its stored load balancers, listeners, rules,
 * target groups and registered targets into one `DesiredState` and hands it to
 * `LoadBalancerReconciler.apply`.
 *
 * Ids are the caller's: they become HAProxy section names, so they are limited to
 * [A-Za-z0-9_.-] (an ARN's last segment, or a hash of it, fits).
 */

export type LoadBalancerType = 'application' | 'network';
export type ListenerProtocol = 'HTTP' | 'HTTPS' | 'TCP';
export type TargetGroupProtocol = 'HTTP' | 'HTTPS' | 'TCP';
export type TargetType = 'ip' | 'instance';

export interface DesiredState {
  loadBalancers: LoadBalancer[];
  targetGroups: TargetGroup[];
}

export interface LoadBalancer {
  id: string;
  type: LoadBalancerType;
  /** The IPv4 address its listeners bind: one per load balancer (the control plane allocates it:
   * `allocateLoadBalancerAddress` in control/elbv2-records.ts). */
  address: string;
  listeners: Listener[];
  /**
   * HTTP/HTTPS listeners: what happens to X-Forwarded-For (`routing.http.xff_header_processing.mode`,
   * default append: the client address added to the header as it came, one comma-separated header;
   * preserve: left as sent; remove: taken out), and whether append adds the client's port
   * (`routing.http.xff_client_port.enabled`: 203.0.113.7:12345).
   */
  xForwardedFor?: { mode: 'append' | 'preserve' | 'remove'; clientPort: boolean };
}

export interface Listener {
  /** Unique within the load balancer. */
  id: string;
  port: number;
  protocol: ListenerProtocol;
  /** HTTPS only: a PEM file holding the certificate chain and its private key. */
  certificatePemFile?: string;
  defaultActions: Action[];
  /** HTTP/HTTPS only; evaluated by ascending priority, the first match wins. */
  rules: Rule[];
}

export interface Rule {
  /** 1..50000, unique within the listener. */
  priority: number;
  /** All must match (AND); within one condition any value may match (OR). */
  conditions: Condition[];
  actions: Action[];
}

export type Condition =
  | { field: 'path-pattern'; values: string[] }
  | { field: 'host-header'; values: string[] }
  | { field: 'http-header'; headerName: string; values: string[] };

export type Action = ForwardAction | FixedResponseAction | RedirectAction;

export interface ForwardAction {
  type: 'forward';
  /** Weighted across target groups (weight 0..999); one group with any weight is plain forward. */
  targetGroups: { targetGroupId: string; weight: number }[];
}

export interface FixedResponseAction {
  type: 'fixed-response';
  statusCode: number;
  contentType?: string;
  messageBody?: string;
}

/** Each part may use #{protocol}, #{host}, #{port}, #{path}, #{query}; these are the defaults. */
export interface RedirectAction {
  type: 'redirect';
  statusCode: 301 | 302;
  protocol?: string;
  host?: string;
  port?: string;
  path?: string;
  query?: string;
}

export interface HealthCheck {
  enabled: boolean;
  protocol: 'HTTP' | 'HTTPS' | 'TCP';
  /** HTTP/HTTPS checks only. */
  path: string;
  /** 'traffic-port' or a port number. */
  port: 'traffic-port' | number;
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** ELB's matcher: "200", "200,202", "200-299". HTTP/HTTPS checks only. */
  matcher: string;
}

export interface TargetGroupAttributes {
  deregistrationDelaySeconds: number;
  slowStartSeconds: number;
  stickiness?: { type: 'lb_cookie' | 'source_ip'; durationSeconds: number };
  algorithm: 'round_robin' | 'least_outstanding_requests';
  /**
   * TCP groups (NLB): close a deregistered target's connections when its delay ends
   * (`deregistration_delay.connection_termination.enabled`, default false: they live on), and an
   * unhealthy target's at once (`target_health_state.unhealthy.connection_termination.enabled`,
   * default true). HTTP groups always close at the end of the delay and never for health.
   */
  tcpCloseOnDeregistration?: boolean;
  tcpCloseOnUnhealthy?: boolean;
}

export interface TargetGroup {
  id: string;
  protocol: TargetGroupProtocol;
  /** The default port of targets registered without one. */
  port: number;
  targetType: TargetType;
  healthCheck: HealthCheck;
  attributes: TargetGroupAttributes;
  targets: Target[];
}

/** `id` is an IPv4 address (ip targets) or the instance's host address (instance targets). */
export interface Target {
  id: string;
  port: number;
}

/** ELB's defaults for a target group, so callers and tests state only what differs. */
export function targetGroupDefaults(protocol: TargetGroupProtocol): Omit<TargetGroup, 'id' | 'port' | 'targets'> {
  const tcp = protocol === 'TCP';
  return {
    protocol,
    targetType: 'ip',
    healthCheck: {
      enabled: true,
      protocol: tcp ? 'TCP' : protocol,
      path: '/',
      port: 'traffic-port',
      intervalSeconds: 30,
      timeoutSeconds: tcp ? 10 : 5,
      healthyThreshold: 5,
      unhealthyThreshold: 2,
      matcher: '200',
    },
    attributes: { deregistrationDelaySeconds: 300, slowStartSeconds: 0, algorithm: 'round_robin' },
  };
}

export const targetKey = (t: Target): string => `${t.id}:${t.port}`;
