/**
 * `wharf agent`: registers the host as a container instance (instance-registration.ts), keeps
 * the agent channel open, reconciles the control plane's desired state into one TaskRunner per
 * task, and reports every change through the StateReporter. On start it adopts the containers it
 * already has (by label), so a restart creates no duplicates and leaves no orphans. The task
 * endpoint's ids, listening and metadata lookups are AgentTaskEndpoint's (agent-task-endpoint.ts).
 *
 * This file owns the agent's lifecycle (start, stop), the channel, the desired-state
 * reconciliation (adoption and orphans included) and the runners' lifetimes (cleanup timers).
 *
 * The channel sends a full list first on every connection, then deltas (api/agent/protocol.ts).
 * A full list is reconciled level-triggered over every task (`applyDesiredState`); a delta only
 * touches the tasks it names (`applyDesiredDelta`), so an instance with a hundred tasks does not
 * re-examine all of them each time one is added. A delta that does not follow the last applied
 * message means the chain is broken: the agent opens a new connection, which starts full.
 */
import type { Readable } from 'node:stream';
import { DesiredStateReceiver, LABELS, type AgentTask, type ServerToAgentMessage } from '../api/agent/protocol';
import { systemClock, type Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime, ContainerSummary, LogOptions, PullBehaviour } from './runtime/container-runtime';
import type { AgentChannel, ControlPlaneClient } from './control-plane-client';
import { AgentStateStore } from './agent-state-store';
import type { TaskProgress } from './task-progress';
import { StateReporter } from './state-reporter';
import { watchTaskNetworks } from './task-resources';
import type { TaskProtectionApi } from './task-protection-endpoint';
import { TaskRunner, type TaskRunnerOptions, type TaskSnapshot } from './task-runner';
import { sandboxOf, type InstanceConfig } from './instance-resources';
import { FARGATE_POOL } from '../core/fargate-pool';
import { PausePool } from './pause-pool';
import { registerInstance } from './instance-registration';
import { AgentTaskEndpoint } from './agent-task-endpoint';

export { AGENT_VERSION, AgentDeregisteredError } from './instance-registration';

export interface AgentOptions extends InstanceConfig {
  client: ControlPlaneClient;
  runtime: ContainerRuntime;
  /** Cluster name or ARN (default `default`). */
  cluster?: string;
  /** Where identity and accepted tasks are kept; omit to keep them in memory. */
  dataDir?: string;
  pullBehaviour?: PullBehaviour;
  /** How long stopped tasks' containers are kept before removal (ECS: 3 h). */
  taskCleanupWaitMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Passed to every TaskRunner (stop/start timeouts, poll interval, pause image, network). */
  runner?: Partial<Omit<TaskRunnerOptions, 'runtime' | 'containerInstanceArn' | 'onTaskStateChange' | 'onContainerStateChange'>>;
  reporter?: { baseRetryMs?: number; maxRetryMs?: number; concurrency?: number };
  /**
   * Called once the control plane says this instance was deregistered while the agent runs. The
   * agent has stopped by then (its containers keep running, orphaned, as on ECS; the next start
   * removes them).
   */
  onDeregistered?: (reason: string) => void;
  tags?: { key: string; value: string }[];
  /**
   * Serve ECS_AGENT_URI (task scale-in protection) to the task's containers on this address
   * (task-protection-endpoint.ts), forwarding to the control plane through `api`.
   */
  taskEndpoint?: { host: string; port: number; api: TaskProtectionApi };
  /**
   * Pause containers kept started ahead per awsvpc subnet (pause-pool.ts); 0 or absent: none.
   * They are made once a task on the subnet has been seen, and removed when the agent stops.
   */
  pausePoolSize?: number;
}

