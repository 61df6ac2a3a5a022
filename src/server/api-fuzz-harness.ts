/**
 * What the API fuzz and attack tests (server/api-fuzz*.test.ts) share: the real HTTP server with
 * every API Wharf serves (the JSON ones and the EC2/ELBv2 query ones, from server/wharf-apis.ts)
 * over an in-memory store, signed requests over keep-alive sockets, the check that an answer is a
 * well-formed AWS answer, and a dump of the whole store to prove that refused requests changed
 * nothing. Test support only: nothing in the server imports it.
 */
import http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { cloudMapHandlers } from '../control/cloudmap';
import { secretsHandlers } from '../control/secrets';
import { logsHandlers } from '../control/logs';
import { ec2Handlers, ecsHandlers, elbv2Handlers, type ControlContext, type Principal } from '../control';
import { RegionPolicy } from '../core/regions';
import { signRequest, systemClock } from '../lib';
import { PlacementView } from '../state/placement-view';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import type { Handler, JsonServiceApi, QueryServiceApi } from './api-registry';
import { createHttpServer, type RequestTimeouts, type WharfHttpServer } from './http-server';
import { wharfApis, wharfQueryApis } from './wharf-apis';

export const FUZZ_REGION = 'us-east-1';
export const FUZZ_ACCOUNT = '123456789012';
export const ECS_TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113';

export interface FuzzKey {
  accessKeyId: string;
  secretAccessKey: string;
}
/** The keys the server knows: a user's (all-powerful today), a cluster join token's, an instance's. */
export const USER_KEY: FuzzKey = { accessKeyId: 'AKIAFUZZUSER', secretAccessKey: 'fuzz-user-secret' };
export const AGENT_KEY: FuzzKey = { accessKeyId: 'AKIAFUZZAGENT', secretAccessKey: 'fuzz-agent-secret' };
/** An agent's own credential, bound to a container instance of cluster `fuzz` (that need not exist). */
export const INSTANCE_KEY: FuzzKey = { accessKeyId: 'AKIAFUZZINSTANCE', secretAccessKey: 'fuzz-instance-secret' };
export const INSTANCE_ARN = `arn:aws:ecs:us-east-1:123456789012:container-instance/fuzz/${'f'.repeat(32)}`;

export interface Answer {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

export interface SignedPost {
  path?: string;
  target?: string;
  body: string | Buffer;
  keys?: FuzzKey;
  /** SigV4 signing name (the credential scope's service). */
  service?: string;
  region?: string;
  /** The signing time (now unless given). */
  date?: Date;
  contentType?: string;
  /** Headers added before signing (so they are signed). */
  headers?: Record<string, string>;
  /** Headers replaced after signing: what an attacker changes in a captured request. */
  tamper?: Record<string, string>;
  /** The body sent instead of the signed one. */
  sentBody?: string | Buffer;
  unsigned?: boolean;
}

export interface FuzzServer {
  store: MemoryStore;
  state: State;
  ctx: ControlContext;
  server: WharfHttpServer;
  port: number;
  apis: JsonServiceApi[];
  queryApis: QueryServiceApi[];
  /** warn and error lines the server logged. */
  logged: string[];
  /** Lines logged at error level (a server error, whatever the client saw). */
  serverErrors(): string[];
  post(p: SignedPost): Promise<Answer>;
  close(): Promise<void>;
}

export async function startFuzzServer(opts: { timeouts?: RequestTimeouts } = {}): Promise<FuzzServer> {
  const store = new MemoryStore();
  const state = new State(store);
  await state.start();
  const placement = new PlacementView(state);
  const logged: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logged.push(String(chunk));
      cb();
    },
  });
  const log = pino({ level: 'warn' }, sink);
  const ctx: ControlContext = { store, state, placement, partition: { region: FUZZ_REGION, accountId: FUZZ_ACCOUNT }, clock: systemClock, log };
  const known = new Map<string, { secret: string; principal: Principal }>([
    [USER_KEY.accessKeyId, { secret: USER_KEY.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } }],
    [AGENT_KEY.accessKeyId, { secret: AGENT_KEY.secretAccessKey, principal: { kind: 'agent-token', iamResource: 'role/wharf-agent' } }],
    [INSTANCE_KEY.accessKeyId, { secret: INSTANCE_KEY.secretAccessKey, principal: { kind: 'instance', iamResource: 'role/wharf-agent', cluster: 'fuzz', containerInstanceArn: INSTANCE_ARN } }],
  ]);
  const apis = wharfApis({ ecs: ecsHandlers(ctx) as Record<string, Handler>, secrets: secretsHandlers(ctx) as Record<string, Handler>, cloudMap: cloudMapHandlers(ctx) as Record<string, Handler>,
    // Logs keep their own keys (groups/, streams/, batches/), which the cache ignores.
    logs: logsHandlers({ store, partition: ctx.partition, clock: systemClock, log }) as Record<string, Handler>,
  });
  const queryApis = wharfQueryApis({ ec2: ec2Handlers(ctx) as Record<string, Handler>, elbv2: elbv2Handlers(ctx) as Record<string, Handler> });
  const server = createHttpServer({
    apis,
    queryApis,
    credentials: { lookup: (id) => known.get(id) },
    accountId: FUZZ_ACCOUNT,
    regions: new RegionPolicy(FUZZ_REGION, [FUZZ_REGION]),
    log,
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  const post = (p: SignedPost): Promise<Answer> => {
    const path = p.path ?? '/';
    const body = Buffer.from(p.body);
    const headers: Record<string, string> = { 'content-type': p.contentType ?? 'application/x-amz-json-1.1', ...(p.headers ?? {}) };
    if (p.target !== undefined) headers['x-amz-target'] = p.target;
    const signed = p.unsigned
      ? {}
      : signRequest(
          { method: 'POST', url: `http://127.0.0.1:${port}${path}`, headers, body },
          { ...(p.keys ?? USER_KEY), region: p.region ?? FUZZ_REGION, service: p.service ?? 'ecs', ...(p.date ? { date: p.date } : {}) },
        );
    const sent = p.sentBody === undefined ? body : Buffer.from(p.sentBody);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path, agent, headers: { ...headers, ...signed, ...(p.tamper ?? {}), 'content-length': String(sent.length) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(sent);
    });
  };

  return {
    store,
    state,
    ctx,
    server,
    port,
    apis,
    queryApis,
    logged,
    serverErrors: () => logged.filter((l) => /"level":50/.test(l)),
    post,
    async close() {
      agent.destroy();
      await server.close();
      placement.stop();
      state.stop();
      await store.close();
    },
  };
}

