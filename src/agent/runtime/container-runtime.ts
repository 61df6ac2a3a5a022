/**
 * The swap point between the TaskRunner and a container engine. `DockerRuntime` talks to a real
 * Docker Engine; `SimulatedRuntime` fakes one for scale tests. Everything is expressed in
 * Docker's own terms (the TaskRunner has already translated the ECS container definition), so
 * an implementation is a thin adapter.
 */
import type { Readable } from 'node:stream';

/** ECS's image pull behaviours (ECS_IMAGE_PULL_BEHAVIOR). */
export type PullBehaviour = 'default' | 'always' | 'once' | 'prefer-cached';

export interface RegistryAuth {
  username: string;
  password: string;
  serverAddress?: string;
}

export interface PullResult {
  /** `repo@sha256:...` when the engine knows it. */
  imageDigest?: string;
  /** True when nothing was pulled because a cached image was used. */
  cached: boolean;
}

/** A container as the engine should create it (Docker create-container body, trimmed). */
export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  hostname?: string;
  exposedPorts?: string[]; // "80/tcp"
  healthcheck?: { test: string[]; intervalNs?: number; timeoutNs?: number; retries?: number; startPeriodNs?: number };
  stopTimeoutSec?: number;
  networkDisabled?: boolean;
  openStdin?: boolean;
  tty?: boolean;
  host: {
    networkMode: string; // bridge | host | none | container:<id> | <network name>
    pidMode?: string; // host | container:<id>
    ipcMode?: string; // host | none | shareable | container:<id>
    portBindings?: Record<string, { hostIp?: string; hostPort?: string }[]>;
    links?: string[];
    binds?: string[]; // "src:dst[:ro]"
    tmpfs?: Record<string, string>;
    volumesFrom?: string[];
    cpuShares?: number;
    memoryBytes?: number;
    memoryReservationBytes?: number;
    memorySwapBytes?: number;
    memorySwappiness?: number;
    cgroupParent?: string;
    ulimits?: { name: string; soft: number; hard: number }[];
    readonlyRootfs?: boolean;
    /** Most processes the container may run (Docker's --pids-limit). */
    pidsLimit?: number;
    /** The OCI runtime (Docker's --runtime), when not the engine's default. */
    runtime?: string;
    privileged?: boolean;
    init?: boolean;
    capAdd?: string[];
    capDrop?: string[];
    devices?: { pathOnHost: string; pathInContainer: string; cgroupPermissions: string }[];
    shmSizeBytes?: number;
    dns?: string[];
    dnsSearch?: string[];
    extraHosts?: string[]; // "host:ip"
    securityOpt?: string[];
    sysctls?: Record<string, string>;
    logConfig?: { type: string; config?: Record<string, string> };
  };
}

export interface PortBinding {
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}

export type EngineHealth = 'starting' | 'healthy' | 'unhealthy';

/** What the engine says about one container right now. */
export interface ContainerState {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** created | running | paused | restarting | removing | exited | dead */
  status: string;
  running: boolean;
  exitCode?: number;
  oomKilled: boolean;
  /** Engine error for a container that could not start. */
  error?: string;
  /** When the engine created it (epoch ms). */
  createdAt?: number;
  startedAt?: number; // epoch ms
  finishedAt?: number; // epoch ms
  health?: EngineHealth;
  ports: PortBinding[];
  /** IP address per attached network name. */
  ipAddresses: Record<string, string>;
  /** MAC address per attached network name (where the engine reports one). */
  macAddresses?: Record<string, string>;
  imageId?: string;
}

/** The address range of a network: the IPv4 subnet and the gateway (the bridge's address). */
export interface NetworkIpam {
  subnet: string;
  gateway: string;
}

export interface ContainerSummary {
  id: string;
  name: string;
  labels: Record<string, string>;
  status: string;
  /** Address per network, when the runtime's list gives it (Docker's does). */
  ipAddresses?: Record<string, string>;
}

/** Something changed for a container; the listener re-inspects it. */
export interface RuntimeEvent {
  /** The container's id; empty for `resync`. */
  id: string;
  /**
   * What happened to the container, or `resync`: the engine's event stream was opened again
   * after it had ended (the engine restarted, say), so events of the gap may be lost and every
   * watcher should read again what it watches.
   */
  action: 'create' | 'start' | 'die' | 'oom' | 'health' | 'destroy' | 'other' | 'resync';
  /** The container's labels, when the engine sends them with the event (Docker does). */
  labels?: Record<string, string>;
}

