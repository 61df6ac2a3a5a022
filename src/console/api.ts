/**
 * The console's only way to Wharf: the public ECS API (and CloudWatch Logs for task logs; AWS JSON 1.1 on `POST /`), each call
 * signed in the browser with SigV4 by AWS's own signer, exactly as the AWS CLI would sign it.
 * The secret never leaves the browser; only signatures do.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113';

export interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
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

async function callJson<T>(session: Session, api: { service: string; targetPrefix: string; region: string }, operation: string, input: object): Promise<T> {
  const body = JSON.stringify(input);
  const signer = new SignatureV4({
    credentials: { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey },
    region: api.region,
    service: api.service,
    sha256: Sha256,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: location.protocol,
    hostname: location.hostname,
    port: location.port ? Number(location.port) : undefined,
    path: '/',
    query: {},
    headers: {
      host: location.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `${api.targetPrefix}.${operation}`,
    },
    body,
  });
  // The browser sets Host itself (to the same value that was signed) and refuses it from scripts.
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') headers[k] = v;
  let res: Response;
  try {
    res = await fetch('/', { method: 'POST', headers, body, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new NetworkError(`Cannot reach the Wharf control plane (${e instanceof Error ? e.message : String(e)}).`);
  }
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
    throw new ApiError(code, err.message ?? err.Message ?? text, res.status);
  }
  return json as T;
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

/** The keys live in sessionStorage: gone when the tab closes, never in a cookie. */
export function loadSession(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return undefined;
    const s = JSON.parse(raw) as Session;
    return s.accessKeyId && s.secretAccessKey && s.region ? s : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(s: Session | undefined): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}
