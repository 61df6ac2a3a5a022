/**
 * Requests signed with session credentials (STS GetSessionToken): the `X-Amz-Security-Token`
 * header (or query parameter) names the session, whose secret the server works out from the
 * token itself (lib/session-token.ts), and the session acts as the holder of the long-term key it
 * was issued from, looked up live on every request: that holder's current policy applies, and a
 * parent key deleted or rotated ends its sessions at once (stricter than AWS, where a session
 * outlives its parent access key).
 */
import type { IncomingMessage } from 'node:http';
import { WharfError, type ErrorCode } from '../core/errors';
import { verifySigV4, type SessionClaims, type SessionTokenFailure, type SessionTokens, type SigV4Failure, type SigningSecret, type VerifiedIdentity } from '../lib';
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

/**
 * How an API names each way a request fails to authenticate: an unknown key or token, an expired
 * session, a signature that does not verify or is out of its time window, a missing signature and
 * a malformed one. JSON APIs, STS and ELBv2 (query protocol) and EC2 each have their own words.
 */
export interface AuthFailureCodes {
  invalid: ErrorCode;
  expired: ErrorCode;
  invalidMessage: string;
  /** Default: EXPIRED_TOKEN_MESSAGE. */
  expiredMessage?: string;
  /** A signature that does not verify (wrong secret, altered request, another service's scope). */
  signature: ErrorCode;
  /** EC2 gives every signature failure one message; the others say what failed. */
  signatureMessage?: string;
  /** A request signed too long ago or too far ahead (default: `signature`, with its reason). */
  signatureExpired?: { code: ErrorCode; message?: string };
  /** No signature at all. */
  missing: { code: ErrorCode; message: string };
  /** A signature whose parts are missing or malformed. */
  incomplete: ErrorCode;
}

export const JSON_AUTH_FAILURES: AuthFailureCodes = {
  invalid: 'UnrecognizedClientException',
  expired: 'ExpiredTokenException',
  invalidMessage: 'The security token included in the request is invalid.',
  signature: 'InvalidSignatureException',
  missing: { code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' },
  incomplete: 'IncompleteSignatureException',
};

/**
 * STS and ELBv2 (AWS query protocol) as their answers spell them: `aws sts get-caller-identity`
 * with a wrong secret says SignatureDoesNotMatch, as does a clock 15 minutes off ("Signature
 * expired: ... is now earlier than ..."); an unsigned request is MissingAuthenticationToken.
 */
export const QUERY_AUTH_FAILURES: AuthFailureCodes = {
  invalid: 'InvalidClientTokenId',
  expired: 'ExpiredToken',
  invalidMessage: 'The security token included in the request is invalid',
  signature: 'SignatureDoesNotMatch',
  missing: { code: 'MissingAuthenticationToken', message: 'Request is missing Authentication Token' },
  incomplete: 'IncompleteSignature',
};

/**
 * EC2 (query protocol too) spells them its own way: an unknown key or token and a signature that
 * does not verify are both AuthFailure ("AWS was not able to validate the provided access
 * credentials", as `aws ec2` shows them), and a session past its Expiration or a request outside
 * the 15-minute window is RequestExpired.
 */
export const EC2_AUTH_FAILURES: AuthFailureCodes = {
  invalid: 'AuthFailure',
  expired: 'RequestExpired',
  invalidMessage: 'AWS was not able to validate the provided access credentials',
  expiredMessage: 'Request has expired.',
  signature: 'AuthFailure',
  signatureMessage: 'AWS was not able to validate the provided access credentials',
  signatureExpired: { code: 'RequestExpired', message: 'Request has expired.' },
  missing: { code: 'MissingAuthenticationToken', message: 'Request is missing Authentication Token' },
  incomplete: 'IncompleteSignature',
};

/** The error an API answers for a request that does not authenticate. */
export function signatureError(failure: SigV4Failure, failures: AuthFailureCodes): WharfError {
  switch (failure.kind) {
    case 'missing':
      return new WharfError(failures.missing.code, failures.missing.message);
    case 'incomplete':
      return new WharfError(failures.incomplete, failure.message);
    case 'unknown-key':
      return new WharfError(failures.invalid, failures.invalidMessage);
    case 'expired':
      if (failures.signatureExpired) return new WharfError(failures.signatureExpired.code, failures.signatureExpired.message ?? failure.message);
      return new WharfError(failures.signature, failures.signatureMessage ?? failure.message);
    case 'mismatch':
      return new WharfError(failures.signature, failures.signatureMessage ?? failure.message);
  }
}

export const EXPIRED_TOKEN_MESSAGE = 'The security token included in the request is expired';

/**
 * The SigV4 check of an API request, with session credentials: who signed it (the key's holder,
 * or for a session its parent key's holder, looked up now) or the WharfError to answer, in the
 * words of the API (`failures`). With a session token the key must be that session's (a
 * long-term key sent with a token is refused, as AWS does); without one, a session's key id is
 * unknown like any other.
 */
export function verifyCaller(
  req: IncomingMessage,
  body: Buffer,
  signingName: string | undefined,
  credentials: { lookup(id: string): KeyHolder | undefined },
  sessions: SessionTokens | undefined,
  failures: AuthFailureCodes,
): { identity: VerifiedIdentity; holder: KeyHolder; session?: SessionClaims } {
  const token = securityTokenOf(req);
  let session: ResolvedSession | undefined;
  const r = verifySigV4(
    { method: req.method ?? 'POST', path: req.url ?? '/', headers: req.headers, body },
    (id) => {
      if (token === undefined) return credentials.lookup(id)?.secret;
      session = sessions ? resolveSession(sessions, (k) => credentials.lookup(k), id, token, Date.now()) : { ok: false, failure: 'invalid' };
      return session.ok ? session.secret : undefined;
    },
    { service: signingName },
  );
  const resolved = session as ResolvedSession | undefined;
  if (!r.ok) {
    if (resolved && !resolved.ok && resolved.failure === 'expired') throw new WharfError(failures.expired, failures.expiredMessage ?? EXPIRED_TOKEN_MESSAGE);
    throw signatureError(r.failure, failures);
  }
  if (resolved?.ok) return { identity: r.identity, holder: resolved.parent, session: resolved.claims };
  return { identity: r.identity, holder: credentials.lookup(r.identity.accessKeyId)! };
}
