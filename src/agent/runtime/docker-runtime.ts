/**
 * ContainerRuntime on a real Docker Engine, through dockerode. Also owns the per-task parent
 * cgroup that makes task-level cpu/memory a hard limit for the whole task (see createTaskCgroup).
 */
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { intToIp, parseCidr } from '../../core/vpc';
import { dockerCreateOptions, withDefaultTag } from './docker-create-options';
import { DockerEventStream } from './docker-events';
import { removeTaskCgroupDirs, writeTaskCgroup, type TaskCgroupPlace } from './task-cgroups';
import { firstHostAddress } from '../../lib/ipv4';
import type {
  ContainerRuntime,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  EngineInfo,
  LogOptions,
  NetworkIpam,
  NetworkRemoval,
  NetworkSummary,
  PortBinding,
  PullBehaviour,
  PullResult,
  RegistryAuth,
  RuntimeEvent,
  TaskCgroupResult,
} from './container-runtime';

export interface DockerRuntimeOptions {
  /** dockerode options (socketPath, host, ...); default: DOCKER_HOST or /var/run/docker.sock. */
  docker?: Docker.DockerOptions;
  /** Where the host's cgroup filesystem is mounted (for task-level limits). */
  cgroupRoot?: string;
  /** Parent of the per-task cgroups, below the cgroup root. */
  cgroupPrefix?: string;
}

const isNotFound = (err: unknown) => (err as { statusCode?: number }).statusCode === 404;
const isNotModified = (err: unknown) => (err as { statusCode?: number }).statusCode === 304;

/** Docker's label filter: every `k=v` must match. */
function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function parseTime(s: string | undefined): number | undefined {
  if (!s || s.startsWith('0001-')) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/** Docker's multiplexed log format: 8-byte frame headers (stream, 0, 0, 0, size BE32). */
function demuxBuffer(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts);
}

export class DockerRuntime implements ContainerRuntime {
  readonly docker: Docker;
  private readonly pulledOnce = new Set<string>();
  private readonly events: DockerEventStream;
  private infoCache?: EngineInfo;

  constructor(private readonly opts: DockerRuntimeOptions = {}) {
    this.docker = new Docker(opts.docker);
    this.events = new DockerEventStream(this.docker, () => this.forgetDigests());
  }

  async info(): Promise<EngineInfo> {
    if (this.infoCache) return this.infoCache;
    const [info, version] = await Promise.all([this.docker.info(), this.docker.version()]);
    this.infoCache = {
      cpus: info.NCPU,
      memoryBytes: info.MemTotal,
      serverVersion: info.ServerVersion,
      apiVersion: version.ApiVersion,
      os: info.OSType ?? 'linux',
      architecture: info.Architecture,
      loggingDrivers: info.Plugins?.Log ?? ['json-file'],
      cgroupDriver: info.CgroupDriver ?? 'cgroupfs',
      cgroupVersion: String(info.CgroupVersion ?? '1'),
      runtimes: Object.keys((info as { Runtimes?: Record<string, unknown> }).Runtimes ?? {}),
    };
    return this.infoCache;
  }

  /**
   * The host's address on Docker's default bridge (docker0): a local address of the host that
   * containers of every network mode reach (the task endpoint listens there). Docker's IPAM
   * names the gateway, or leaves it to the bridge interface's own address.
   */
  async bridgeGateway(): Promise<string | undefined> {
    const net = (await this.docker.getNetwork('bridge').inspect()) as {
      IPAM?: { Config?: { Gateway?: string; Subnet?: string }[] };
      Options?: Record<string, string>;
    };
    const ipv4 = (net.IPAM?.Config ?? []).filter((c) => c.Subnet && !c.Subnet.includes(':'));
    const named = ipv4.find((c) => c.Gateway)?.Gateway;
    if (named) return named;
    const ifname = net.Options?.['com.docker.network.bridge.name'] ?? 'docker0';
    const addr = (networkInterfaces()[ifname] ?? []).find((a) => a.family === 'IPv4');
    if (addr) return addr.address;
    // Node lists only interfaces that are up and running, and a bridge with no container on it
    // has no carrier; Docker gives the default bridge the subnet's first address.
    return firstHostAddress(ipv4[0]?.Subnet);
  }

