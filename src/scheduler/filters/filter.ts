/**
 * The shape of a placement filter: one rule that can reject a container instance for a task,
 * naming the reason ECS reports. Filters are wired, in order, in ../registry.ts; the order is
 * also the "closeness" order for failures (an instance rejected by a later filter got further).
 */
import type { QueryAst } from '../../core/cluster-query';
import type { PlacementIndexView, RejectionReason, RequiredAttribute, SnapshotInstance } from '../types';

/** What the filters know about the task being placed (prepared once per place() call). */
export interface FilterContext {
  cpu: number;
  memory: number;
  tcpPorts: readonly number[];
  udpPorts: readonly number[];
  gpus: number;
  group: string;
  requiredAttributes: readonly RequiredAttribute[];
  memberOf: readonly { expression: string; ast: QueryAst }[];
  distinctInstance: boolean;
  /** When set, memberOf results of unmodified snapshot records are cached here. */
  index?: PlacementIndexView;
}

export interface PlacementFilter {
  readonly name: string;
  readonly reason: RejectionReason;
  /**
   * The rule is about what the instance is (its attributes, the cluster query), not what it has
   * free: a DAEMON service runs on exactly the instances that every requirement accepts.
   */
  readonly requirement?: boolean;
  /** False when the rule cannot reject anything for this task (e.g. no ports requested). */
  applies(ctx: FilterContext): boolean;
  /**
   * True when the instance can take the task. `slot` is the instance's index slot when `inst`
   * is the unmodified snapshot record (results may be cached), else -1.
   */
  accepts(ctx: FilterContext, inst: SnapshotInstance, slot: number): boolean;
}
