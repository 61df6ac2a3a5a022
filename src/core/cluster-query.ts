/**
 * The ECS cluster query language: memberOf placement constraints and the `filter` of
 * ListContainerInstances.
 *
 *   expression := or
 *   or         := and (('||' | 'or') and)*
 *   and        := unary (('&&' | 'and') unary)*
 *   unary      := ('!' | 'not') unary | '(' expression ')' | comparison
 *   comparison := subject operator [argument]
 *   argument   := literal | '[' literal (',' literal)* ']'
 *   literal    := bare word | 'quoted' | "quoted"
 *
 * A comparison is true when SOME value of the subject satisfies it. Most subjects have one value;
 * an absent attribute has none (so `attribute:stack != prod` does not select instances without
 * `stack`, as the ECS docs' example says) and `task:group` has one value per task group running
 * on the instance (so `task:group != db` is not anti-affinity; `not(task:group == db)` is).
 *
 * Errors are InvalidParameterExceptions naming the 1-based character position and what was
 * expected there, so a user can find the mistake in a 2,000-character constraint.
 */
import { WharfError } from './errors';

export type QuerySubjectName =
  | 'agentConnected'
  | 'agentVersion'
  | 'attribute'
  | 'ec2InstanceId'
  | 'registeredAt'
  | 'runningTasksCount'
  | 'task:group';

export type QueryOperator = '==' | '!=' | '>' | '>=' | '<' | '<=' | 'exists' | '!exists' | 'in' | '!in' | '=~' | '!~';

export interface QueryComparison {
  kind: 'compare';
  subject: QuerySubjectName;
  /** For `attribute:<name>`. */
  attribute?: string;
  op: QueryOperator;
  /** Literal arguments as written (one, or the list of in/!in; none for exists/!exists). */
  args: string[];
  /** 1-based position of the subject in the expression. */
  position: number;
  /** Prepared forms of args, computed once at parse time. */
  regex?: RegExp;
  numbers?: number[];
}

export type QueryAst =
  | QueryComparison
  | { kind: 'and'; operands: QueryAst[] }
  | { kind: 'or'; operands: QueryAst[] }
  | { kind: 'not'; operand: QueryAst };

/** What an expression is evaluated against: one container instance. */
export interface QuerySubject {
  /** Attribute name -> value; a name-only attribute (capabilities) maps to undefined. */
  readonly attributes: ReadonlyMap<string, string | undefined>;
  readonly agentConnected: boolean;
  readonly agentVersion?: string;
  readonly ec2InstanceId?: string;
  /** Registration time, epoch milliseconds. */
  readonly registeredAt: number;
  readonly runningTasksCount: number;
  /** Task group -> number of tasks of that group on the instance (zero entries are ignored). */
  readonly tasksByGroup: ReadonlyMap<string, number>;
}

export const CLUSTER_QUERY_MAX_LENGTH = 2000;

const SUBJECT_OPERATORS: Record<QuerySubjectName, readonly QueryOperator[]> = {
  agentConnected: ['==', '!=', 'in', '!in', '=~', '!~'],
  agentVersion: ['==', '!=', '>', '>=', '<', '<='],
  attribute: ['==', '!=', '>', '>=', '<', '<=', 'exists', '!exists', 'in', '!in', '=~', '!~'],
  ec2InstanceId: ['==', '!=', 'in', '!in', '=~', '!~'],
  registeredAt: ['==', '!=', '>', '>=', '<', '<='],
  runningTasksCount: ['==', '!=', '>', '>=', '<', '<='],
  'task:group': ['==', '!=', 'in', '!in', '=~', '!~', 'exists', '!exists'],
};

const WORD_OPERATORS: Record<string, QueryOperator> = {
  equals: '==',
  not_equals: '!=',
  greater_than: '>',
  greater_than_equal: '>=',
  less_than: '<',
  less_than_equal: '<=',
  exists: 'exists',
  not_exists: '!exists',
  in: 'in',
  not_in: '!in',
  matches: '=~',
  not_matches: '!~',
};

const ATTRIBUTE_NAME = /^[A-Za-z0-9_./\\-]{1,128}$/;

// ---------------------------------------------------------------------------------------------
// Lexer

type TokenType = '(' | ')' | '[' | ']' | ',' | 'symbol' | 'word' | 'string' | 'eof';
interface Token {
  type: TokenType;
  text: string;
  /** 1-based. */
  pos: number;
}