  /**
   * Digests of local images by name, kept only while the engine's event stream is open: any image
   * event (pull, tag, untag, delete, load, import) clears it, so a name that moved is read again.
   * It spares every task start of a cached image one inspect call.
   */
  private readonly digests = new Map<string, string>();

  private async imageDigest(image: string): Promise<string | undefined> {
    const known = this.events.isOpen ? this.digests.get(image) : undefined;
    if (known !== undefined) return known;
    const generation = this.imageGeneration;
    const digest = await this.inspectDigest(image);
    // Kept only if no image event came while the answer was on its way.
    if (digest !== undefined && this.events.isOpen && generation === this.imageGeneration) this.digests.set(image, digest);
    return digest;
  }

  /** Bumped on every image event and whenever the event stream opens or closes. */
  private imageGeneration = 0;

  private forgetDigests(): void {
    this.imageGeneration++;
    this.digests.clear();
  }

  private async inspectDigest(image: string): Promise<string | undefined> {
    try {
      const img = await this.docker.getImage(image).inspect();
      // ECS reports the bare manifest digest (`sha256:...`), not Docker's `repo@sha256:...`;
      // prefer the digest of the repository the image was named by.
      const repo = image.replace(/:[^/:]+$/, '');
      const rd = img.RepoDigests?.find((d) => d.startsWith(`${repo}@`)) ?? img.RepoDigests?.[0];
      return rd ? rd.slice(rd.indexOf('@') + 1) : img.Id;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async pullImage(image: string, opts: { behaviour: PullBehaviour; auth?: RegistryAuth }): Promise<PullResult> {
    const name = withDefaultTag(image);
    const local = await this.imageDigest(name);
    if (local !== undefined && (opts.behaviour === 'prefer-cached' || (opts.behaviour === 'once' && this.pulledOnce.has(name)))) {
      return { imageDigest: local, cached: true };
    }
    try {
      await this.pull(name, opts.auth);
      this.pulledOnce.add(name);
    } catch (err) {
      // `default` falls back to a cached copy when the registry cannot be reached. The digest
      // above may come from the cache, which an image removal clears only when its event arrives:
      // ask the engine again before relying on the copy.
      if (opts.behaviour === 'default' && local !== undefined) {
        const present = await this.inspectDigest(name);
        if (present !== undefined) return { imageDigest: present, cached: true };
      }
      throw err;
    }
    return { imageDigest: await this.imageDigest(name), cached: false };
  }

  private async pull(name: string, auth?: RegistryAuth): Promise<void> {
    const authconfig = auth
      ? { username: auth.username, password: auth.password, serveraddress: auth.serverAddress ?? name.split('/')[0] }
      : undefined;
    const stream = await this.docker.pull(name, authconfig ? { authconfig } : {}).catch((err: unknown) => {
      throw daemonError(err);
    });
    const events: { error?: string; errorDetail?: { message?: string } }[] = await new Promise((resolve, reject) =>
      this.docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => (err ? reject(err) : resolve(out))),
    );
    const failed = events.find((e) => e.error);
    if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
  }

  async createContainer(spec: ContainerSpec): Promise<string> {
    try {
      const c = await this.docker.createContainer(dockerCreateOptions(spec));
      return c.id;
    } catch (err) {
      // The image is gone though the digest cache (cleared by the engine's image events) may not
      // know yet: forget it, so that the next pull asks the engine.
      if (/no such image/i.test((err as Error).message)) this.forgetDigests();
      throw err;
    }
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (!isNotModified(err)) throw err;
    }
  }

