/**
 * What the ELBv2 operations (control/elbv2-*.ts) share: ELB's errors, name rules, tags, Marker
 * pagination, finding records by ARN, and the one lock their writes take.
 *
 * Writes are serialised per region (`elbWrite`): several checks span records that no single key
 * guards (a listener port free on its load balancer, a load balancer address not yet taken, a
 * target group used by one load balancer only), so each write checks and commits while no other
 * ELBv2 write of the region runs. The store's compare-and-swap still guards every update against
 * writers outside the API (the load balancer controller writes only health records).
 */
import { createHash } from 'node:crypto';
import { WharfError, type ErrorCode } from '../core/errors';
import type { TxnOp } from '../store/store';
import { committed, type ControlContext } from './context';
import {
  allLoadBalancers,
  elbIdOf,
  type ElbAction,
  type ElbTag,
  type ListenerRecord,
  type LoadBalancerRecord,
  type RuleRecord,
} from './elbv2-records';

export const elbError = (code: ErrorCode, message: string) => new WharfError(code, message);

/**
 * A control character (NUL, CR, LF, ...) cannot be part of a request line or header, so a
 * condition value, redirect part or health check path holding one could never work; the data
 * plane cannot write NUL at all. Refused at the API rather than leaving a load balancer unserved.
 */
export const hasControlCharacter = (s: string): boolean => /[\u0000-\u001f\u007f]/.test(s);
export const validationError = (message: string) => new WharfError('ValidationError', message);

const locks = new WeakMap<ControlContext, Promise<unknown>>();

/** Runs `fn` after every ELBv2 write of this region already started has finished. */
export function elbWrite<T>(ctx: ControlContext, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(ctx) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  locks.set(
    ctx,
    next.catch(() => undefined),
  );
  return next;
}

/** Commits the ops in one transaction and waits until the cache shows them. */
export async function commit(ctx: ControlContext, ops: TxnOp[]): Promise<void> {
  if (ops.length === 0) return;
  await committed(ctx, await ctx.store.txn(ops));
}

/**
 * ELB's naming rule for load balancers and target groups: at most 32 characters, alphanumerics
 * and hyphens, not beginning or ending with a hyphen.
 */
export function checkElbName(name: string, what: 'load balancer' | 'target group'): void {
  if (name.length === 0 || name.length > 32) throw validationError(`The ${what} name '${name}' must be between 1 and 32 characters long`);
  if (!/^[a-zA-Z0-9-]+$/.test(name)) throw validationError(`The ${what} name '${name}' can contain only alphanumeric characters and hyphens`);
  if (name.startsWith('-') || name.endsWith('-')) throw validationError(`The ${what} name '${name}' cannot begin or end with a hyphen`);
}

// ---------------------------------------------------------------------------------------------
// Tags

export const MAX_TAGS = 50;

/** A request's tags, checked: no key twice (DuplicateTagKeys), keys not `aws:`-prefixed. */
export function checkTags(tags: ElbTag[] | undefined): ElbTag[] {
  const out: ElbTag[] = [];
  const seen = new Set<string>();
  for (const t of tags ?? []) {
    if (seen.has(t.Key)) throw elbError('DuplicateTagKeys', `Tag key '${t.Key}' is duplicated`);
    if (t.Key.toLowerCase().startsWith('aws:')) throw validationError(`Tag keys starting with 'aws:' are reserved for internal use`);
    seen.add(t.Key);
    out.push(t.Value === undefined ? { Key: t.Key } : { Key: t.Key, Value: t.Value });
  }
  if (out.length > MAX_TAGS) throw tooManyTags();
  return out;
}

export const tooManyTags = () => elbError('TooManyTags', `The quota for the number of tags that can be assigned to a resource has been reached (${MAX_TAGS})`);

/** `tags` with `add` merged in (a key given again takes the new value). */
export function mergeTags(tags: ElbTag[], add: ElbTag[]): ElbTag[] {
  const byKey = new Map(tags.map((t) => [t.Key, t]));
  for (const t of add) byKey.set(t.Key, t);
  if (byKey.size > MAX_TAGS) throw tooManyTags();
  return [...byKey.values()];
}

// ---------------------------------------------------------------------------------------------
// Pagination: ELB's Marker is opaque; Wharf's is the last item's ARN, base64url-encoded.

