/**
 * ELBv2 listener rules: Create/Describe/Modify/DeleteRule and SetRulePriorities, on HTTP and
 * HTTPS listeners. Conditions are path-pattern, host-header and http-header, in the legacy
 * `Values` form or the `*Config` forms. The default rule is not stored: it is the listener's
 * DefaultActions, shown with Priority `default` and IsDefault true under a stable derived ARN.
 */
import type { TxnOp } from '../store/store';
import type { ControlContext } from './context';
import { checkActions, type ActionInput } from './elbv2-actions';
import {
  checkTags,
  commit,
  defaultRuleArn,
  defaultRuleListener,
  elbError,
  elbWrite,
  findRule,
  hasControlCharacter,
  loadBalancerOfListener,
  pageOf,
  requireListener,
  ruleNotFound,
  validationError,
} from './elbv2-common';
import { elbIdOf, newElbId, ruleKey, rulesOf, type ElbRuleCondition, type ListenerRecord, type RuleRecord } from './elbv2-records';

interface ConditionInput {
  Field?: string;
  Values?: string[];
  PathPatternConfig?: { Values?: string[] };
  HostHeaderConfig?: { Values?: string[] };
  HttpHeaderConfig?: { HttpHeaderName?: string; Values?: string[] };
  [other: string]: unknown;
}

/** ELB's limit on condition values per rule (wildcards count the same). */
const MAX_CONDITION_VALUES = 5;
const OTHER_CONFIGS = ['QueryStringConfig', 'HttpRequestMethodConfig', 'SourceIpConfig', 'RegexValues'];

function checkConditions(input: ConditionInput[]): ElbRuleCondition[] {
  if (input.length === 0) throw validationError('A rule must have at least one condition');
  let count = 0;
  const seen = new Set<string>();
  const out = input.map((c): ElbRuleCondition => {
    for (const k of OTHER_CONFIGS) if (c[k] !== undefined) throw validationError(`Wharf does not support the condition setting '${k}': use path-pattern, host-header or http-header`);
    const field = c.Field;
    if (field !== 'path-pattern' && field !== 'host-header' && field !== 'http-header') {
      throw validationError(`Condition field '${field ?? ''}' is not supported: Wharf supports path-pattern, host-header and http-header`);
    }
    if (field !== 'http-header') {
      if (seen.has(field)) throw validationError(`A rule can have only one '${field}' condition`);
      seen.add(field);
    }
    const config = field === 'path-pattern' ? c.PathPatternConfig : field === 'host-header' ? c.HostHeaderConfig : c.HttpHeaderConfig;
    if (c.Values !== undefined && config !== undefined) throw validationError(`Condition '${field}' cannot have both Values and a ${field} config`);
    let values: string[];
    if (field === 'http-header') {
      const h = c.HttpHeaderConfig;
      if (!h?.HttpHeaderName) throw validationError("An 'http-header' condition needs HttpHeaderConfig with an HttpHeaderName");
      if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$/.test(h.HttpHeaderName)) throw validationError(`HTTP header name '${h.HttpHeaderName}' is not valid`);
      values = h.Values ?? [];
      checkValues(field, values);
      count += values.length;
      return { Field: field, HttpHeaderConfig: { HttpHeaderName: h.HttpHeaderName, Values: values } };
    }
    if (c.Values !== undefined) {
      // The legacy form takes exactly one value.
      if (c.Values.length !== 1) throw validationError(`A '${field}' condition given with Values must have exactly one value`);
      values = c.Values;
    } else {
      values = (field === 'path-pattern' ? c.PathPatternConfig?.Values : c.HostHeaderConfig?.Values) ?? [];
    }
    checkValues(field, values);
    count += values.length;
    // ELB answers both forms with Values and the config filled in.
    return field === 'path-pattern' ? { Field: field, Values: values, PathPatternConfig: { Values: values } } : { Field: field, Values: values, HostHeaderConfig: { Values: values } };
  });
  if (count > MAX_CONDITION_VALUES) throw validationError(`A rule can have at most ${MAX_CONDITION_VALUES} condition values`);
  return out;
}

