/**
 * The scheduler's contracts: what it reads (a ClusterSnapshot), what it is asked (a
 * PlacementRequest) and what it answers (a PlacementResult). Plain data, no I/O.
 */
import type { QuerySubject } from '../core/cluster-query';
import type { PlacementConstraint, PlacementStrategy } from '../core/shapes/ecs';

export type ContainerInstanceStatus =
  | 'ACTIVE'
  | 'DRAINING'
  | 'REGISTERING'
  | 'REGISTRATION_FAILED'
  | 'DEREGISTERING'
  | 'INACTIVE';

/** Remaining (or registered) resources of an instance, in the units ECS reports. */
export interface InstanceResources {
  /** CPU units (1 vCPU = 1024). */
  readonly cpu: number;
  /** MiB. */
  readonly memory: number;
  /** TCP host ports already taken (ECS's `PORTS` string set, as numbers). */
  readonly tcpPorts: ReadonlySet<number>;
  /** UDP host ports already taken (`PORTS_UDP`). */
  readonly udpPorts: ReadonlySet<number>;
  /** GPU ids still free (registered: all GPU ids of the host). */
  readonly gpuIds: readonly string[];
}

/**
 * One container instance as the scheduler sees it. It is a QuerySubject, so memberOf
 * expressions evaluate against it directly.
 *
 * Task counts (runningTasksCount, tasksByGroup, tasksByService) count the tasks placed on the
 * instance whose desiredStatus is not STOPPED: a task already told to stop no longer blocks
 * distinctInstance or weighs on spread, as in ECS.
 */
export interface SnapshotInstance extends QuerySubject {
  /** The 32-hex container instance id. */
  readonly id: string;
  readonly arn: string;
  readonly status: ContainerInstanceStatus;
  readonly registered: InstanceResources;
  readonly remaining: InstanceResources;
  /** Service name -> tasks of that service on the instance. */
  readonly tasksByService: ReadonlyMap<string, number>;
}

/**
 * The read-only view of one cluster the engine places against. Implement `instances()` and
 * `instance()`; `index` is optional: with it the engine uses its indexes (see
 * InMemoryClusterSnapshot), without it the engine scans every instance per decision, which is
 * correct but O(instances).
 */
export interface ClusterSnapshot {
  /** Every container instance of the cluster, any status, in a stable order. */
  instances(): readonly SnapshotInstance[];
  instance(id: string): SnapshotInstance | undefined;
  readonly index?: PlacementIndexView;
}

/**
 * What the engine's fast path needs from an indexed snapshot. Only InMemoryClusterSnapshot
 * implements it; it is part of the contract so a state layer can embed that class.
 */
export interface PlacementIndexView {
  readonly slotCount: number;
  record(slot: number): SnapshotInstance | undefined;
  slotOf(id: string): number | undefined;
  /**
   * Partition of the instances by the value of one attribute (null: one bucket of all). With
   * `staticMemberOf` (expressions that read no task state), only the instances that are ACTIVE,
   * agent-connected and satisfy all of them: the candidates, so searches skip nothing else.
   */
  partition(attribute: string | null, staticMemberOf?: readonly string[]): PartitionView;
  /** Cached memberOf result for the instance in `slot` (re-evaluated when the instance changes). */
  memberOf(expression: string, slot: number): boolean;
}

export interface PartitionView {
  readonly buckets: readonly BucketView[];
  /** The bucket an attribute value falls in (undefined value: the "attribute absent" bucket). */
  bucketOf(value: string | undefined): BucketView | undefined;
}

export interface BucketView {
  /** The attribute value shared by the bucket's instances (undefined: attribute absent). */
  readonly value: string | undefined;
  /** Slots of the bucket's instances, in no particular order (for uniform sampling). */
  readonly members: readonly number[];
  /** Tasks counted by key (`service:<name>` via countKey) over the bucket's instances. */
  count(key: string): number;
  /** A cursor over the bucket's slots in ascending order of remaining cpu or memory, starting
   * at the first slot with at least `from` remaining. */
  ascending(resource: 'cpu' | 'memory', from: number): SortedCursor;
  /** How many slots have exactly `value` remaining, and the cursor of the first one. */
  equalRange(resource: 'cpu' | 'memory', value: number): { cursor: SortedCursor; length: number };
}

