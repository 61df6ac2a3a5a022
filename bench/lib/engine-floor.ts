/**
 * The floor for starting containers on this host: the Docker Engine API itself, over its unix
 * socket (dockerode), with no CLI and no orchestrator. A floor start is `POST /containers/create`
 * then `POST /containers/{id}/start`, timed until the start call returns (Docker answers it once
 * the container's process is running).
 *
 * The containers are made from the configuration of a container Wharf itself created (read back
 * with inspect): same image, command, environment, limits, log driver, network mode and the same
 * number and size of labels (their keys prefixed, so that nothing mistakes them for a task's),
 * so the floor does the same work in the engine that Wharf asks of it.
 */
import Docker from 'dockerode';

export type FloorConfig = Docker.ContainerCreateOptions;

/** The create options of `id` (a container Wharf made), for floor containers labelled `marker`. */
export async function floorConfigFrom(docker: Docker, id: string, marker: Record<string, string>): Promise<FloorConfig> {
  const info = await docker.getContainer(id).inspect();
  const c = info.Config;
  const h = info.HostConfig;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.Labels ?? {})) labels[`floor.${k}`] = v;
  return {
    Image: c.Image,
    Cmd: c.Cmd ?? undefined,
    Entrypoint: c.Entrypoint ?? undefined,
    Env: c.Env,
    WorkingDir: c.WorkingDir || undefined,
    User: c.User || undefined,
    ExposedPorts: c.ExposedPorts,
    StopTimeout: (c as { StopTimeout?: number }).StopTimeout,
    Labels: { ...labels, ...marker },
    HostConfig: {
      NetworkMode: h.NetworkMode,
      Memory: h.Memory || undefined,
      MemoryReservation: h.MemoryReservation || undefined,
      CpuShares: h.CpuShares || undefined,
      CgroupParent: h.CgroupParent || undefined,
      PortBindings: h.PortBindings,
      LogConfig: h.LogConfig,
    },
  };
}

let serial = 0;

/** One floor start: create + start through the API; ms until the start call returned. */
export async function floorStart(docker: Docker, config: FloorConfig): Promise<number> {
  const t0 = performance.now();
  const c = await docker.createContainer({ ...config, name: `wharf-floor-${process.pid}-${++serial}` });
  await c.start();
  return performance.now() - t0;
}

/** `n` floor starts at once; ms until the last start returned. */
export async function floorBurst(docker: Docker, config: FloorConfig, n: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, () => floorStart(docker, config)));
  return performance.now() - t0;
}

/** Removes every container carrying the label `key=value` (the floor's own marker). */
export async function removeLabelled(docker: Docker, key: string, value: string): Promise<void> {
  const cs = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${key}=${value}`] }) });
  await Promise.all(cs.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}
