/**
 * Rules between containers of one task definition: every reference (links, volumesFrom,
 * dependsOn) names a container of the same task, dependsOn conditions make sense for their
 * target, and the start order has no cycle.
 *
 * The agent starts a container only after the containers it depends on, and Docker needs a
 * linked or volumesFrom source container to exist first, so all three kinds of reference are
 * edges of one start-order graph. A cycle there means the task could never start:
 *
 *     web --dependsOn--> db --links--> web      => "Circular dependency ... web -> db -> web"
 */
import type { ContainerDefinition } from './shapes/ecs';
import { clientFail } from './task-definition-checks';

interface Edge {
  to: string;
  via: 'dependsOn' | 'links' | 'volumesFrom';
}

/** The container named by a `links` entry (`name` or `name:alias`). */
export function linkTarget(link: string): string {
  const i = link.indexOf(':');
  return i < 0 ? link : link.slice(0, i);
}

export function checkContainerReferences(containers: readonly ContainerDefinition[]): void {
  const byName = new Map(containers.map((c) => [c.name!, c]));
  const edges = new Map<string, Edge[]>();

  for (const c of containers) {
    const name = c.name!;
    const out: Edge[] = [];
    for (const link of c.links ?? []) {
      const target = linkTarget(link);
      if (!byName.has(target)) {
        clientFail(`Invalid 'links' setting for container '${name}'. Container '${target}' is not defined in the task definition.`);
      }
      out.push({ to: target, via: 'links' });
    }
    for (const v of c.volumesFrom ?? []) {
      const target = v.sourceContainer!;
      if (!byName.has(target)) {
        clientFail(`Invalid 'volumesFrom' setting for container '${name}'. Container '${target}' is not defined in the task definition.`);
      }
      out.push({ to: target, via: 'volumesFrom' });
    }
    for (const d of c.dependsOn ?? []) {
      const target = byName.get(d.containerName);
      if (!target) {
        clientFail(`Invalid 'dependsOn' setting for container '${name}'. Container '${d.containerName}' is not defined in the task definition.`);
      }
      if ((d.condition === 'COMPLETE' || d.condition === 'SUCCESS') && target.essential !== false) {
        // ECS's own wording; a container the whole task stops for can't be waited on to exit.
        clientFail('A dependency container with SUCCESS or COMPLETE condition cannot be an essential container');
      }
      if (d.condition === 'HEALTHY' && target.healthCheck === undefined) {
        clientFail(
          `Invalid 'dependsOn' setting for container '${name}'. Container '${d.containerName}' must define a healthCheck to be a HEALTHY dependency.`,
        );
      }
      out.push({ to: d.containerName, via: 'dependsOn' });
    }
    edges.set(name, out);
  }

  const cycle = findCycle(containers.map((c) => c.name!), edges);
  if (cycle) clientFail(`Circular dependency between containers: ${cycle.join(' -> ')}.`);
}

/**
 * Depth-first search with the usual three colours; returns the first cycle found as a list of
 * names that starts and ends with the same container, or undefined.
 */
function findCycle(names: string[], edges: Map<string, Edge[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): string[] | undefined => {
    const s = state.get(n);
    if (s === 'done') return undefined;
    if (s === 'visiting') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'visiting');
    path.push(n);
    for (const e of edges.get(n) ?? []) {
      const found = visit(e.to);
      if (found) return found;
    }
    path.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of names) {
    const found = visit(n);
    if (found) return found;
  }
  return undefined;
}