const SYMBOLS = ['&&', '||', '==', '!=', '>=', '<=', '=~', '!~', '>', '<', '!'];
// Characters that end a bare word: whitespace, punctuation of the grammar and operator starts.
const WORD_STOP = new Set([...'()[],\'"=!<>&|']);

function syntaxError(pos: number, message: string): WharfError {
  return new WharfError('InvalidParameterException', `Invalid cluster query expression at position ${pos}: ${message}`);
}

function describe(t: Token): string {
  if (t.type === 'eof') return 'the end of the expression';
  return `'${t.text}'`;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i + 1;
    if (c === '(' || c === ')' || c === '[' || c === ']' || c === ',') {
      out.push({ type: c, text: c, pos });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw syntaxError(pos, `unterminated quoted string (expected a closing ${c})`);
      out.push({ type: 'string', text: src.slice(i + 1, end), pos });
      i = end + 1;
      continue;
    }
    const sym = SYMBOLS.find((s) => src.startsWith(s, i));
    if (sym) {
      out.push({ type: 'symbol', text: sym, pos });
      i += sym.length;
      continue;
    }
    if (WORD_STOP.has(c)) throw syntaxError(pos, `unexpected character '${c}'`);
    let j = i;
    while (j < src.length && !/\s/.test(src[j]!) && !WORD_STOP.has(src[j]!)) j++;
    out.push({ type: 'word', text: src.slice(i, j), pos });
    i = j;
  }
  out.push({ type: 'eof', text: '', pos: src.length + 1 });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(offset = 0): Token {
    return this.toks[Math.min(this.i + offset, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private isWord(t: Token, w: string): boolean {
    return t.type === 'word' && t.text.toLowerCase() === w;
  }

  parse(): QueryAst {
    const ast = this.parseOr();
    const t = this.peek();
    if (t.type !== 'eof') throw syntaxError(t.pos, `expected 'and', 'or' or the end of the expression but found ${describe(t)}`);
    return ast;
  }

  private parseOr(): QueryAst {
    const operands = [this.parseAnd()];
    for (;;) {
      const t = this.peek();
      if ((t.type === 'symbol' && t.text === '||') || this.isWord(t, 'or')) {
        this.next();
        operands.push(this.parseAnd());
      } else break;
    }
    return operands.length === 1 ? operands[0]! : { kind: 'or', operands };
  }

  private parseAnd(): QueryAst {
    const operands = [this.parseUnary()];
    for (;;) {
      const t = this.peek();
      if ((t.type === 'symbol' && t.text === '&&') || this.isWord(t, 'and')) {
        this.next();
        operands.push(this.parseUnary());
      } else break;
    }
    return operands.length === 1 ? operands[0]! : { kind: 'and', operands };
  }

  private parseUnary(): QueryAst {
    const t = this.peek();
    if ((t.type === 'symbol' && t.text === '!') || this.isWord(t, 'not')) {
      this.next();
      return { kind: 'not', operand: this.parseUnary() };
    }
    if (t.type === '(') {
      this.next();
      const inner = this.parseOr();
      const close = this.next();
      if (close.type !== ')') throw syntaxError(close.pos, `expected ')' to close the '(' at position ${t.pos} but found ${describe(close)}`);
      return inner;
    }
    return this.parseComparison();
  }

  private parseSubject(): { subject: QuerySubjectName; attribute?: string; pos: number } {
    const t = this.next();
    if (t.type !== 'word') {
      throw syntaxError(t.pos, `expected a subject (agentConnected, agentVersion, attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount, task:group) but found ${describe(t)}`);
    }
    if (t.text.startsWith('attribute:')) {
      const name = t.text.slice('attribute:'.length);
      if (!ATTRIBUTE_NAME.test(name)) throw syntaxError(t.pos + 10, `expected an attribute name (1-128 letters, digits, '-', '_', '.', '/', '\\') after 'attribute:'`);
      return { subject: 'attribute', attribute: name, pos: t.pos };
    }
    switch (t.text) {
      case 'agentConnected':
      case 'agentVersion':
      case 'ec2InstanceId':
      case 'registeredAt':
      case 'runningTasksCount':
      case 'task:group':
        return { subject: t.text, pos: t.pos };
    }
    throw syntaxError(t.pos, `unknown subject '${t.text}'; expected agentConnected, agentVersion, attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount or task:group`);
  }

  private parseOperator(): { op: QueryOperator; pos: number } {
    const t = this.next();
    if (t.type === 'symbol') {
      if (t.text === '!') {
        // `!in` and `!exists` lex as '!' followed by a word.
        const w = this.peek();
        if (w.type === 'word' && (w.text === 'in' || w.text === 'exists') && w.pos === t.pos + 1) {
          this.next();
          return { op: w.text === 'in' ? '!in' : '!exists', pos: t.pos };
        }
      } else if (['==', '!=', '>', '>=', '<', '<=', '=~', '!~'].includes(t.text)) {
        return { op: t.text as QueryOperator, pos: t.pos };
      }
    } else if (t.type === 'word') {
      const op = WORD_OPERATORS[t.text.toLowerCase()];
      if (op) return { op, pos: t.pos };
    }
    throw syntaxError(t.pos, `expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~ or a word alias) but found ${describe(t)}`);
  }

  private parseLiteral(): Token {
    const t = this.next();
    if (t.type !== 'word' && t.type !== 'string') throw syntaxError(t.pos, `expected a value but found ${describe(t)}`);
    return t;
  }

  private parseComparison(): QueryComparison {
    const { subject, attribute, pos } = this.parseSubject();
    const { op, pos: opPos } = this.parseOperator();
    if (!SUBJECT_OPERATORS[subject].includes(op)) {
      throw syntaxError(opPos, `operator '${op}' cannot be used with ${subject === 'attribute' ? 'attribute:<name>' : subject}; expected one of ${SUBJECT_OPERATORS[subject].join(', ')}`);
    }
    const node: QueryComparison = { kind: 'compare', subject, op, args: [], position: pos };
    if (attribute !== undefined) node.attribute = attribute;
    const argToks: Token[] = [];
    if (op === 'exists' || op === '!exists') {
      // no argument
    } else if (op === 'in' || op === '!in') {
      const open = this.next();
      if (open.type !== '[') throw syntaxError(open.pos, `expected '[' to start the argument list of '${op}' but found ${describe(open)}`);
      for (;;) {
        argToks.push(this.parseLiteral());
        const sep = this.next();
        if (sep.type === ']') break;
        if (sep.type !== ',') throw syntaxError(sep.pos, `expected ',' or ']' in the argument list but found ${describe(sep)}`);
      }
    } else {
      argToks.push(this.parseLiteral());
    }
    node.args = argToks.map((a) => a.text);
    prepare(node, argToks);
    return node;
  }
}

/** Converts arguments once so evaluation is a cheap comparison. */
function prepare(node: QueryComparison, argToks: Token[]): void {
  if (node.op === '=~' || node.op === '!~') {
    try {
      // Java's Pattern.matches() needs the whole value to match, hence the anchors.
      node.regex = new RegExp(`^(?:${node.args[0]!})$`);
    } catch {
      throw syntaxError(argToks[0]!.pos, `'${node.args[0]}' is not a valid regular expression`);
    }
    return;
  }
  if (node.subject === 'runningTasksCount') {
    node.numbers = argToks.map((t) => {
      if (!/^\d+$/.test(t.text)) throw syntaxError(t.pos, `expected a whole number for runningTasksCount but found '${t.text}'`);
      return Number(t.text);
    });
  } else if (node.subject === 'registeredAt') {
    node.numbers = argToks.map((t) => {
      const ms = parseQueryDate(t.text);
      if (ms === undefined) {
        throw syntaxError(t.pos, `expected a date (2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 or 2018-06-18) but found '${t.text}'`);
      }
      return ms;
    });
  }
}

/** The date formats registeredAt accepts; a missing offset means UTC. Returns epoch ms. */
export function parseQueryDate(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})?)?$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h = '0', mi = '0', se = '0'] = m.slice(1, 7).map((x) => x ?? undefined) as string[];
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  const back = new Date(ms);
  // Reject 2018-02-30 and 25:00:00, which Date.UTC would silently roll over.
  if (back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d) || back.getUTCHours() !== Number(h) || back.getUTCMinutes() !== Number(mi)) {
    return undefined;
  }
  const off = m[7];
  if (!off || off === 'Z') return ms;
  const sign = off[0] === '-' ? -1 : 1;
  return ms - sign * (Number(off.slice(1, 3)) * 60 + Number(off.slice(4, 6))) * 60_000;
}