export class Agent {
  private readonly store: AgentStateStore;
  private readonly reporter: StateReporter;
  private readonly runners = new Map<string, TaskRunner>();
  private readonly cleanupTimers = new Map<string, { cancel(): void }>();
  /** Tasks stopped because the control plane no longer lists them (see giveUp). */
  private readonly givenUp = new Set<string>();
  /** Tasks finished here (cleaned up, or STOPPED on arrival): never started again. */
  private readonly settled = new Set<string>();
  private channel?: AgentChannel;
  /** Increments with every channel opened; handlers of an older one are ignored. */
  private channelGeneration = 0;
  private arn?: string;
  /** The Docker runtime Fargate tasks run under here ('runsc' = gVisor; '' = runc). */
  private sandbox = '';
  /** The desired-state chain of the current connection, and the list it reconstructed. */
  private readonly desired = new DesiredStateReceiver();
  /** The first desired state has been applied (orphans removed, containers adopted). */
  private sawDesiredState = false;
  /** The last apply failed: the next one reconciles the whole reconstructed list instead of a delta. */
  private fullApplyPending = false;
  private stopped = false;
  /** Unsubscribes the engine events the agent itself watches (containers started behind its back). */
  private unwatch?: () => void;
  private applying: Promise<void> = Promise.resolve();
  /** ECS_AGENT_URI: ids of the tasks run here, and the endpoint when one is served. */
  private readonly taskEndpoint: AgentTaskEndpoint;
  private pausePool?: PausePool;

  constructor(private readonly o: AgentOptions) {
    this.store = new AgentStateStore(o.dataDir);
    this.reporter = new StateReporter(o.client, { clock: o.clock, logger: o.logger, ...o.reporter });
    this.taskEndpoint = new AgentTaskEndpoint({
      runtime: o.runtime,
      runnerFor: (taskArn) => this.runners.get(taskArn),
      containerInstanceArn: () => this.arn,
      availabilityZone: o.availabilityZone ?? `${o.region}a`,
      logger: o.logger,
    });
  }

  get containerInstanceArn(): string | undefined {
    return this.arn;
  }

  get connected(): boolean {
    return this.channel?.connected ?? false;
  }

  private get cluster(): string {
    return this.o.cluster ?? 'default';
  }

  /** Register (retrying until the control plane answers), adopt what exists, open the channel. */
  async start(): Promise<void> {
    const info = await this.o.runtime.info();
    this.sandbox = sandboxOf(info, this.o) === 'gvisor' ? 'runsc' : '';
    if (this.cluster === FARGATE_POOL && !this.sandbox && this.o.fargateSandbox !== 'runc') {
      this.o.logger?.warn("gVisor (a Docker runtime named 'runsc') is not set up in this Docker Engine: Fargate tasks here run under runc, sharing the host's kernel");
    }
    const registered = await registerInstance({
      client: this.o.client,
      runtime: this.o.runtime,
      store: this.store,
      cluster: this.cluster,
      config: this.o,
      info,
      clock: this.o.clock,
      logger: this.o.logger,
      stopped: () => this.stopped,
    });
    this.arn = registered.containerInstanceArn;
    this.taskEndpoint.setKey(registered.endpointKey);
    if ((this.o.pausePoolSize ?? 0) > 0 && !this.pausePool) {
      this.pausePool = new PausePool(this.o.runtime, {
        size: this.o.pausePoolSize!,
        image: this.o.runner?.pauseImage ?? 'wharf/pause:latest',
        containerInstanceArn: this.arn!,
        dns: this.o.runner?.dnsServers,
        logger: this.o.logger,
      });
    }
    this.o.logger?.info({ containerInstanceArn: this.arn }, 'registered');
    if (this.o.taskEndpoint) await this.taskEndpoint.listen(this.o.taskEndpoint);

    // A container of a task this agent holds STOPPED that the engine starts again (docker
    // start, docker restart) is stopped again (TaskRunner.containerStarted). Docker's events
    // carry the container's labels, which name its task; a runtime that sends none asks all.
    this.unwatch = this.o.runtime.watchEvents((e) => {
      if (e.action !== 'start') return;
      const taskArn = e.labels?.[LABELS.taskArn];
      if (taskArn !== undefined) this.runners.get(taskArn)?.containerStarted(e.id);
      else if (!e.labels) for (const r of this.runners.values()) r.containerStarted(e.id);
    });
    // Adopt: every accepted task gets its runner back with the containers it already has.
    const existing = await this.ownContainers();
    for (const task of this.store.listTasks()) this.startRunner(task, existing);
    // Subnet networks a crash left without containers go now; later ones when their last
    // container is removed.
    watchTaskNetworks(this.o.runtime, { onError: (err) => this.o.logger?.warn({ err }, 'removing unused task networks failed') });

    this.openChannel();
  }

