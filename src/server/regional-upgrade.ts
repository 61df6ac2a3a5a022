/**
 * The agent channel of a server that answers several regions: each region has its own gateway
 * (cmd/regions.ts), and a socket belongs to the gateway of the region its upgrade request was
 * signed for (an agent registers into one region and keeps its channel there).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RegionPolicy } from '../core/regions';
import { refuse, type AgentGateway } from './agent-gateway';
import { authenticateUpgrade, type Credentials } from './http-server';

/**
 * The upgrade handler of a server that answers several regions: a socket belongs to the gateway
 * of the region its signature is scoped to (an agent registers into one region and keeps its
 * channel there). A request that does not authenticate goes to the default region's gateway,
 * which refuses it as it always did (404 for another path, 403 for the signature); a region not
 * served is refused here, before any region is brought up for it.
 */
export function regionalUpgrade(
  credentials: Credentials,
  policy: RegionPolicy,
  gatewayOf: (region: string) => Promise<AgentGateway>,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const auth = authenticateUpgrade(req, credentials);
    const refusal = auth.ok ? policy.refusal(auth.region) : undefined;
    if (refusal) return refuse(socket, 403, 'InvalidSignatureException', refusal);
    gatewayOf(auth.ok ? auth.region : policy.defaultRegion).then(
      (gateway) => gateway.handleUpgrade(req, socket, head),
      () => refuse(socket, 503, 'ServerException', 'The region is not available right now.'),
    );
  };
}