function checkValues(field: string, values: string[]): void {
  if (values.length === 0) throw validationError(`A '${field}' condition must have at least one value`);
  for (const v of values) {
    if (v.length === 0 || v.length > 128) throw validationError(`Condition value '${v}' must be 1 to 128 characters long`);
    if (field === 'path-pattern' && !/^[A-Za-z0-9_\-.$/~"'@:+&()!,;=*?%]+$/.test(v)) throw validationError(`Path pattern '${v}' contains characters that are not allowed`);
    if (field === 'host-header' && !/^[A-Za-z0-9\-.*?]+$/.test(v)) throw validationError(`Host header value '${v}' contains characters that are not allowed`);
    if (field === 'http-header' && hasControlCharacter(v)) throw validationError(`HTTP header value '${v}' contains characters that are not allowed`);
  }
}

function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < 1 || priority > 50000) throw validationError(`Priority '${priority}' must be from 1 to 50000`);
}

function priorityInUse(ctx: ControlContext, listener: ListenerRecord, priority: number, except?: string): boolean {
  return rulesOf(ctx, elbIdOf(listener.ListenerArn)).some((r) => Number(r.Priority) === priority && r.RuleArn !== except);
}

function ruleListener(ctx: ControlContext, listenerArn: string): ListenerRecord {
  const { listener } = requireListener(ctx, listenerArn);
  if (listener.Protocol === 'TCP') throw elbError('InvalidConfigurationRequest', `Listener '${listenerArn}' is a TCP listener: rules can be added only to HTTP and HTTPS listeners`);
  return listener;
}

export async function createRule(
  ctx: ControlContext,
  input: { ListenerArn: string; Conditions: ConditionInput[]; Priority: number; Actions: ActionInput[]; Tags?: ElbTag[]; Transforms?: unknown[] },
): Promise<{ Rules: unknown[] }> {
  if (input.Transforms?.length) throw validationError('Wharf does not support rule transforms');
  return elbWrite(ctx, async () => {
    const listener = ruleListener(ctx, input.ListenerArn);
    const lb = loadBalancerOfListener(ctx, listener);
    checkPriority(input.Priority);
    const conditions = checkConditions(input.Conditions);
    const actions = checkActions(ctx, lb, listener, input.Actions);
    const tags = checkTags(input.Tags);
    if (priorityInUse(ctx, listener, input.Priority)) throw elbError('PriorityInUse', `Priority '${input.Priority}' is currently in use`);
    const id = newElbId();
    const rule: RuleRecord = {
      RuleArn: `${listener.ListenerArn.replace(':listener/', ':listener-rule/')}/${id}`,
      ListenerArn: listener.ListenerArn,
      Priority: String(input.Priority),
      Conditions: conditions,
      Actions: actions,
      Tags: tags,
    };
    await commit(ctx, [{ op: 'create', key: ruleKey(elbIdOf(listener.ListenerArn), id), value: rule }]);
    return { Rules: [wire(rule)] };
  });
}

type ElbTag = { Key: string; Value?: string };

/** A rule as ELB answers it. */
interface WireRule {
  RuleArn: string;
  Priority: string;
  Conditions: ElbRuleCondition[];
  Actions: RuleRecord['Actions'];
  IsDefault: boolean;
}

function wire(rule: RuleRecord): WireRule {
  return { RuleArn: rule.RuleArn, Priority: rule.Priority, Conditions: rule.Conditions, Actions: rule.Actions, IsDefault: false };
}

function defaultRule(listener: ListenerRecord): WireRule {
  return { RuleArn: defaultRuleArn(listener.ListenerArn), Priority: 'default', Conditions: [], Actions: listener.DefaultActions, IsDefault: true };
}

/** A listener's rules by priority, the default rule last. */
function rulesInOrder(ctx: ControlContext, listener: ListenerRecord): WireRule[] {
  const rules = rulesOf(ctx, elbIdOf(listener.ListenerArn)).sort((a, b) => Number(a.Priority) - Number(b.Priority));
  return [...rules.map(wire), defaultRule(listener)];
}

export async function describeRules(ctx: ControlContext, input: { ListenerArn?: string; RuleArns?: string[]; Marker?: string; PageSize?: number }): Promise<{ Rules: unknown[]; NextMarker?: string }> {
  let list: WireRule[];
  if (input.RuleArns?.length) {
    if (input.ListenerArn !== undefined) throw validationError('Rule ARNs and a listener ARN cannot be specified at the same time');
    list = input.RuleArns.map((arn) => {
      const found = findRule(ctx, arn);
      if (found) return wire(found.rule);
      const listener = defaultRuleListener(ctx, arn);
      if (listener) return defaultRule(listener);
      throw ruleNotFound();
    });
  } else if (input.ListenerArn !== undefined) {
    list = rulesInOrder(ctx, requireListener(ctx, input.ListenerArn).listener);
  } else {
    throw validationError('You must specify either listener ARN or rule ARNs');
  }
  const { page, NextMarker } = pageOf(list, (r) => r.RuleArn, input);
  return NextMarker ? { Rules: page, NextMarker } : { Rules: page };
}

