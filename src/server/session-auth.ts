/**
 * Requests signed with session credentials (STS GetSessionToken): the `X-Amz-Security-Token`
 * header (or query parameter) names the session, whose secret the server works out from the
 * token itself (lib/session-token.ts), and the session acts as the holder of the long-term key it
 * was issued from, looked up live on every request: that holder's current policy applies, and a
 * parent key deleted or rotated ends its sessions at once (stricter than AWS, where a session
 * outlives its parent access key).
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../core/errors';
import type { SessionClaims, SessionTokenFailure, SessionTokens, SigningSecret } from '../lib';
import type { Principal } from '../control/context';

/** What the key table answers for an access key id (http-server.ts `Credentials.lookup`). */
export interface KeyHolder {
  secret: SigningSecret;
  principal: Principal;
  userId?: string;
}

export type ResolvedSession = { ok: true; secret: string; parent: KeyHolder; claims: SessionClaims } | { ok: false; failure: SessionTokenFailure };

/** The session token a request carries, from its header or (query auth) its query string. */
export function securityTokenOf(req: IncomingMessage): string | undefined {
  const h = req.headers['x-amz-security-token'];
  if (typeof h === 'string') return h;
  if (Array.isArray(h)) return h.join(',');
  const q = (req.url ?? '').indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams((req.url ?? '').slice(q + 1)).get('X-Amz-Security-Token') ?? undefined;
}

/**
 * The secret and holder of a session key `accessKeyId` presented with `token`. Only users' keys
 * have sessions (agents' keys cannot call STS), so a token naming any other holder is invalid.
 */
export function resolveSession(tokens: SessionTokens, lookup: (id: string) => KeyHolder | undefined, accessKeyId: string, token: string, now: number): ResolvedSession {
  const opened = tokens.open(token, now);
  if (!opened.ok) return opened;
  const { claims } = opened;
  if (claims.accessKeyId !== accessKeyId) return { ok: false, failure: 'invalid' };
  const parent = lookup(claims.parentAccessKeyId);
  if (!parent || parent.principal.kind !== 'user' || !tokens.boundTo(claims, parent.secret)) return { ok: false, failure: 'invalid' };
  return { ok: true, secret: opened.secretAccessKey, parent, claims };
}

/** How an API names an unknown key or token and an expired one (JSON APIs and query APIs differ). */
export interface AuthFailureCodes {
  invalid: ErrorCode;
  expired: ErrorCode;
  invalidMessage: string;
}

export const JSON_AUTH_FAILURES: AuthFailureCodes = {
  invalid: 'UnrecognizedClientException',
  expired: 'ExpiredTokenException',
  invalidMessage: 'The security token included in the request is invalid.',
};

/** STS and ELBv2 (AWS query protocol) as their answers spell them. */
export const QUERY_AUTH_FAILURES: AuthFailureCodes = {
  invalid: 'InvalidClientTokenId',
  expired: 'ExpiredToken',
  invalidMessage: 'The security token included in the request is invalid',
};

export const EXPIRED_TOKEN_MESSAGE = 'The security token included in the request is expired';
