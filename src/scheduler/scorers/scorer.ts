/**
 * The shape of a placement scorer: one strategy type. A strategy ranks the instances that
 * passed every filter; lower scores are better; strategies apply in the user's order, each
 * breaking the ties of the ones before (the engine compares score vectors lexicographically).
 */
import type { SnapshotInstance } from '../types';

export interface NormalizedStrategy {
  type: 'binpack' | 'spread' | 'random';
  /** binpack: 'cpu' | 'memory'; spread: 'instanceId' or 'attribute:<name>'; random: none. */
  field?: string;
  /** spread on an attribute: its name. */
  attribute?: string;
  /** binpack: the resource. */
  resource?: 'cpu' | 'memory';
}

export interface ScoreContext {
  /** `s:<service>` or `g:<group>`: which tasks spread counts. */
  spreadKey: string;
  /** Tasks counted by spreadKey on all instances whose `attribute` equals `value`, including
   * the tasks placed earlier in this call. */
  spreadCount(attribute: string, value: string | undefined): number;
}

export interface PlacementScorer {
  readonly type: NormalizedStrategy['type'];
  /** Validates the strategy's field; throws InvalidParameterException. */
  normalize(field: string | undefined): NormalizedStrategy;
  /** Lower is better. */
  score(ctx: ScoreContext, inst: SnapshotInstance, s: NormalizedStrategy): number;
}

/** Tasks of the placing service (or group) on one instance. */
export function tasksOnInstance(spreadKey: string, inst: SnapshotInstance): number {
  const name = spreadKey.slice(2);
  return (spreadKey.startsWith('s:') ? inst.tasksByService.get(name) : inst.tasksByGroup.get(name)) ?? 0;
}
