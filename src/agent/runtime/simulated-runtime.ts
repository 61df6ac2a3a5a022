/**
 * A fake container engine FOR SCALE TESTS ONLY (and the TaskRunner's unit tests). Nothing runs:
 * containers are records that move created -> running -> exited on timers. It lets one process
 * host thousands of hollow container instances to measure the control plane, with a configurable
 * start latency and failure rate. Never pick it for real work.
 */
import { PassThrough, type Readable } from 'node:stream';
import { systemClock, type Clock } from '../../lib/clock';
import type {
  ContainerRuntime,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  EngineInfo,
  NetworkIpam,
  NetworkRemoval,
  NetworkSummary,
  PullBehaviour,
  PullResult,
  RegistryAuth,
  RuntimeEvent,
  TaskCgroupResult,
} from './container-runtime';

export interface SimulatedBehaviour {
  /** The container exits on its own this long after starting. */
  exitAfterMs?: number;
  exitCode?: number;
  /** Exit with OOMKilled (code 137) instead. */
  oom?: boolean;
  /** Ignores the stop signal, so only SIGKILL after the timeout ends it (exit 137). */
  ignoresStopSignal?: boolean;
  /** With a healthcheck: becomes healthy this long after start (default 0); -1 = unhealthy. */
  healthyAfterMs?: number;
}

export interface SimulatedRuntimeOptions {
  clock?: Clock;
  /** Delay of every create and start call. */
  startLatencyMs?: number;
  /** Probability (0..1) that a start fails. */
  failureRate?: number;
  random?: () => number;
  /** Images whose pull fails. */
  failPull?: (image: string) => boolean;
  /** Per-container behaviour, e.g. keyed off the container's name or env. */
  behaviour?: (spec: ContainerSpec) => SimulatedBehaviour;
  cpus?: number;
  memoryBytes?: number;
  /** The OCI runtimes the engine says it has (default runc only; add runsc for gVisor). */
  runtimes?: string[];
}

interface SimContainer {
  id: string;
  spec: ContainerSpec;
  status: 'created' | 'running' | 'exited';
  exitCode?: number;
  oomKilled: boolean;
  error?: string;
  startedAt?: number;
  finishedAt?: number;
  health?: 'starting' | 'healthy' | 'unhealthy';
  timers: { cancel(): void }[];
  ports: ContainerState['ports'];
}

/** A user-defined network, as opposed to Docker's built-in modes or another container's namespace. */
function isNamedNetwork(mode: string): boolean {
  return !['bridge', 'default', 'host', 'none'].includes(mode) && !mode.startsWith('container:');
}

export class SimulatedRuntime implements ContainerRuntime {
  private readonly clock: Clock;
  private readonly containers = new Map<string, SimContainer>();
  private readonly byName = new Map<string, string>();
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();
  private readonly volumes = new Set<string>();
  /** Network name -> its labels. */
  private readonly networks = new Map<string, Record<string, string>>();
  private seq = 0;
  private nextPort = 49153;
  /** Calls made, for tests that assert on ordering. */
  readonly calls: { op: string; id?: string; name?: string; at: number }[] = [];

  constructor(private readonly opts: SimulatedRuntimeOptions = {}) {
    this.clock = opts.clock ?? systemClock;
  }

  private delay(): Promise<void> {
    const ms = this.opts.startLatencyMs ?? 0;
    return ms > 0 ? new Promise((r) => this.clock.setTimeout(() => r(), ms)) : Promise.resolve();
  }

  private emit(id: string, action: RuntimeEvent['action']): void {
    const labels = this.containers.get(id)?.spec.labels;
    for (const l of this.listeners) l(labels ? { id, action, labels } : { id, action });
  }

  private get(id: string): SimContainer {
    const c = this.containers.get(id) ?? this.containers.get(this.byName.get(id) ?? '');
    if (!c) throw Object.assign(new Error(`No such container: ${id}`), { statusCode: 404 });
    return c;
  }

  async info(): Promise<EngineInfo> {
    return {
      cpus: this.opts.cpus ?? 4,
      memoryBytes: this.opts.memoryBytes ?? 16 * 1024 ** 3,
      serverVersion: 'simulated',
      apiVersion: '1.41',
      os: 'linux',
      architecture: 'x86_64',
      loggingDrivers: ['json-file', 'none'],
      cgroupDriver: 'cgroupfs',
      cgroupVersion: '2',
      runtimes: this.opts.runtimes ?? ['runc'],
    };
  }

