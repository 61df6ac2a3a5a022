import { readFileSync } from 'node:fs';

/**
 * Whether a process with this pid runs. Signal 0 checks without signalling (EPERM: it exists,
 * another user's). A process that exited but was never reaped is a zombie and counts as gone: a
 * detached or adopted process (HAProxy, a replica left by a killed `wharf up --ha`) is re-parented
 * to PID 1, and an init that does not reap (as in some containers) leaves it a zombie for good.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    // No /proc (not Linux): signal 0's answer stands.
    return true;
  }
}

/** `host:port`, an IPv6 host in brackets (as URLs and listen flags spell it). */
export function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
