/**
 * What a task needs before its containers: the parent cgroup that makes task-level cpu/memory a
 * hard limit for the whole task (or, where the engine cannot, a per-container fallback), its
 * volumes, and for awsvpc the pause container that owns the task's network namespace on a
 * Wharf-managed bridge network (ECS-REFERENCE 9.4).
 *
 * Those networks (one per subnet, `wharf-subnet-<id>`) are made on demand and removed again once
 * no container uses them, so that a host does not collect bridges until Docker's address pools
 * run out. See TaskNetworks below for when and how.
 */
import { LABELS, type AgentTask } from '../api/agent/protocol';
import type { ContainerRuntime, NetworkIpam } from './runtime/container-runtime';
import { bindingsOf, type ContainerRun } from './container-run';
import { containerLabels, taskLimits } from './container-spec';
import { prepareVolumes } from './task-volumes';

export const PAUSE_CONTAINER_NAME = '~internal~ecs~pause';
/** What an awsvpc pause container, which only holds the task's namespaces, runs without. */
const PAUSE_CAP_DROP = ['NET_RAW'];

export interface TaskResources {
  cgroupParent?: string;
  /** Task memory to put on each container that has none, when no task cgroup is possible. */
  fallbackMemoryMiB?: number;
  /** Why the whole-task cgroup could not be made. */
  unsupportedReason?: string;
  volumeSources: Record<string, string>;
}

export async function prepareTaskResources(rt: ContainerRuntime, task: AgentTask, taskId: string): Promise<TaskResources> {
  const out: TaskResources = { volumeSources: {} };
  const limits = taskLimits(task.taskDefinition, task.overrides);
  if (limits.cpuUnits !== undefined || limits.memoryMiB !== undefined) {
    const cg = await rt.createTaskCgroup(taskId, limits);
    out.cgroupParent = cg.cgroupParent;
    if (!cg.cgroupParent) {
      // Weaker than a task cgroup: each container alone is capped at the task's memory, but
      // together they may exceed it; CPU stays shares-only.
      out.fallbackMemoryMiB = limits.memoryMiB;
      out.unsupportedReason = cg.unsupportedReason;
    }
  }
  out.volumeSources = await prepareVolumes(rt, task, taskId);
  // The first task this process prepares on an engine also clears networks a crash left behind.
  taskNetworks(rt).startOnce();
  return out;
}

/**
 * What the pause container publishes for assignPublicIp ENABLED: every port mapping of the task's
 * containers that its security groups open to everyone, on `bindIp`, at the container port where
 * `isFree` says the host has it, else at a port the engine picks. (The pause container owns the
 * task's network namespace, so publishing is done on it; the containers' networkBindings then
 * read from it.)
 *
 * Only ports a rule allows from 0.0.0.0/0: a connection to a published port reaches the task
 * through the engine's proxy or NAT, from the host's address, where the firewall can no longer
 * tell who sent it (firewall.ts). A port the groups allow only from some addresses, or not at
 * all, stays reachable on the task's private address alone, where the firewall checks the source.
 * A task without groups (an agent without a firewall) publishes every port, as before.
 */
export function publishedPorts(task: AgentTask, bindIp: string, isFree: (port: number, protocol: string) => boolean): Record<string, { hostIp: string; hostPort: string }[]> {
  const out: Record<string, { hostIp: string; hostPort: string }[]> = {};
  const net = task.network;
  const openToAll = (port: number, protocol: string) =>
    !net?.securityGroups ||
    (net.ingress ?? []).some(
      (r) => r.cidr === '0.0.0.0/0' && (r.protocol === '-1' || (r.protocol === protocol && (r.fromPort === undefined || (r.fromPort <= port && port <= (r.toPort ?? r.fromPort))))),
    );
  for (const def of task.taskDefinition.containerDefinitions ?? []) {
    for (const m of def.portMappings ?? []) {
      if (m.containerPort === undefined) continue;
      const protocol = m.protocol ?? 'tcp';
      if (!openToAll(m.containerPort, protocol)) continue;
      const key = `${m.containerPort}/${protocol}`;
      if (out[key]) continue;
      out[key] = [{ hostIp: bindIp, hostPort: isFree(m.containerPort, protocol) ? String(m.containerPort) : '' }];
    }
  }
  return out;
}