  async pullImage(image: string, _opts: { behaviour: PullBehaviour; auth?: RegistryAuth }): Promise<PullResult> {
    this.calls.push({ op: 'pull', name: image, at: this.clock.now() });
    if (this.opts.failPull?.(image)) throw new Error(`pull access denied for ${image}, repository does not exist`);
    return { imageDigest: `sha256:${'0'.repeat(64)}`, cached: false };
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    await this.delay();
    if (this.byName.has(spec.name)) throw Object.assign(new Error(`Conflict. The container name "${spec.name}" is already in use`), { statusCode: 409 });
    const id = `sim${(++this.seq).toString(16).padStart(61, '0')}`;
    const ports: ContainerState['ports'] = [];
    for (const [key, bs] of Object.entries(spec.host.portBindings ?? {})) {
      const [p, proto] = key.split('/');
      for (const b of bs) {
        ports.push({ containerPort: Number(p), protocol: proto === 'udp' ? 'udp' : 'tcp', hostIp: '0.0.0.0', hostPort: b.hostPort ? Number(b.hostPort) : this.nextPort++ });
      }
    }
    this.containers.set(id, { id, spec, status: 'created', oomKilled: false, timers: [], ports });
    this.byName.set(spec.name, id);
    this.calls.push({ op: 'create', id, name: spec.name, at: this.clock.now() });
    this.emit(id, 'create');
    return id;
  }

  async startContainer(id: string): Promise<void> {
    await this.delay();
    const c = this.get(id);
    if (c.status === 'running') return;
    // Like Docker: a container made on a named network cannot start once the network is gone.
    const net = c.spec.host.networkMode;
    if (isNamedNetwork(net) && !this.networks.has(net)) throw Object.assign(new Error(`network ${net} not found`), { statusCode: 404 });
    this.calls.push({ op: 'start', id: c.id, name: c.spec.name, at: this.clock.now() });
    if ((this.opts.random ?? Math.random)() < (this.opts.failureRate ?? 0)) {
      c.status = 'exited';
      c.exitCode = 128;
      c.error = 'simulated start failure';
      throw new Error('simulated start failure');
    }
    c.status = 'running';
    c.startedAt = this.clock.now();
    const b = this.opts.behaviour?.(c.spec) ?? {};
    if (c.spec.healthcheck) {
      c.health = 'starting';
      const after = b.healthyAfterMs ?? 0;
      c.timers.push(
        this.clock.setTimeout(() => {
          if (c.status !== 'running') return;
          c.health = after < 0 ? 'unhealthy' : 'healthy';
          this.emit(c.id, 'health');
        }, Math.max(0, after)),
      );
    }
    if (b.exitAfterMs !== undefined) {
      c.timers.push(this.clock.setTimeout(() => this.finish(c, b.oom ? 137 : b.exitCode ?? 0, b.oom ?? false), b.exitAfterMs));
    }
    this.emit(c.id, 'start');
  }

  private finish(c: SimContainer, code: number, oom: boolean): void {
    if (c.status !== 'running') return;
    for (const t of c.timers) t.cancel();
    c.timers = [];
    c.status = 'exited';
    c.exitCode = code;
    c.oomKilled = oom;
    c.finishedAt = this.clock.now();
    if (oom) this.emit(c.id, 'oom');
    this.emit(c.id, 'die');
  }

  /** Test hook: the container's process exits now. */
  exitContainer(id: string, code: number, opts: { oom?: boolean } = {}): void {
    this.finish(this.get(id), code, opts.oom ?? false);
  }

  /** Test hook: set the health reported by the engine. */
  setHealth(id: string, health: 'starting' | 'healthy' | 'unhealthy'): void {
    const c = this.get(id);
    c.health = health;
    this.emit(c.id, 'health');
  }

  /** Test hook: the id of the container with this name. */
  idOf(name: string): string | undefined {
    return this.byName.get(name);
  }

  async stopContainer(id: string, opts: { timeoutSec: number; signal?: string }): Promise<void> {
    const c = this.get(id);
    this.calls.push({ op: 'stop', id: c.id, name: c.spec.name, at: this.clock.now() });
    if (c.status !== 'running') return;
    const b = this.opts.behaviour?.(c.spec) ?? {};
    if (!b.ignoresStopSignal) return this.finish(c, 143, false);
    await new Promise<void>((r) => this.clock.setTimeout(() => r(), opts.timeoutSec * 1000));
    this.finish(c, 137, false);
  }

