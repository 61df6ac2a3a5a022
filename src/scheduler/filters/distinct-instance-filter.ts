import { Reason } from '../types';
import type { PlacementFilter } from './filter';

/** No other task of the same group on the instance. Counts come from the snapshot, which only
 * counts tasks whose desiredStatus is not STOPPED, and include tasks placed earlier in the same
 * call (RunTask count 3 needs 3 instances). */
export const distinctInstanceFilter: PlacementFilter = {
  name: 'distinctInstance',
  reason: Reason.DISTINCT_INSTANCE,
  applies: (ctx) => ctx.distinctInstance,
  accepts: (ctx, inst) => (inst.tasksByGroup.get(ctx.group) ?? 0) === 0,
};