export interface EngineInfo {
  cpus: number;
  memoryBytes: number;
  serverVersion: string;
  /** Highest Docker Remote API version the engine speaks, e.g. "1.41". */
  apiVersion: string;
  os: string;
  architecture: string;
  loggingDrivers: string[];
  /** cgroupfs | systemd (decides whether task-level limits can use a parent cgroup). */
  cgroupDriver: string;
  cgroupVersion: string;
  /** The OCI runtimes the engine offers (runc, and runsc where gVisor is set up). */
  runtimes: string[];
}

export interface TaskCgroupResult {
  /** Value for HostConfig.CgroupParent of every container in the task, when supported. */
  cgroupParent?: string;
  /** Why task-level limits could not be applied as a whole-task cgroup. */
  unsupportedReason?: string;
}

/** A network as the engine has it, with the containers configured on it. */
export interface NetworkSummary {
  name: string;
  labels: Record<string, string>;
  /**
   * Containers configured on the network in any state (created, running, exited). The engine
   * itself only refuses to remove a network that a running container is attached to; a created
   * or stopped one would just fail to start later, so the caller decides what counts as in use.
   */
  containerIds: string[];
}

/** What removeNetwork did: `in-use` when the engine refused because a container is attached. */
export type NetworkRemoval = 'removed' | 'absent' | 'in-use';

export interface LogOptions {
  follow?: boolean;
  tail?: number;
  since?: number; // epoch seconds
  timestamps?: boolean;
}

export interface ContainerRuntime {
  info(): Promise<EngineInfo>;
  /** Pulls `image` honouring `behaviour`; throws when the image cannot be had. */
  pullImage(image: string, opts: { behaviour: PullBehaviour; auth?: RegistryAuth }): Promise<PullResult>;
  createContainer(spec: ContainerSpec): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** Sends the stop signal (the image's STOPSIGNAL unless `signal`), then SIGKILL after `timeoutSec`. */
  stopContainer(id: string, opts: { timeoutSec: number; signal?: string }): Promise<void>;
  removeContainer(id: string, opts?: { removeVolumes?: boolean }): Promise<void>;
  /** undefined when the container does not exist. */
  inspectContainer(id: string): Promise<ContainerState | undefined>;
  /**
   * The engine's stats document of a running container (Docker's `GET /containers/<id>/stats`
   * with `stream=false`, as Docker returns it); undefined when the container does not exist.
   */
  containerStats(id: string): Promise<Record<string, unknown> | undefined>;
  /** All containers (running or not) carrying every given label, and each key of `has` with any value. */
  listContainers(labels: Record<string, string>, has?: readonly string[]): Promise<ContainerSummary[]>;
  /** Subscribes to container events; returns an unsubscribe function. */
  watchEvents(listener: (e: RuntimeEvent) => void): () => void;
  /**
   * Makes the bridge network unless it exists. With `ipam`, the network gets that range and
   * gateway; an unused network of the name with another range is made again with this one.
   */
  ensureNetwork(name: string, labels: Record<string, string>, ipam?: NetworkIpam): Promise<void>;
  /** Networks carrying every given label, each with the containers configured on it. */
  listNetworks(labels: Record<string, string>): Promise<NetworkSummary[]>;
  /** Removes the network; a network still in use is not an error but `in-use`. */
  removeNetwork(name: string): Promise<NetworkRemoval>;
  ensureVolume(name: string, opts: { driver?: string; driverOpts?: Record<string, string>; labels?: Record<string, string> }): Promise<void>;
  removeVolume(name: string): Promise<void>;
  volumeExists(name: string): Promise<boolean>;
  /** A parent cgroup holding the whole task's cpu/memory limits (see TaskRunner). */
  createTaskCgroup(taskId: string, limits: { cpuUnits?: number; memoryMiB?: number }): Promise<TaskCgroupResult>;
  removeTaskCgroup(taskId: string): Promise<void>;
  /** The container's stdout+stderr as text; ends when the container stops if `follow`. */
  logs(id: string, opts?: LogOptions): Promise<Readable>;
  close(): void;
}