/** The pause container's address on the task's network. */
export interface TaskAddress {
  ip: string;
  mac?: string;
}

/** What making and starting a task's pause container needs. */
export interface PauseContainerOptions {
  task: AgentTask;
  pause: ContainerRun;
  containerInstanceArn: string;
  image: string;
  network: string;
  cgroupParent?: string;
  /** The task's resolvers (Wharf's DNS server when the agent has one): its containers share them. */
  dns?: string[];
  /** assignPublicIp ENABLED: the host address the task's ports are published on. */
  publicBindIp?: string;
  /** Whether a host port is free on publicBindIp (so the container port itself can be used). */
  isPortFree?: (port: number, protocol: string) => Promise<boolean>;
  /** Times each step (see StartTimeline). */
  time?: <T>(step: string, fn: () => Promise<T>) => Promise<T>;
}

const untimed = <T>(_step: string, fn: () => Promise<T>): Promise<T> => fn();

/** Creates (unless adopted) and starts the pause container; returns the task's address. */
export async function startPauseContainer(rt: ContainerRuntime, o: PauseContainerOptions): Promise<TaskAddress> {
  await createPauseContainer(rt, o);
  return startCreatedPauseContainer(rt, o);
}

/**
 * Makes sure the task's network exists and creates the pause container on it (unless adopted).
 * Once this returns, the task's containers can be created (their network mode names the pause
 * container); they can start only once startCreatedPauseContainer has.
 */
export async function createPauseContainer(rt: ContainerRuntime, o: PauseContainerOptions): Promise<void> {
  const { pause } = o;
  const time = o.time ?? untimed;
  const networks = taskNetworks(rt);
  // Pulled before the network is made, so a failed pull leaves no empty network behind.
  if (!pause.dockerId) await time('pause-pull', () => rt.pullImage(o.image, { behaviour: 'prefer-cached' }));
  networks.watch();
  // From making sure the network exists until the pause container is on it, the network has no
  // container: hold it so that a sweep cannot remove it in between.
  const ipam = ipamOf(o.task);
  let ports: Record<string, { hostIp: string; hostPort: string }[]> | undefined;
  if (!pause.dockerId && o.task.network?.publishPorts && o.publicBindIp !== undefined) {
    const free = new Map<string, boolean>();
    for (const def of o.task.taskDefinition.containerDefinitions ?? []) {
      for (const m of def.portMappings ?? []) {
        if (m.containerPort === undefined) continue;
        const protocol = m.protocol ?? 'tcp';
        free.set(`${m.containerPort}/${protocol}`, (await o.isPortFree?.(m.containerPort, protocol)) ?? false);
      }
    }
    ports = publishedPorts(o.task, o.publicBindIp, (port, protocol) => free.get(`${port}/${protocol}`) === true);
  }
  await networks.exclusive(o.network, async () => {
    await time('network', () => rt.ensureNetwork(o.network, AWSVPC_NETWORK_LABELS, ipam));
    if (pause.dockerId) return;
    const labels: Record<string, string> = { ...containerLabels(o.task, o.containerInstanceArn, PAUSE_CONTAINER_NAME), [LABELS.pause]: 'true' };
    const groups = o.task.network?.securityGroups;
    if (groups) labels[LABELS.securityGroups] = JSON.stringify({ groups, ingress: o.task.network?.ingress ?? [] });
    pause.dockerId = await time('pause-create', () =>
      rt.createContainer({
        name: pause.dockerName,
        image: o.image,
        labels,
        exposedPorts: ports ? Object.keys(ports) : undefined,
        // Shareable IPC so that ipcMode `task` containers can join it. Without NET_RAW: a task
        // container that may trace it (pidMode task, SYS_PTRACE) must not gain raw sockets on the
        // subnet bridge through it (container-spec.ts capDropOf).
        host: { networkMode: o.network, cpuShares: 2, cgroupParent: o.cgroupParent, ipcMode: 'shareable', dns: o.dns, portBindings: ports, capDrop: PAUSE_CAP_DROP },
      }),
    );
    pause.known = 'CREATED';
  });
}

