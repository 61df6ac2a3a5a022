/**
 * Attributes through which a host's policy (`wharf agent --disable-privileged`,
 * `--disallow-host-network`, `--disable-capabilities`, `--allowed-host-paths`) reaches placement.
 *
 * ECS does this for one setting: an agent with ECS_DISABLE_PRIVILEGED does not advertise
 * `com.amazonaws.ecs.capability.privileged-container`, and a definition with a privileged
 * container requires it, so the scheduler's attribute filter keeps the task off that host. The
 * other settings are Wharf's, so their attributes are too (the `wharf.` prefix says so):
 *
 *   wharf.capability.host-network      advertised unless --disallow-host-network; required by
 *                                      networkMode host
 *   wharf.capability.linux-capabilities-add
 *                                      advertised unless --disable-capabilities ALL; required by
 *                                      any linuxParameters.capabilities.add
 *   wharf.allowed-host-paths           advertised only with --allowed-host-paths, for people to
 *                                      see (value: the paths joined by ':'). No definition
 *                                      requires it: whether a bind mount is allowed depends on
 *                                      the path, which presence-or-equality attributes cannot
 *                                      express, so the agent checks it per task.
 *   wharf.disabled-capabilities        likewise, with a list of capabilities: shown, checked by
 *                                      the agent.
 */
export const PRIVILEGED_ATTRIBUTE = 'com.amazonaws.ecs.capability.privileged-container';
export const HOST_NETWORK_ATTRIBUTE = 'wharf.capability.host-network';
export const CAPABILITIES_ADD_ATTRIBUTE = 'wharf.capability.linux-capabilities-add';
export const ALLOWED_HOST_PATHS_ATTRIBUTE = 'wharf.allowed-host-paths';
export const DISABLED_CAPABILITIES_ATTRIBUTE = 'wharf.disabled-capabilities';

/**
 * Whether the agent sets `name` (as it sets ECS's `ecs.*` ones): re-registration replaces such
 * attributes instead of keeping them as custom ones, so a host restarted with a stricter policy
 * stops advertising what it no longer allows, and they do not count against the 10 custom ones.
 */
export function isHostPolicyAttribute(name: string): boolean {
  return name.startsWith('wharf.capability.') || name === ALLOWED_HOST_PATHS_ATTRIBUTE || name === DISABLED_CAPABILITIES_ATTRIBUTE;
}
