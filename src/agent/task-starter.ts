/**
 * The start half of a TaskRunner: every step between "desired RUNNING" and "every container
 * started". The runner calls `advance()` on each level-triggered pass while the task is desired
 * RUNNING; each call re-derives what is left from the containers' known states:
 *
 *   credentials -> task resources -> pull images -> create + start containers
 *   (secrets,      (cgroup, volumes,  (all at once)   (in dependency order, passes until
 *    env files)     awsvpc pause)                      nothing more can start)
 *
 * For awsvpc the stages overlap once the pause container is created: while it starts and the
 * firewall takes the task's rules, the images are pulled and the containers that depend on
 * nothing are created (not started); PENDING still goes out after the pause container runs.
 *
 * Any stage that fails stops the task with stopCode TaskFailedToStart and a reason in ECS's
 * words: `ResourceInitializationError: ...` (credentials, resources), `CannotPullContainerError`,
 * `CannotCreateContainerError`, `CannotStartContainerError`, `ContainerDependencyError`.
 *
 * The runner stays the only writer of the task's status: the starter changes it through the
 * StartHost the runner hands it.
 */
import type { AgentTask } from '../api/agent/protocol';
import { credentialsWithheld } from './agent-state-store';
import { buildContainerSpec, hostNofileLimit } from './container-spec';
import { bindingsOf, pauseBindingsOf, type ContainerRun } from './container-run';
import { dependencyGate } from './container-dependencies';
import { hostPortFree } from './host-ports';
import { createPauseContainer, ipamOf, prepareTaskResources, startCreatedPauseContainer, startNamespacePause, type PauseContainerOptions } from './task-resources';
import { LABELS } from '../api/agent/protocol';
import { StartTimeline } from './start-timeline';
import type { TaskStatus } from './task-status';
import { hostPolicyViolation, resolveHostPath } from './host-policy';
import { awslogsTargetOf } from './awslogs-shipper';
import { parseArn } from '../core/arn';
import type { RunnerSettings } from './task-runner-options';

/** Read once: the host's hard open-files limit caps Fargate's default nofile (container-spec.ts). */
const HOST_NOFILE_LIMIT = hostNofileLimit();

/** What the starter may read and do on its runner. */
export interface StartHost {
  readonly task: AgentTask;
  readonly taskArn: string;
  readonly taskId: string;
  readonly containers: readonly ContainerRun[];
  readonly networkMode: string;
  /** Started from existing containers (agent restart). */
  readonly adopted: boolean;
  readonly desired: 'RUNNING' | 'STOPPED';
  /** The runner's settings (task-runner-options.ts), less what only the runner itself uses. */
  readonly options: Omit<RunnerSettings, 'onTaskStateChange' | 'onContainerStateChange' | 'defaultStopTimeoutSec'>;
  /** The id of the task's parent cgroup: the task id, or the pool's when its pause came from there. */
  cgroupId: string;
  setCgroupId(id: string): void;
  setKnown(s: TaskStatus): void;
  report(): void;
  requestStop(stopCode: string, reason: string): void;
  markStopped(c: ContainerRun, exitCode: number | undefined, reason: string | undefined): void;
  /** Run another pass in `ms` (a dependency wait). */
  armWake(ms: number): void;
  setPrivateIp(ip: string | undefined, mac?: string): void;
  /**
   * Writes down the containers that now have an engine id (TaskRunner.adopt reads them back);
   * throws when the data dir cannot take it. Called before any of them is started.
   */
  recordCreated(): void;
}

/** An image that could not be pulled, and ECS's reason. */
interface PullFailure {
  c: ContainerRun;
  reason: string;
}

/** ECS's prefix for secrets and registry credentials that could not be had. */
export const SECRETS_FAILURE_PREFIX = 'unable to pull secrets or registry auth: ';