/** Starts the pause container createPauseContainer made (or adopted); returns the task's address. */
export async function startCreatedPauseContainer(rt: ContainerRuntime, o: PauseContainerOptions): Promise<TaskAddress> {
  const { pause } = o;
  const time = o.time ?? untimed;
  await time('pause-start', () => startOnNetwork(rt, taskNetworks(rt), pause.dockerId!, o.network, ipamOf(o.task)));
  pause.everStarted = true;
  pause.known = 'RUNNING';
  const st = await time('pause-inspect', () => rt.inspectContainer(pause.dockerId!));
  const ip = st?.ipAddresses[o.network] ?? Object.values(st?.ipAddresses ?? {})[0];
  if (!ip) throw new Error(`pause container got no address on network ${o.network}`);
  const mac = st?.macAddresses?.[o.network] ?? Object.values(st?.macAddresses ?? {})[0];
  // What it publishes (assignPublicIp ENABLED): the task's containers report these as theirs.
  pause.bindings = bindingsOf(pause, st?.ports ?? [], 'awsvpc');
  return mac ? { ip, mac } : { ip };
}

/**
 * Whether a task needs a pause container outside awsvpc mode: its containers share a process or
 * IPC namespace (pidMode or ipcMode `task`), which each joins from a pause container that outlives
 * any one of them, as the ECS agent's namespace pause container does in bridge and host mode.
 */
export function needsNamespacePause(task: Pick<AgentTask, 'taskDefinition'>): boolean {
  const td = task.taskDefinition;
  return (td.networkMode ?? 'bridge') !== 'awsvpc' && (td.pidMode === 'task' || td.ipcMode === 'task');
}

/**
 * Creates (unless adopted) and starts a bridge or host task's namespace pause container: no
 * network of its own (the task's containers keep their bridge or the host's), a shareable IPC
 * namespace, in the task's cgroup. The containers then join its PID and IPC namespaces
 * (container-spec.ts namespaceModes).
 */
export async function startNamespacePause(rt: ContainerRuntime, o: Pick<PauseContainerOptions, 'task' | 'pause' | 'containerInstanceArn' | 'image' | 'cgroupParent'>, created: () => void): Promise<void> {
  const { pause } = o;
  if (!pause.dockerId) {
    await rt.pullImage(o.image, { behaviour: 'prefer-cached' });
    pause.dockerId = await rt.createContainer({
      name: pause.dockerName,
      image: o.image,
      labels: { ...containerLabels(o.task, o.containerInstanceArn, PAUSE_CONTAINER_NAME), [LABELS.pause]: 'true' },
      host: { networkMode: 'none', cpuShares: 2, cgroupParent: o.cgroupParent, ipcMode: 'shareable' },
    });
    pause.known = 'CREATED';
    created();
  }
  if (pause.known !== 'RUNNING') {
    await rt.startContainer(pause.dockerId);
    pause.everStarted = true;
    pause.known = 'RUNNING';
  }
}

/** What a pause container made ahead of its task needs (agent/pause-pool.ts). */
export interface PooledPauseOptions {
  name: string;
  image: string;
  network: string;
  ipam?: NetworkIpam;
  labels: Record<string, string>;
  cgroupParent?: string;
  dns?: string[];
}

/**
 * Creates and starts a pause container for no task yet, on `network` (made if missing), held
 * against sweeps as createPauseContainer does; returns its id and address. Everything a task's
 * own pause container has, except what depends on the task: its labels (the pool's instead),
 * its cgroup (one of the pool's, given the task's limits when taken) and published ports (a
 * task that publishes any never takes one). Removes what it made if it fails.
 */
