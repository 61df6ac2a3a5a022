import { Reason } from '../types';
import type { PlacementFilter } from './filter';

export const gpuFilter: PlacementFilter = {
  name: 'gpu',
  reason: Reason.GPU,
  applies: (ctx) => ctx.gpus > 0,
  accepts: (ctx, inst) => inst.remaining.gpuIds.length >= ctx.gpus,
};