export class TaskStarter {
  /** Credentials checked and task resources made. */
  setupDone = false;
  pullStartedAt?: number;
  pullStoppedAt?: number;
  private pullsDone = false;
  /** Pulls that failed while the pause container was starting (handled once setup is done). */
  private earlyPullFailures?: PullFailure[];
  private cgroupParent?: string;
  private fallbackMemoryMiB?: number;
  private volumeSources: Record<string, string> = {};
  /**
   * The credentials as they were when the task's resources were set up. Like ECS, which fetches
   * them once as a task resource, every container of the task uses these, even one created much
   * later (after its dependencies): a secret changed or deleted meanwhile does not split the task.
   */
  private credentials: Pick<AgentTask, 'secrets' | 'registryAuth'> = {};
  /** Wharf's labels for the task's containers when its pause container came from the pool. */
  private pooledLabels?: Record<string, string>;
  /** Where this start spends its time (logged at debug once every container has started). */
  private readonly timeline = new StartTimeline();
  private readonly time = <T>(step: string, fn: () => Promise<T>): Promise<T> => this.timeline.time(step, fn);

  constructor(private readonly h: StartHost) {}

  private apps(): ContainerRun[] {
    return this.h.containers.filter((c) => !c.internal);
  }

  async advance(): Promise<void> {
    // The pool refills only once no awsvpc start is in progress (pause-pool.ts).
    const release = !this.setupDone && this.h.networkMode === 'awsvpc' ? this.h.options.pausePool?.startBegins() : undefined;
    try {
      await this.advanceStart();
    } finally {
      release?.();
    }
  }

  private async advanceStart(): Promise<void> {
    const h = this.h;
    if (!this.setupDone) {
      // Read back from the data dir without its secrets: the control plane re-sends the task on
      // (re)connect, and update() wakes the runner then. Until that, start nothing new.
      if (credentialsWithheld(h.task)) return;
      // What this host forbids is refused before anything of the task exists, pause container
      // included. Containers that exist already (adopted after a restart) were allowed then.
      const pending = this.apps().filter((c) => !c.dockerId).map((c) => c.def);
      const refused = hostPolicyViolation(h.options.hostPolicy, h.task, pending, resolveHostPath);
      if (refused) return this.failSetup(refused);
      if (!h.adopted && h.networkMode === 'awsvpc') {
        h.setKnown('PROVISIONING');
        h.report();
      }
      try {
        const problem = this.credentialsProblem();
        if (problem) throw new Error(problem);
        this.credentials = { secrets: h.task.secrets, registryAuth: h.task.registryAuth };
        await this.setupTaskResources();
      } catch (err) {
        return this.failSetup(`ResourceInitializationError: ${(err as Error).message}`.slice(0, 1024));
      }
      this.setupDone = true;
    }
    if (h.desired !== 'RUNNING') return;
    if (!this.pullsDone) {
      if (!(await this.pull())) return;
      this.pullsDone = true;
    }
    await this.startReady();
    if (this.apps().every((c) => c.everStarted)) this.timeline.log(h.options.logger, h.taskArn);
  }

  /** The task cannot start: it stops with `reason`, and so does each container not started. */
  private failSetup(reason: string): void {
    const h = this.h;
    h.requestStop('TaskFailedToStart', reason);
    for (const c of h.containers) {
      // Containers already made (adopted, or created while the pause container started) but
      // never started stop with the reason too; started ones stop through the stop path.
      if (c.known === 'STOPPED' || (c.dockerId && c.everStarted)) continue;
      c.failedToStart = true;
      h.markStopped(c, undefined, reason);
    }
  }

  /**
   * Why the containers still to be created cannot get what they need, if they cannot: an
   * unresolvable secret (the control plane says which), a secret it sent no value for, or
   * environment files, which ECS reads from S3 and Wharf has no S3 to read from. Containers that
   * already exist (adopted after a restart) were created with theirs and are left alone.
   */
  private credentialsProblem(): string | undefined {
    const task = this.h.task;
    const pending = this.apps().filter((c) => !c.dockerId);
    if (pending.length === 0) return undefined;
    if (task.secretsError !== undefined) return SECRETS_FAILURE_PREFIX + task.secretsError;
    for (const c of pending) {
      for (const s of c.def.secrets ?? []) {
        if (s.name && task.secrets?.[c.name]?.[s.name] === undefined) {
          return `${SECRETS_FAILURE_PREFIX}the control plane sent no value for secret ${s.name} of container ${c.name}`;
        }
      }
    }
    for (const c of pending) {
      const files = (c.def.environmentFiles ?? []).map((f) => f.value);
      if (files.length) {
        return `failed to download env files: environment files from S3 are not supported by Wharf (container ${c.name}: ${files.join(', ')}); use environment or secrets instead`;
      }
    }
    return undefined;
  }