/** Characters XML 1.0 cannot carry, even escaped (and lone surrogates). */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What is wrong with an answer, or undefined if it is a well-formed AWS answer: below 500, and for
 * the JSON protocol a JSON object (an error with `__type` and `message`), for the query protocols
 * an XML document (an error with `<Code>` and `<Message>`, in EC2's or ELB's envelope).
 */
export function malformed(a: Answer, protocol: 'json' | 'query' = 'json'): string | undefined {
  if (a.status >= 500) return `status ${a.status}`;
  if (a.status < 200) return `status ${a.status}`;
  if (protocol === 'query' && String(a.headers['content-type'] ?? '').startsWith('text/xml')) {
    if (NOT_XML.test(a.text)) return 'XML with a character XML cannot carry';
    if (!a.text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<')) return 'XML without its declaration';
    if (a.status === 200) return /^<\?xml[^>]*>\n<(\w+)Response xmlns="[^"]*">[\s\S]*<\/\1Response>$/.test(a.text) ? undefined : 'an answer outside its <ActionResponse> envelope';
    const ec2 = /^<\?xml[^>]*>\n<Response><Errors><Error><Code>[^<]+<\/Code><Message>[^<]*<\/Message><\/Error><\/Errors><RequestID>[^<]+<\/RequestID><\/Response>$/;
    const elb = /^<\?xml[^>]*>\n<ErrorResponse xmlns="[^"]*"><Error><Type>Sender<\/Type><Code>[^<]+<\/Code><Message>[^<]*<\/Message><\/Error><RequestId>[^<]+<\/RequestId><\/ErrorResponse>$/;
    return ec2.test(a.text) || elb.test(a.text) ? undefined : 'an XML error that is neither EC2\'s nor ELB\'s shape';
  }
  // Refusals that happen before the service is known (signature, framing) are JSON for everyone.
  let json: unknown;
  try {
    json = JSON.parse(a.text);
  } catch {
    return `status ${a.status} with a body that is not JSON`;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'body is not a JSON object';
  if (a.status === 200) return protocol === 'json' ? undefined : 'a query-protocol success answered in JSON';
  const e = json as { __type?: unknown; message?: unknown };
  if (typeof e.__type !== 'string' || typeof e.message !== 'string') return 'error without __type and message';
  if (a.headers['x-amzn-errortype'] !== undefined && a.headers['x-amzn-errortype'] !== e.__type) return `x-amzn-errortype ${String(a.headers['x-amzn-errortype'])} is not __type ${e.__type}`;
  return undefined;
}

/** The AWS error code of an answer (JSON `__type` or XML `<Code>`), or undefined on success. */
export function errorCode(a: Answer): string | undefined {
  if (a.status === 200) return undefined;
  const xml = /<Code>([^<]+)<\/Code>/.exec(a.text);
  if (xml) return xml[1];
  try {
    return (JSON.parse(a.text) as { __type?: string }).__type;
  } catch {
    return undefined;
  }
}

/** Every key of the store with its value and revision, for before/after comparison. */
export async function dumpStore(store: MemoryStore): Promise<Map<string, string>> {
  const { entries } = await store.snapshot('');
  return new Map(entries.map((e) => [e.key, `${e.modRevision ?? ''} ${JSON.stringify(e.value)}`]));
}

/** The keys whose value differs between two dumps (added, removed or changed). */
export function storeDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) out.push(before.has(k) ? `changed ${k}` : `added ${k}`);
  for (const k of before.keys()) if (!after.has(k)) out.push(`removed ${k}`);
  return out;
}
