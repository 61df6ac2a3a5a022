/**
 * Where a container instance's published host ports answer, as seen from this host and from
 * containers: Wharf's agents run on the server's host and publish bridge-mode host ports on every
 * address (0.0.0.0). The Docker bridge gateway (docker0) is one that works whether Docker's
 * userland proxy is on or off (its DNAT rules cover local addresses other than 127.0.0.0/8), and
 * containers on any Docker bridge reach it. The load balancer controller sends instance targets
 * there, and the service registry controller registers bridge and host tasks with it.
 */
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';

/** The Docker bridge gateway (docker0's IPv4 address), when this host has one. */
export function dockerBridgeAddress(): string | undefined {
  const listed = networkInterfaces().docker0?.find((a) => a.family === 'IPv4')?.address;
  if (listed) return listed;
  // Node lists no interface without a carrier, and docker0 has none while no container is on the
  // default bridge (awsvpc tasks use their subnets' bridges): ask the kernel through iproute2.
  try {
    const out = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'docker0'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 });
    return /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

/** The address bridge and host tasks' ports are reached at (127.0.0.1 on a host without docker0). */
export function instanceHostAddress(): string {
  return dockerBridgeAddress() ?? '127.0.0.1';
}