  /**
   * Task cgroup, volumes, and for awsvpc the network and the pause container. Once the pause
   * container exists, its start (a new network namespace on the subnet's bridge: the slowest
   * step of a task start), its address and the firewall run alongside the images' pulls and the
   * creation of the containers that depend on nothing: a create only needs the pause
   * container's id. No container of the task starts before the firewall has the task's rules.
   */
  private async setupTaskResources(): Promise<void> {
    const h = this.h;
    const pause = h.containers.find((c) => c.internal);
    const network = h.task.network?.name ?? h.options.defaultAwsvpcNetwork;
    // A pause container started ahead, unless this task publishes ports (done at its creation).
    const pooled = pause && h.networkMode === 'awsvpc' && !pause.dockerId && !h.task.network?.publishPorts ? h.options.pausePool?.take(network, ipamOf(h.task)) : undefined;
    if (pooled) {
      // The task's from now on: whatever fails next, its stop path stops and removes it.
      h.setCgroupId(pooled.cgroupId);
      pause!.dockerId = pooled.id;
      pause!.known = 'RUNNING';
      pause!.everStarted = true;
      h.setPrivateIp(pooled.ip, pooled.mac);
      h.recordCreated();
    }
    // Adopted after a restart: containers still to be made carry the pool pause's labels too.
    if (pause?.dockerId && h.cgroupId !== h.taskId) this.pooledLabels = this.pooledLabelsFor(pause.dockerId);
    const res = await this.time('cgroup+volumes', () => prepareTaskResources(h.options.runtime, h.task, h.cgroupId));
    this.cgroupParent = res.cgroupParent;
    this.fallbackMemoryMiB = res.fallbackMemoryMiB;
    this.volumeSources = res.volumeSources;
    if (res.unsupportedReason) h.options.logger?.warn({ taskArn: h.taskArn, reason: res.unsupportedReason }, 'task-level limits applied per container');
    if (!pause) return;
    if (pooled) return this.setupOnPooledPause();
    if (h.networkMode !== 'awsvpc') {
      const ns = { task: h.task, pause, containerInstanceArn: h.options.containerInstanceArn, image: h.options.pauseImage, cgroupParent: this.cgroupParent };
      return this.time('namespace pause', () => startNamespacePause(h.options.runtime, ns, () => h.recordCreated()));
    }
    const o: PauseContainerOptions = {
      task: h.task,
      pause,
      containerInstanceArn: h.options.containerInstanceArn,
      image: h.options.pauseImage,
      network,
      cgroupParent: this.cgroupParent,
      dns: h.options.dnsServers,
      publicBindIp: h.options.publicBindIp,
      isPortFree: hostPortFree(h.options.publicBindIp),
      time: this.time,
    };
    await createPauseContainer(h.options.runtime, o);
    h.recordCreated();
    const early = this.pullAndCreateEarly();
    try {
      const address = await startCreatedPauseContainer(h.options.runtime, o);
      h.setPrivateIp(address.ip, address.mac);
      // The task's rules are in place before any of its containers listens.
      if (h.task.network?.securityGroups) await this.time('firewall', async () => h.options.firewall?.sync());
    } finally {
      // Settled before the setup's outcome is acted on, so no create lands after a failure.
      await early;
    }
  }

  /**
   * The task's pause container came from the pool, running, with its address. The containers
   * that depend on nothing are created first: they carry the pause container's id and the
   * task's groups, which is where the firewall reads them (the pause container's labels were
   * fixed before the task was known); then the firewall is rebuilt, before anything starts.
   */
  private async setupOnPooledPause(): Promise<void> {
    await this.time('pause from pool', async () => undefined);
    await this.pullAndCreateEarly();
    if (this.h.task.network?.securityGroups) await this.time('firewall', async () => this.h.options.firewall?.sync());
  }

  private pooledLabelsFor(pauseId: string): Record<string, string> {
    const n = this.h.task.network;
    const labels: Record<string, string> = { [LABELS.pauseId]: pauseId };
    if (n?.securityGroups) labels[LABELS.securityGroups] = JSON.stringify({ groups: n.securityGroups, ingress: n.ingress ?? [] });
    return labels;
  }

