/**
 * ELBv2 listener and rule actions (forward, fixed-response, redirect), checked as ELB checks
 * them against the load balancer they would belong to, and put in the form ELB answers with: a
 * forward to one group names it both as TargetGroupArn and in ForwardConfig (weight 1).
 */
import type { ControlContext } from './context';
import { elbError, hasControlCharacter, targetGroupUsage, validationError } from './elbv2-common';
import { findTargetGroup, type ElbAction, type LoadBalancerRecord } from './elbv2-records';

/** An action as a request gives it (the model's Action shape, members all optional). */
export interface ActionInput {
  Type?: string;
  Order?: number;
  TargetGroupArn?: string;
  ForwardConfig?: { TargetGroups?: { TargetGroupArn?: string; Weight?: number }[]; TargetGroupStickinessConfig?: { Enabled?: boolean; DurationSeconds?: number } };
  FixedResponseConfig?: { StatusCode?: string; ContentType?: string; MessageBody?: string };
  RedirectConfig?: { StatusCode?: string; Protocol?: string; Host?: string; Port?: string; Path?: string; Query?: string };
  [other: string]: unknown;
}

const CONTENT_TYPES = ['text/plain', 'text/css', 'text/html', 'application/javascript', 'application/json'];

/** The listener an action list belongs to (or will, for CreateListener/ModifyListener). */
export interface ActionListener {
  Protocol: string;
  Port: number;
}

/**
 * The actions of a listener or rule of `lb` on `listener`, checked and normalised. Wharf serves
 * one terminal action per listener or rule (no authenticate-* actions), so more than one is
 * refused.
 */
export function checkActions(ctx: ControlContext, lb: LoadBalancerRecord, listener: ActionListener, actions: ActionInput[]): ElbAction[] {
  const out = checkActionList(ctx, lb, actions);
  checkRedirectLoop(out, listener);
  return out;
}

/**
 * ELB (RedirectActionConfig): "You must modify at least one of the following components to avoid
 * a redirect loop: protocol, hostname, port, or path." A redirect whose protocol and port are the
 * listener's own (as #{...} or written out) and whose host and path are the defaults sends the
 * client back to the same URL forever. Checked again by ModifyListener when only the listener's
 * protocol or port changes.
 */
export function checkRedirectLoop(actions: ElbAction[], listener: ActionListener): void {
  for (const a of actions) {
    if (a.Type !== 'redirect') continue;
    const { Protocol = '#{protocol}', Port = '#{port}', Host = '#{host}', Path = '/#{path}' } = a.RedirectConfig;
    const sameProtocol = Protocol === '#{protocol}' || Protocol.toUpperCase() === listener.Protocol.toUpperCase();
    const samePort = Port === '#{port}' || Number(Port) === listener.Port;
    // ELB's own wording (InvalidLoadBalancerAction, as answered to CreateRule/CreateListener).
    if (sameProtocol && samePort && Host === '#{host}' && Path === '/#{path}') throw elbError('InvalidLoadBalancerAction', 'The redirect configuration is not valid because it creates a loop.');
  }
}

function checkActionList(ctx: ControlContext, lb: LoadBalancerRecord, actions: ActionInput[]): ElbAction[] {
  if (actions.length === 0) throw validationError('At least one action must be specified');
  for (const a of actions) {
    if (a.Type === undefined) throw validationError('An action type must be specified');
    if (!['forward', 'fixed-response', 'redirect'].includes(a.Type)) throw elbError('InvalidLoadBalancerAction', `Wharf does not support '${a.Type}' actions: use forward, fixed-response or redirect`);
  }
  if (actions.length > 1) throw elbError('InvalidLoadBalancerAction', 'Wharf supports one action per listener or rule (forward, fixed-response or redirect)');
  const a = actions[0]!;
  if (lb.Type === 'network' && a.Type !== 'forward') throw elbError('InvalidLoadBalancerAction', `The action type '${a.Type}' is not supported by network load balancers`);
  const order = a.Order !== undefined ? { Order: a.Order } : {};
  switch (a.Type) {
    case 'forward':
      return [{ ...checkForward(ctx, lb, a), ...order }];
    case 'fixed-response': {
      const c = a.FixedResponseConfig;
      if (!c?.StatusCode) throw validationError('A fixed-response action needs FixedResponseConfig with a StatusCode');
      if (!/^[245]\d\d$/.test(c.StatusCode)) throw validationError(`Fixed-response status code '${c.StatusCode}' must be a 2XX, 4XX or 5XX code`);
      if (c.ContentType !== undefined && !CONTENT_TYPES.includes(c.ContentType)) throw validationError(`Fixed-response content type '${c.ContentType}' must be one of ${CONTENT_TYPES.join(', ')}`);
      if (c.MessageBody !== undefined && Buffer.byteLength(c.MessageBody) > 1024) throw validationError('A fixed-response message body can be at most 1024 bytes');
      const config = { StatusCode: c.StatusCode, ...(c.ContentType !== undefined ? { ContentType: c.ContentType } : {}), ...(c.MessageBody !== undefined ? { MessageBody: c.MessageBody } : {}) };
      return [{ Type: 'fixed-response', ...order, FixedResponseConfig: config }];
    }
    default: {
      const c = a.RedirectConfig;
      if (!c?.StatusCode) throw validationError('A redirect action needs RedirectConfig with a StatusCode');
      if (c.StatusCode !== 'HTTP_301' && c.StatusCode !== 'HTTP_302') throw validationError(`Redirect status code '${c.StatusCode}' must be HTTP_301 or HTTP_302`);
      if (c.Protocol !== undefined && !['HTTP', 'HTTPS', '#{protocol}'].includes(c.Protocol)) throw validationError(`Redirect protocol '${c.Protocol}' must be HTTP, HTTPS or #{protocol}`);
      if (c.Port !== undefined && c.Port !== '#{port}' && !(/^\d+$/.test(c.Port) && +c.Port >= 1 && +c.Port <= 65535)) throw validationError(`Redirect port '${c.Port}' must be a port from 1 to 65535 or #{port}`);
      if (c.Path !== undefined && !c.Path.startsWith('/')) throw validationError(`Redirect path '${c.Path}' must begin with '/'`);
      if (c.Query !== undefined && c.Query.startsWith('?')) throw validationError("A redirect query must not begin with '?'");
      for (const [part, v] of [['host', c.Host], ['path', c.Path], ['query', c.Query]] as const) {
        if (v !== undefined && hasControlCharacter(v)) throw validationError(`Redirect ${part} '${v}' contains characters that are not allowed`);
      }
      // ELB's defaults keep each part of the original URL.
      const config = {
        StatusCode: c.StatusCode,
        Protocol: c.Protocol ?? '#{protocol}',
        Host: c.Host ?? '#{host}',
        Port: c.Port ?? '#{port}',
        Path: c.Path ?? '/#{path}',
        Query: c.Query ?? '#{query}',
      } as const;
      return [{ Type: 'redirect', ...order, RedirectConfig: config }];
    }
  }
}