  private openChannel(): void {
    const generation = ++this.channelGeneration;
    const live = () => generation === this.channelGeneration && !this.stopped;
    this.channel = this.o.client.connect(
      { cluster: this.cluster, containerInstanceArn: this.arn! },
      {
        onMessage: (m) => {
          if (live()) this.handleMessage(m);
        },
        onConnected: () => {
          if (!live()) return;
          // Sequence numbers and elided definitions start again on every connection.
          this.desired.reset();
          this.o.logger?.info('agent channel connected');
        },
        onDisconnected: (why) => {
          if (live()) this.o.logger?.warn({ why }, 'agent channel lost; reconnecting');
        },
        onDeregistered: (why) => {
          if (!live()) return;
          this.o.logger?.error({ why, containerInstanceArn: this.arn }, 'container instance deregistered; the agent stops');
          void this.stop().then(() => this.o.onDeregistered?.(why));
        },
      },
    );
  }

  /** The delta chain broke: drop this connection and open another, which starts with a full list. */
  private resync(reason: string): void {
    if (this.stopped) return;
    this.o.logger?.warn({ reason }, 'desired-state deltas out of order; reconnecting for a full list');
    this.channel?.close();
    this.openChannel();
  }

  /** Leaves containers running (they are adopted on the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unwatch?.();
    this.channel?.close();
    for (const r of this.runners.values()) r.close();
    for (const t of this.cleanupTimers.values()) t.cancel();
    await this.taskEndpoint.close();
    const waitAtMost = (p: Promise<unknown>, ms: number) => Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);
    await Promise.all([
      waitAtMost(this.reporter.flush(), 2000),
      // Pause containers no task has taken go with the agent (a kill -9 leaves them to the next start).
      this.pausePool && waitAtMost(this.pausePool.close(), 10_000),
    ]);
    this.reporter.close();
  }

  handleMessage(m: ServerToAgentMessage): void {
    if (m.type === 'error') {
      this.o.logger?.error({ code: m.code, message: m.message }, 'control plane error on agent channel');
      return;
    }
    if (m.type !== 'desiredState' && m.type !== 'desiredStateDelta') return;
    const u = this.desired.receive(m);
    switch (u.kind) {
      case 'stale':
        return;
      case 'invalid':
        this.o.logger?.error({ reason: u.reason }, 'desired state refers to an unknown task definition');
        return;
      case 'resync':
        return this.resync(u.reason);
      case 'full':
        return this.enqueue(() => this.applyDesiredState(u.tasks));
      case 'delta':
        return this.enqueue(() => this.applyDesiredDelta(u.upsert, u.remove));
    }
  }

  /** The desired state as reconstructed from the channel (full list plus the deltas since). */
  desiredTasks(): AgentTask[] {
    return this.desired.current();
  }

  /**
   * Applies run one at a time, in message order. After a failed one (Docker unreachable, say)
   * the next reconciles the whole reconstructed list, so no delta's changes are lost with it.
   */
  private enqueue(apply: () => Promise<void>): void {
    this.applying = this.applying
      .then(() => (this.fullApplyPending || !this.sawDesiredState ? this.applyDesiredState(this.desired.current()) : apply()))
      .then(() => {
        this.fullApplyPending = false;
      })
      .catch((err) => {
        this.fullApplyPending = true;
        this.o.logger?.error({ err }, 'applying desired state failed');
      });
  }