  /** While the pause container starts: pull, then create what depends on nothing. Never throws. */
  private async pullAndCreateEarly(): Promise<void> {
    this.earlyPullFailures = await this.pullImages();
    if (this.earlyPullFailures.length) return;
    const ready = this.apps().filter((c) => c.known === 'PULLED' && !c.dockerId && !c.def.dependsOn?.length);
    await Promise.all(ready.map((c) => (this.h.desired === 'RUNNING' ? this.create(c) : undefined)));
  }

  /** PENDING, then every image pulled; false when one failed (the task is then failing to start). */
  private async pull(): Promise<boolean> {
    const h = this.h;
    if (!h.adopted) {
      // PENDING goes out as pulling starts, so it already carries pullStartedAt.
      if (!this.earlyPullFailures && this.apps().some((c) => !c.dockerId && c.known === 'NONE')) this.pullStartedAt ??= h.options.clock.now();
      h.setKnown('PENDING');
      h.report();
    }
    const failed = this.earlyPullFailures ?? (await this.pullImages());
    this.earlyPullFailures = undefined;
    if (!failed.length) return true;
    h.requestStop('TaskFailedToStart', failed[0]!.reason);
    for (const f of failed) {
      f.c.failedToStart = true;
      h.markStopped(f.c, undefined, f.reason);
    }
    for (const c of this.apps()) if (!c.dockerId && c.known !== 'STOPPED') h.markStopped(c, undefined, undefined);
    return false;
  }

  /** Pulls every image not pulled yet; says which failed. */
  private async pullImages(): Promise<PullFailure[]> {
    const h = this.h;
    const clock = h.options.clock;
    const toPull = this.apps().filter((c) => !c.dockerId && c.known === 'NONE');
    if (!toPull.length) return [];
    this.pullStartedAt ??= clock.now();
    const results = await Promise.all(
      toPull.map(async (c) => {
        try {
          const auth = this.credentials.registryAuth?.[c.name];
          const r = await this.time(`pull ${c.name}`, () => h.options.runtime.pullImage(c.def.image ?? '', { behaviour: h.options.pullBehaviour, auth }));
          c.imageDigest = r.imageDigest;
          c.known = 'PULLED';
          return undefined;
        } catch (err) {
          return { c, reason: `CannotPullContainerError: ${(err as Error).message}`.slice(0, 1024) };
        }
      }),
    );
    this.pullStoppedAt = clock.now();
    return results.filter((r) => r !== undefined);
  }

  /**
   * Creates and starts every container whose dependencies allow it, in passes, so that a START
   * dependency satisfied in this pass lets its dependents go in the next one.
   */
  private async startReady(): Promise<void> {
    const h = this.h;
    const clock = h.options.clock;
    for (let progressed = true; progressed && h.desired === 'RUNNING'; ) {
      progressed = false;
      for (const c of this.apps()) {
        if (c.known !== 'PULLED' && c.known !== 'CREATED') continue;
        if (c.known === 'CREATED' && c.everStarted) continue;
        const gate = dependencyGate(c, h.containers as ContainerRun[]);
        if (gate.state === 'wait') {
          c.waitingSince ??= clock.now();
          const timeoutMs = (c.def.startTimeout ?? h.options.defaultStartTimeoutSec) * 1000;
          const left = c.waitingSince + timeoutMs - clock.now();
          if (left <= 0) {
            this.failContainer(c, `ContainerDependencyError: timed out after ${timeoutMs / 1000}s waiting for ${gate.detail}`);
            return;
          }
          h.armWake(Math.min(left, h.options.pollIntervalMs));
          continue;
        }
        if (gate.state === 'never') {
          this.failContainer(c, `ContainerDependencyError: ${gate.detail}`);
          return;
        }
        await this.createAndStart(c);
        progressed = true;
      }
    }
  }

  private failContainer(c: ContainerRun, reason: string): void {
    c.failedToStart = true;
    this.h.markStopped(c, undefined, reason);
    this.h.requestStop('TaskFailedToStart', reason);
  }

