/**
 * A ContainerSpec as Docker Engine API create options: a pure mapping, one field each, so what
 * Wharf asks of Docker can be read (and tested) without an engine.
 */
import type Docker from 'dockerode';
import type { ContainerSpec } from './container-runtime';

/** `image` with `:latest` when it names no tag or digest, as Docker's client does. */
export function withDefaultTag(image: string): string {
  if (image.includes('@')) return image;
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  return lastSegment.includes(':') ? image : `${image}:latest`;
}

export function dockerCreateOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const h = spec.host;
  return {
    name: spec.name,
    Image: withDefaultTag(spec.image),
    Labels: spec.labels,
    Entrypoint: spec.entrypoint,
    Cmd: spec.cmd,
    Env: spec.env,
    WorkingDir: spec.workingDir,
    User: spec.user,
    Hostname: spec.hostname,
    ExposedPorts: spec.exposedPorts ? Object.fromEntries(spec.exposedPorts.map((p) => [p, {}])) : undefined,
    Healthcheck: spec.healthcheck
      ? {
          Test: spec.healthcheck.test,
          Interval: spec.healthcheck.intervalNs,
          Timeout: spec.healthcheck.timeoutNs,
          Retries: spec.healthcheck.retries,
          StartPeriod: spec.healthcheck.startPeriodNs,
        }
      : undefined,
    StopTimeout: spec.stopTimeoutSec,
    NetworkDisabled: spec.networkDisabled,
    OpenStdin: spec.openStdin,
    Tty: spec.tty,
    HostConfig: {
      NetworkMode: h.networkMode,
      PidMode: h.pidMode,
      IpcMode: h.ipcMode,
      PortBindings: h.portBindings
        ? Object.fromEntries(
            Object.entries(h.portBindings).map(([k, v]) => [k, v.map((b) => ({ HostIp: b.hostIp ?? '', HostPort: b.hostPort ?? '' }))]),
          )
        : undefined,
      Links: h.links,
      Binds: h.binds,
      Tmpfs: h.tmpfs,
      VolumesFrom: h.volumesFrom,
      CpuShares: h.cpuShares,
      Memory: h.memoryBytes,
      MemoryReservation: h.memoryReservationBytes,
      MemorySwap: h.memorySwapBytes,
      MemorySwappiness: h.memorySwappiness,
      CgroupParent: h.cgroupParent,
      Ulimits: h.ulimits?.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
      ReadonlyRootfs: h.readonlyRootfs,
      PidsLimit: h.pidsLimit,
      Runtime: h.runtime,
      Privileged: h.privileged,
      Init: h.init,
      CapAdd: h.capAdd,
      CapDrop: h.capDrop,
      Devices: h.devices?.map((d) => ({ PathOnHost: d.pathOnHost, PathInContainer: d.pathInContainer, CgroupPermissions: d.cgroupPermissions })),
      ShmSize: h.shmSizeBytes,
      Dns: h.dns,
      DnsSearch: h.dnsSearch,
      ExtraHosts: h.extraHosts,
      SecurityOpt: h.securityOpt,
      Sysctls: h.sysctls,
      LogConfig: h.logConfig ? { Type: h.logConfig.type, Config: h.logConfig.config ?? {} } : undefined,
    },
  };
}
