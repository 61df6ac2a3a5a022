/**
 * The console's only way to Wharf: the public ECS API (and CloudWatch Logs for task logs; AWS JSON 1.1 on `POST /`), each call
 * signed in the browser with SigV4 by AWS's own signer, exactly as the AWS CLI would sign it.
 *
 * Logging in trades the access key for a short-lived session (STS GetSessionToken, signed here
 * with the key), and only the session is kept: the long-term secret is used for that one call and
 * forgotten, so a copy of the tab's storage is worth hours at most. Every call then carries the
 * session token. When the server says the session is over (expired, or refused because its key was
 * deleted or rotated), the console drops it and asks for the key again (`onSessionEnded`).
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113';

/** A long-term access key, as the user types it on the login form (never stored). */
export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What the tab keeps: session credentials, their end, who they act as and the region shown. */
export interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO time the session ends. */
  expiration: string;
  /** The IAM ARN the session acts as (STS GetCallerIdentity). */
  arn: string;
  region: string;
}

/** The codes with which the API says that session credentials are over or not (any more) valid. */
const SESSION_ENDED = new Set(['ExpiredTokenException', 'ExpiredToken', 'UnrecognizedClientException', 'InvalidClientTokenId']);

let sessionEnded: ((message: string) => void) | undefined;

/** Who hears that the session is over (the app, which returns to the login form with `message`). */
export function onSessionEnded(fn: ((message: string) => void) | undefined): void {
  sessionEnded = fn;
}

function endSession(message: string): void {
  saveSession(undefined);
  sessionEnded?.(message);
}

/** An error the API answered with: its `__type` and message, shown to the user as they are. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A request that never got an answer (server down, network gone). */
export class NetworkError extends Error {}

export function callEcs<T>(session: Session, operation: string, input: object): Promise<T> {
  return callJson<T>(session, { service: 'ecs', targetPrefix: TARGET_PREFIX, region: session.region }, operation, input);
}

/**
 * A CloudWatch Logs call (task logs of the awslogs driver), in `region` when given: a container's
 * awslogs-region may name another region than the one the console is on.
 */
export function callLogs<T>(session: Session, operation: string, input: object, region = session.region): Promise<T> {
  return callJson<T>(session, { service: 'logs', targetPrefix: 'Logs_20140328', region }, operation, input);
}

