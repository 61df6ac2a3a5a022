/**
 * The one place filters and scorers are wired. A new rule is one file and one line here.
 * Filter order is the ECS pipeline order (agent, resources, required attributes, constraints)
 * and is also how "closest instance" is judged for failures.
 */
import { agentFilter } from './filters/agent-filter';
import { attributeFilter } from './filters/attribute-filter';
import { cpuFilter } from './filters/cpu-filter';
import { distinctInstanceFilter } from './filters/distinct-instance-filter';
import type { PlacementFilter } from './filters/filter';
import { gpuFilter } from './filters/gpu-filter';
import { memberOfFilter } from './filters/member-of-filter';
import { memoryFilter } from './filters/memory-filter';
import { portsFilter } from './filters/ports-filter';
import { binpackScorer } from './scorers/binpack-scorer';
import { randomScorer } from './scorers/random-scorer';
import type { PlacementScorer } from './scorers/scorer';
import { spreadScorer } from './scorers/spread-scorer';

export const filters: readonly PlacementFilter[] = [
  agentFilter,
  cpuFilter,
  memoryFilter,
  portsFilter,
  gpuFilter,
  attributeFilter,
  memberOfFilter,
  distinctInstanceFilter,
];

export const scorers: Readonly<Record<PlacementScorer['type'], PlacementScorer>> = {
  binpack: binpackScorer,
  spread: spreadScorer,
  random: randomScorer,
};
