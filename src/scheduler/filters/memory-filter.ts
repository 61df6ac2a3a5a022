import { Reason } from '../types';
import type { PlacementFilter } from './filter';

export const memoryFilter: PlacementFilter = {
  name: 'memory',
  reason: Reason.MEMORY,
  applies: (ctx) => ctx.memory > 0,
  accepts: (ctx, inst) => inst.remaining.memory >= ctx.memory,
};