/** Parses a cluster query; throws InvalidParameterException naming the position of the error. */
export function parseClusterQuery(expr: string): QueryAst {
  if (expr.length > CLUSTER_QUERY_MAX_LENGTH) {
    throw new WharfError('InvalidParameterException', `Cluster query expressions are limited to ${CLUSTER_QUERY_MAX_LENGTH} characters.`);
  }
  const toks = tokenize(expr);
  if (toks.length === 1) throw syntaxError(1, 'expected a subject but the expression is empty');
  return new Parser(toks).parse();
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split(/[.-]/);
  const pb = b.replace(/^v/, '').split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isFinite(nx) && Number.isFinite(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

function compareAttributeValues(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

function ordered(op: QueryOperator, c: number): boolean {
  switch (op) {
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    default:
      return false;
  }
}

/** True when one value satisfies the comparison. */
function testValue(node: QueryComparison, value: string | number): boolean {
  const op = node.op;
  switch (node.subject) {
    case 'runningTasksCount':
    case 'registeredAt': {
      let v = value as number;
      let arg = node.numbers![0]!;
      if (node.subject === 'registeredAt' && (op === '==' || op === '!=')) {
        // Dates are written to the second; compare at that precision.
        v = Math.floor(v / 1000);
        arg = Math.floor(arg / 1000);
      }
      return ordered(op, v - arg);
    }
    case 'agentVersion':
      if (op === '==' || op === '!=') return ordered(op, value === node.args[0] ? 0 : 1);
      return ordered(op, compareVersions(String(value), node.args[0]!));
  }
  const s = String(value);
  switch (op) {
    case '==':
      return node.subject === 'agentConnected' ? s === node.args[0]!.toLowerCase() : s === node.args[0];
    case '!=':
      return node.subject === 'agentConnected' ? s !== node.args[0]!.toLowerCase() : s !== node.args[0];
    case 'in':
      return node.args.includes(s);
    case '!in':
      return !node.args.includes(s);
    case '=~':
      return node.regex!.test(s);
    case '!~':
      return !node.regex!.test(s);
    default:
      return ordered(op, compareAttributeValues(s, node.args[0]!));
  }
}

function evaluateComparison(node: QueryComparison, s: QuerySubject): boolean {
  switch (node.subject) {
    case 'attribute': {
      const name = node.attribute!;
      if (node.op === 'exists') return s.attributes.has(name);
      if (node.op === '!exists') return !s.attributes.has(name);
      const v = s.attributes.get(name);
      return v !== undefined && testValue(node, v);
    }
    case 'task:group': {
      let any = false;
      for (const [group, n] of s.tasksByGroup) {
        if (n <= 0) continue;
        any = true;
        if (node.op !== 'exists' && node.op !== '!exists' && testValue(node, group)) return true;
      }
      if (node.op === 'exists') return any;
      if (node.op === '!exists') return !any;
      return false;
    }
    case 'agentConnected':
      return testValue(node, s.agentConnected ? 'true' : 'false');
    case 'agentVersion':
      return s.agentVersion !== undefined && testValue(node, s.agentVersion);
    case 'ec2InstanceId':
      return s.ec2InstanceId !== undefined && testValue(node, s.ec2InstanceId);
    case 'registeredAt':
      return testValue(node, s.registeredAt);
    case 'runningTasksCount':
      return testValue(node, s.runningTasksCount);
  }
}

export function evaluateClusterQuery(ast: QueryAst, subject: QuerySubject): boolean {
  switch (ast.kind) {
    case 'compare':
      return evaluateComparison(ast, subject);
    case 'not':
      return !evaluateClusterQuery(ast.operand, subject);
    case 'and':
      for (const o of ast.operands) if (!evaluateClusterQuery(o, subject)) return false;
      return true;
    case 'or':
      for (const o of ast.operands) if (evaluateClusterQuery(o, subject)) return true;
      return false;
  }
}

export interface QueryDependencies {
  /** Attribute names the expression reads. */
  attributes: Set<string>;
  /** Subjects it reads (attribute counted as 'attribute'). */
  subjects: Set<QuerySubjectName>;
  /** True when the result can change as tasks start or stop on an instance
   * (task:group, runningTasksCount), so a cached result must be dropped then. */
  dependsOnTasks: boolean;
}

/** Which subjects and attributes an expression reads, so callers can index and cache. */
export function clusterQueryDependencies(ast: QueryAst): QueryDependencies {
  const deps: QueryDependencies = { attributes: new Set(), subjects: new Set(), dependsOnTasks: false };
  const walk = (n: QueryAst): void => {
    if (n.kind === 'compare') {
      deps.subjects.add(n.subject);
      if (n.attribute !== undefined) deps.attributes.add(n.attribute);
      if (n.subject === 'task:group' || n.subject === 'runningTasksCount') deps.dependsOnTasks = true;
    } else if (n.kind === 'not') walk(n.operand);
    else n.operands.forEach(walk);
  };
  walk(ast);
  return deps;
}
