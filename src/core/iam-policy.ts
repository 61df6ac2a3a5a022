/**
 * IAM identity policies: the JSON grammar AWS users already write (`Version`, `Statement`,
 * `Effect`, `Action`/`NotAction`, `Resource`/`NotResource`, `Condition`) and IAM's evaluation of
 * one request against one policy. Pure: no I/O, no clock.
 *
 * Evaluation, as IAM does it for a single identity policy:
 *
 *   any matching Deny statement  -> explicit-deny   (a Deny always wins)
 *   else any matching Allow      -> allow
 *   else                         -> implicit-deny   (nothing allowed it)
 *
 * A statement matches when its action part, its resource part and every condition match. Action
 * names compare case-insensitively, resource ARNs case-sensitively; both take `*` (any run of
 * characters) and `?` (one character). In a Condition block, operators are ANDed, keys within an
 * operator are ANDed, and the values listed for one key are ORed. A key absent from the request
 * makes a positive operator false and a negated one (StringNotEquals, ArnNotLike, ...) true;
 * `...IfExists` makes any operator true when the key is absent; `Null` tests only presence.
 * Condition keys are case-insensitive, as IAM's are. Which keys a request carries is decided by
 * whoever builds its context (core/iam-condition-keys.ts); the clock, for aws:CurrentTime, is in
 * that context, never read here.
 */

import { ipInRange, parseIpAddress, parseIpRange } from '../lib/ip-address';

export type Effect = 'Allow' | 'Deny';

export interface PolicyStatement {
  Sid?: string;
  Effect: Effect;
  /** Exactly one of Action / NotAction is set. */
  Action?: string[];
  NotAction?: string[];
  /** Exactly one of Resource / NotResource is set. */
  Resource?: string[];
  NotResource?: string[];
  /** operator -> condition key -> values (ORed). */
  Condition?: Record<string, Record<string, string[]>>;
}

export interface PolicyDocument {
  Version: string;
  Statement: PolicyStatement[];
}

/** One request as IAM sees it: an action on one resource, with its condition context. */
export interface AuthorizationRequest {
  /** `service:Operation`, e.g. `ecs:RunTask`. */
  action: string;
  /** The resource's ARN, or `*` for actions without resource-level permissions. */
  resource: string;
  /** Condition keys (any case) and their values, e.g. `{ 'ecs:cluster': 'arn:...:cluster/a' }`. */
  context: Record<string, string>;
}

export type Decision = 'allow' | 'explicit-deny' | 'implicit-deny';

/** A policy IAM would refuse; the message follows IAM's MalformedPolicyDocument wording. */
export class MalformedPolicyDocument extends Error {
  readonly code = 'MalformedPolicyDocument';
}

const VERSIONS = ['2012-10-17', '2008-10-17'];
const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition', 'Principal', 'NotPrincipal']);

type Matcher = (value: string, pattern: string) => boolean;

/** What an operator's policy values must be; checked when the policy is parsed. */
type ValueKind = 'string' | 'number' | 'date' | 'ip' | 'bool';

/**
 * IAM reads a date as ISO 8601 (`2024-05-01`, `2024-05-01T12:00:00Z`) or as epoch seconds, in the
 * policy and in the request alike (aws:CurrentTime is the first, aws:EpochTime the second).
 */
