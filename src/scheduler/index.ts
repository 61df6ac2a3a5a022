// scheduler/: task placement as a pure pipeline (filters -> scorers) over a read-only snapshot
// of one cluster, plus the scale-in choice. No I/O: the caller commits the placements (a store
// transaction that re-checks instance revisions) and feeds the result back into its snapshot.
// Imports core only.
export * from './types';
export { place, placeOn, requirementCheck } from './engine';
export { chooseTasksToStop, type ServiceTaskInfo } from './scale-in';
export { InMemoryClusterSnapshot } from './in-memory-snapshot';
export { withTask, instanceFromSpec, type TaskFootprint, type InstanceSpec } from './instance-ops';
export { planPlacement, normalizeStrategies, normalizeConstraints, defaultStrategies, MAX_CONSTRAINTS, MAX_STRATEGIES } from './placement-plan';
export { filters, scorers } from './registry';
export { instanceQuerySubject } from './query-subject';
export { seededRandom } from '../lib/seeded-random';
