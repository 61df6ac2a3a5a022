/**
 * TaskRunner: one per task, the only writer of that task's known status. Level-triggered: every
 * pass re-inspects the task's containers (observeContainers in container-observation.ts, which
 * also applies restart policies), then takes the next allowed step toward the desired status
 * (starting: TaskStarter in task-starter.ts, credentials -> resources -> pull -> create -> start;
 * stopping: advanceStop in task-stopper.ts, in reverse dependency order), then derives the task's
 * status and reports what changed. Engine events and a poll timer only wake it up.
 *
 * This file owns the runner's lifecycle (adopt, start, update, stop, cleanup, close), the pass
 * loop, the task's status and its reports; the three helpers see it through one host object.
 */
import { LABELS, type AgentTask } from '../api/agent/protocol';
import { epochSeconds } from '../lib/clock';
import { hexId } from '../lib/ids';
import { backoffMs } from '../lib/backoff';
import type { ContainerSummary } from './runtime/container-runtime';
import { dockerContainerName, effectiveContainers } from './container-spec';
import {
  apiContainerStatus,
  taskHealth,
  taskStatusRank,
  ESSENTIAL_EXITED_REASON,
  type HealthStatus,
  type TaskSnapshot,
  type TaskStatus,
} from './task-status';
import { PAUSE_CONTAINER_NAME } from './task-resources';
import { containerChange, markStopped, newContainerRun, type ContainerRun } from './container-run';
import { observeContainers, type ObserveHost } from './container-observation';
import { credentialsWithheld } from './agent-state-store';
import { progressOf, restoreStopped, restoreUnadopted } from './task-progress';
import { TaskStarter, type StartHost } from './task-starter';
import { advanceStop, removeTask, type StopHost } from './task-stopper';
import { withDefaults, type RunnerSettings, type TaskRunnerOptions } from './task-runner-options';

export { PAUSE_CONTAINER_NAME } from './task-resources';
import { needsNamespacePause } from './task-resources';
export type { TaskRunnerOptions } from './task-runner-options';
export type { TaskSnapshot } from './task-status';

export class TaskRunner {
  readonly taskArn: string;
  readonly taskId: string;
  private task: AgentTask;
  private readonly o: RunnerSettings;
  private readonly containers: ContainerRun[];
  private readonly networkMode: string;
  private desired: 'RUNNING' | 'STOPPED';
  private known: TaskStatus = 'NONE';
  private stopCode?: string;
  private stoppedReason?: string;
  private startedAt?: number;
  private executionStoppedAt?: number;
  private privateIp?: string;
  private macAddress?: string;
  private readonly starter: TaskStarter;
  /** The runner as its starter, observing pass and stopper see it (makeHost). */
  private readonly host: StartHost & ObserveHost & StopHost;
  /** The task's parent cgroup: its own id, or the pool's when its pause container came from there. */
  private cgroupId: string;
  private reportedStatus: TaskStatus = 'NONE';
  /** Started from existing containers: don't replay the early statuses of a running task. */
  private adopted = false;
  private busy = false;
  private again = false;
  private failures = 0;
  private pollTimer?: { cancel(): void };
  private wakeTimer?: { cancel(): void };
  private unwatch?: () => void;
  private closed = false;
  /** The progress last handed to `persist` (JSON), so an unchanged one is not written again. */
  private persisted?: string;
  /** Adopted containers this runner holds STOPPED that the engine runs: stopped again by start(). */
  private strays: ContainerRun[] = [];
  private stoppedWaiters: (() => void)[] = [];