function dateMs(s: string): number | undefined {
  if (/^-?\d+$/.test(s)) return Number(s) * 1000;
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

function numberOf(s: string): number | undefined {
  if (!/^-?(\d+\.?\d*|\.\d+)$/.test(s.trim())) return undefined;
  return Number(s);
}

/** A comparison of two numbers read by `read`; false when either side does not read. */
const compare = (read: (s: string) => number | undefined, cmp: (a: number, b: number) => boolean): Matcher => (v, p) => {
  const a = read(v);
  const b = read(p);
  return a !== undefined && b !== undefined && cmp(a, b);
};

function ipMatch(value: string, pattern: string): boolean {
  const address = parseIpAddress(value);
  const range = parseIpRange(pattern);
  return address !== undefined && range !== undefined && ipInRange(address, range);
}

const eq = (a: number, b: number) => a === b;
const lt = (a: number, b: number) => a < b;
const le = (a: number, b: number) => a <= b;
const gt = (a: number, b: number) => a > b;
const ge = (a: number, b: number) => a >= b;

/**
 * Base condition operators; `Not` ones are true when no listed value matches. Null is apart: it
 * asks whether the key is absent (`true`) or present (`false`), whatever its value.
 */
const OPERATORS: Record<string, { match: Matcher; negated: boolean; values: ValueKind }> = {
  StringEquals: { match: (v, p) => v === p, negated: false, values: 'string' },
  StringNotEquals: { match: (v, p) => v === p, negated: true, values: 'string' },
  StringEqualsIgnoreCase: { match: (v, p) => v.toLowerCase() === p.toLowerCase(), negated: false, values: 'string' },
  StringNotEqualsIgnoreCase: { match: (v, p) => v.toLowerCase() === p.toLowerCase(), negated: true, values: 'string' },
  StringLike: { match: (v, p) => wildcardMatch(v, p, false), negated: false, values: 'string' },
  StringNotLike: { match: (v, p) => wildcardMatch(v, p, false), negated: true, values: 'string' },
  // IAM checks each of an ARN's six colon-separated parts on its own, with wildcards in each, for
  // ArnEquals and ArnLike alike.
  ArnEquals: { match: arnMatch, negated: false, values: 'string' },
  ArnLike: { match: arnMatch, negated: false, values: 'string' },
  ArnNotEquals: { match: arnMatch, negated: true, values: 'string' },
  ArnNotLike: { match: arnMatch, negated: true, values: 'string' },
  NumericEquals: { match: compare(numberOf, eq), negated: false, values: 'number' },
  NumericNotEquals: { match: compare(numberOf, eq), negated: true, values: 'number' },
  NumericLessThan: { match: compare(numberOf, lt), negated: false, values: 'number' },
  NumericLessThanEquals: { match: compare(numberOf, le), negated: false, values: 'number' },
  NumericGreaterThan: { match: compare(numberOf, gt), negated: false, values: 'number' },
  NumericGreaterThanEquals: { match: compare(numberOf, ge), negated: false, values: 'number' },
  DateEquals: { match: compare(dateMs, eq), negated: false, values: 'date' },
  DateNotEquals: { match: compare(dateMs, eq), negated: true, values: 'date' },
  DateLessThan: { match: compare(dateMs, lt), negated: false, values: 'date' },
  DateLessThanEquals: { match: compare(dateMs, le), negated: false, values: 'date' },
  DateGreaterThan: { match: compare(dateMs, gt), negated: false, values: 'date' },
  DateGreaterThanEquals: { match: compare(dateMs, ge), negated: false, values: 'date' },
  Bool: { match: (v, p) => v.toLowerCase() === p.toLowerCase(), negated: false, values: 'bool' },
  IpAddress: { match: ipMatch, negated: false, values: 'ip' },
  NotIpAddress: { match: ipMatch, negated: true, values: 'ip' },
};

/** Whether a policy value suits its operator (`NumericLessThan` takes numbers, ...). */
const VALUE_CHECKS: Record<ValueKind, { ok: (s: string) => boolean; what: string }> = {
  string: { ok: () => true, what: 'a string' },
  number: { ok: (s) => numberOf(s) !== undefined, what: 'a number' },
  date: { ok: (s) => dateMs(s) !== undefined, what: 'a date (ISO 8601, such as 2024-05-01T12:00:00Z, or epoch seconds)' },
  ip: { ok: (s) => parseIpRange(s) !== undefined, what: 'an IP address or CIDR range (such as 203.0.113.0/24 or 2001:db8::/32)' },
  bool: { ok: (s) => s.toLowerCase() === 'true' || s.toLowerCase() === 'false', what: 'true or false' },
};

/** Parses and validates a policy document (text or already-parsed JSON). */
export function parsePolicy(doc: unknown): PolicyDocument {
  let v = doc;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      throw new MalformedPolicyDocument('Syntax errors in policy.');
    }
  }
  if (!isObject(v)) throw new MalformedPolicyDocument('Syntax errors in policy.');
  for (const k of Object.keys(v)) {
    if (k !== 'Version' && k !== 'Statement' && k !== 'Id') throw new MalformedPolicyDocument(`Syntax errors in policy: unknown element ${k}.`);
  }
  // IAM reads a policy without a Version as 2008-10-17; both versions mean the same here (Wharf
  // has no policy variables).
  const version = v.Version ?? '2008-10-17';
  if (typeof version !== 'string' || !VERSIONS.includes(version)) {
    throw new MalformedPolicyDocument(`The policy must contain a valid version string (${VERSIONS.join(' or ')}).`);
  }
  if (v.Statement === undefined) throw new MalformedPolicyDocument('Policy document must contain a Statement.');
  const raw = Array.isArray(v.Statement) ? v.Statement : [v.Statement];
  if (raw.length === 0) throw new MalformedPolicyDocument('Policy statement must contain at least one statement.');
  return { Version: version, Statement: raw.map((s, i) => parseStatement(s, i)) };
}

