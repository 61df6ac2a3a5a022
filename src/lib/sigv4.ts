import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * AWS Signature Version 4 for requests with a body in memory: `signRequest` for Wharf's own
 * clients (agent, CLI), `verifySigV4` for the server. Header-based signatures only (no presigned
 * query strings), which is what the AWS CLI, boto3 and the SDKs send for JSON and Query APIs:
 * a presigned request has no Authorization header and is refused as unauthenticated.
 */

export interface SignableRequest {
  method: string;
  /** Full URL (scheme, host, path, query). */
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const sha256hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it (everything but unreserved characters). */
function uriEncode(s: string, keepSlash: boolean): string {
  let out = '';
  for (const ch of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(ch);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + ch.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function canonicalPath(pathname: string): string {
  // Decode first so that already-encoded paths are not encoded twice, then encode each segment.
  return pathname
    .split('/')
    .map((seg) => uriEncode(safeDecode(seg), false))
    .join('/') || '/';
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function canonicalQuery(search: URLSearchParams): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of search) pairs.push([uriEncode(k, false), uriEncode(v, false)]);
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function canonicalHeaderValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ');
}

/**
 * Derived keys by secret, day, region and service. A key is good for a whole day, and deriving
 * one is four HMACs, as much as the rest of a signature. A server verifies for every agent of its
 * fleet (each container instance signs with its own key), and one simulated agent process signs
 * for a thousand instances, so the bound must hold a fleet: with 256 entries cleared when full, a
 * thousand instances re-derived their key on almost every request, at both ends. Only secrets that
 * were looked up for a known access key ever get here. Bounded all the same; when full, the entry
 * used least recently goes (Map order is insertion order, and a hit moves its entry to the end).
 */
export class DerivedKeyCache {
  private readonly keys = new Map<string, Buffer>();

  constructor(readonly max: number) {}

  get size(): number {
    return this.keys.size;
  }

  get(id: string): Buffer | undefined {
    const key = this.keys.get(id);
    if (key !== undefined) {
      this.keys.delete(id);
      this.keys.set(id, key);
    }
    return key;
  }

  set(id: string, key: Buffer): void {
    if (this.keys.size >= this.max && !this.keys.has(id)) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
    this.keys.set(id, key);
  }
}

const derivedKeys = new DerivedKeyCache(16_384);

/**
 * What a server may keep instead of a secret: `SHA-256("AWS4" + secret)`. SigV4's first step is
 * HMAC-SHA256 keyed with "AWS4" + secret, and HMAC first hashes a key longer than its 64-byte
 * block with SHA-256 (RFC 2104), so for a secret of 61 characters or more this hash keys the same
 * HMAC: the server verifies signatures and the secret itself is never stored.
 */
export interface DerivedSecret {
  aws4Key: Buffer;
}

/** A secret as a server holds it: the secret itself, or its derived key (long secrets only). */
export type SigningSecret = string | DerivedSecret;

/** The length from which a secret may be kept only as its derived key ("AWS4" + secret > 64 bytes). */
export const MIN_DERIVABLE_SECRET_LENGTH = 61;

/** The key to keep for a secret of at least MIN_DERIVABLE_SECRET_LENGTH ASCII characters. */
export function deriveSecret(secret: string): DerivedSecret {
  if (Buffer.byteLength(secret) < MIN_DERIVABLE_SECRET_LENGTH) throw new Error(`a secret kept as a derived key must be at least ${MIN_DERIVABLE_SECRET_LENGTH} bytes`);
  return { aws4Key: createHash('sha256').update('AWS4' + secret).digest() };
}

function signingKey(secret: SigningSecret, date: string, region: string, service: string): Buffer {
  const kSecret = typeof secret === 'string' ? 'AWS4' + secret : secret.aws4Key;
  const id = `${typeof secret === 'string' ? `s:${secret}` : `k:${secret.aws4Key.toString('hex')}`}\n${date}\n${region}\n${service}`;
  const cached = derivedKeys.get(id);
  if (cached) return cached;
  const kDate = hmac(kSecret, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const key = hmac(kService, 'aws4_request');
  derivedKeys.set(id, key);
  return key;
}

function stringToSign(
  method: string,
  url: URL,
  headers: Record<string, string>,
  signedHeaders: string[],
  payloadHash: string,
  amzDate: string,
  scope: string,
): string {
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${canonicalHeaderValue(lower[h] ?? '')}\n`).join('');
  const canonicalRequest = [
    method.toUpperCase(),
    canonicalPath(url.pathname),
    canonicalQuery(url.searchParams),
    canonicalHeaders,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  return ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
}

/** Returns the headers to add to the request (authorization, x-amz-date, host, token). */
export function signRequest(
  req: SignableRequest,
  opts: SigningCredentials & { region: string; service: string; date?: Date },
): Record<string, string> {
  const url = new URL(req.url);
  const amzDate = (opts.date ?? new Date()).toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const added: Record<string, string> = { 'x-amz-date': amzDate, host: url.host };
  if (opts.sessionToken) added['x-amz-security-token'] = opts.sessionToken;
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) all[k.toLowerCase()] = v;
  Object.assign(all, added);
  const signed = Object.keys(all)
    .filter((h) => h === 'host' || h === 'content-type' || h.startsWith('x-amz-') || h.startsWith('x-wharf-'))
    .sort();
  const scope = `${day}/${opts.region}/${opts.service}/aws4_request`;
  const sts = stringToSign(req.method, url, all, signed, sha256hex(req.body), amzDate, scope);
  const signature = createHmac('sha256', signingKey(opts.secretAccessKey, day, opts.region, opts.service))
    .update(sts)
    .digest('hex');
  added.authorization = `AWS4-HMAC-SHA256 Credential=${opts.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
  return added;
}

/**
 * The headers a signature must cover, or the request could be taken apart and replayed: `host`
 * (else it could be sent to another server), `x-amz-date` (else the skew check means nothing)
 * and, when the request has one, `x-amz-target` (else a captured body could be replayed against
 * another operation of a JSON-protocol API). Returns the first one missing, as AWS spells it.
 */
function requiredUnsigned(signedHeaders: string[], hasTarget: boolean): string | undefined {
  const signed = new Set(signedHeaders.map((s) => s.toLowerCase()));
  if (!signed.has('host')) return 'Host';
  if (!signed.has('x-amz-date')) return 'X-Amz-Date';
  if (hasTarget && !signed.has('x-amz-target')) return 'X-Amz-Target';
  return undefined;
}

export type SigV4Failure =
  | { code: 'MissingAuthenticationTokenException'; message: string }
  | { code: 'IncompleteSignatureException'; message: string }
  | { code: 'UnrecognizedClientException'; message: string }
  | { code: 'InvalidSignatureException'; message: string };

export interface VerifiedIdentity {
  accessKeyId: string;
  region: string;
  service: string;
  /** The headers the signature covers (lower case): only their values can be trusted. */
  signedHeaders: string[];
}

/**
 * Verifies a header-signed request. `lookupSecret` returns the secret for an access key id, or
 * undefined when the key is unknown. `maxSkewMs` bounds the clock difference (AWS: 15 minutes).
 */
export function verifySigV4(
  req: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: Buffer },
  lookupSecret: (accessKeyId: string) => SigningSecret | undefined,
  opts: { now?: number; maxSkewMs?: number; service?: string } = {},
): { ok: true; identity: VerifiedIdentity } | { ok: false; failure: SigV4Failure } {
  const h = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const auth = h('authorization');
  if (!auth) {
    return { ok: false, failure: { code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' } };
  }
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([^,\s]+)\s*$/.exec(auth);
  if (!m) {
    return {
      ok: false,
      failure: {
        code: 'IncompleteSignatureException',
        message: `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters with algorithm AWS4-HMAC-SHA256.`,
      },
    };
  }
  const [, credential, signedHeadersRaw, signature] = m as unknown as [string, string, string, string];
  if (!/^[0-9a-f]{64}$/.test(signature)) {
    // All three parameters are there: say which one is malformed.
    return { ok: false, failure: { code: 'IncompleteSignatureException', message: `The Signature of the Authorization header must be 64 lowercase hexadecimal digits, not '${signature.slice(0, 80)}'.` } };
  }
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') {
    return { ok: false, failure: { code: 'IncompleteSignatureException', message: `Credential should be scoped to a valid region, not '${credential}'.` } };
  }
  const [accessKeyId, day, region, service] = parts as [string, string, string, string, string];
  if (opts.service && service !== opts.service) {
    return { ok: false, failure: { code: 'InvalidSignatureException', message: `Credential should be scoped to correct service: '${opts.service}'.` } };
  }
  const secret = lookupSecret(accessKeyId);
  if (secret === undefined) {
    return { ok: false, failure: { code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' } };
  }
  const amzDate = h('x-amz-date') ?? '';
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
    return { ok: false, failure: { code: 'IncompleteSignatureException', message: 'Date must be in ISO-8601 basic format and match the credential scope.' } };
  }
  const signedAt = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  const now = opts.now ?? Date.now();
  if (Math.abs(now - signedAt) > (opts.maxSkewMs ?? 15 * 60_000)) {
    return { ok: false, failure: { code: 'InvalidSignatureException', message: 'Signature expired: the request time is too far from the server time.' } };
  }
  const signedHeaders = signedHeadersRaw.split(';');
  const unsigned = requiredUnsigned(signedHeaders, h('x-amz-target') !== undefined);
  if (unsigned) {
    return { ok: false, failure: { code: 'IncompleteSignatureException', message: `'${unsigned}' must be a 'SignedHeader' in the AWS Authorization.` } };
  }
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = h(name) ?? '';
  // The request target is a path; resolving it against a base would read `//host/...` as a
  // network path (and throw on `//`), so it is appended to a fixed origin instead.
  let url: URL;
  try {
    url = new URL(`http://placeholder${req.path.startsWith('/') ? '' : '/'}${req.path}`);
  } catch {
    return { ok: false, failure: { code: 'InvalidSignatureException', message: `The request path cannot be parsed: '${req.path.slice(0, 100)}'.` } };
  }
  // The body is always hashed here: a client's x-amz-content-sha256 claim is not trusted.
  const payloadHash = sha256hex(req.body);
  const sts = stringToSign(req.method, url, headers, signedHeaders, payloadHash, amzDate, `${day}/${region}/${service}/aws4_request`);
  const expected = createHmac('sha256', signingKey(secret, day, region, service)).update(sts).digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      failure: {
        code: 'InvalidSignatureException',
        message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      },
    };
  }
  return { ok: true, identity: { accessKeyId, region, service, signedHeaders } };
}