export function pageOf<T>(items: T[], arnOf: (t: T) => string, input: { Marker?: string; PageSize?: number }): { page: T[]; NextMarker?: string } {
  const size = input.PageSize ?? 400;
  let start = 0;
  if (input.Marker !== undefined) {
    const after = Buffer.from(input.Marker, 'base64url').toString('utf8');
    const i = items.findIndex((t) => arnOf(t) === after);
    if (i < 0) throw validationError('The marker is not valid');
    start = i + 1;
  }
  const page = items.slice(start, start + size);
  return start + size < items.length ? { page, NextMarker: Buffer.from(arnOf(page[page.length - 1]!)).toString('base64url') } : { page };
}

// ---------------------------------------------------------------------------------------------
// Finding records by ARN. Listener and rule ARNs carry their parents' ids:
//   listener/app/<lb name>/<lb id>/<listener id>
//   listener-rule/app/<lb name>/<lb id>/<listener id>/<rule id>

export const loadBalancerNotFound = () => elbError('LoadBalancerNotFound', 'One or more load balancers not found');
export const listenerNotFound = () => elbError('ListenerNotFound', 'One or more listeners not found');
export const ruleNotFound = () => elbError('RuleNotFound', 'One or more rules not found');
export const targetGroupNotFound = () => elbError('TargetGroupNotFound', 'One or more target groups not found');

// ---------------------------------------------------------------------------------------------
// ARN parameters. ELB answers a string that is not an ARN of the kind a parameter takes with
// ValidationError "'<value>' is not a valid target group ARN" (or load balancer ARN), not with
// *NotFound, which is for a well-formed ARN naming nothing. One check covers every operation:
// elbv2-api.ts runs it on each request, by parameter name, wherever the parameter sits.

export type ElbArnKind = 'load balancer' | 'target group' | 'listener' | 'listener rule';

const ARN_RESOURCES: Record<ElbArnKind, RegExp> = {
  'load balancer': /^loadbalancer\/(app|net|gwy)\/[^/]+\/[^/]+$/,
  'target group': /^targetgroup\/[^/]+\/[^/]+$/,
  listener: /^listener\/(app|net|gwy)\/[^/]+\/[^/]+\/[^/]+$/,
  'listener rule': /^listener-rule\/(app|net|gwy)\/[^/]+\/[^/]+\/[^/]+\/[^/]+$/,
};

/** Which kind of ARN each ARN parameter of the ELBv2 model takes (a list takes the same). */
const ARN_PARAMETERS: Record<string, ElbArnKind | 'resource'> = {
  LoadBalancerArn: 'load balancer',
  LoadBalancerArns: 'load balancer',
  TargetGroupArn: 'target group',
  TargetGroupArns: 'target group',
  ListenerArn: 'listener',
  ListenerArns: 'listener',
  RuleArn: 'listener rule',
  RuleArns: 'listener rule',
  ResourceArns: 'resource',
};

export function isElbArn(arn: string, kind: ElbArnKind): boolean {
  const m = /^arn:[^:]+:elasticloadbalancing:[^:]+:[^:]+:(.+)$/.exec(arn);
  return m !== null && ARN_RESOURCES[kind].test(m[1]!);
}

/** Throws ELB's ValidationError when `arn` is not an ARN of `kind` ('resource': any of them). */
export function checkArn(arn: unknown, kind: ElbArnKind | 'resource'): void {
  if (kind === 'resource') {
    if (typeof arn === 'string' && (Object.keys(ARN_RESOURCES) as ElbArnKind[]).some((k) => isElbArn(arn, k))) return;
    throw validationError(`'${String(arn)}' is not a valid load balancer, target group, listener or rule ARN`);
  }
  if (typeof arn !== 'string' || !isElbArn(arn, kind)) throw validationError(`'${String(arn)}' is not a valid ${kind} ARN`);
}

/** Checks every ARN parameter of a request, at any depth (Actions[].TargetGroupArn, RulePriorities[].RuleArn, ...). */
export function checkArnParameters(input: unknown): void {
  if (Array.isArray(input)) {
    for (const v of input) checkArnParameters(v);
    return;
  }
  if (input === null || typeof input !== 'object') return;
  for (const [name, value] of Object.entries(input)) {
    const kind = ARN_PARAMETERS[name];
    if (kind === undefined) checkArnParameters(value);
    else if (Array.isArray(value)) for (const v of value) checkArn(v, kind);
    else if (value !== undefined) checkArn(value, kind);
  }
}

