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
 *
 * Split by stage: cluster-query-types.ts (AST and subject), cluster-query-lexer.ts,
 * cluster-query-parser.ts, cluster-query-evaluate.ts. Callers import from here.
 */
export type { QueryAst, QueryComparison, QueryOperator, QuerySubject, QuerySubjectName } from './cluster-query-types';
export { CLUSTER_QUERY_MAX_LENGTH, parseClusterQuery, parseQueryDate } from './cluster-query-parser';
export { clusterQueryDependencies, evaluateClusterQuery, type QueryDependencies } from './cluster-query-evaluate';
