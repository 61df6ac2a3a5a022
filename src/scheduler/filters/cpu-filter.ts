import { Reason } from '../types';
import type { PlacementFilter } from './filter';

export const cpuFilter: PlacementFilter = {
  name: 'cpu',
  reason: Reason.CPU,
  applies: (ctx) => ctx.cpu > 0,
  accepts: (ctx, inst) => inst.remaining.cpu >= ctx.cpu,
};
