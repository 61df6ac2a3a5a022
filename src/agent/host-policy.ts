/**
 * Host policy: what the operator of a host lets tasks ask of it, as the ECS agent's
 * ECS_DISABLE_PRIVILEGED does, with three settings of Wharf's own:
 *
 *   --disable-privileged          no privileged container (also ECS_DISABLE_PRIVILEGED=true)
 *   --disallow-host-network       no task in networkMode host
 *   --disable-capabilities L      no linuxParameters.capabilities.add of these (ALL: of any)
 *   --allowed-host-paths P,...    bind mounts only of paths at or under one of these
 *
 * It acts twice. At registration the agent advertises (or withholds) attributes that task
 * definitions require (core/host-policy-attributes.ts), so placement keeps tasks off hosts
 * that forbid them whenever an attribute can say so. On the agent, before anything of a task is
 * created (the pause container included), the task is checked against the whole policy: what an
 * attribute cannot express (a host path, one capability of a list), a custom attribute that
 * re-advertises a withheld one, or a StartTask naming this host all end here, and the task is
 * stopped with TaskFailedToStart and the reason below, having created nothing.
 */
import { realpathSync } from 'node:fs';
import { posix } from 'node:path';
import type { AgentTask } from '../api/agent/protocol';
import type { ContainerDefinition, Volume } from '../core/shapes/ecs';
import { LINUX_CAPABILITIES } from '../core/task-definition-container';
import {
  ALLOWED_HOST_PATHS_ATTRIBUTE,
  CAPABILITIES_ADD_ATTRIBUTE,
  DISABLED_CAPABILITIES_ATTRIBUTE,
  HOST_NETWORK_ATTRIBUTE,
  PRIVILEGED_ATTRIBUTE,
} from '../core/host-policy-attributes';

export interface HostPolicy {
  disablePrivileged?: boolean;
  disallowHostNetwork?: boolean;
  /** `ALL`: no capability may be added; a list: none of these (names without CAP_). */
  disabledCapabilities?: 'ALL' | string[];
  /** Normalised absolute paths; a bind mount must be at or under one. Unset: any path. */
  allowedHostPaths?: string[];
  /**
   * Paths of Wharf's own on this host that no bind mount may reach, whatever the other settings:
   * not the path, nothing under it, and no directory above it (a mount of `/` shows all of it).
   * `wharf up` sets the server's data dir, which holds the root key and every user's: a task is
   * not to read them through a host volume however its caller was allowed to run it.
   */
  protectedHostPaths?: { path: string; what: string }[];
}

/** `--allowed-host-paths /data,/var/log`: absolute paths, normalised (`/data/` -> `/data`). */
export function parseAllowedHostPaths(v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new Error('--allowed-host-paths wants absolute paths separated by commas, e.g. /data,/var/log');
  for (const p of list) {
    if (!p.startsWith('/')) throw new Error(`--allowed-host-paths wants absolute paths, not '${p}'`);
  }
  return [...new Set(list.map(normalise))];
}

/** `--disable-capabilities ALL` or `SYS_ADMIN,NET_ADMIN` (CAP_ prefix and case optional). */
export function parseDisabledCapabilities(v: string): 'ALL' | string[] {
  const list = v.split(',').map((s) => s.trim().toUpperCase().replace(/^CAP_/, '')).filter((s) => s !== '');
  if (list.length === 0) throw new Error("--disable-capabilities wants ALL or capabilities separated by commas, e.g. SYS_ADMIN,NET_ADMIN");
  if (list.includes('ALL')) return 'ALL';
  const unknown = list.filter((c) => !LINUX_CAPABILITIES.includes(c));
  if (unknown.length) throw new Error(`--disable-capabilities: unknown capabilities ${unknown.join(', ')} (ECS accepts ${LINUX_CAPABILITIES.join(', ')})`);
  return [...new Set(list)];
}

/** The attributes the policy decides: names to withhold, and name/value pairs to advertise. */
export function hostPolicyAttributes(p: HostPolicy | undefined): { withhold: string[]; advertise: Map<string, string | undefined> } {
  const withhold: string[] = [];
  const advertise = new Map<string, string | undefined>();
  if (p?.disablePrivileged) withhold.push(PRIVILEGED_ATTRIBUTE);
  if (p?.disallowHostNetwork) withhold.push(HOST_NETWORK_ATTRIBUTE);
  else advertise.set(HOST_NETWORK_ATTRIBUTE, undefined);
  if (p?.disabledCapabilities === 'ALL') withhold.push(CAPABILITIES_ADD_ATTRIBUTE);
  else advertise.set(CAPABILITIES_ADD_ATTRIBUTE, undefined);
  if (Array.isArray(p?.disabledCapabilities)) advertise.set(DISABLED_CAPABILITIES_ATTRIBUTE, attributeValue(p.disabledCapabilities.join(' ')));
  if (p?.allowedHostPaths) advertise.set(ALLOWED_HOST_PATHS_ATTRIBUTE, attributeValue(p.allowedHostPaths.join(':')));
  return { withhold, advertise };
}

/** An attribute value ECS accepts (1-128 of letters, digits, `-_.@/\:` and spaces), or none. */
function attributeValue(v: string): string | undefined {
  return /^[A-Za-z0-9_.@/\\: -]{1,128}$/.test(v) && v.trim() === v ? v : undefined;
}

