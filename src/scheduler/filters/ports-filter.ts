import { Reason } from '../types';
import type { PlacementFilter } from './filter';

/** Static host ports are exclusive per instance (TCP and UDP separately); dynamic ports
 * (hostPort 0) are never listed in the request and never conflict. */
export const portsFilter: PlacementFilter = {
  name: 'ports',
  reason: Reason.PORTS,
  applies: (ctx) => ctx.tcpPorts.length > 0 || ctx.udpPorts.length > 0,
  accepts: (ctx, inst) => {
    for (const p of ctx.tcpPorts) if (inst.remaining.tcpPorts.has(p)) return false;
    for (const p of ctx.udpPorts) if (inst.remaining.udpPorts.has(p)) return false;
    return true;
  },
};
