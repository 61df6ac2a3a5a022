/**
 * Who a request comes from and how, as the transports see it: the credentials table, the SigV4
 * check of the agent channel's WebSocket upgrade, the connection's peer and TLS, the signing
 * service and presigned query of a query-protocol request, and the global IAM condition keys
 * (core/iam-condition-keys.ts) these give a caller. Used by http-server.ts and the agent gateway.
 */
import type { IncomingMessage } from 'node:http';
import { globalConditionContext } from '../core/iam-condition-keys';
import { verifySigV4, type SigningSecret } from '../lib';
import type { Caller, Principal } from '../control/context';

export interface Credentials {
  /**
   * The secret of an access key id (or, for users, only its derived key) and who holds it, or
   * undefined if unknown. `userId` is the holder's IAM unique id where it has one.
   */
  lookup(accessKeyId: string): { secret: SigningSecret; principal: Principal; userId?: string } | undefined;
}

/** The global condition keys (core/iam-condition-keys.ts) of a caller's request, now. */
export function callerConditionContext(
  caller: Pick<Caller, 'region' | 'principalArn' | 'userId' | 'sourceIp' | 'secureTransport' | 'session'>,
  iamResource: string,
  accountId: string,
  nowMs = Date.now(),
): Record<string, string> {
  return globalConditionContext({
    region: caller.region,
    secureTransport: caller.secureTransport ?? false,
    nowMs,
    accountId,
    principalArn: caller.principalArn,
    iamResource,
    ...(caller.userId ? { userId: caller.userId } : {}),
    ...(caller.sourceIp ? { sourceIp: caller.sourceIp } : {}),
    ...(caller.session ? { session: { issuedAtMs: caller.session.issuedAt.getTime() } } : {}),
  });
}

/** The connection's peer address, an IPv4 client of a dual-stack socket as plain IPv4. */
export function peerAddress(req: IncomingMessage): string | undefined {
  const a = req.socket.remoteAddress;
  return a?.startsWith('::ffff:') && a.includes('.') ? a.slice('::ffff:'.length) : a;
}

/** Whether the request came over TLS. */
export function isSecure(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** The parameters in a request's query string, without those of a presigned signature. */
export function queryParameters(url: string): string {
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  for (const k of [...params.keys()]) if (/^X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token)$/.test(k)) params.delete(k);
  return params.toString();
}

export function isForm(req: IncomingMessage): boolean {
  return String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
}

/** The service a request's SigV4 credential scope names (header or presigned query), if any. */
export function signingServiceOf(req: IncomingMessage): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  const m = /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(auth);
  if (m) return m[1];
  const q = new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Credential');
  return q?.split('/')[3];
}

/** For the agent gateway: the same SigV4 check on a WebSocket upgrade request. */
export function authenticateUpgrade(req: IncomingMessage, credentials: Credentials):
  | { ok: true; accessKeyId: string; isAgent: boolean; principal: Principal; region: string; userId?: string }
  | { ok: false; code: string; message: string } {
  const r = verifySigV4(
    { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: Buffer.alloc(0) },
    (id) => credentials.lookup(id)?.secret,
    { service: 'ecs' },
  );
  if (!r.ok) return { ok: false, code: r.failure.code, message: r.failure.message };
  const { principal, userId } = credentials.lookup(r.identity.accessKeyId)!;
  return { ok: true, accessKeyId: r.identity.accessKeyId, isAgent: principal.kind !== 'user', principal, region: r.identity.region, ...(userId ? { userId } : {}) };
}