  constructor(task: AgentTask, opts: TaskRunnerOptions) {
    this.task = task;
    this.taskArn = task.taskArn;
    this.taskId = task.taskArn.slice(task.taskArn.lastIndexOf('/') + 1);
    this.cgroupId = this.taskId;
    this.o = withDefaults(opts);
    this.desired = task.desiredStatus;
    this.networkMode = task.taskDefinition.networkMode ?? 'bridge';
    const td = task.taskDefinition;
    const suffix = hexId().slice(0, 20);
    this.containers = effectiveContainers(td, task.overrides).map((def) => newContainerRun(def, def.essential !== false, false, dockerContainerName(td, def.name ?? '', suffix)));
    if (this.networkMode === 'awsvpc' || needsNamespacePause(task)) {
      this.containers.unshift(newContainerRun({ name: PAUSE_CONTAINER_NAME, image: this.o.pauseImage }, true, true, dockerContainerName(td, 'internalecspause', suffix)));
    }
    this.host = this.makeHost();
    this.starter = new TaskStarter(this.host);
    if (this.o.restored) this.persisted = JSON.stringify(this.o.restored);
  }

  /**
   * The view of this runner that its starter, observing pass and stopper get; what they change
   * of the task goes through the runner's own methods.
   */
  private makeHost(): StartHost & ObserveHost & StopHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      get task() {
        return self.task;
      },
      taskArn: this.taskArn,
      taskId: this.taskId,
      containers: this.containers,
      networkMode: this.networkMode,
      get adopted() {
        return self.adopted;
      },
      get desired() {
        return self.desired;
      },
      options: this.o,
      get cgroupId() {
        return self.cgroupId;
      },
      setCgroupId: (id) => {
        this.cgroupId = id;
      },
      setKnown: (s) => void this.setKnown(s),
      report: () => this.report(),
      requestStop: (code, reason) => this.requestStop(code, reason),
      markStopped: (c, exitCode, reason) => this.markStopped(c, exitCode, reason),
      armWake: (ms) => this.armWake(ms),
      setPrivateIp: (ip, mac) => {
        this.privateIp = ip;
        if (mac) this.macAddress = mac;
      },
      observedAddress: (ip, mac) => {
        this.privateIp = ip ?? this.privateIp;
        this.macAddress = mac ?? this.macAddress;
      },
      followLogs: (c) => this.starter.followLogs(c),
      kick: () => this.kick(),
      recordCreated: () => this.persist(),
      keepStopped: (c) => this.keepStopped(c),
    };
  }

  /**
   * Takes over what an earlier run of the agent left of this task (agent restart): the containers
   * that exist for it (`existing`, found by label), and what it wrote down (`restored`). Call
   * before start().
   *
   * A container written down as created but absent from the engine was removed behind the
   * agent's back (docker rm while the agent was down, or while it was up after it had stopped):
   * it is STOPPED (ContainerVanishedError), never created again. One written down as STOPPED stays
   * so with the exit code and reason it was reported with, whether the engine still has it or
   * not. Only a container never written down is created. That holds across a crash at any point:
   * a container is started only once its id is on disk (TaskStarter), so a crash between the
   * engine's create and that write leaves a created, never-started container, which the labels
   * find here and which is then written down; and if the engine never made it, nothing of it
   * ran, so making it now runs it for the first time. A task accepted by an agent that wrote
   * nothing down (restored undefined) is adopted by label alone.
   */
  adopt(existing: ContainerSummary[]): void {
    const restored = this.o.restored;
    const recordedName = new Map<string, string>();
    for (const [name, r] of Object.entries(restored?.containers ?? {})) if (r.dockerId) recordedName.set(r.dockerId, name);
    if (restored?.cgroupId) this.cgroupId = restored.cgroupId;
    // A pause container from the pool names no task: the task's containers name it.
    const pooledPause = existing.find((s) => s.labels[LABELS.taskArn] === this.taskArn && s.labels[LABELS.pauseId])?.labels[LABELS.pauseId];
    for (const s of existing) {
      const pooled = pooledPause !== undefined && s.id === pooledPause && s.labels[LABELS.pausePool] !== undefined;
      if (s.labels[LABELS.taskArn] !== this.taskArn && !pooled && !recordedName.has(s.id)) continue;
      if (pooled) this.cgroupId = s.labels[LABELS.pausePool]!;
      const name = recordedName.get(s.id) ?? (s.labels[LABELS.pause] === 'true' ? PAUSE_CONTAINER_NAME : s.labels[LABELS.containerName]);
      const run = this.containers.find((c) => c.name === name);
      if (!run || run.dockerId) continue;
      const record = restored?.containers[run.name];
      // Not the container this task made under that name.
      if (record?.dockerId !== undefined && record.dockerId !== s.id) continue;
      run.dockerId = s.id;
      run.dockerName = s.name;
      this.adopted = true;
      if (record?.stopped) {
        restoreStopped(run, record.stopped);
        if (s.status === 'running') this.strays.push(run);
        continue;
      }
      run.known = 'CREATED';
      // Its output goes on being shipped from where the stream ends.
      this.starter.followLogs(run);
    }
    if (restored) {
      const { vanished, created } = restoreUnadopted(this.containers, restored, this.o.clock.now());
      if (created) this.adopted = true;
      for (const c of vanished) this.o.logger?.warn({ taskArn: this.taskArn, container: c.name, dockerId: c.dockerId }, 'container removed while the agent was away: reported stopped, not created again');
    }
    if (restored?.stopping && this.desired === 'RUNNING') {
      this.desired = 'STOPPED';
      this.stopCode = restored.stopping.stopCode;
      this.stoppedReason = restored.stopping.reason;
    }
    // Containers found by label only (an older agent's, or made just before a crash): on disk now.
    this.persistOrWarn();
  }

  start(): void {
    for (const c of this.strays.splice(0)) this.keepStopped(c, 'running when the agent started');
    this.unwatch = this.o.runtime.watchEvents((e) => {
      // The runner itself creates and starts its containers and knows it when it does: those
      // events would only cost one more pass of inspections, while the engine is busiest.
      if (e.action === 'create' || e.action === 'start') return;
      if (e.action === 'resync' || this.containers.some((c) => c.dockerId === e.id)) this.kick();
    });
    this.kick();
  }

  /** The inbox: a newer desired state from the control plane. */
  update(task: AgentTask): void {
    const waited = credentialsWithheld(this.task);
    this.task = { ...task, taskDefinition: this.task.taskDefinition };
    if (task.desiredStatus === 'STOPPED' && this.desired === 'RUNNING') {
      this.desired = 'STOPPED';
      this.persistOrWarn();
      this.kick();
    } else if (waited && !credentialsWithheld(this.task)) {
      // The control plane's copy, with the credentials the data dir never kept: start can go on.
      this.kick();
    }
  }

  /**
   * The engine says a container of this task started. The runner starts its containers itself;
   * a start of one it holds STOPPED was done behind Wharf's back (docker start, docker restart)
   * and is undone: the container was reported STOPPED (and its task maybe too, and replaced), so
   * it must not run on untracked. It is left for the task's cleanup to remove, as before.
   */
  containerStarted(dockerId: string): void {
    const c = this.containers.find((x) => x.dockerId === dockerId);
    if (c?.known === 'STOPPED') this.keepStopped(c, 'started outside Wharf');
  }

  /** Stop with a reason of the agent's own (the control plane's stops carry theirs). */
  stop(stopCode?: string, reason?: string): void {
    this.requestStop(stopCode, reason);
    this.kick();
  }

  get knownStatus(): TaskStatus {
    return this.known;
  }

  get isStopped(): boolean {
    return this.known === 'STOPPED';
  }

  whenStopped(): Promise<void> {
    if (this.isStopped) return Promise.resolve();
    return new Promise((r) => this.stoppedWaiters.push(r));
  }

  /** The task as the control plane last sent it. */
  get agentTask(): AgentTask {
    return this.task;
  }

  snapshot(): TaskSnapshot {
    return {
      taskArn: this.taskArn,
      knownStatus: this.known,
      desiredStatus: this.desired,
      stopCode: this.stopCode,
      stoppedReason: this.stoppedReason,
      healthStatus: this.health(),
      privateIpv4Address: this.privateIp,
      pullStartedAt: this.starter.pullStartedAt,
      pullStoppedAt: this.starter.pullStoppedAt,
      executionStoppedAt: this.executionStoppedAt,
      containers: this.appContainers().map((c) => ({
        name: c.name,
        status: apiContainerStatus(c.known),
        knownStatus: c.known,
        dockerId: c.dockerId,
        dockerName: c.dockerName,
        createdAt: c.engine?.createdAt,
        startedAt: c.engine?.startedAt ?? c.lastStartAt,
        finishedAt: c.known === 'STOPPED' ? c.finishedAt : undefined,
        imageId: c.engine?.imageId,
        ipAddresses: c.engine?.ipAddresses,
        exitCode: c.exitCode,
        reason: c.reason,
        health: c.health,
        networkBindings: c.bindings,
        restartCount: c.restartCount,
      })),
    };
  }

  /** Docker id of a container of this task (for logs). */
  dockerIdOf(containerName: string): string | undefined {
    return this.containers.find((c) => c.name === containerName)?.dockerId;
  }

  /** Removes the task's containers, task-scoped volumes and cgroup; only once STOPPED. */
  async cleanup(): Promise<void> {
    if (!this.isStopped) throw new Error(`task ${this.taskArn} is not stopped`);
    await removeTask(this.host);
  }

  close(): void {
    this.closed = true;
    this.unwatch?.();
    this.pollTimer?.cancel();
    this.wakeTimer?.cancel();
  }

  // ---- the loop -------------------------------------------------------------------------

  private kick(): void {
    if (this.closed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.step();
        this.failures = 0;
      } catch (err) {
        // Engine hiccup: keep the runner alive and retry the same level-triggered pass later.
        this.o.logger?.warn({ taskArn: this.taskArn, err }, 'task runner pass failed');
        this.armWake(backoffMs(this.failures++, 500, 30_000));
      }
    } while (this.again && !this.closed);
    this.busy = false;
    if (!this.closed && !this.isStopped) {
      this.pollTimer?.cancel();
      this.pollTimer = this.o.clock.setTimeout(() => this.kick(), this.o.pollIntervalMs);
    }
  }

  private armWake(ms: number): void {
    this.wakeTimer?.cancel();
    this.wakeTimer = this.o.clock.setTimeout(() => this.kick(), Math.max(0, ms));
  }

  private appContainers(): ContainerRun[] {
    return this.containers.filter((c) => !c.internal);
  }

  private pause(): ContainerRun | undefined {
    return this.containers.find((c) => c.internal);
  }

  private requestStop(stopCode?: string, reason?: string): void {
    if (this.desired === 'STOPPED') return;
    this.desired = 'STOPPED';
    this.stopCode ??= stopCode;
    this.stoppedReason ??= reason;
    this.persistOrWarn();
  }

  /**
   * Sends a stop to a container this runner holds STOPPED. For one whose exit the runner saw
   * (`why` undefined) this is a no-op for the engine, unless something started it again since
   * (docker restart's start can come between the exit and the runner's look at it); otherwise
   * the engine runs it although its run is over, and that is logged.
   */
  private keepStopped(c: ContainerRun, why?: string): void {
    if (!c.dockerId) return;
    if (why) this.o.logger?.warn({ taskArn: this.taskArn, container: c.name, dockerId: c.dockerId, why }, 'stopping a container this task holds STOPPED');
    void this.o.runtime
      .stopContainer(c.dockerId, { timeoutSec: c.def.stopTimeout ?? this.o.defaultStopTimeoutSec })
      .catch((err) => this.o.logger?.warn({ taskArn: this.taskArn, container: c.name, err }, 'stopping a container this task holds STOPPED failed'));
  }

  /** Hands the progress to `persist` when it changed; throws when it cannot be written. */
  private persist(): void {
    if (!this.o.persist) return;
    const p = progressOf({ containers: this.containers, desired: this.desired, stopCode: this.stopCode, stoppedReason: this.stoppedReason, cgroupId: this.cgroupId, taskId: this.taskId });
    const json = JSON.stringify(p);
    if (json === this.persisted) return;
    this.o.persist(p);
    this.persisted = json;
  }

  /** For what can wait for the next write (a stop, an exit): a failure is logged and retried then. */
  private persistOrWarn(): void {
    try {
      this.persist();
    } catch (err) {
      this.o.logger?.warn({ taskArn: this.taskArn, err }, 'could not write the task down in the data dir');
    }
  }

  private async step(): Promise<void> {
    if (this.isStopped || this.closed) return;
    await observeContainers(this.host);

    // An essential container that stopped takes the whole task down (4.4).
    if (this.desired === 'RUNNING') {
      const dead = this.containers.find((c) => c.essential && c.known === 'STOPPED');
      if (dead) {
        if (dead.failedToStart) this.requestStop('TaskFailedToStart', dead.reason ?? 'Task failed to start');
        else this.requestStop('EssentialContainerExited', ESSENTIAL_EXITED_REASON);
        this.executionStoppedAt ??= dead.finishedAt ?? this.o.clock.now();
      }
    }

    if (this.desired === 'RUNNING') await this.starter.advance();
    if (this.desired === 'STOPPED') await advanceStop(this.host);
    this.report();
  }

  /** The container is STOPPED now (its exit code, a reason unless it has one). */
  private markStopped(c: ContainerRun, exitCode: number | undefined, reason: string | undefined): void {
    markStopped(c, exitCode, reason, this.o.clock.now());
  }

  private setKnown(s: TaskStatus): boolean {
    if (taskStatusRank(s) <= taskStatusRank(this.known)) return false;
    this.known = s;
    if (s === 'RUNNING') this.startedAt ??= this.o.clock.now();
    return true;
  }

  private health(): HealthStatus {
    return taskHealth(this.appContainers().map((c) => ({ essential: c.essential, hasHealthCheck: !!c.def.healthCheck, health: c.health })));
  }

  /** The status the observations justify, never behind the known one. */
  private targetStatus(): TaskStatus {
    const apps = this.appContainers();
    const pause = this.pause();
    if (this.desired === 'STOPPED') {
      if (this.containers.every((c) => c.known === 'STOPPED')) return 'STOPPED';
      if (apps.every((c) => c.known === 'STOPPED') && pause) return 'DEPROVISIONING';
      return apps.some((c) => c.known === 'RUNNING') ? 'STOPPING' : this.known;
    }
    if (this.starter.setupDone && apps.every((c) => c.everStarted || (!c.essential && c.known === 'STOPPED'))) return 'RUNNING';
    return this.known;
  }

  private report(): void {
    // What is reported is on disk first: a restarted agent never undoes a stop it reported.
    this.persistOrWarn();
    this.setKnown(this.targetStatus());
    const changed = this.known !== this.reportedStatus;
    const apps = this.appContainers();
    const health = this.health();
    const key = (c: ContainerRun) => JSON.stringify([c.known, c.exitCode, c.reason, c.health, c.bindings]);
    const sec = (ms?: number) => (ms === undefined ? undefined : epochSeconds(ms));
    if (changed) {
      const stopped = this.known === 'STOPPED';
      this.o.onTaskStateChange({
        cluster: this.task.clusterArn,
        task: this.taskArn,
        status: this.known,
        reason: stopped || this.desired === 'STOPPED' ? this.stoppedReason : undefined,
        stopCode: stopped || this.desired === 'STOPPED' ? this.stopCode : undefined,
        containers: apps.map((c) => containerChange(c)),
        pullStartedAt: sec(this.starter.pullStartedAt),
        pullStoppedAt: sec(this.starter.pullStoppedAt),
        executionStoppedAt: sec(this.executionStoppedAt ?? (stopped ? this.o.clock.now() : undefined)),
        startedAt: sec(this.startedAt),
        privateIpv4Address: this.privateIp,
        macAddress: this.macAddress,
        healthStatus: health,
      });
      for (const c of apps) c.reportedKey = key(c);
      this.reportedStatus = this.known;
      if (stopped) {
        this.close();
        for (const w of this.stoppedWaiters.splice(0)) w();
      }
      return;
    }
    if (this.known === 'NONE') return;
    for (const c of apps) {
      const k = key(c);
      if (k === c.reportedKey || c.known === 'NONE' || c.known === 'PULLED' || c.known === 'CREATED') continue;
      c.reportedKey = k;
      this.o.onContainerStateChange({ cluster: this.task.clusterArn, task: this.taskArn, ...containerChange(c), taskHealthStatus: health });
    }
  }
}

