import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * AWS Signature Version 4 for requests with a body in memory: `signRequest` for Wharf's own
 * clients (agent, CLI), `verifySigV4` for the server, which takes the signature from the
 * Authorization header (what the AWS CLI, boto3 and the SDKs send) or from the query string (a
 * presigned URL, such as STS GetCallerIdentity URLs that Vault and aws-iam-authenticator use).
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
 * (else it could be sent to another server), `x-amz-date` (else the skew check means nothing;
 * a presigned request carries its date in the signed query instead) and, when the request has
 * one, `x-amz-target` (else a captured body could be replayed against another operation of a
 * JSON-protocol API). Returns the first one missing, as AWS spells it.
 */
function requiredUnsigned(signedHeaders: string[], hasTarget: boolean, dateInQuery: boolean): string | undefined {
  const signed = new Set(signedHeaders.map((s) => s.toLowerCase()));
  if (!signed.has('host')) return 'Host';
  if (!dateInQuery && !signed.has('x-amz-date')) return 'X-Amz-Date';
  if (hasTarget && !signed.has('x-amz-target')) return 'X-Amz-Target';
  return undefined;
}

/**
 * Why a request does not authenticate. `kind` is what went wrong, which each API names its own
 * way (server/session-auth.ts); `code` is the name AWS's JSON-protocol APIs give it.
 *   missing     no Authorization header and no presigned query
 *   incomplete  the signature's parts are missing or malformed
 *   unknown-key the access key id is not known
 *   mismatch    the signature does not verify (wrong secret, altered request, another scope)
 *   expired     signed too long ago or too far ahead, or past its X-Amz-Expires
 */
export type SigV4Failure =
  | { kind: 'missing'; code: 'MissingAuthenticationTokenException'; message: string }
  | { kind: 'incomplete'; code: 'IncompleteSignatureException'; message: string }
  | { kind: 'unknown-key'; code: 'UnrecognizedClientException'; message: string }
  | { kind: 'mismatch' | 'expired'; code: 'InvalidSignatureException'; message: string };

export interface VerifiedIdentity {
  accessKeyId: string;
  region: string;
  service: string;
  /** The headers the signature covers (lower case): only their values can be trusted. */
  signedHeaders: string[];
  /** Whether the signature came in the query string (a presigned URL) rather than a header. */
  presigned: boolean;
}

/** The AWS query parameters of a presigned request (SigV4 query-string authentication). */
const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Signature'] as const;

/** Whether a request target carries SigV4 query-string authentication (any of its parameters). */
export function isPresigned(path: string): boolean {
  const q = path.indexOf('?');
  if (q < 0) return false;
  const params = new URLSearchParams(path.slice(q + 1));
  return PRESIGN_PARAMS.some((p) => params.has(p));
}

/** The longest X-Amz-Expires SigV4 accepts: seven days. */
const MAX_EXPIRES_S = 604_800;

const incomplete = (message: string): SigV4Failure => ({ kind: 'incomplete', code: 'IncompleteSignatureException', message });
const mismatch = (message: string): SigV4Failure => ({ kind: 'mismatch', code: 'InvalidSignatureException', message });
const expired = (message: string): SigV4Failure => ({ kind: 'expired', code: 'InvalidSignatureException', message });

