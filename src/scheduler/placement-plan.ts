/**
 * Validation and normalisation of a PlacementRequest: limits (count 1-10, at most 5 strategies,
 * at most 10 constraints counting the task definition's), constraint and strategy field rules,
 * ECS's default strategies, parsed memberOf expressions. Throws InvalidParameterException.
 */
import { clusterQueryDependencies, parseClusterQuery, type QueryAst } from '../core/cluster-query';
import { invalidParameter } from '../core/errors';
import type { PlacementConstraint, PlacementStrategy } from '../core/shapes/ecs';
import type { FilterContext } from './filters/filter';
import { filters, scorers } from './registry';
import type { PlacementFilter } from './filters/filter';
import type { NormalizedStrategy } from './scorers/scorer';
import { spreadKey, type PlacementRequest } from './types';

export const MAX_STRATEGIES = 5;
export const MAX_CONSTRAINTS = 10;
export const MAX_COUNT = 10;

/** ECS's defaults: services spread across availability zones, then across instances (fewest
 * tasks of the service); standalone tasks have no documented default, we place at random. */
export function defaultStrategies(isService: boolean): PlacementStrategy[] {
  return isService
    ? [
        { type: 'spread', field: 'attribute:ecs.availability-zone' },
        { type: 'spread', field: 'instanceId' },
      ]
    : [{ type: 'random' }];
}

export function normalizeStrategies(list: readonly PlacementStrategy[]): NormalizedStrategy[] {
  if (list.length > MAX_STRATEGIES) throw invalidParameter(`The number of placement strategies cannot exceed ${MAX_STRATEGIES}.`);
  return list.map((s) => {
    const scorer = s.type !== undefined ? scorers[s.type] : undefined;
    if (!scorer) throw invalidParameter(`Invalid placement strategy type '${s.type ?? ''}': expected binpack, spread or random.`);
    return scorer.normalize(s.field);
  });
}

export interface NormalizedConstraints {
  memberOf: { expression: string; ast: QueryAst }[];
  distinctInstance: boolean;
}

/** Parsed expressions by text: services place with the same few expressions again and again. */
const parsed = new Map<string, { ast: QueryAst; dependsOnTasks: boolean }>();
const MAX_PARSED = 1024;

function parseCached(expression: string): { ast: QueryAst; dependsOnTasks: boolean } {
  let p = parsed.get(expression);
  if (!p) {
    const ast = parseClusterQuery(expression);
    p = { ast, dependsOnTasks: clusterQueryDependencies(ast).dependsOnTasks };
    if (parsed.size >= MAX_PARSED) parsed.clear();
    parsed.set(expression, p);
  }
  return p;
}

export function normalizeConstraints(list: readonly PlacementConstraint[]): NormalizedConstraints {
  if (list.length > MAX_CONSTRAINTS) throw invalidParameter(`The number of placement constraints cannot exceed ${MAX_CONSTRAINTS}, counting the task definition's.`);
  const out: NormalizedConstraints = { memberOf: [], distinctInstance: false };
  for (const c of list) {
    const expr = c.expression === '' ? undefined : c.expression;
    if (c.type === 'distinctInstance') {
      if (expr !== undefined) throw invalidParameter('A distinctInstance placement constraint cannot have an expression.');
      out.distinctInstance = true;
    } else if (c.type === 'memberOf') {
      if (expr === undefined) throw invalidParameter('A memberOf placement constraint requires an expression.');
      out.memberOf.push({ expression: expr, ast: parseCached(expr).ast });
    } else {
      throw invalidParameter(`Invalid placement constraint type '${c.type ?? ''}': expected distinctInstance or memberOf.`);
    }
  }
  return out;
}

/** Everything place() needs, checked and prepared once per call. */
export interface PlacementPlan {
  request: PlacementRequest;
  filter: FilterContext;
  /** Only the filters that can reject something for this task, in registry order. */
  activeFilters: PlacementFilter[];
  /** The user's strategies, cut at the first random (nothing after it can break a tie). */
  strategies: NormalizedStrategy[];
  spreadKey: string;
  /** memberOf expressions that read only instance fields (no task:group, runningTasksCount),
   * sorted: the index keeps a candidate partition per such set. */
  staticMemberOf: string[];
}

export function planPlacement(request: PlacementRequest): PlacementPlan {
  if (!Number.isInteger(request.count) || request.count < 1 || request.count > MAX_COUNT) {
    throw invalidParameter(`count must be between 1 and ${MAX_COUNT}.`);
  }
  const given = request.strategies && request.strategies.length > 0 ? request.strategies : defaultStrategies(request.service !== undefined);
  const all = normalizeStrategies(given);
  const cut = all.findIndex((s) => s.type === 'random');
  const strategies = cut >= 0 ? all.slice(0, cut) : all;
  const constraints = normalizeConstraints(request.constraints ?? []);
  const n = request.needs;
  const filter: FilterContext = {
    cpu: n.cpu,
    memory: n.memory,
    tcpPorts: n.tcpPorts ?? [],
    udpPorts: n.udpPorts ?? [],
    gpus: n.gpus ?? 0,
    group: request.group,
    requiredAttributes: request.requiredAttributes ?? [],
    memberOf: constraints.memberOf,
    distinctInstance: constraints.distinctInstance,
  };
  return {
    request,
    filter,
    activeFilters: filters.filter((f) => f.applies(filter)),
    strategies,
    spreadKey: spreadKey(request),
    staticMemberOf: [...new Set(constraints.memberOf.filter((m) => !parseCached(m.expression).dependsOnTasks).map((m) => m.expression))].sort(),
  };
}
