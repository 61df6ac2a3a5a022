/**
 * The cluster query parser (grammar in cluster-query.ts): a recursive-descent parser over the
 * lexer's tokens that checks each subject's operators and prepares arguments (numbers, dates,
 * anchored regular expressions) once, so evaluation is cheap.
 */
import { WharfError } from './errors';
import type { QueryAst, QueryComparison, QueryOperator, QuerySubjectName } from './cluster-query-types';
import { describeToken, syntaxError, tokenize, type Token } from './cluster-query-lexer';

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
    if (t.type !== 'eof') throw syntaxError(t.pos, `expected 'and', 'or' or the end of the expression but found ${describeToken(t)}`);
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
      if (close.type !== ')') throw syntaxError(close.pos, `expected ')' to close the '(' at position ${t.pos} but found ${describeToken(close)}`);
      return inner;
    }
    return this.parseComparison();
  }

  private parseSubject(): { subject: QuerySubjectName; attribute?: string; pos: number } {
    const t = this.next();
    if (t.type !== 'word') {
      throw syntaxError(t.pos, `expected a subject (agentConnected, agentVersion, attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount, task:group) but found ${describeToken(t)}`);
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
    throw syntaxError(t.pos, `expected an operator (==, !=, >, >=, <, <=, exists, !exists, in, !in, =~, !~ or a word alias) but found ${describeToken(t)}`);
  }

  private parseLiteral(): Token {
    const t = this.next();
    if (t.type !== 'word' && t.type !== 'string') throw syntaxError(t.pos, `expected a value but found ${describeToken(t)}`);
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
      if (open.type !== '[') throw syntaxError(open.pos, `expected '[' to start the argument list of '${op}' but found ${describeToken(open)}`);
      for (;;) {
        argToks.push(this.parseLiteral());
        const sep = this.next();
        if (sep.type === ']') break;
        if (sep.type !== ',') throw syntaxError(sep.pos, `expected ',' or ']' in the argument list but found ${describeToken(sep)}`);
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