export const SIGNATURE_MISMATCH_MESSAGE =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/** `20240501T120000Z`, as SigV4 writes times. */
function basicIso(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

/** `15 min` or `90 sec`, as AWS words the allowed skew. */
function skewWords(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} sec`;
}

/** The signature's parts, from the Authorization header or the presigned query. */
interface SignatureParts {
  credential: string;
  signedHeadersRaw: string;
  signature: string;
  amzDate: string;
  /** X-Amz-Expires of a presigned request, in seconds. */
  expiresS?: number;
  presigned: boolean;
}

function headerParts(auth: string, amzDate: string): SignatureParts | SigV4Failure {
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([^,\s]+)\s*$/.exec(auth);
  if (!m) return incomplete(`Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters with algorithm AWS4-HMAC-SHA256.`);
  const [, credential, signedHeadersRaw, signature] = m as unknown as [string, string, string, string];
  if (!/^[0-9a-f]{64}$/.test(signature)) {
    // All three parameters are there: say which one is malformed.
    return incomplete(`The Signature of the Authorization header must be 64 lowercase hexadecimal digits, not '${signature.slice(0, 80)}'.`);
  }
  return { credential, signedHeadersRaw, signature, amzDate, presigned: false };
}

function queryParts(q: URLSearchParams): SignatureParts | SigV4Failure {
  const missing = PRESIGN_PARAMS.filter((p) => !q.get(p));
  if (missing.length > 0) return incomplete(`${missing.map((p) => `AWS query-string parameters must include '${p}'. `).join('')}Re-examine the query-string parameters.`);
  const algorithm = q.get('X-Amz-Algorithm')!;
  if (algorithm !== 'AWS4-HMAC-SHA256') return incomplete(`Unsupported AWS 'algorithm': '${algorithm.slice(0, 40)}'. Wharf accepts AWS4-HMAC-SHA256.`);
  const signature = q.get('X-Amz-Signature')!;
  if (!/^[0-9a-f]{64}$/.test(signature)) return incomplete(`X-Amz-Signature must be 64 lowercase hexadecimal digits, not '${signature.slice(0, 80)}'.`);
  const parts: SignatureParts = { credential: q.get('X-Amz-Credential')!, signedHeadersRaw: q.get('X-Amz-SignedHeaders')!, signature, amzDate: q.get('X-Amz-Date')!, presigned: true };
  const expires = q.get('X-Amz-Expires');
  if (expires !== null) {
    if (!/^\d{1,7}$/.test(expires)) return incomplete('X-Amz-Expires should be a number');
    const n = Number(expires);
    if (n < 1 || n > MAX_EXPIRES_S) return incomplete(`X-Amz-Expires must be less than a week (in seconds) that is ${MAX_EXPIRES_S}`);
    parts.expiresS = n;
  }
  return parts;
}

/**
 * Verifies a signed request: SigV4 in the Authorization header, or in the query string (a
 * presigned URL: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders,
 * X-Amz-Signature and optionally X-Amz-Expires). `lookupSecret` returns the secret for an access
 * key id, or undefined when the key is unknown. `maxSkewMs` bounds the clock difference (AWS: 15
 * minutes). A presigned request is good until X-Amz-Date + X-Amz-Expires and never more than
 * `maxSkewMs` after X-Amz-Date, as STS holds GetCallerIdentity URLs to 15 minutes whatever they
 * ask (aws-sdk-go#2167).
 */
export function verifySigV4(
  req: { method: string; path: string; headers: Record<string, string | string[] | undefined>; body: Buffer },
  lookupSecret: (accessKeyId: string) => SigningSecret | undefined,
  opts: { now?: number; maxSkewMs?: number; service?: string } = {},
): { ok: true; identity: VerifiedIdentity } | { ok: false; failure: SigV4Failure } {
  const fail = (failure: SigV4Failure) => ({ ok: false as const, failure });
  const h = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  // The request target is a path; resolving it against a base would read `//host/...` as a
  // network path (and throw on `//`), so it is appended to a fixed origin instead.
  let url: URL;
  try {
    url = new URL(`http://placeholder${req.path.startsWith('/') ? '' : '/'}${req.path}`);
  } catch {
    return fail(mismatch(`The request path cannot be parsed: '${req.path.slice(0, 100)}'.`));
  }
  const auth = h('authorization');
  let parts: SignatureParts | SigV4Failure;
  if (auth) parts = headerParts(auth, h('x-amz-date') ?? '');
  else if (isPresigned(req.path)) parts = queryParts(url.searchParams);
  else return fail({ kind: 'missing', code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  if ('kind' in parts) return fail(parts);
  const { credential, signedHeadersRaw, signature, amzDate } = parts;
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') return fail(incomplete(`Credential should be scoped to a valid region, not '${credential}'.`));
  const [accessKeyId, day, region, service] = scope as [string, string, string, string, string];
  if (opts.service && service !== opts.service) return fail(mismatch(`Credential should be scoped to correct service: '${opts.service}'.`));
  const secret = lookupSecret(accessKeyId);
  if (secret === undefined) return fail({ kind: 'unknown-key', code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' });
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
    return fail(incomplete('Date must be in ISO-8601 basic format and match the credential scope.'));
  }
  const signedAt = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  const now = opts.now ?? Date.now();
  const skew = opts.maxSkewMs ?? 15 * 60_000;
  // AWS's words, e.g. "Signature expired: 20170111T204052Z is now earlier than 20170111T205553Z
  // (20170111T211053Z - 15 min.)".
  if (signedAt > now + skew) {
    return fail(expired(`Signature not yet current: ${amzDate} is still later than ${basicIso(now + skew)} (${basicIso(now)} + ${skewWords(skew)}.)`));
  }
  if (signedAt < now - skew) {
    return fail(expired(`Signature expired: ${amzDate} is now earlier than ${basicIso(now - skew)} (${basicIso(now)} - ${skewWords(skew)}.)`));
  }
  if (parts.expiresS !== undefined && now > signedAt + parts.expiresS * 1000) {
    return fail(expired(`Signature expired: ${basicIso(signedAt + parts.expiresS * 1000)} is now earlier than ${basicIso(now)} (X-Amz-Date ${amzDate} + X-Amz-Expires ${parts.expiresS} sec.)`));
  }
  const signedHeaders = signedHeadersRaw.split(';');
  const unsigned = requiredUnsigned(signedHeaders, h('x-amz-target') !== undefined, parts.presigned);
  if (unsigned) return fail(incomplete(`'${unsigned}' must be a 'SignedHeader' in the AWS Authorization.`));
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = h(name) ?? '';
  // A presigned request signs its query without the signature itself.
  if (parts.presigned) url.searchParams.delete('X-Amz-Signature');
  // The body is always hashed here: a client's x-amz-content-sha256 claim is not trusted.
  const payloadHash = sha256hex(req.body);
  const sts = stringToSign(req.method, url, headers, signedHeaders, payloadHash, amzDate, `${day}/${region}/${service}/aws4_request`);
  const expected = createHmac('sha256', signingKey(secret, day, region, service)).update(sts).digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail(mismatch(SIGNATURE_MISMATCH_MESSAGE));
  return { ok: true, identity: { accessKeyId, region, service, signedHeaders, presigned: parts.presigned } };
}