function checkForward(ctx: ControlContext, lb: LoadBalancerRecord, a: ActionInput): Extract<ElbAction, { Type: 'forward' }> {
  const listed = a.ForwardConfig?.TargetGroups;
  let groups: { TargetGroupArn: string; Weight: number }[];
  if (listed && listed.length > 0) {
    groups = listed.map((g) => {
      if (!g.TargetGroupArn) throw validationError('A target group in ForwardConfig must have a TargetGroupArn');
      const w = g.Weight ?? 1;
      if (w < 0 || w > 999) throw validationError(`Target group weight '${w}' must be from 0 to 999`);
      return { TargetGroupArn: g.TargetGroupArn, Weight: w };
    });
    if (new Set(groups.map((g) => g.TargetGroupArn)).size !== groups.length) throw validationError('A target group can appear in a forward action only once');
    if (groups.length > 5) throw validationError('A forward action can have at most 5 target groups');
    if (a.TargetGroupArn !== undefined && (groups.length !== 1 || groups[0]!.TargetGroupArn !== a.TargetGroupArn)) {
      throw validationError('You cannot specify both a target group ARN and a forward config with different target groups');
    }
  } else if (a.TargetGroupArn !== undefined) {
    groups = [{ TargetGroupArn: a.TargetGroupArn, Weight: 1 }];
  } else {
    throw validationError('A forward action needs a TargetGroupArn or a ForwardConfig with target groups');
  }
  if (lb.Type === 'network' && groups.length > 1) throw validationError('A network load balancer forwards to one target group per action');
  const stickiness = a.ForwardConfig?.TargetGroupStickinessConfig;
  if (stickiness?.Enabled) throw validationError('Wharf does not support target group stickiness in forward actions');
  const usage = targetGroupUsage(ctx);
  for (const g of groups) {
    const found = findTargetGroup(ctx, g.TargetGroupArn);
    if (!found) throw elbError('TargetGroupNotFound', `Target group '${g.TargetGroupArn}' not found`);
    const protocolFits = lb.Type === 'network' ? found.tg.Protocol === 'TCP' : found.tg.Protocol !== 'TCP';
    if (!protocolFits) {
      throw elbError('InvalidConfigurationRequest', `The target group '${g.TargetGroupArn}' has protocol ${found.tg.Protocol}, which ${lb.Type} load balancers cannot forward to`);
    }
    if (found.tg.VpcId !== lb.VpcId) throw elbError('InvalidConfigurationRequest', `The target group '${g.TargetGroupArn}' is not in the load balancer's VPC`);
    const others = [...(usage.get(g.TargetGroupArn) ?? [])].filter((arn) => arn !== lb.LoadBalancerArn);
    if (others.length > 0) throw elbError('TargetGroupAssociationLimit', `The following target groups cannot be associated with more than one load balancer: ${g.TargetGroupArn}`);
  }
  return {
    Type: 'forward',
    ...(groups.length === 1 ? { TargetGroupArn: groups[0]!.TargetGroupArn } : {}),
    ForwardConfig: { TargetGroups: groups, TargetGroupStickinessConfig: { Enabled: false } },
  };
}