export async function startPooledPause(rt: ContainerRuntime, o: PooledPauseOptions): Promise<{ id: string } & TaskAddress> {
  const networks = taskNetworks(rt);
  await rt.pullImage(o.image, { behaviour: 'prefer-cached' });
  networks.watch();
  const id = await networks.exclusive(o.network, async () => {
    await rt.ensureNetwork(o.network, AWSVPC_NETWORK_LABELS, o.ipam);
    return rt.createContainer({
      name: o.name,
      image: o.image,
      labels: o.labels,
      host: { networkMode: o.network, cpuShares: 2, cgroupParent: o.cgroupParent, ipcMode: 'shareable', dns: o.dns, capDrop: PAUSE_CAP_DROP },
    });
  });
  try {
    await startOnNetwork(rt, networks, id, o.network, o.ipam);
    const st = await rt.inspectContainer(id);
    const ip = st?.running ? (st.ipAddresses[o.network] ?? Object.values(st.ipAddresses)[0]) : undefined;
    if (!ip) throw new Error(`pause container got no address on network ${o.network}`);
    const mac = st?.macAddresses?.[o.network] ?? Object.values(st?.macAddresses ?? {})[0];
    return mac ? { id, ip, mac } : { id, ip };
  } catch (err) {
    await rt.removeContainer(id).catch(() => undefined);
    throw err;
  }
}

/** The subnet's range for its bridge, when the control plane sent it. */
export function ipamOf(task: AgentTask): NetworkIpam | undefined {
  const n = task.network;
  return n?.subnet && n.gateway ? { subnet: n.subnet, gateway: n.gateway } : undefined;
}

/**
 * Another agent on the same engine may have swept the network between our create and start
 * (it saw no running container on it); Docker then refuses the start with "network not found".
 * The container is still there, so make the network again and start it.
 */
async function startOnNetwork(rt: ContainerRuntime, networks: TaskNetworks, id: string, network: string, ipam?: NetworkIpam): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rt.startContainer(id);
      return;
    } catch (err) {
      if (attempt >= 3 || !isNetworkNotFound(err)) throw err;
      await networks.exclusive(network, () => rt.ensureNetwork(network, AWSVPC_NETWORK_LABELS, ipam));
    }
  }
}

function isNetworkNotFound(err: unknown): boolean {
  const e = err as { statusCode?: number; message?: string };
  return e.statusCode === 404 && /network \S+ not found/i.test(e.message ?? '');
}

// ---------------------------------------------------------------------------------------------
// Removing networks nobody uses

/** The label of every network Wharf makes for awsvpc tasks; no network without it is touched. */
export const AWSVPC_NETWORK_LABELS: Readonly<Record<string, string>> = { 'io.wharf.network': 'awsvpc' };

/**
 * Removes every Wharf awsvpc network of the engine that no container (in any state) is
 * configured on; returns the names removed. A network the engine refuses to remove because a
 * container is attached is kept and not an error. Safe at any time: a task of this process that
 * is putting its pause container on a network holds it (see startPauseContainer).
 */
export function removeUnusedTaskNetworks(rt: ContainerRuntime): Promise<string[]> {
  return taskNetworks(rt).removeUnused();
}

/**
 * Watches the engine so that a network is removed once its last container is: the last task on
 * a subnet is cleaned up by removing its containers, and the engine's `destroy` event for them
 * starts a sweep (coalesced: one at a time, one more if asked meanwhile). The first call in a
 * process also sweeps at once, for networks a crash left without containers; meant for agent
 * start. Idempotent. The watch ends by itself when no Wharf network is left and resumes with the
 * next awsvpc task. `onError` hears sweeps that failed (the next event retries).
 *
 * Without this call the same happens, only later: the first task prepared on the engine starts
 * it (prepareTaskResources), and every pause container started keeps it going.
 */