export interface SortedCursor {
  /** Next slot, or -1 at the end. */
  next(): number;
  /** Remaining amount of the slot `next()` would return, or Infinity at the end. */
  peekValue(): number;
  /** Skips n slots. */
  skip(n: number): void;
}

/** The key spread counts and distinctInstance use for a task: its service, else its group. */
export function spreadKey(request: { service?: string; group: string }): string {
  return request.service !== undefined ? `s:${request.service}` : `g:${request.group}`;
}

/** Resources one task needs on an instance. */
export interface TaskNeeds {
  /** CPU units: task-level cpu if set, else the sum of container cpu. */
  cpu: number;
  /** MiB: task-level memory if set, else the sum of memoryReservation ?? memory. */
  memory: number;
  /** Static TCP host ports (dynamic ones, hostPort 0, are not listed). */
  tcpPorts?: number[];
  udpPorts?: number[];
  /** Number of GPUs. */
  gpus?: number;
}

export interface RequiredAttribute {
  name: string;
  value?: string;
}

/** One RunTask/StartTask/service placement: up to 10 identical tasks. */
export interface PlacementRequest {
  needs: TaskNeeds;
  /** 1-10. */
  count: number;
  /** The task group (`family:<family>` by default, `service:<name>` for service tasks). */
  group: string;
  /** The service name when the tasks belong to one (spread then counts the service's tasks). */
  service?: string;
  /** Task definition constraints followed by the request's or service's ones (at most 10). */
  constraints?: PlacementConstraint[];
  /** In the user's order (at most 5). Empty or absent: the ECS defaults (see defaultStrategies). */
  strategies?: PlacementStrategy[];
  /** The task definition's requiresAttributes (failure ATTRIBUTE when missing). */
  requiredAttributes?: RequiredAttribute[];
}

export interface Placement {
  /** Which of the `count` tasks (0-based). */
  taskIndex: number;
  instanceId: string;
  instanceArn: string;
  /** Static host ports reserved for the task. */
  tcpPorts: number[];
  udpPorts: number[];
  /** GPU ids assigned to the task. */
  gpuIds: string[];
}

/** Reasons as ECS writes them in RunTask `failures[].reason`. */
export const Reason = {
  AGENT: 'AGENT',
  CPU: 'RESOURCE:CPU',
  MEMORY: 'RESOURCE:MEMORY',
  PORTS: 'RESOURCE:PORTS',
  GPU: 'RESOURCE:GPU',
  ATTRIBUTE: 'ATTRIBUTE',
  MEMBER_OF: 'MemberOf placement constraint unsatisfied.',
  DISTINCT_INSTANCE: 'DistinctInstance placement constraint unsatisfied.',
  /** No ACTIVE instance at all; RunTask answers this as InvalidParameterException. */
  NO_INSTANCES: 'No Container Instances were found in your cluster.',
  /** placeOn: the named instance is not in the cluster. */
  MISSING: 'MISSING',
  /** placeOn: the named instance is not ACTIVE (DRAINING or INACTIVE). */
  INACTIVE: 'INACTIVE',
} as const;
export type RejectionReason = (typeof Reason)[keyof typeof Reason];

export interface PlacementFailure {
  /**
   * ARN of the closest matching container instance (absent when the cluster has no ACTIVE one);
   * for placeOn, the named instance (its id when it is MISSING).
   */
  arn?: string;
  reason: RejectionReason;
  taskIndex: number;
}

export interface PlacementResult {
  placements: Placement[];
  /** One per task not placed. */
  failures: PlacementFailure[];
  /** For failures: how many instances each reason rejected on the last failed attempt. */
  rejections?: Partial<Record<RejectionReason, number>>;
}

export interface PlaceOptions {
  /** Source of randomness for `random` and final ties; seed it in tests. Default Math.random. */
  random?: () => number;
  /** Ignore snapshot.index and scan every instance (the reference path; for tests and benchmarks). */
  scan?: boolean;
}
