/**
 * The agent channel of a server that answers several regions: each region has its own gateway
 * (cmd/regions.ts), and a socket belongs to the gateway of the region its upgrade request was
 * signed for (an agent registers into one region and keeps its channel there).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RegionPolicy } from '../core/regions';
import { refuse, type AgentGateway } from './agent-gateway';
import { authenticateUpgrade, callerConditionContext, isSecure, peerAddress, type Credentials } from './request-identity';
import { iamArn } from '../core/arn';
import { accessDeniedMessage, evaluateAll } from '../core/iam-policy';
import { agentChannelIamRequest } from '../control/iam-resources';
import type { Principal } from '../control/context';

/**
 * Why a user's key may not open the agent channel it asks for (IAM's message), or undefined when
 * it may. Only users with a policy are checked (the built-in key is root; agents' keys are bound
 * by the gateway): they need `ecs:Poll` on the container instance, as the ECS agent's channel does.
 */
export function agentChannelDenial(
  principal: Principal,
  partition: { region: string; accountId: string },
  url: URL,
  /** What the connection tells of the request, for the global condition keys. */
  via: { secureTransport: boolean; sourceIp?: string; userId?: string; nowMs?: number } = { secureTransport: false },
): string | undefined {
  if (principal.kind !== 'user' || !principal.policy) return undefined;
  const request = agentChannelIamRequest(partition, url.searchParams.get('cluster') ?? undefined, url.searchParams.get('containerInstance') ?? '*');
  const principalArn = iamArn(partition, principal.iamResource);
  const globals = callerConditionContext({ ...via, region: partition.region, principalArn }, principal.iamResource, partition.accountId, via.nowMs);
  const d = evaluateAll(principal.policy, request.action, request.resources, { ...globals, ...request.context });
  return d.decision === 'allow' ? undefined : accessDeniedMessage(principalArn, request.action, d.resource, d.decision);
}

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
  /** The account, for the IAM check of users' keys (agentChannelDenial); no check without it. */
  accountId?: string,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const auth = authenticateUpgrade(req, credentials);
    const refusal = auth.ok ? policy.refusal(auth.region) : undefined;
    if (refusal) return refuse(socket, 403, 'InvalidSignatureException', refusal);
    const sourceIp = peerAddress(req);
    const via = { secureTransport: isSecure(req), ...(sourceIp ? { sourceIp } : {}), ...(auth.ok && auth.userId ? { userId: auth.userId } : {}) };
    const denial = auth.ok && accountId ? agentChannelDenial(auth.principal, { region: auth.region, accountId }, new URL(req.url ?? '/', 'http://wharf.invalid'), via) : undefined;
    if (denial) return refuse(socket, 403, 'AccessDeniedException', denial);
    gatewayOf(auth.ok ? auth.region : policy.defaultRegion).then(
      (gateway) => gateway.handleUpgrade(req, socket, head),
      () => refuse(socket, 503, 'ServerException', 'The region is not available right now.'),
    );
  };
}