export function watchTaskNetworks(rt: ContainerRuntime, opts: { onError?: (err: unknown) => void } = {}): void {
  const n = taskNetworks(rt);
  if (opts.onError) n.onError = opts.onError;
  n.startOnce();
  n.watch();
}

/** Every TaskRunner on an engine shares one: the locks only work if they are the same. */
const byRuntime = new WeakMap<ContainerRuntime, TaskNetworks>();

function taskNetworks(rt: ContainerRuntime): TaskNetworks {
  let n = byRuntime.get(rt);
  if (!n) byRuntime.set(rt, (n = new TaskNetworks(rt)));
  return n;
}

/**
 * The awsvpc networks of one engine as this process sees them. Removal is a sweep over all of
 * them rather than bookkeeping of which task uses which network: a sweep is always right
 * (whatever crashed, whichever agent made the network, whoever removed the containers), and the
 * engine already knows which containers are on each network.
 */
class TaskNetworks {
  onError?: (err: unknown) => void;
  /** Per network, the tail of the work that holds it (see exclusive). */
  private readonly holds = new Map<string, Promise<void>>();
  private sweeping = false;
  private sweepAgain = false;
  private started = false;
  private unwatch?: () => void;
  /** Bumped by every watch(), so a sweep that began before it does not end the watch. */
  private watchGeneration = 0;

  constructor(private readonly rt: ContainerRuntime) {}

  /** Runs `fn` while holding `network`: the holds of one network run one after another. */
  exclusive<T>(network: string, fn: () => Promise<T>): Promise<T> {
    const before = this.holds.get(network) ?? Promise.resolve();
    const run = before.then(fn);
    // Settles right after `run`, before whoever awaits `run` goes on, so `holds` is exact.
    const release = () => {
      if (this.holds.get(network) === tail) this.holds.delete(network);
    };
    const tail: Promise<void> = run.then(release, release);
    this.holds.set(network, tail);
    return run;
  }

  /** The first call sweeps once (networks left by a crash); later calls do nothing. */
  startOnce(): void {
    if (this.started) return;
    this.started = true;
    this.requestSweep();
  }

  /** Sweep whenever a container is removed, until no Wharf network is left. */
  watch(): void {
    this.watchGeneration++;
    this.unwatch ??= this.rt.watchEvents((e) => {
      if (e.action === 'destroy' || e.action === 'resync') this.requestSweep();
    });
  }

  removeUnused(): Promise<string[]> {
    return this.sweep().then((r) => r.removed);
  }

  /** One pass over the Wharf networks; says what it removed and how many are left. */
  private async sweep(): Promise<{ removed: string[]; left: number }> {
    const removed: string[] = [];
    const nets = await this.rt.listNetworks(AWSVPC_NETWORK_LABELS);
    for (const net of nets) {
      if (net.containerIds.length > 0) continue;
      const gone = await this.exclusive(net.name, async () => {
        // Look again while holding it: a pause container may have been put on it since.
        const now = (await this.rt.listNetworks(AWSVPC_NETWORK_LABELS)).find((x) => x.name === net.name);
        if (!now || now.containerIds.length > 0) return false;
        return (await this.rt.removeNetwork(net.name)) === 'removed';
      });
      if (gone) removed.push(net.name);
    }
    return { removed, left: nets.length - removed.length };
  }

  private requestSweep(): void {
    if (this.sweeping) {
      this.sweepAgain = true;
      return;
    }
    this.sweeping = true;
    void this.sweepLoop();
  }

  private async sweepLoop(): Promise<void> {
    do {
      this.sweepAgain = false;
      const generation = this.watchGeneration;
      try {
        const { left } = await this.sweep();
        if (left > 0) this.watch();
        else if (generation === this.watchGeneration && this.holds.size === 0 && this.unwatch) {
          // Nothing left to remove and no task putting a container on a network meanwhile.
          this.unwatch();
          this.unwatch = undefined;
        }
      } catch (err) {
        this.onError?.(err);
      }
    } while (this.sweepAgain);
    this.sweeping = false;
  }
}
