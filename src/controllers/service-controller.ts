/**
 * The service scheduler: one level-triggered loop over services. Any change to a service, to a
 * task of a service, or to an instance of a cluster enqueues the service keys concerned;
 * `reconcile(key)` reads the service, its tasks and the cluster's instances from the cache, asks
 * planService() for a plan and applies it:
 *
 *   1. write the service record as planned (CAS: if the service changed meanwhile, throw and
 *      plan again), so a new deployment exists before any task names it;
 *   2. launch (placeTasks / one task per instance for DAEMON) and stop (requestStop);
 *   3. append the events of what happened (started, stopped, unable to place).
 *
 * Everything it decides from is in the store, so a control plane killed at any point resumes
 * where it was: tasks already placed are counted, none is placed twice (one worker per key,
 * and each placement is committed and visible in the cache before the next plan).
 */
import type { ServiceRecord, TaskDefinitionRecord, TaskRecord } from '../core/resources';
import { addServiceEvents, serviceEventText } from '../core/service-events';
import { DEFAULT_THROTTLE, type ThrottleConfig } from '../core/service-math';
import { STOP } from '../core/task-status';
import type { ControlContext } from '../control/context';
import { constraintsOf, launchOnInstance, launchReplicaTasks, type PlacementFailureInfo } from '../control/service-placement';
import { FARGATE_ATTRIBUTE_DETAIL, FARGATE_CAPACITY_REASON } from '../control/tasks';
import { FARGATE_POOL, capacityOf } from '../core/fargate-pool';
import { findTaskDefinition } from '../control/task-definitions';
import { requestStop } from '../control/tasks';
import { KeyedQueue, epochSeconds, uuid } from '../lib';
import { chooseTasksToStop, Reason, requirementCheck, type ClusterSnapshot, type SnapshotInstance } from '../scheduler';
import { StoreConflictError, casUpdate } from '../store/store';
import { keys } from '../core/resources';
import { planService, type ServicePlan } from './service-plan';
import { HEALTH_CHECK_STOP_REASON, instanceView, taskView, type InstanceLookup, type InstanceView, type PlanOptions, type ServiceTaskView } from './service-task-view';
import { drainEvents } from '../control/task-drain';
import { elbIdOf, type TargetGroupRecord } from '../control/elbv2-records';
import { servicesUsingTargetGroup, targetGroupsOf, targetHealthViews } from './service-targets';
import { targetEnv } from './service-load-balancer-controller';
import { newDeploymentId, serviceInstanceLookup } from '../control/service-records';

export interface ServiceControllerOptions {
  ctx: ControlContext;
  /** Without a container health check a task counts as healthy this long after RUNNING (ECS: 40 s). */
  healthyAfterRunningMs?: number;
  throttle?: Partial<ThrottleConfig>;
  /** How soon to try again after a task could not be placed (instance changes retry sooner). */
  placementRetryMs?: number;
  concurrency?: number;
  /**
   * Pacing: after a reconcile of a service that took d ms, the next one waits until d x pace ms
   * after it ended (at most maxPaceDelayMs). A service of 3 tasks plans in well under a
   * millisecond and is reconciled again at once; one of 5,000 tasks, whose every task change
   * enqueues it, is reconciled a few times a second instead of back to back, so the loop takes
   * at most about 1/(1+pace) of the CPU and the API and agent channel stay responsive. Level-
   * triggered, so nothing is missed: the changes meanwhile are all seen by the next pass.
   * The same share bounds the loop as a whole: with a thousand services of a hundred tasks each
   * busy at once, every one paced on its own would still keep the event loop from network I/O
   * (each reconcile resolves at once on SQLite, so the workers chain through microtasks and the
   * server stopped accepting connections). So every reconcile also adds d x pace ms to a shared
   * gate, and a reconcile waits (real time, off the event loop) while the gate is more than
   * `paceBurstMs` ahead. Default 3; 0 turns pacing off.
   */
  pace?: number;
  /** How far ahead of now the shared gate may run before reconciles wait (default 50 ms). */
  paceBurstMs?: number;
  maxPaceDelayMs?: number;
}

const keyOf = (cluster: string, name: string) => `${cluster}/${name}`;

