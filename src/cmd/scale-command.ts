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
 * is logged and the request is made again on the next pass.
 */
import { spawn } from 'node:child_process';
import { groupNameOf } from '../control/capacity-providers';
import type { ScaleRequest } from '../controllers/capacity-provider-controller';
import type { Logger } from '../lib';

export function scaleCommandRunner(command: string, region: string, log: Logger): (r: ScaleRequest) => Promise<void> {
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
      const child = spawn('sh', ['-c', `${command} "$@"`, 'wharf-scale', r.capacityProvider, String(r.desired)], { env, stdio: ['ignore', 'inherit', 'inherit'] });
      child.on('error', reject);
      child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`scale command exited with ${code ?? signal}`))));
    });
}
