import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SigningSecret } from './sigv4';

/**
 * Short-lived session credentials (what STS GetSessionToken hands out), kept by nobody: the token
 * carries its own claims (the session's access key id, the long-term key it was issued from, when
 * it ends) under an HMAC of a server key, and the session's secret access key is another HMAC of
 * the same claims under that key. So a server that holds the key verifies any session it or
 * another replica sharing the key issued, across restarts, with nothing stored or cleaned up; and
 * nobody without the key can mint a session or work out a session's secret from its token.
 *
 *   token  = "WST1." base64url(claims JSON) "." base64url(HMAC(macKey, claims))
 *   secret = base64url(HMAC(secretKey, claims))
 *
 * macKey, secretKey and bindKey are HMACs of the server key with fixed labels, so no key is used
 * for two jobs. The claims name the parent key's id and a binding to its current secret (an HMAC,
 * so the token reveals nothing of the secret): a parent key deleted, rotated (a new id) or given a
 * new secret under the same id (the root key from the environment) ends its sessions at once.
 */

const PREFIX = 'WST1';
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export interface SessionClaims {
  /** The session's access key id (`ASIA...`, as STS's temporary keys are spelled). */
  accessKeyId: string;
  /** The long-term access key the session was issued from: whose identity it acts with. */
  parentAccessKeyId: string;
  /** HMAC of the parent's secret: a parent key given a new secret no longer matches. */
  parentBinding: string;
  /** Milliseconds since the epoch (whole seconds). */
  issuedAt: number;
  expiresAt: number;
}

export interface IssuedSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** Why a token was refused: not one of ours (or altered), or past its end. */
export type SessionTokenFailure = 'invalid' | 'expired';

const b64 = (b: Buffer) => b.toString('base64url');
const mac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** What a parent's secret is bound by: the key SigV4 starts from (`"AWS4" + secret` or its hash). */
function secretMaterial(secret: SigningSecret): Buffer {
  return typeof secret === 'string' ? createHash('sha256').update('AWS4' + secret).digest() : secret.aws4Key;
}

export class SessionTokens {
  private readonly macKey: Buffer;
  private readonly secretKey: Buffer;
  private readonly bindKey: Buffer;

  constructor(serverKey: Buffer) {
    if (serverKey.length < 32) throw new Error('a session token key must be at least 32 bytes');
    this.macKey = mac(serverKey, 'wharf session token: mac');
    this.secretKey = mac(serverKey, 'wharf session token: secret');
    this.bindKey = mac(serverKey, 'wharf session token: parent');
  }

  /** Whether a parent key's secret is still the one `claims` were issued from. */
  boundTo(claims: SessionClaims, parentSecret: SigningSecret): boolean {
    const want = Buffer.from(this.binding(claims.parentAccessKeyId, parentSecret), 'base64url');
    const got = Buffer.from(claims.parentBinding, 'base64url');
    return want.length === got.length && timingSafeEqual(want, got);
  }

  issue(parent: { accessKeyId: string; secret: SigningSecret }, durationMs: number, now: number): IssuedSession {
    // Whole seconds: the wire's Expiration has no milliseconds, and the token must end exactly then.
    const issuedAt = Math.floor(now / 1000) * 1000;
    const claims: SessionClaims = {
      accessKeyId: 'ASIA' + [...randomBytes(16)].map((b) => ID_ALPHABET[b % 32]).join(''),
      parentAccessKeyId: parent.accessKeyId,
      parentBinding: this.binding(parent.accessKeyId, parent.secret),
      issuedAt,
      expiresAt: issuedAt + Math.floor(durationMs / 1000) * 1000,
    };
    const payload = b64(Buffer.from(JSON.stringify(claims)));
    return {
      accessKeyId: claims.accessKeyId,
      secretAccessKey: b64(mac(this.secretKey, payload)),
      sessionToken: `${PREFIX}.${payload}.${b64(mac(this.macKey, payload))}`,
      expiration: new Date(claims.expiresAt),
    };
  }

  /**
   * The claims of an authentic token and the session's secret, or why not. Expiry is judged only
   * for an authentic token, so an altered one never learns whether it would have been expired.
   */
  open(token: string, now: number): { ok: true; claims: SessionClaims; secretAccessKey: string } | { ok: false; failure: SessionTokenFailure } {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) return { ok: false, failure: 'invalid' };
    const [, payload, tag] = parts as [string, string, string];
    const want = mac(this.macKey, payload);
    const got = Buffer.from(tag, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, failure: 'invalid' };
    let claims: SessionClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as SessionClaims;
    } catch {
      return { ok: false, failure: 'invalid' };
    }
    if (typeof claims?.accessKeyId !== 'string' || typeof claims.parentAccessKeyId !== 'string' || typeof claims.expiresAt !== 'number') return { ok: false, failure: 'invalid' };
    if (now >= claims.expiresAt) return { ok: false, failure: 'expired' };
    return { ok: true, claims, secretAccessKey: b64(mac(this.secretKey, payload)) };
  }

  private binding(parentAccessKeyId: string, secret: SigningSecret): string {
    return b64(mac(this.bindKey, `${parentAccessKeyId}\n${secretMaterial(secret).toString('base64')}`).subarray(0, 16));
  }
}
