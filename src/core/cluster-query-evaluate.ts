/**
 * Evaluating a parsed cluster query against one container instance, and the dependencies of an
 * expression (which inputs can change its result) for callers that index and cache.
 */
import type { QueryAst, QueryComparison, QueryOperator, QuerySubject, QuerySubjectName } from './cluster-query-types';

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