export class ServiceController {
  private readonly ctx: ControlContext;
  private readonly queue: KeyedQueue;
  private readonly opts: PlanOptions;
  private readonly placementRetryMs: number;
  private unsubscribe?: () => void;
  /** service key -> ids of its tasks in the cache. */
  private readonly tasksByService = new Map<string, Set<string>>();
  private readonly wakeTimers = new Map<string, { at: number; timer: { cancel(): void } }>();
  private readonly healthChecks = new Map<string, boolean>();
  private readonly pace: number;
  private readonly maxPaceDelayMs: number;
  /** service key -> epoch ms before which it is not reconciled again (pacing). */
  private readonly notBefore = new Map<string, number>();
  /** performance.now() until which the loop as a whole has used its share (see `pace`). */
  private gateAt = 0;
  private readonly paceBurstMs: number;
  private readonly running = new Set<string>();
  private readonly pokedWhileRunning = new Set<string>();
  private stopped = false;

  constructor(options: ServiceControllerOptions) {
    this.ctx = options.ctx;
    this.opts = {
      healthyAfterRunningMs: options.healthyAfterRunningMs ?? 40_000,
      throttle: { ...DEFAULT_THROTTLE, ...options.throttle },
      newDeploymentId,
      newEventId: uuid,
    };
    this.placementRetryMs = options.placementRetryMs ?? 30_000;
    this.pace = options.pace ?? 3;
    this.maxPaceDelayMs = options.maxPaceDelayMs ?? 2000;
    this.paceBurstMs = options.paceBurstMs ?? 50;
    this.queue = new KeyedQueue((k) => this.paced(k), this.ctx.clock, {
      concurrency: options.concurrency ?? 8,
      onError: (key, err) => {
        if (!(err instanceof StoreConflictError)) this.ctx.log.warn({ service: key, err }, 'service reconcile failed; will retry');
      },
    });
  }

  start(): void {
    const { state } = this.ctx;
    for (const e of state.tasks.all()) this.index(undefined, e.value);
    this.unsubscribe = state.subscribe((c) => {
      if (c.kind === 'services') this.poke(keyOf(c.parent, c.child));
      else if (c.kind === 'tasks') {
        const prev = c.previous?.value as TaskRecord | undefined;
        const cur = c.current?.value as TaskRecord | undefined;
        this.index(prev, cur);
        const svc = cur?.wharf.serviceName ?? prev?.wharf.serviceName;
        if (svc) this.poke(keyOf(c.parent, svc));
      } else if (c.kind === 'elbhealth' || c.kind === 'elbtargetgroups') {
        // A target's health decides whether its task counts as healthy.
        const id = c.kind === 'elbhealth' ? c.parent : elbIdOf(((c.current?.value ?? c.previous?.value) as TargetGroupRecord).TargetGroupArn);
        for (const k of servicesUsingTargetGroup(state, id)) this.poke(k);
      } else if (c.kind === 'instances') {
        if (c.parent === FARGATE_POOL) {
          // A pool host changed: every Fargate service of the region may place or must replace.
          for (const s of state.services.all()) if (s.value.launchType === 'FARGATE' && s.value.status !== 'INACTIVE') this.poke(keyOf(s.value.wharf.cluster, s.value.serviceName));
        } else {
          for (const s of state.services.children(c.parent).values()) if (s.value.status !== 'INACTIVE') this.poke(keyOf(c.parent, s.value.serviceName));
        }
      }
    });
    for (const e of state.services.all()) if (e.value.status !== 'INACTIVE') this.poke(keyOf(e.value.wharf.cluster, e.value.serviceName));
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.queue.stop();
    for (const w of this.wakeTimers.values()) w.timer.cancel();
    this.wakeTimers.clear();
  }

  /** Resolves when no reconcile is queued or running (timers set for later do not count). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Enqueues a service (cmd/ or tests; changes enqueue on their own). */
  enqueue(cluster: string, name: string): void {
    this.queue.add(keyOf(cluster, name));
  }

