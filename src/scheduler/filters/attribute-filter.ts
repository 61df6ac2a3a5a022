import { Reason } from '../types';
import type { PlacementFilter } from './filter';

/** The task definition's requiresAttributes: each name present, with the value when one is
 * given (failure ATTRIBUTE). */
export const attributeFilter: PlacementFilter = {
  name: 'attribute',
  reason: Reason.ATTRIBUTE,
  requirement: true,
  applies: (ctx) => ctx.requiredAttributes.length > 0,
  accepts: (ctx, inst) => {
    for (const a of ctx.requiredAttributes) {
      if (!inst.attributes.has(a.name)) return false;
      if (a.value !== undefined && inst.attributes.get(a.name) !== a.value) return false;
    }
    return true;
  },
};