function segments(arn: string): string[] {
  const parts = arn.split(':');
  return parts.length < 6 ? [] : parts.slice(5).join(':').split('/');
}

export function findListener(ctx: ControlContext, arn: string): { listener: ListenerRecord; revision: number; key: string } | undefined {
  const s = segments(arn);
  if (s.length !== 5 || s[0] !== 'listener') return undefined;
  const e = ctx.state.elbListeners.get(s[3]!, s[4]!);
  const listener = e?.value as ListenerRecord | undefined;
  return listener && listener.ListenerArn === arn ? { listener, revision: e!.modRevision, key: e!.key } : undefined;
}

export function requireListener(ctx: ControlContext, arn: string): { listener: ListenerRecord; revision: number; key: string } {
  const l = findListener(ctx, arn);
  if (!l) throw listenerNotFound();
  return l;
}

export function findRule(ctx: ControlContext, arn: string): { rule: RuleRecord; revision: number; key: string } | undefined {
  const s = segments(arn);
  if (s.length !== 6 || s[0] !== 'listener-rule') return undefined;
  const e = ctx.state.elbRules.get(s[4]!, s[5]!);
  const rule = e?.value as RuleRecord | undefined;
  return rule && rule.RuleArn === arn ? { rule, revision: e!.modRevision, key: e!.key } : undefined;
}

/** The ARN of a listener's default rule (never stored: derived, so it is stable). */
export function defaultRuleArn(listenerArn: string): string {
  const id = createHash('sha256').update(listenerArn).digest('hex').slice(0, 16);
  return `${listenerArn.replace(':listener/', ':listener-rule/')}/${id}`;
}

/** The listener whose default rule this ARN is, if it is one. */
export function defaultRuleListener(ctx: ControlContext, ruleArn: string): ListenerRecord | undefined {
  const listenerArn = ruleArn.slice(0, ruleArn.lastIndexOf('/')).replace(':listener-rule/', ':listener/');
  const l = findListener(ctx, listenerArn);
  return l && defaultRuleArn(l.listener.ListenerArn) === ruleArn ? l.listener : undefined;
}

export function loadBalancerById(ctx: ControlContext, id: string): LoadBalancerRecord | undefined {
  return allLoadBalancers(ctx).find((lb) => elbIdOf(lb.LoadBalancerArn) === id);
}

/** The load balancer a listener belongs to. */
export function loadBalancerOfListener(ctx: ControlContext, listener: ListenerRecord): LoadBalancerRecord {
  return loadBalancerById(ctx, elbIdOf(listener.LoadBalancerArn))!;
}

// ---------------------------------------------------------------------------------------------
// Which load balancers use a target group: those with a listener or rule forwarding to it.

export function targetGroupsOfActions(actions: ElbAction[]): string[] {
  const out: string[] = [];
  for (const a of actions) {
    if (a.Type !== 'forward') continue;
    if (a.TargetGroupArn) out.push(a.TargetGroupArn);
    for (const t of a.ForwardConfig?.TargetGroups ?? []) out.push(t.TargetGroupArn);
  }
  return [...new Set(out)];
}

/** Target group ARN -> the ARNs of the load balancers forwarding to it, for every group in use. */
export function targetGroupUsage(ctx: ControlContext): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const use = (tg: string, lb: string) => {
    let s = out.get(tg);
    if (!s) out.set(tg, (s = new Set()));
    s.add(lb);
  };
  const lbOfListener = new Map<string, string>();
  for (const e of ctx.state.elbListeners.all()) {
    const l = e.value as ListenerRecord;
    lbOfListener.set(l.ListenerArn, l.LoadBalancerArn);
    for (const tg of targetGroupsOfActions(l.DefaultActions)) use(tg, l.LoadBalancerArn);
  }
  for (const e of ctx.state.elbRules.all()) {
    const r = e.value as RuleRecord;
    const lb = lbOfListener.get(r.ListenerArn);
    if (lb) for (const tg of targetGroupsOfActions(r.Actions)) use(tg, lb);
  }
  return out;
}