  async removeContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return;
    for (const t of c.timers) t.cancel();
    this.containers.delete(id);
    this.byName.delete(c.spec.name);
    this.calls.push({ op: 'remove', id, name: c.spec.name, at: this.clock.now() });
    this.emit(id, 'destroy');
  }

  /** Only what a simulated engine knows: no process really runs, so there is no usage to report. */
  async containerStats(id: string): Promise<Record<string, unknown> | undefined> {
    const c = this.containers.get(id);
    if (!c) return undefined;
    return {
      read: new Date(this.clock.now()).toISOString(),
      name: `/${c.spec.name}`,
      id: c.id,
      pids_stats: { current: c.status === 'running' ? 1 : 0 },
      memory_stats: c.spec.host.memoryBytes !== undefined ? { limit: c.spec.host.memoryBytes } : {},
    };
  }

  async inspectContainer(id: string): Promise<ContainerState | undefined> {
    const c = this.containers.get(id);
    if (!c) return undefined;
    const net = c.spec.host.networkMode;
    const isNamedNet = isNamedNetwork(net);
    const n = parseInt(c.id.slice(3), 16);
    return {
      id: c.id,
      name: c.spec.name,
      labels: c.spec.labels,
      status: c.status,
      running: c.status === 'running',
      exitCode: c.status === 'exited' ? c.exitCode : undefined,
      oomKilled: c.oomKilled,
      error: c.error,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      health: c.health,
      ports: c.status === 'running' ? c.ports : [],
      // Each container its own address (from its id's number), as Docker's IPAM gives.
      ipAddresses: isNamedNet ? { [net]: `10.0.${(n >> 8) & 255}.${n & 255}` } : {},
    };
  }

  async listContainers(labels: Record<string, string>, has: readonly string[] = []): Promise<ContainerSummary[]> {
    return [...this.containers.values()]
      .filter((c) => Object.entries(labels).every(([k, v]) => c.spec.labels[k] === v) && has.every((k) => c.spec.labels[k] !== undefined))
      .map((c) => ({ id: c.id, name: c.spec.name, labels: c.spec.labels, status: c.status }));
  }

  watchEvents(listener: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async ensureNetwork(name: string, labels: Record<string, string>, _ipam?: NetworkIpam): Promise<void> {
    if (this.networks.has(name)) return;
    this.networks.set(name, { ...labels });
    this.calls.push({ op: 'createNetwork', name, at: this.clock.now() });
  }
  async listNetworks(labels: Record<string, string>): Promise<NetworkSummary[]> {
    return [...this.networks]
      .filter(([, l]) => Object.entries(labels).every(([k, v]) => l[k] === v))
      .map(([name, l]) => ({
        name,
        labels: { ...l },
        containerIds: [...this.containers.values()].filter((c) => c.spec.host.networkMode === name).map((c) => c.id),
      }));
  }
  /** Like Docker, refuses only while a running container is attached. */
  async removeNetwork(name: string): Promise<NetworkRemoval> {
    if (!this.networks.has(name)) return 'absent';
    if ([...this.containers.values()].some((c) => c.status === 'running' && c.spec.host.networkMode === name)) return 'in-use';
    this.networks.delete(name);
    this.calls.push({ op: 'removeNetwork', name, at: this.clock.now() });
    return 'removed';
  }
  /** Test hook: the names of the networks that exist now. */
  networkNames(): string[] {
    return [...this.networks.keys()];
  }
  async ensureVolume(name: string): Promise<void> {
    this.volumes.add(name);
  }
  async removeVolume(name: string): Promise<void> {
    this.volumes.delete(name);
  }
  async volumeExists(name: string): Promise<boolean> {
    return this.volumes.has(name);
  }
  async createTaskCgroup(taskId: string, _limits?: { cpuUnits?: number; memoryMiB?: number }): Promise<TaskCgroupResult> {
    return { cgroupParent: `/wharf/${taskId}` };
  }
  async removeTaskCgroup(): Promise<void> {}

  async logs(id: string): Promise<Readable> {
    const c = this.get(id);
    const out = new PassThrough();
    out.end(`simulated container ${c.spec.name}\n`);
    return out;
  }

  close(): void {
    for (const c of this.containers.values()) for (const t of c.timers) t.cancel();
    this.listeners.clear();
  }
}