  private async createAndStart(c: ContainerRun): Promise<void> {
    if (!c.dockerId && !(await this.create(c))) return;
    const h = this.h;
    const rt = h.options.runtime;
    // awslogs: the stream exists before the container writes a line, and a missing group keeps
    // the container from starting, as Docker's awslogs driver does on ECS.
    const logs = this.awslogsTarget(c);
    if (logs) {
      const refused = await h.options.awslogs!.prepare(logs);
      if (refused) return this.failToStart(c, refused);
    }
    try {
      await this.time(`start ${c.name}`, () => rt.startContainer(c.dockerId!));
      if (logs) h.options.awslogs!.follow(c.dockerId!, logs);
      c.everStarted = true;
      c.lastStartAt = h.options.clock.now();
      c.known = 'RUNNING';
      // Only ports Docker published (bridge with port mappings) need the engine's answer; any
      // other container's bindings are known now, and RUNNING goes out without another call.
      if (h.networkMode === 'bridge' && c.def.portMappings?.length) {
        const st = await rt.inspectContainer(c.dockerId!);
        if (st?.running) c.bindings = bindingsOf(c, st.ports, h.networkMode);
      } else if (h.networkMode === 'awsvpc') {
        // Published ports (assignPublicIp ENABLED) are the pause container's, read at its start.
        c.bindings = pauseBindingsOf(h.containers, c);
      } else {
        c.bindings = bindingsOf(c, [], h.networkMode);
      }
    } catch (err) {
      this.failToStart(c, `CannotStartContainerError: ${(err as Error).message}`);
    }
  }

  private awslogsTarget(c: ContainerRun) {
    const h = this.h;
    if (!h.options.awslogs || c.internal || !c.dockerId) return undefined;
    return awslogsTargetOf(c.def, h.taskId, c.dockerId, parseArn(h.options.containerInstanceArn)?.region ?? '');
  }

  /** Ships the output of a container that runs already (adopted after a restart, or restarted in place). */
  followLogs(c: ContainerRun): void {
    const logs = this.awslogsTarget(c);
    if (logs) this.h.options.awslogs!.follow(c.dockerId!, logs);
  }

  /** Creates the container; false when the engine refused (it is then failing to start). */
  private async create(c: ContainerRun): Promise<boolean> {
    const h = this.h;
    const names: Record<string, string> = {};
    const ids: Record<string, string> = {};
    for (const x of h.containers) {
      names[x.name] = x.dockerName;
      if (x.dockerId) ids[x.name] = x.dockerId;
    }
    try {
      const spec = buildContainerSpec({
        task: { ...h.task, secrets: this.credentials.secrets },
        containerInstanceArn: h.options.containerInstanceArn,
        agentUri: h.options.agentUri,
        dnsServers: h.options.dnsServers,
        def: c.def,
        dockerName: c.dockerName,
        networkMode: h.networkMode,
        pauseId: h.containers.find((x) => x.internal)?.dockerId,
        dockerNames: names,
        dockerIds: ids,
        volumeSources: this.volumeSources,
        cgroupParent: this.cgroupParent,
        sandboxRuntime: h.task.launchType === 'FARGATE' && h.options.fargateSandbox ? h.options.fargateSandbox : undefined,
        fallbackMemoryMiB: c.def.memory === undefined ? this.fallbackMemoryMiB : undefined,
        wharfLabels: this.pooledLabels,
        hostNofileLimit: HOST_NOFILE_LIMIT,
      });
      c.dockerId = await this.time(`create ${c.name}`, () => h.options.runtime.createContainer(spec));
      c.known = 'CREATED';
      // On disk before it can run: a restarted agent then knows it made it (TaskRunner.adopt).
      h.recordCreated();
      return true;
    } catch (err) {
      // The image was removed between the pull step (which may have trusted a cached digest) and
      // the create: pull it once more, on the next pass.
      if (/no such image/i.test((err as Error).message) && !c.imageRepulled) {
        c.imageRepulled = true;
        c.known = 'NONE';
        this.pullsDone = false;
        this.earlyPullFailures = undefined;
        this.h.armWake(0);
        return false;
      }
      this.failToStart(c, `CannotCreateContainerError: ${(err as Error).message}`);
      return false;
    }
  }

  private failToStart(c: ContainerRun, reason: string): void {
    c.failedToStart = true;
    this.h.markStopped(c, undefined, reason.slice(0, 1024));
    if (c.essential) this.h.requestStop('TaskFailedToStart', c.reason ?? reason);
  }
}