function parseStatement(s: unknown, i: number): PolicyStatement {
  const where = `Statement ${i + 1}`;
  if (!isObject(s)) throw new MalformedPolicyDocument(`Syntax errors in policy: ${where} is not an object.`);
  for (const k of Object.keys(s)) {
    if (!STATEMENT_KEYS.has(k)) throw new MalformedPolicyDocument(`Syntax errors in policy: unknown element ${k} in ${where}.`);
  }
  if (s.Principal !== undefined || s.NotPrincipal !== undefined) throw new MalformedPolicyDocument('Policy document should not specify a principal.');
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new MalformedPolicyDocument(`${where}: Effect must be Allow or Deny.`);
  const out: PolicyStatement = { Effect: s.Effect };
  if (s.Sid !== undefined) {
    if (typeof s.Sid !== 'string' || !/^[A-Za-z0-9]*$/.test(s.Sid)) throw new MalformedPolicyDocument(`Statement IDs (SID) must be alpha-numeric: ${String(s.Sid)}.`);
    out.Sid = s.Sid;
  }
  if ((s.Action === undefined) === (s.NotAction === undefined)) {
    throw new MalformedPolicyDocument(`${where}: a statement must contain exactly one of Action or NotAction.`);
  }
  const actionKey = s.Action !== undefined ? 'Action' : 'NotAction';
  const actions = stringList(s[actionKey], `${where} ${actionKey}`);
  for (const a of actions) {
    if (a !== '*' && !/^[a-z0-9-]+:[A-Za-z0-9*?]+$/i.test(a)) throw new MalformedPolicyDocument(`Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. (${where}: ${a})`);
  }
  out[actionKey] = actions;
  if ((s.Resource === undefined) === (s.NotResource === undefined)) {
    throw new MalformedPolicyDocument(`${where}: a statement must contain exactly one of Resource or NotResource.`);
  }
  const resourceKey = s.Resource !== undefined ? 'Resource' : 'NotResource';
  const resources = stringList(s[resourceKey], `${where} ${resourceKey}`);
  for (const r of resources) {
    if (r !== '*' && !/^arn:[^:]*:[^:]*:[^:]*:[^:]*:.+$/.test(r)) throw new MalformedPolicyDocument(`Resource ${r} must be in ARN format or "*".`);
  }
  out[resourceKey] = resources;
  if (s.Condition !== undefined) out.Condition = parseCondition(s.Condition, where);
  return out;
}

function parseCondition(c: unknown, where: string): Record<string, Record<string, string[]>> {
  if (!isObject(c)) throw new MalformedPolicyDocument(`Syntax errors in policy: ${where} Condition must be an object.`);
  const out: Record<string, Record<string, string[]>> = {};
  for (const [op, block] of Object.entries(c)) {
    const spec = op === 'Null' ? undefined : OPERATORS[baseOperator(op)];
    if (!spec && op !== 'Null') throw new MalformedPolicyDocument(`Invalid Condition type : ${op}.`);
    if (!isObject(block)) throw new MalformedPolicyDocument(`Syntax errors in policy: ${where} Condition ${op} must map keys to values.`);
    const keys: Record<string, string[]> = {};
    for (const [key, values] of Object.entries(block)) {
      if (!/^[a-z0-9-]+:[A-Za-z0-9_./:-]+$/i.test(key)) throw new MalformedPolicyDocument(`Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. (${where}: ${key})`);
      const list = (Array.isArray(values) ? values : [values]).map((x) => {
        if (typeof x === 'string') return x;
        if (typeof x === 'number' || typeof x === 'boolean') return String(x);
        throw new MalformedPolicyDocument(`Syntax errors in policy: ${where} Condition ${op} ${key} takes strings.`);
      });
      if (list.length === 0) throw new MalformedPolicyDocument(`${where}: Condition ${op} ${key} lists no value.`);
      const check = VALUE_CHECKS[spec ? spec.values : 'bool'];
      const bad = list.find((x) => !check.ok(x));
      if (bad !== undefined) throw new MalformedPolicyDocument(`${where}: Condition ${op} ${key} takes ${check.what}, not '${bad}'.`);
      keys[key] = list;
    }
    out[op] = keys;
  }
  return out;
}