/**
 * Why this host refuses to create `containers` (the task's containers not created yet), or
 * undefined. `resolve` maps a host path to the one it really names (symbolic links followed):
 * Docker follows them when it mounts, so `/data/link -> /etc` must count as /etc.
 */
export function hostPolicyViolation(
  policy: HostPolicy | undefined,
  task: Pick<AgentTask, 'taskDefinition'>,
  containers: readonly ContainerDefinition[],
  resolve: (path: string) => string = (p) => p,
): string | undefined {
  if (!policy || containers.length === 0) return undefined;
  const td = task.taskDefinition;
  const refuse = (why: string, flag: string) => `CannotStartContainerError: ${why} (${flag.startsWith('--') ? `wharf agent ${flag}` : flag})`.slice(0, 1024);
  if (policy.disallowHostNetwork && td.networkMode === 'host') {
    return refuse('the host network mode is disallowed on this container instance', '--disallow-host-network');
  }
  for (const c of containers) {
    if (policy.disablePrivileged && c.privileged === true) {
      return refuse(`privileged containers are disabled on this container instance; container ${c.name} is privileged`, '--disable-privileged');
    }
    const added = (c.linuxParameters?.capabilities?.add ?? []).map((x) => x.toUpperCase().replace(/^CAP_/, ''));
    const disabled = policy.disabledCapabilities;
    const refused = disabled === 'ALL' ? added : added.filter((x) => x === 'ALL' || (disabled ?? []).includes(x));
    if (refused.length > 0) {
      const which = disabled === 'ALL' ? 'ALL' : disabled!.join(',');
      return refuse(`container ${c.name} adds Linux capabilities ${refused.join(', ')}, which this container instance disables`, `--disable-capabilities ${which}`);
    }
    for (const mp of c.mountPoints ?? []) {
      const volume = (td.volumes ?? []).find((v) => v.name === mp.sourceVolume);
      const source = volume && hostPathOf(volume);
      const reached = source === undefined ? undefined : (policy.protectedHostPaths ?? []).find((x) => hostPathReaches(source, x.path, resolve));
      if (reached) return refuse(`container ${c.name} mounts host path ${source} (volume ${volume!.name}), which would expose ${reached.what} ${reached.path}`, 'Wharf protects it on this host');
    }
    const allowed = policy.allowedHostPaths;
    if (!allowed) continue;
    for (const mp of c.mountPoints ?? []) {
      const volume = (td.volumes ?? []).find((v) => v.name === mp.sourceVolume);
      const source = volume && hostPathOf(volume);
      if (source === undefined || hostPathAllowed(source, allowed, resolve)) continue;
      return refuse(
        `container ${c.name} mounts host path ${source} (volume ${volume!.name}), which is outside this container instance's allowed host paths ${allowed.join(', ')}`,
        '--allowed-host-paths',
      );
    }
  }
  return undefined;
}

/**
 * The host path a volume bind-mounts, if it does: `host.sourcePath`, or a Docker volume of the
 * local driver made with `o=bind` (`device` is then a host path, the same bind by another name).
 * A volume with neither is Docker-managed, not a bind mount.
 */
function hostPathOf(v: Volume): string | undefined {
  if (v.host?.sourcePath) return v.host.sourcePath;
  const dvc = v.dockerVolumeConfiguration;
  const opts = dvc?.driverOpts;
  if (!dvc || (dvc.driver ?? 'local') !== 'local' || !opts) return undefined;
  const bind = (opts.o ?? '').split(',').some((o) => o.trim() === 'bind' || o.trim() === 'rbind');
  return bind ? (opts.device ?? '') : undefined;
}

/**
 * Whether `source` is at or under one of `allowed`, compared as normalised paths after
 * `resolve`: `..` cannot climb out (`/data/../etc` is /etc), and `/data2` is not under `/data`.
 * A path that is not absolute is refused: Docker would read it as the name of a volume.
 */
export function hostPathAllowed(source: string, allowed: readonly string[], resolve: (path: string) => string = (p) => p): boolean {
  if (!source.startsWith('/')) return false;
  const p = normalise(resolve(normalise(source)));
  return allowed.some((a) => {
    const root = normalise(resolve(a));
    return root === '/' || p === root || p.startsWith(root + '/');
  });
}

/**
 * Whether a bind mount of `source` would show `guarded`: `source` is it, is under it, or is a
 * directory above it. Compared after `resolve`, as hostPathAllowed does; a path that is not
 * absolute is not a bind mount.
 */
export function hostPathReaches(source: string, guarded: string, resolve: (path: string) => string = (p) => p): boolean {
  if (!source.startsWith('/')) return false;
  const p = normalise(resolve(normalise(source)));
  const g = normalise(resolve(normalise(guarded)));
  const within = (a: string, b: string) => b === '/' || a === b || a.startsWith(b + '/');
  return within(p, g) || within(g, p);
}

function normalise(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * The path `p` names on this host with symbolic links followed: the deepest part of it that
 * exists, resolved, with the rest (which Docker would create as plain directories) appended.
 */
export function resolveHostPath(p: string): string {
  const rest: string[] = [];
  let at = normalise(p);
  for (;;) {
    try {
      return posix.join(realpathSync(at), ...rest.reverse());
    } catch {
      if (at === '/') return p;
      rest.push(posix.basename(at));
      at = posix.dirname(at);
    }
  }
}