  /** Level-triggered: `tasks` is the complete desired state of this instance. */
  async applyDesiredState(tasks: AgentTask[]): Promise<void> {
    if (this.stopped) return;
    // Only the first list needs the engine's view (containers to adopt, orphans to remove): after
    // it every container of ours belongs to a runner, as for deltas (applyDesiredDelta).
    const existing = this.sawDesiredState ? [] : await this.ownContainers();
    const byTask = new Map<string, ContainerSummary[]>();
    // A pause container from the pool names no task; the containers of the task that took it do.
    const pooledFor = new Map<string, string>();
    for (const c of existing) if (c.labels[LABELS.pauseId]) pooledFor.set(c.labels[LABELS.pauseId]!, c.labels[LABELS.taskArn] ?? '');
    const taskOf = (c: ContainerSummary) => c.labels[LABELS.taskArn] ?? (c.labels[LABELS.pausePool] !== undefined ? pooledFor.get(c.id) : undefined) ?? '';
    for (const c of existing) {
      const arn = taskOf(c);
      const list = byTask.get(arn);
      if (list) list.push(c);
      else byTask.set(arn, [c]);
    }
    const wanted = new Set(tasks.map((t) => t.taskArn));
    for (const task of tasks) this.applyTask(task, byTask.get(task.taskArn) ?? []);
    // A task the control plane no longer lists is not wanted any more.
    for (const [arn, runner] of this.runners) {
      if (!wanted.has(arn) && !runner.isStopped) this.giveUp(runner);
    }
    // Orphans: containers labelled as ours whose task has no runner (state lost or never accepted).
    if (!this.sawDesiredState) {
      this.sawDesiredState = true;
      for (const c of existing) {
        // Pool pause containers of an earlier run are orphans too, but not the pool's own.
        if (this.runners.has(taskOf(c)) || this.pausePool?.owns(c)) continue;
        this.o.logger?.warn({ container: c.name }, 'removing orphaned container');
        await this.o.runtime.stopContainer(c.id, { timeoutSec: 10 }).catch(() => undefined);
        await this.o.runtime.removeContainer(c.id).catch(() => undefined);
      }
    }
  }

  /**
   * A change to the desired state: only the tasks named are touched. Needs no container listing:
   * after the first desired state every container of ours belongs to a runner (the rest were
   * adopted or removed as orphans), so a task new to this agent has none to adopt. Until then
   * (or after a failed apply) `enqueue` reconciles the full list instead.
   */
  async applyDesiredDelta(upsert: AgentTask[], remove: string[]): Promise<void> {
    if (this.stopped) return;
    if (!this.sawDesiredState) return this.applyDesiredState(this.desired.current());
    for (const arn of remove) {
      const runner = this.runners.get(arn);
      if (runner && !runner.isStopped) this.giveUp(runner);
    }
    for (const task of upsert) this.applyTask(task, []);
  }

  /**
   * One listed task: update its runner, start one (adopting `containers`, the ones labelled with
   * this task), or confirm a never-run task STOPPED.
   */
  private applyTask(task: AgentTask, containers: ContainerSummary[]): void {
    const runner = this.runners.get(task.taskArn);
    if (runner) return runner.update(task);
    // A task ARN runs once: a finished and cleaned-up task is never started again.
    if (this.settled.has(task.taskArn)) return;
    if (task.desiredStatus === 'RUNNING' || containers.length > 0) {
      this.store.putTask(task);
      this.startRunner(task, containers);
      return;
    }
    // Stopped before it ever ran here: confirm so the control plane can finish it.
    this.settled.add(task.taskArn);
    this.reporter.submitTask({ cluster: task.clusterArn, task: task.taskArn, status: 'STOPPED', containers: [] });
  }

  private async ownContainers(): Promise<ContainerSummary[]> {
    return this.arn ? this.o.runtime.listContainers({ [LABELS.containerInstance]: this.arn }) : [];
  }

