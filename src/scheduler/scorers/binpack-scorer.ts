import { invalidParameter } from '../../core/errors';
import type { PlacementScorer } from './scorer';

/** binpack(cpu|memory): the instance with the least remaining amount that still fits wins. */
export const binpackScorer: PlacementScorer = {
  type: 'binpack',
  normalize(field) {
    const f = field?.toLowerCase();
    if (f !== 'cpu' && f !== 'memory') {
      throw invalidParameter(`Invalid placement strategy field '${field ?? ''}' for binpack: the field must be cpu or memory.`);
    }
    return { type: 'binpack', field: f, resource: f };
  },
  score: (_ctx, inst, s) => inst.remaining[s.resource!],
};
