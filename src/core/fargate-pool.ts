/**
 * Fargate capacity is Wharf's own: each region has a pool of hosts (agents started with
 * `wharf agent --fargate`; `wharf up` offers the local Docker Engine) that users never see as
 * container instances. A pool host is registered as a container instance of a hidden cluster,
 * FARGATE_POOL, whose name no user cluster can have (`~` is not allowed in cluster names), so the
 * agent channel, liveness and placement machinery serve it unchanged while no user-facing
 * operation can name it.
 *
 * A Fargate task lives in the user's cluster (`tasks/<cluster>/<id>`) and runs on a pool host:
 * its record says which (`wharf.instanceId`, with `wharf.instanceCluster` = FARGATE_POOL), and
 * the wire form carries no containerInstanceArn, as on ECS.
 */
export const FARGATE_POOL = '~fargate';

/** Fargate platform versions a request may name (LATEST is 1.4.0, the only Linux one Wharf runs). */
export const FARGATE_PLATFORM_VERSIONS: readonly string[] = ['LATEST', '1.4.0'];
export const FARGATE_PLATFORM_VERSION = '1.4.0';
export const FARGATE_PLATFORM_FAMILY = 'Linux';

/**
 * The attribute a host advertises its Fargate sandbox in (`gvisor`: containers run under runsc,
 * with a kernel of their own; `runc`: gVisor is not set up there), copied onto each Fargate task
 * placed on it so DescribeTasks says how the task is isolated.
 */
export const SANDBOX_ATTRIBUTE = 'wharf.fargate-sandbox';

/** The cluster whose instances run a service's tasks: its own, or the region's Fargate pool. */
export function capacityOf(s: { launchType?: string; wharf: { cluster: string } }): string {
  return s.launchType === 'FARGATE' ? FARGATE_POOL : s.wharf.cluster;
}

/** The cluster of the instance a task is placed on: its own, or the pool for Fargate tasks. */
export function instanceClusterOf(t: { wharf: { cluster: string; instanceCluster?: string } }): string {
  return t.wharf.instanceCluster ?? t.wharf.cluster;
}
