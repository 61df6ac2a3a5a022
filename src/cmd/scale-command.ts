/**
 * `wharf server --scale-command CMD`: how Wharf's managed scaling reaches whatever adds and
 * removes hosts (Wharf has no Auto Scaling groups). CMD runs through `sh -c` with the capacity
 * provider's name and the desired instance count as $1 and $2, and the details in the
 * environment:
 *
 *   WHARF_CAPACITY_PROVIDER, WHARF_DESIRED_COUNT, WHARF_CURRENT_COUNT, WHARF_REGION,
 *   WHARF_CLUSTER, WHARF_AUTO_SCALING_GROUP_ARN, WHARF_AUTO_SCALING_GROUP (the group name),
 *   WHARF_CAPACITY_PROVIDER_RESERVATION (percent),
 *   WHARF_PROTECTED_INSTANCES (container instance ARNs holding tasks, kept by
 *   managedTerminationProtection; space-separated), WHARF_REMOVABLE_INSTANCES (those a scale-in
 *   may remove).
 *
 * It runs when the desired count changes, never twice at once for one provider; a non-zero exit
 * is logged and the request is made again on the next pass. A run that has not ended after
 * SCALE_COMMAND_TIMEOUT_MS (5 minutes) is killed (SIGTERM to its process group, SIGKILL 5 s
 * later) and counts as failed, so a hung command cannot hold its provider's scaling forever.
 */
import { spawn } from 'node:child_process';
import { groupNameOf } from '../control/capacity-providers';
import type { ScaleRequest } from '../controllers/capacity-provider-controller';
import type { Logger } from '../lib';

/** How long one run of the scale command may take before it is killed. */
export const SCALE_COMMAND_TIMEOUT_MS = 5 * 60_000;
/** After SIGTERM, how long a timed-out command gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;

export function scaleCommandRunner(command: string, region: string, log: Logger, timeoutMs = SCALE_COMMAND_TIMEOUT_MS): (r: ScaleRequest) => Promise<void> {
  return (r) =>
    new Promise((resolve, reject) => {
      const env = {
        ...process.env,
        WHARF_CAPACITY_PROVIDER: r.capacityProvider,
        WHARF_DESIRED_COUNT: String(r.desired),
        WHARF_CURRENT_COUNT: String(r.instances),
        WHARF_REGION: region,
        WHARF_CLUSTER: r.cluster,
        WHARF_AUTO_SCALING_GROUP_ARN: r.autoScalingGroupArn,
        WHARF_AUTO_SCALING_GROUP: groupNameOf(r.autoScalingGroupArn) ?? '',
        WHARF_CAPACITY_PROVIDER_RESERVATION: String(r.reservation),
        WHARF_PROTECTED_INSTANCES: r.protectedInstances.join(' '),
        WHARF_REMOVABLE_INSTANCES: r.removableInstances.join(' '),
      };
      log.info({ capacityProvider: r.capacityProvider, desired: r.desired, current: r.instances }, 'running the scale command');
      // Its own process group, so a timeout kills what the command started too.
      const child = spawn('sh', ['-c', `${command} "$@"`, 'wharf-scale', r.capacityProvider, String(r.desired)], { env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
      const killGroup = (signal: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // Already gone.
        }
      };
      const timer = setTimeout(() => {
        log.error({ capacityProvider: r.capacityProvider, desired: r.desired, pid: child.pid, timeoutMs }, 'scale command timed out: killed');
        killGroup('SIGTERM');
        // What ignored SIGTERM (the shell may be gone, a child of it not).
        setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
        reject(new Error(`scale command timed out after ${timeoutMs} ms and was killed`));
      }, timeoutMs);
      timer.unref();
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`scale command exited with ${code ?? signal}`));
      });
    });
}
