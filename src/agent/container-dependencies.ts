/**
 * Container ordering inside a task: when a container may start (dependsOn conditions of
 * ECS-REFERENCE 3.8, plus the implicit orderings that links and volumesFrom need), and when it
 * may stop (only after everything that depends on it).
 */
import type { ContainerRun } from './container-run';


/** Whether `c` may start now, must wait, or never will (3.8, plus links and volumesFrom). */
export function dependencyGate(c: ContainerRun, containers: ContainerRun[]): { state: 'go' | 'wait' | 'never'; detail?: string } {
  const byName = (n: string) => containers.find((x) => x.name === n);
  const deps: { name: string; condition: string }[] = [
    ...(c.def.dependsOn ?? []).map((d) => ({ name: d.containerName, condition: d.condition as string })),
    ...(c.def.links ?? []).map((l) => ({ name: l.split(':')[0]!, condition: 'START' })),
    ...(c.def.volumesFrom ?? []).map((v) => ({ name: v.sourceContainer ?? '', condition: 'CREATE' })),
  ];
  for (const d of deps) {
    const t = byName(d.name);
    if (!t) return { state: 'never', detail: `dependency ${d.name} is not in the task` };
    const what = `${d.name} to reach ${d.condition}`;
    switch (d.condition) {
      case 'CREATE':
        if (!t.dockerId) return t.known === 'STOPPED' ? { state: 'never', detail: what } : { state: 'wait', detail: what };
        break;
      case 'START':
        if (!t.everStarted) return t.known === 'STOPPED' ? { state: 'never', detail: what } : { state: 'wait', detail: what };
        break;
      case 'COMPLETE':
        if (t.known !== 'STOPPED') return { state: 'wait', detail: what };
        break;
      case 'SUCCESS':
        if (t.known !== 'STOPPED') return { state: 'wait', detail: what };
        if (t.exitCode !== 0) return { state: 'never', detail: `dependency ${d.name} exited with code ${t.exitCode ?? 'unknown'}, not 0` };
        break;
      case 'HEALTHY':
        if (t.health !== 'HEALTHY') return t.known === 'STOPPED' ? { state: 'never', detail: what } : { state: 'wait', detail: what };
        break;
      default:
        return { state: 'never', detail: `unknown condition ${d.condition}` };
    }
  }
  return { state: 'go' };
}

/** Containers that must stop before `c` may (the pause container outlives all the others). */
export function dependentsOf(c: ContainerRun, containers: readonly ContainerRun[]): ContainerRun[] {
  return containers.filter(
    (x) =>
      x !== c &&
      (c.internal ||
        (x.def.dependsOn ?? []).some((d) => d.containerName === c.name) ||
        (x.def.links ?? []).some((l) => l.split(':')[0] === c.name) ||
        (x.def.volumesFrom ?? []).some((v) => v.sourceContainer === c.name)),
  );
}
