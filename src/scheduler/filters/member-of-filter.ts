import { evaluateClusterQuery } from '../../core/cluster-query';
import { Reason } from '../types';
import type { PlacementFilter } from './filter';

/** Every memberOf expression (task definition's and request's) must hold. Results for unmodified
 * snapshot records come from the index's cache; tentative instances (already given a task in
 * this call, so task:group and runningTasksCount may differ) are evaluated afresh. */
export const memberOfFilter: PlacementFilter = {
  name: 'memberOf',
  reason: Reason.MEMBER_OF,
  requirement: true,
  applies: (ctx) => ctx.memberOf.length > 0,
  accepts: (ctx, inst, slot) => {
    for (const m of ctx.memberOf) {
      const ok = slot >= 0 && ctx.index ? ctx.index.memberOf(m.expression, slot) : evaluateClusterQuery(m.ast, inst);
      if (!ok) return false;
    }
    return true;
  },
};
