/**
 * Capacity provider strategies, as ECS reads them: which provider each new task goes to.
 *
 * A strategy is a list of `{capacityProvider, base, weight}`. At most one item has a base: that
 * many tasks go to it first. Every task after the base is split in proportion to the weights;
 * a provider of weight 0 gets nothing beyond its base. Worked example (ECS's own):
 *
 *   FARGATE base=2 weight=1, FARGATE_SPOT weight=3, 10 tasks
 *   -> 2 on FARGATE (base), the other 8 split 1:3 -> 2 FARGATE + 6 FARGATE_SPOT
 *   -> 4 FARGATE, 6 FARGATE_SPOT
 *
 * Tasks are assigned one at a time: each goes to the provider furthest below its weighted
 * share of the tasks beyond the base (counting the tasks a service already has on each
 * provider), ties to the item listed first. So a service scaled from 4 to 10 ends where a
 * service created with 10 would, and a service whose Spot task was reclaimed replaces it on the
 * provider that is now short.
 */
import type { CapacityProviderStrategyItem } from './shapes/ecs';

/** The capacity providers every account has: Wharf's Fargate pool, on demand and Spot. */
export const FARGATE_PROVIDERS: readonly string[] = ['FARGATE', 'FARGATE_SPOT'];

export const isFargateProvider = (name: string) => FARGATE_PROVIDERS.includes(name);

/** Most items a strategy may have, and the ranges of base and weight (the ECS model's). */
export const MAX_STRATEGY_ITEMS = 20;
export const MAX_BASE = 100000;
export const MAX_WEIGHT = 1000;

/**
 * The rules of a strategy on its own (not which providers exist): returns the message of the
 * first broken rule, or undefined.
 */
export function strategyProblem(strategy: readonly CapacityProviderStrategyItem[]): string | undefined {
  if (strategy.length > MAX_STRATEGY_ITEMS) return `A capacity provider strategy can contain at most ${MAX_STRATEGY_ITEMS} capacity providers.`;
  const seen = new Set<string>();
  let bases = 0;
  for (const s of strategy) {
    if (seen.has(s.capacityProvider)) return `The capacity provider strategy contains the capacity provider '${s.capacityProvider}' more than once.`;
    seen.add(s.capacityProvider);
    if (s.weight !== undefined && (!Number.isInteger(s.weight) || s.weight < 0 || s.weight > MAX_WEIGHT)) return `Capacity provider strategy weight must be between 0 and ${MAX_WEIGHT}.`;
    if (s.base !== undefined && (!Number.isInteger(s.base) || s.base < 0 || s.base > MAX_BASE)) return `Capacity provider strategy base must be between 0 and ${MAX_BASE}.`;
    if ((s.base ?? 0) > 0) bases++;
  }
  if (bases > 1) return 'Only one capacity provider in a strategy can have a base defined.';
  const fargate = strategy.filter((s) => isFargateProvider(s.capacityProvider)).length;
  if (fargate > 0 && fargate < strategy.length) {
    return 'A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.';
  }
  return undefined;
}

/** A strategy tasks can be launched with also needs a weight above zero. */
export function launchStrategyProblem(strategy: readonly CapacityProviderStrategyItem[]): string | undefined {
  const p = strategyProblem(strategy);
  if (p) return p;
  if (strategy.length > 0 && !strategy.some((s) => (s.weight ?? 0) > 0)) {
    return 'The capacity provider strategy must contain at least one capacity provider with a weight greater than zero.';
  }
  return undefined;
}

/**
 * The provider of each of `count` new tasks, in order, given how many tasks each provider
 * already has (a service's tasks that are not stopped; empty for RunTask). Providers absent from
 * the strategy in `existing` are ignored. The strategy must pass launchStrategyProblem.
 */
export function splitTasks(strategy: readonly CapacityProviderStrategyItem[], count: number, existing: ReadonlyMap<string, number> = new Map()): string[] {
  const items = strategy.map((s) => ({ name: s.capacityProvider, base: s.base ?? 0, weight: s.weight ?? 0, has: existing.get(s.capacityProvider) ?? 0 }));
  const totalWeight = items.reduce((n, i) => n + i.weight, 0);
  if (totalWeight === 0) throw new Error('splitTasks: no capacity provider has a weight');
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const short = items.find((i) => i.has < i.base);
    let chosen = short;
    if (!chosen) {
      // Beyond-base tasks after this one, and each provider's deficit against its share of them.
      const beyond = items.reduce((n, i) => n + Math.max(0, i.has - i.base), 0) + 1;
      let best = -Infinity;
      for (const i of items) {
        if (i.weight === 0) continue;
        const deficit = (beyond * i.weight) / totalWeight - Math.max(0, i.has - i.base);
        if (deficit > best + 1e-9) {
          best = deficit;
          chosen = i;
        }
      }
    }
    chosen!.has++;
    out.push(chosen!.name);
  }
  return out;
}

/** How many of `names` each provider got, in strategy order (for grouping placements). */
export function countByProvider(names: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
}

/** The container instance attribute naming its Auto Scaling group provider (`wharf agent --capacity-provider`). */
export const CAPACITY_PROVIDER_ATTRIBUTE = 'wharf.capacity-provider';