/** Signs and sends one POST to the control plane (the session token, when given, is signed too). */
async function post(credentials: AccessKey & { sessionToken?: string }, scope: { service: string; region: string }, headers: Record<string, string>, body: string): Promise<Response> {
  const signer = new SignatureV4({ credentials, region: scope.region, service: scope.service, sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: location.protocol,
    hostname: location.hostname,
    port: location.port ? Number(location.port) : undefined,
    path: '/',
    query: {},
    headers: { host: location.host, ...headers },
    body,
  });
  // The browser sets Host itself (to the same value that was signed) and refuses it from scripts.
  const sent: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') sent[k] = v;
  try {
    return await fetch('/', { method: 'POST', headers: sent, body, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new NetworkError(`Cannot reach the Wharf control plane (${e instanceof Error ? e.message : String(e)}).`);
  }
}

const EXPIRED_MESSAGE = 'Your session has expired. Log in again with your access key.';

/** The login form's message for a session the server refused or that ran out. */
function endedMessage(e: ApiError): string {
  if (e.code === 'ExpiredTokenException' || e.code === 'ExpiredToken') return EXPIRED_MESSAGE;
  return `Your session is no longer valid (${e.code}: ${e.message}); its access key may have been deleted or rotated. Log in again.`;
}

async function callJson<T>(session: Session, api: { service: string; targetPrefix: string; region: string }, operation: string, input: object): Promise<T> {
  // A session past its end is not sent: the server would only say so.
  if (Date.parse(session.expiration) <= Date.now()) {
    endSession(EXPIRED_MESSAGE);
    throw new ApiError('ExpiredTokenException', 'The security token included in the request is expired', 400);
  }
  const body = JSON.stringify(input);
  const res = await post(session, api, { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${api.targetPrefix}.${operation}` }, body);
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new ApiError('UnknownError', text, res.status);
  }
  if (!res.ok) {
    const err = json as { __type?: string; message?: string; Message?: string };
    const code = (err.__type ?? res.headers.get('x-amzn-errortype') ?? 'UnknownError').split('#').pop()!;
    const e = new ApiError(code, err.message ?? err.Message ?? text, res.status);
    if (SESSION_ENDED.has(code)) endSession(endedMessage(e));
    throw e;
  }
  return json as T;
}

/** One STS call (AWS query protocol: a form in, XML out): the named fields of its result. */
async function callSts(credentials: AccessKey & { sessionToken?: string }, region: string, action: string, fields: string[]): Promise<Record<string, string>> {
  const body = new URLSearchParams({ Action: action, Version: '2011-06-15' }).toString();
  const res = await post(credentials, { service: 'sts', region }, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body);
  const text = await res.text();
  const doc = new DOMParser().parseFromString(text, 'application/xml');
  const field = (name: string) => doc.getElementsByTagName(name)[0]?.textContent ?? undefined;
  if (!res.ok) throw new ApiError(field('Code') ?? 'UnknownError', field('Message') ?? text, res.status);
  const out: Record<string, string> = {};
  for (const f of fields) {
    const v = field(f);
    if (v === undefined) throw new ApiError('UnknownError', `The ${action} answer has no ${f}.`, res.status);
    out[f] = v;
  }
  return out;
}

/**
 * Trades an access key for a session (STS GetSessionToken, the server's default length: 12 hours
 * for a user, one for the account's root) and learns who it acts as. The key is not kept.
 */
export async function logIn(key: AccessKey, region: string): Promise<Session> {
  const c = await callSts(key, region, 'GetSessionToken', ['AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration']);
  const creds = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
  const who = await callSts(creds, region, 'GetCallerIdentity', ['Arn']);
  return { ...creds, expiration: c.Expiration!, arn: who.Arn!, region };
}

/** How an error reads on screen: the API's code and message verbatim. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Every page of a paged List call (bounded: a console page never needs more than `max`). */
export async function listAll<K extends string>(session: Session, operation: string, input: object, key: K, max = 1000): Promise<string[]> {
  const out: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await callEcs<Record<K, string[] | undefined> & { nextToken?: string }>(session, operation, { ...input, ...(nextToken ? { nextToken } : {}) });
    out.push(...(page[key] ?? []));
    nextToken = page.nextToken;
  } while (nextToken && out.length < max);
  return out;
}

/**
 * The one resource a Describe call names (`key` is the answer's list), or an error carrying the
 * reason ECS gave in `failures`.
 */
export async function describeOne<T>(session: Session, operation: string, input: object, key: string, what: string): Promise<T> {
  const out = await callEcs<Record<string, unknown> & { failures?: { reason?: string }[] }>(session, operation, input);
  const found = (out[key] as T[] | undefined)?.[0];
  if (!found) throw new Error(`${what}: ${out.failures?.[0]?.reason ?? 'not found'}`);
  return found;
}

/** Describe calls take a bounded number of names at once (DescribeServices 10, DescribeTasks 100). */
export function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

const KEY = 'wharf-console-session';

/**
 * The session lives in sessionStorage: gone when the tab closes, never in a cookie. What an older
 * console kept (a long-term key, no token) or a session already over is dropped.
 */
export function loadSession(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return undefined;
    const s = JSON.parse(raw) as Session;
    if (s.accessKeyId && s.secretAccessKey && s.sessionToken && s.region && s.arn && Date.parse(s.expiration) > Date.now()) return s;
    sessionStorage.removeItem(KEY);
    return undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(s: Session | undefined): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}