/** `StringEqualsIfExists` -> `StringEquals`. */
function baseOperator(op: string): string {
  return op.endsWith('IfExists') ? op.slice(0, -'IfExists'.length) : op;
}

function stringList(v: unknown, what: string): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || x === '')) {
    throw new MalformedPolicyDocument(`Syntax errors in policy: ${what} must be a string or a non-empty list of strings.`);
  }
  return list as string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Whether `value` matches `pattern`, where `*` is any run of characters (also `/` and `:`) and
 * `?` one character. Iterative with one backtrack point, so no pattern can make it exponential.
 */
export function wildcardMatch(value: string, pattern: string, ignoreCase: boolean): boolean {
  const v = ignoreCase ? value.toLowerCase() : value;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (i < v.length) {
    if (j < p.length && (p[j] === '?' || p[j] === v[i])) {
      i++;
      j++;
    } else if (j < p.length && p[j] === '*') {
      star = j++;
      mark = i;
    } else if (star >= 0) {
      j = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (j < p.length && p[j] === '*') j++;
  return j === p.length;
}

/** ARN comparison as ArnEquals/ArnLike do it: six colon-separated parts, wildcards in each. */
function arnMatch(value: string, pattern: string): boolean {
  const a = splitArn(value);
  const b = splitArn(pattern);
  if (!a || !b) return false;
  return a.every((part, i) => wildcardMatch(part, b[i]!, false));
}

function splitArn(s: string): string[] | undefined {
  const parts = s.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
}

function conditionsMatch(cond: PolicyStatement['Condition'], context: Record<string, string>): boolean {
  if (!cond) return true;
  const ctx = new Map(Object.entries(context).map(([k, v]) => [k.toLowerCase(), v]));
  for (const [op, keys] of Object.entries(cond)) {
    if (op === 'Null') {
      // `"Null": {"k": "true"}` asks that k be absent, `"false"` that it be present.
      for (const [key, values] of Object.entries(keys)) {
        const absent = !ctx.has(key.toLowerCase());
        if (!values.some((p) => (p.toLowerCase() === 'true') === absent)) return false;
      }
      continue;
    }
    const ifExists = op.endsWith('IfExists');
    const { match, negated } = OPERATORS[baseOperator(op)]!;
    for (const [key, values] of Object.entries(keys)) {
      const v = ctx.get(key.toLowerCase());
      if (v === undefined) {
        if (ifExists || negated) continue;
        return false;
      }
      const any = values.some((p) => match(v, p));
      if (negated ? any : !any) return false;
    }
  }
  return true;
}

function statementMatches(s: PolicyStatement, req: AuthorizationRequest): boolean {
  const actionHit = (list: string[]) => list.some((p) => wildcardMatch(req.action, p, true));
  if (s.Action ? !actionHit(s.Action) : actionHit(s.NotAction!)) return false;
  const resourceHit = (list: string[]) => list.some((p) => wildcardMatch(req.resource, p, false));
  if (s.Resource ? !resourceHit(s.Resource) : resourceHit(s.NotResource!)) return false;
  return conditionsMatch(s.Condition, req.context);
}

/** IAM's decision for one request under one identity policy. */
export function evaluate(policy: PolicyDocument, req: AuthorizationRequest): Decision {
  let allowed = false;
  for (const s of policy.Statement) {
    if (!statementMatches(s, req)) continue;
    if (s.Effect === 'Deny') return 'explicit-deny';
    allowed = true;
  }
  return allowed ? 'allow' : 'implicit-deny';
}

/**
 * The decision for an action on several resources (DescribeClusters on three clusters): every
 * one must be allowed; the first refused resource is the one the error names.
 */
export function evaluateAll(policy: PolicyDocument, action: string, resources: readonly string[], context: Record<string, string>):
  | { decision: 'allow' }
  | { decision: 'explicit-deny' | 'implicit-deny'; resource: string } {
  for (const resource of resources.length > 0 ? resources : ['*']) {
    const d = evaluate(policy, { action, resource, context });
    if (d !== 'allow') return { decision: d, resource };
  }
  return { decision: 'allow' };
}

/** IAM's AccessDenied wording for a refused request. */
export function accessDeniedMessage(principalArn: string, action: string, resource: string, decision: 'explicit-deny' | 'implicit-deny'): string {
  const why = decision === 'explicit-deny'
    ? 'with an explicit deny in an identity-based policy'
    : `because no identity-based policy allows the ${action} action`;
  return `User: ${principalArn} is not authorized to perform: ${action} on resource: ${resource} ${why}`;
}