  /** The id in a task's ECS_AGENT_URI: an HMAC of its ARN, so only this agent can name it. */
  endpointIdOf(taskArn: string): string {
    return this.taskEndpoint.idOf(taskArn);
  }

  /** ECS_AGENT_URI of a task's containers, when this agent serves the task endpoint. */
  agentUriOf(taskArn: string): string | undefined {
    return this.taskEndpoint.uriOf(taskArn);
  }

  private startRunner(task: AgentTask, existing: ContainerSummary[]): void {
    this.taskEndpoint.add(task);
    const runner = new TaskRunner(task, {
      agentUri: this.agentUriOf(task.taskArn),
      clock: this.o.clock,
      logger: this.o.logger,
      pullBehaviour: this.o.pullBehaviour,
      ...this.o.runner,
      runtime: this.o.runtime,
      containerInstanceArn: this.arn!,
      fargateSandbox: this.sandbox,
      hostPolicy: this.o.hostPolicy,
      pausePool: this.pausePool,
      restored: this.store.progressOf(task.taskArn),
      persist: this.o.dataDir ? (p) => this.saveProgress(task.taskArn, p) : undefined,
      onTaskStateChange: (c) => {
        this.reporter.submitTask(c);
        if (c.status === 'STOPPED') {
          this.taskEndpoint.forgetContainers(runner.snapshot().containers.flatMap((x) => (x.dockerId ? [x.dockerId] : [])));
          this.scheduleCleanup(runner);
        }
      },
      onContainerStateChange: (c) => this.reporter.submitContainer(c),
    });
    this.runners.set(task.taskArn, runner);
    runner.adopt(existing);
    runner.start();
  }

  private saveProgress(taskArn: string, progress: TaskProgress): void {
    try {
      this.store.saveProgress(taskArn, progress);
    } catch (err) {
      throw new Error(`the agent could not write the task down in its data dir ${this.o.dataDir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Stops a task the control plane dropped while it still ran here: a task stays listed until
   * this agent reports it STOPPED, so an unlisted live one was given up (a Fargate pool host
   * lost past its grace period, whose tasks were recorded STOPPED and replaced elsewhere). Nothing
   * can describe it any more, so its containers go as soon as they have stopped rather than
   * after the cleanup wait.
   */
  private giveUp(runner: TaskRunner): void {
    this.givenUp.add(runner.taskArn);
    runner.stop();
  }

  private scheduleCleanup(runner: TaskRunner): void {
    const wait = this.givenUp.delete(runner.taskArn) ? 0 : (this.o.taskCleanupWaitMs ?? 3 * 3600_000);
    const t = (this.o.clock ?? systemClock).setTimeout(() => {
      this.cleanupTimers.delete(runner.taskArn);
      void runner
        .cleanup()
        .then(() => {
          this.runners.delete(runner.taskArn);
          this.taskEndpoint.remove(runner.taskArn);
          this.settled.add(runner.taskArn);
          this.store.deleteTask(runner.taskArn);
        })
        .catch((err) => this.o.logger?.warn({ taskArn: runner.taskArn, err }, 'task cleanup failed'));
    }, wait);
    this.cleanupTimers.set(runner.taskArn, t);
  }

  /** Current view of every task this agent runs. */
  tasks(): TaskSnapshot[] {
    return [...this.runners.values()].map((r) => r.snapshot());
  }

  runnerFor(taskArn: string): TaskRunner | undefined {
    return this.runners.get(taskArn);
  }

  /** Resolves once every queued state change has been delivered (or dropped). */
  flushReports(): Promise<void> {
    return this.reporter.flush();
  }

  /** A container's logs (`wharf logs`). */
  async logs(taskArn: string, containerName: string, opts: LogOptions = {}): Promise<Readable> {
    const id = this.runners.get(taskArn)?.dockerIdOf(containerName);
    if (!id) throw new Error(`no container ${containerName} for task ${taskArn} on this instance`);
    return this.o.runtime.logs(id, opts);
  }
}
