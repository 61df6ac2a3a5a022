import type { PlacementScorer } from './scorer';

/** random: every candidate left scores the same, so the final uniform tie-break decides; any
 * strategy listed after it can never break a tie and is ignored. */
export const randomScorer: PlacementScorer = {
  type: 'random',
  normalize: () => ({ type: 'random' }),
  score: () => 0,
};