export async function modifyRule(ctx: ControlContext, input: { RuleArn: string; Conditions?: ConditionInput[]; Actions?: ActionInput[]; Transforms?: unknown[]; ResetTransforms?: boolean }): Promise<{ Rules: unknown[] }> {
  if (input.Transforms?.length) throw validationError('Wharf does not support rule transforms');
  return elbWrite(ctx, async () => {
    const found = findRule(ctx, input.RuleArn);
    if (!found) {
      if (defaultRuleListener(ctx, input.RuleArn)) throw elbError('OperationNotPermitted', 'Default rule cannot be modified: change the listener default actions with ModifyListener');
      throw ruleNotFound();
    }
    const { rule, revision, key } = found;
    const listener = requireListener(ctx, rule.ListenerArn).listener;
    const lb = loadBalancerOfListener(ctx, listener);
    const next: RuleRecord = {
      ...rule,
      ...(input.Conditions !== undefined ? { Conditions: checkConditions(input.Conditions) } : {}),
      ...(input.Actions !== undefined ? { Actions: checkActions(ctx, lb, listener, input.Actions) } : {}),
    };
    await commit(ctx, [{ op: 'update', key, value: next, expectedRevision: revision }]);
    return { Rules: [wire(next)] };
  });
}

export async function deleteRule(ctx: ControlContext, input: { RuleArn: string }): Promise<Record<string, never>> {
  return elbWrite(ctx, async () => {
    const found = findRule(ctx, input.RuleArn);
    if (!found) {
      if (defaultRuleListener(ctx, input.RuleArn)) throw elbError('OperationNotPermitted', 'Default rule cannot be deleted');
      throw ruleNotFound();
    }
    await commit(ctx, [{ op: 'delete', key: found.key, expectedRevision: found.revision }]);
    return {};
  });
}

/** Sets the priorities of rules of one listener at once (so two rules can swap priorities). */
export async function setRulePriorities(ctx: ControlContext, input: { RulePriorities: { RuleArn?: string; Priority?: number }[] }): Promise<{ Rules: unknown[] }> {
  return elbWrite(ctx, async () => {
    const changes = input.RulePriorities.map((p) => {
      if (!p.RuleArn || p.Priority === undefined) throw validationError('Each rule priority pair needs a RuleArn and a Priority');
      checkPriority(p.Priority);
      const found = findRule(ctx, p.RuleArn);
      if (!found) {
        if (defaultRuleListener(ctx, p.RuleArn)) throw elbError('OperationNotPermitted', 'Default rule priority cannot be modified');
        throw ruleNotFound();
      }
      return { ...found, priority: p.Priority };
    });
    if (new Set(changes.map((c) => c.rule.RuleArn)).size !== changes.length) throw validationError('A rule can be given only one priority');
    const listeners = new Set(changes.map((c) => c.rule.ListenerArn));
    if (listeners.size > 1) throw validationError('The rules must belong to the same listener');
    if (changes.length === 0) return { Rules: [] };
    // The priorities after the change must be unique among all of the listener's rules.
    const listener = requireListener(ctx, changes[0]!.rule.ListenerArn).listener;
    const after = new Map(rulesOf(ctx, elbIdOf(listener.ListenerArn)).map((r) => [r.RuleArn, Number(r.Priority)]));
    for (const c of changes) after.set(c.rule.RuleArn, c.priority);
    for (const c of changes) {
      if ([...after].some(([arn, p]) => p === c.priority && arn !== c.rule.RuleArn)) throw elbError('PriorityInUse', `Priority '${c.priority}' is currently in use`);
    }
    const ops: TxnOp[] = changes.map((c) => ({ op: 'update', key: c.key, value: { ...c.rule, Priority: String(c.priority) }, expectedRevision: c.revision }));
    await commit(ctx, ops);
    return { Rules: changes.map((c) => wire({ ...c.rule, Priority: String(c.priority) })) };
  });
}