  async stopContainer(id: string, opts: { timeoutSec: number; signal?: string }): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      if (opts.signal) {
        await c.kill({ signal: opts.signal });
        // Docker's stop waits for exit and SIGKILLs after t seconds; after our own signal that
        // is exactly the grace period we still owe the container.
      }
      await c.stop({ t: Math.max(0, Math.round(opts.timeoutSec)) });
    } catch (err) {
      // 304: already stopped; 404: gone; 409: not running (after our own kill).
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404 && code !== 409) throw err;
    }
  }

  async removeContainer(id: string, opts: { removeVolumes?: boolean } = {}): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: opts.removeVolumes ?? false });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err; // 409: removal already in progress
    }
  }

  async containerStats(id: string): Promise<Record<string, unknown> | undefined> {
    try {
      // One sample (Docker waits for a second reading to fill precpu_stats), not a stream.
      return (await this.docker.getContainer(id).stats({ stream: false })) as unknown as Record<string, unknown>;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async inspectContainer(id: string): Promise<ContainerState | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const ports: PortBinding[] = [];
    for (const [key, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
      const [port, proto] = key.split('/');
      for (const b of bindings ?? []) {
        ports.push({ containerPort: Number(port), protocol: proto === 'udp' ? 'udp' : 'tcp', hostIp: b.HostIp, hostPort: Number(b.HostPort) });
      }
    }
    const ipAddresses: Record<string, string> = {};
    const macAddresses: Record<string, string> = {};
    for (const [net, n] of Object.entries(info.NetworkSettings?.Networks ?? {})) {
      if (n.IPAddress) ipAddresses[net] = n.IPAddress;
      if (n.MacAddress) macAddresses[net] = n.MacAddress;
    }
    const st = info.State as Docker.ContainerInspectInfo['State'] & { Error?: string };
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      labels: info.Config.Labels ?? {},
      status: st.Status,
      running: st.Running,
      exitCode: st.Status === 'exited' || st.Status === 'dead' ? st.ExitCode : undefined,
      oomKilled: st.OOMKilled,
      error: st.Error || undefined,
      createdAt: parseTime(info.Created),
      startedAt: parseTime(st.StartedAt),
      finishedAt: parseTime(st.FinishedAt),
      health: st.Health?.Status as ContainerState['health'],
      ports,
      ipAddresses,
      macAddresses,
      imageId: info.Image,
    };
  }

  async listContainers(labels: Record<string, string>, has: readonly string[] = []): Promise<ContainerSummary[]> {
    // Docker's filter `label=key` matches every container that has the key, whatever its value.
    const list = await this.docker.listContainers({ all: true, filters: JSON.stringify({ label: [...labelFilter(labels), ...has] }) });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      labels: c.Labels ?? {},
      status: c.State,
      ipAddresses: Object.fromEntries(
        Object.entries(c.NetworkSettings?.Networks ?? {})
          .filter(([, n]) => n.IPAddress)
          .map(([net, n]) => [net, n.IPAddress]),
      ),
    }));
  }

  watchEvents(listener: (e: RuntimeEvent) => void): () => void {
    return this.events.watch(listener);
  }

  async ensureNetwork(name: string, labels: Record<string, string>, ipam?: NetworkIpam): Promise<void> {
    const existing = (await this.docker.listNetworks({ filters: JSON.stringify({ name: [name] }) })).find((n) => n.Name === name);
    if (existing) {
      const subnets = (existing.IPAM?.Config ?? []).map((c) => c.Subnet);
      if (!ipam || subnets.includes(ipam.subnet)) return;
      // Made with another range (by an older Wharf, which let Docker choose): make it again
      // with the subnet's own, unless a container still uses it.
      if ((await this.removeNetwork(name)) === 'in-use') return;
    }
    try {
      await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Labels: labels,
        CheckDuplicate: true,
        ...(ipam ? { IPAM: { Driver: 'default', Config: [{ Subnet: ipam.subnet, Gateway: ipam.gateway, AuxiliaryAddresses: reservedAddresses(ipam.subnet) }] } } : {}),
      });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 409) return; // created concurrently
      // Another network (another Wharf's, say) holds the range: say what to change.
      if (ipam && /overlaps/i.test((err as Error).message)) {
        throw new Error(`${(err as Error).message.trim()}: another Docker network on this host uses ${ipam.subnet}; start wharf server (or wharf up) with --vpc-base A.B set to a range no network here uses`);
      }
      throw err;
    }
  }

  async listNetworks(labels: Record<string, string>): Promise<NetworkSummary[]> {
    const nets = await this.docker.listNetworks({ filters: JSON.stringify({ label: labelFilter(labels) }) });
    if (nets.length === 0) return [];
    // One container listing for all of them: values of one filter key are OR-ed, and `all`
    // includes created and exited containers, which the network inspection would leave out.
    const containers = await this.docker.listContainers({ all: true, filters: JSON.stringify({ network: nets.map((n) => n.Name) }) });
    return nets.map((n) => ({
      name: n.Name,
      labels: n.Labels ?? {},
      containerIds: containers.filter((c) => Object.keys(c.NetworkSettings?.Networks ?? {}).includes(n.Name)).map((c) => c.Id),
    }));
  }

  async removeNetwork(name: string): Promise<NetworkRemoval> {
    try {
      await this.docker.getNetwork(name).remove();
      return 'removed';
    } catch (err) {
      if (isNotFound(err)) return 'absent';
      // 403 "network ... has active endpoints": a running container is attached.
      const code = (err as { statusCode?: number }).statusCode;
      if (code === 403 || code === 409) return 'in-use';
      throw err;
    }
  }

  async ensureVolume(name: string, opts: { driver?: string; driverOpts?: Record<string, string>; labels?: Record<string, string> }): Promise<void> {
    if (await this.volumeExists(name)) return;
    await this.docker.createVolume({ Name: name, Driver: opts.driver ?? 'local', DriverOpts: opts.driverOpts, Labels: opts.labels });
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async volumeExists(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).inspect();
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Task-level cpu/memory as hard limits for the whole task (task-cgroups.ts). */
  async createTaskCgroup(taskId: string, limits: { cpuUnits?: number; memoryMiB?: number }): Promise<TaskCgroupResult> {
    const info = await this.info();
    if (info.cgroupDriver !== 'cgroupfs') return { unsupportedReason: `cgroup driver ${info.cgroupDriver} (need cgroupfs)` };
    return writeTaskCgroup(this.cgroupPlace(taskId, info), limits);
  }

  async removeTaskCgroup(taskId: string): Promise<void> {
    await removeTaskCgroupDirs(this.cgroupPlace(taskId, await this.info()));
  }

  private cgroupPlace(taskId: string, info: EngineInfo): TaskCgroupPlace {
    return { root: this.opts.cgroupRoot ?? '/sys/fs/cgroup', prefix: this.opts.cgroupPrefix ?? 'wharf', taskId, version: info.cgroupVersion === '2' ? '2' : '1' };
  }

  async logs(id: string, opts: LogOptions = {}): Promise<Readable> {
    const c = this.docker.getContainer(id);
    const tty = (await c.inspect()).Config.Tty;
    const base = { stdout: true, stderr: true, tail: opts.tail ?? 'all', since: opts.since, timestamps: opts.timestamps };
    const out = new PassThrough();
    if (opts.follow) {
      const stream = await c.logs({ ...base, follow: true } as Docker.ContainerLogsOptions & { follow: true });
      if (tty) stream.pipe(out);
      else {
        this.docker.modem.demuxStream(stream, out, out);
        stream.on('end', () => out.end());
        stream.on('error', (e: Error) => out.destroy(e));
      }
      out.on('close', () => (stream as Readable).destroy?.());
    } else {
      const buf = await c.logs({ ...base, follow: false } as Docker.ContainerLogsOptions & { follow?: false });
      out.end(tty ? buf : demuxBuffer(buf));
    }
    return out;
  }

  close(): void {
    this.events.close();
  }
}

/**
 * An error the Docker daemon answered with, worded as Docker's own client words it (and so as
 * the ECS agent reports it): `Error response from daemon: <message>`. dockerode wraps the same
 * message as `(HTTP code 500) server error - <message> `. Anything else (no daemon answer at
 * all, e.g. its socket is gone) is returned unchanged.
 */
export function daemonError(err: unknown): unknown {
  if (!(err instanceof Error) || typeof (err as { statusCode?: unknown }).statusCode !== 'number') return err;
  const m = /^\(HTTP code \d+\) [^-]*- ([\s\S]*)$/.exec(err.message);
  return m ? new Error(`Error response from daemon: ${m[1]!.trim()}`) : err;
}

/**
 * A VPC subnet's reserved addresses past the router (its first address, the network's gateway):
 * AWS keeps the second (the VPC's DNS) and the third for itself, so a task's first address is the
 * fourth (x.x.x.4 in a /20), not the one Docker's IPAM would hand out first.
 */
export function reservedAddresses(subnet: string): Record<string, string> | undefined {
  const c = parseCidr(subnet);
  if (!c || c.bits > 28) return undefined;
  return { 'aws-dns': intToIp(c.base + 2), 'aws-reserved': intToIp(c.base + 3) };
}