  /** Something about a service changed: reconcile it now, or when its pacing allows. */
  private poke(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.pokedWhileRunning.add(key);
      return;
    }
    const at = this.notBefore.get(key);
    if (at === undefined || at <= this.ctx.clock.now()) this.queue.add(key);
    else this.wake(key, at);
  }

  private async paced(key: string): Promise<void> {
    // Real time, not the injected clock: this measures the work, it decides nothing by time.
    const ahead = this.gateAt - performance.now() - this.paceBurstMs;
    if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
    if (this.stopped) return;
    this.running.add(key);
    const t0 = performance.now();
    try {
      await this.reconcile(key);
    } finally {
      this.running.delete(key);
      const end = performance.now();
      const took = end - t0;
      this.gateAt = Math.min(end + this.maxPaceDelayMs, Math.max(this.gateAt, end) + took * this.pace);
      const delay = Math.min(this.maxPaceDelayMs, took * this.pace);
      if (delay >= 1) this.notBefore.set(key, this.ctx.clock.now() + delay);
      else this.notBefore.delete(key);
      if (this.pokedWhileRunning.delete(key)) this.poke(key);
    }
  }

  private index(prev: TaskRecord | undefined, cur: TaskRecord | undefined): void {
    const before = prev?.wharf.serviceName ? keyOf(prev.wharf.cluster, prev.wharf.serviceName) : undefined;
    const after = cur?.wharf.serviceName ? keyOf(cur.wharf.cluster, cur.wharf.serviceName) : undefined;
    if (before && before !== after) this.tasksByService.get(before)?.delete(prev!.wharf.id);
    if (after) {
      let set = this.tasksByService.get(after);
      if (!set) this.tasksByService.set(after, (set = new Set()));
      set.add(cur!.wharf.id);
    }
  }

  private hasHealthCheck(tdArn: string | undefined): boolean {
    if (!tdArn) return false;
    let v = this.healthChecks.get(tdArn);
    if (v === undefined) {
      const td = findTaskDefinition(this.ctx, tdArn);
      v = (td?.containerDefinitions ?? []).some((c) => c.essential !== false && c.healthCheck !== undefined);
      if (td) this.healthChecks.set(tdArn, v);
    }
    return v;
  }

  /**
   * DAEMON: the instances the service belongs on are those the scheduler's requirement filters
   * accept (required attributes, memberOf), the same rules placement applies.
   */
  private eligibility(s: ServiceRecord, td: TaskDefinitionRecord | undefined, snapshot: ClusterSnapshot): (id: string) => boolean {
    let check: (inst: SnapshotInstance) => boolean;
    try {
      check = requirementCheck({
        needs: { cpu: 0, memory: 0 },
        group: `service:${s.serviceName}`,
        service: s.serviceName,
        constraints: td ? constraintsOf(s, td) : s.placementConstraints ?? [],
        requiredAttributes: (td?.requiresAttributes ?? []).map((a) => ({ name: a.name, value: a.value })),
      });
    } catch {
      return () => false; // constraints that no longer parse place nothing
    }
    return (id) => {
      const inst = snapshot.instance(id);
      return inst !== undefined && check(inst);
    };
  }

  private wake(key: string, at: number): void {
    const cur = this.wakeTimers.get(key);
    if (cur && cur.at <= at) return;
    cur?.timer.cancel();
    const timer = this.ctx.clock.setTimeout(() => {
      this.wakeTimers.delete(key);
      if (!this.stopped) this.queue.add(key);
    }, Math.max(0, at - this.ctx.clock.now()));
    this.wakeTimers.set(key, { at, timer });
  }

  /** Plans one service from the cache (exposed for tests and diagnostics). */
  plan(cluster: string, name: string): ServicePlan | undefined {
    const { state } = this.ctx;
    const e = state.services.get(cluster, name);
    if (!e || e.value.status === 'INACTIVE') return undefined;
    const s = e.value;
    const tasks: TaskRecord[] = [];
    const views: ServiceTaskView[] = [];
    const env = targetGroupsOf(s).size > 0 ? targetEnv(this.ctx) : undefined;
    for (const id of this.tasksByService.get(keyOf(cluster, name)) ?? []) {
      const te = state.tasks.get(cluster, id);
      const t = te?.value;
      if (!t || t.wharf.serviceName !== name) continue;
      tasks.push(t);
      const v = taskView(t, this.hasHealthCheck(t.taskDefinitionArn), te!.modRevision);
      const targets = env && targetHealthViews(s, t, env);
      if (targets && targets.length > 0) v.targets = targets;
      views.push(v);
    }
    const daemonTd = s.schedulingStrategy === 'DAEMON' ? findTaskDefinition(this.ctx, s.wharf.deployments[0]?.taskDefinition ?? s.taskDefinition) : undefined;
    const capacity = capacityOf(s);
    const lookup = serviceInstanceLookup(this.ctx, s);
    const snapshot = this.ctx.placement.snapshot(capacity);
    const eligible = s.schedulingStrategy === 'DAEMON' ? this.eligibility(s, daemonTd, snapshot) : undefined;
    const instances: readonly InstanceView[] | InstanceLookup = eligible
      ? [...state.instances.children(capacity).values()].map((i) => instanceView(i.value, eligible(i.value.wharf.id)))
      : {
          get: (id) => {
            const i = lookup(id);
            return i && instanceView(i.value);
          },
        };
    const byId = new Map(tasks.map((t) => [t.wharf.id, t]));
    return planService({
      service: s,
      tasks: views,
      revision: state.revision,
      instances,
      now: this.ctx.clock.now(),
      options: this.opts,
      chooseSurplus: (cands: readonly ServiceTaskView[], count: number) => {
        const infos = cands.map((c) => {
          const t = byId.get(c.id)!;
          return { taskArn: c.id, instanceId: c.instanceId ?? '', lastStatus: c.lastStatus, healthy: c.healthStatus !== 'UNHEALTHY', cpu: t.wharf.reservation?.cpu, memory: t.wharf.reservation?.memory };
        });
        return chooseTasksToStop(infos, count, s.placementStrategy, snapshot);
      },
    });
  }

  async reconcile(key: string): Promise<void> {
    const i = key.indexOf('/');
    const cluster = key.slice(0, i);
    const name = key.slice(i + 1);
    const entry = this.ctx.state.services.get(cluster, name);
    if (!entry || entry.value.status === 'INACTIVE') return;
    const plan = this.plan(cluster, name)!;
    const s = plan.service;
    if (plan.changed) {
      // Throws StoreConflictError when the service changed since it was read: the queue retries.
      const rev = await this.ctx.store.update(keys.service(cluster, name), s, entry.modRevision);
      await this.ctx.state.waitFor(rev);
    }
    const events: string[] = [];
    let failure: PlacementFailureInfo | undefined;
    const started: string[] = [];
    for (const p of plan.place) {
      const d = s.wharf.deployments.find((x) => x.id === p.deploymentId)!;
      const r = await launchReplicaTasks(this.ctx, s, d, p.count);
      started.push(...r.tasks.map((t) => t.wharf.id));
      failure ??= r.failure;
    }
    for (const p of plan.placeOn) {
      const d = s.wharf.deployments.find((x) => x.id === p.deploymentId)!;
      const r = await launchOnInstance(this.ctx, s, d, p.instanceId);
      started.push(...r.tasks.map((t) => t.wharf.id));
      failure ??= r.failure;
    }
    const stopped: string[] = [];
    const unhealthy: string[] = [];
    const draining: TaskRecord[] = [];
    for (const x of plan.stop) {
      const t = this.ctx.state.tasks.get(cluster, x.taskId)?.value;
      if (!t || t.desiredStatus === 'STOPPED' || t.lastStatus === 'DEACTIVATING') continue;
      // A task in target groups goes DEACTIVATING first: deregistered now, stopped once drained.
      const after = await requestStop(this.ctx, cluster, x.taskId, { stopCode: STOP.serviceScheduler.stopCode, reason: x.reason });
      if (after.lastStatus === 'DEACTIVATING') draining.push(after);
      stopped.push(x.taskId);
      if (x.reason === HEALTH_CHECK_STOP_REASON) unhealthy.push(x.taskId);
    }
    for (const id of unhealthy) events.push(serviceEventText.failedHealthChecks(name, id));
    if (stopped.length > 0) events.push(serviceEventText.stopped(name, stopped));
    events.push(...drainEvents(name, draining));
    if (started.length > 0) events.push(serviceEventText.started(name, started));
    if (failure) {
      events.push(
        s.launchType === 'FARGATE'
          ? serviceEventText.unableToPlaceFargate(name, failure.reason === Reason.ATTRIBUTE ? FARGATE_ATTRIBUTE_DETAIL : FARGATE_CAPACITY_REASON)
          : failure.reason === Reason.NO_INSTANCES
            ? serviceEventText.unableToPlace(name, failure.reason)
            : serviceEventText.unableToPlace(name, failure.reason, failure.instanceId),
      );
      this.wake(key, this.ctx.clock.now() + this.placementRetryMs);
    }
    if (events.length > 0) {
      const nowS = epochSeconds(this.ctx.clock.now());
      const { revision } = await casUpdate<ServiceRecord>(this.ctx.store, keys.service(cluster, name), (cur) => {
        if (!cur || cur.value.status === 'INACTIVE') return undefined;
        const next = addServiceEvents(cur.value.events, events, nowS, uuid);
        return next === cur.value.events ? undefined : { ...cur.value, events: next };
      });
      await this.ctx.state.waitFor(revision);
    }
    if (plan.wakeAt !== undefined) this.wake(key, plan.wakeAt);
  }
}
