import { Reason } from '../types';
import type { PlacementFilter } from './filter';

/** Only instances whose agent is connected receive tasks (failure AGENT). Instances that are
 * not ACTIVE are not candidates at all; the engine drops them before any filter runs. */
export const agentFilter: PlacementFilter = {
  name: 'agent',
  reason: Reason.AGENT,
  applies: () => true,
  accepts: (_ctx, inst) => inst.agentConnected,
};
