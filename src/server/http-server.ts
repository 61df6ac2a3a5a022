/**
 * The HTTP transport: AWS JSON 1.1 over `POST /` with SigV4, `/healthz`, `/metrics`, and the
 * agent channel's WebSocket upgrade. This is the only place that turns a thrown error into a wire
 * error.
 */
import { createServer, maxHeaderSize, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { iamArn } from '../core/arn';
import { CONTAINER_INSTANCE_HEADER } from '../api/agent/protocol';
import { WharfError, type ErrorCode } from '../core/errors';
import type { RegionPolicy } from '../core/regions';
import { isPresigned, uuid, type Logger, type SessionTokens } from '../lib';
import { accessDeniedMessage, evaluateAll } from '../core/iam-policy';
import { MalformedQuery, decodeQueryRequest, encodeQueryError, encodeQueryResponse, parseForm } from '../api/query-protocol';
import { errorStatus } from './error-status';
import type { JsonServiceApi, QueryServiceApi, RequestContext } from './api-registry';
import { JSON_AUTH_FAILURES, QUERY_AUTH_FAILURES, verifyCaller, type AuthFailureCodes } from './session-auth';
import { callerConditionContext, isForm, isSecure, peerAddress, queryParameters, signingServiceOf, type Credentials } from './request-identity';

export const MAX_BODY_BYTES = 1024 * 1024;
/** The `code` label of requests whose client left before the answer (nginx calls this 499). */
export const CLIENT_DISCONNECTED = 'ClientClosedRequest';

/**
 * How deep a request body may nest. The deepest input of the ECS model is under a dozen levels;
 * JSON.parse takes far deeper bodies, but everything after it that recurses (a handler's
 * JSON.stringify, the store's serialisation) would overflow the stack on one.
 */
export const MAX_NESTING = 64;

/** Whether `v` nests objects or arrays more than `limit` levels (recursion bounded by `limit`). */
function nestedDeeperThan(v: unknown, limit: number): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (limit === 0) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (nestedDeeperThan(x, limit - 1)) return true;
  return false;
}

class ClientDisconnected extends Error {
  constructor() {
    super('the client closed the connection before the request was read');
  }
}
/** How much of an oversized body is read and thrown away before the connection is cut. */
const DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES;

/**
 * How long a client may take to send a request. Node's own defaults (60 s for the headers, 300 s
 * for the whole request, checked every 30 s) let a slow-loris client or a body announced and never
 * sent hold a socket for minutes; an API request is a few kilobytes. The agent channel is not
 * affected: once a socket is upgraded to a WebSocket, Node stops timing it as a request (proved by
 * server/agent-gateway.test.ts).
 */
export interface RequestTimeouts {
  /** From the first byte of a request to the end of its headers. */
  headersMs: number;
  /** From the first byte of a request to the end of its body. */
  requestMs: number;
  /** The longest silence while a body is being read. */
  bodyIdleMs: number;
}
export const DEFAULT_REQUEST_TIMEOUTS: RequestTimeouts = { headersMs: 10_000, requestMs: 60_000, bodyIdleMs: 5_000 };

export interface HttpServerOptions {
  apis: JsonServiceApi[];
  /** Services spoken in a query protocol (EC2), chosen by the signing name of the request. */
  queryApis?: QueryServiceApi[];
  credentials: Credentials;
  /**
   * Verifies session credentials (STS GetSessionToken; server/session-auth.ts). Without it a
   * request carrying a session token is refused as invalid.
   */
  sessions?: SessionTokens;
  accountId: string;
  log: Logger;
  metrics?: Registry;
  /**
   * The regions served and the default one (shown on /healthz, for agents that were given no
   * region). A request signed for another region is refused before anything else happens.
   */
  regions: RegionPolicy;
  /** Serve HTTPS (and the agent channel as WSS) with this certificate chain and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /** How long a client may take to send a request (DEFAULT_REQUEST_TIMEOUTS unless given). */
  timeouts?: RequestTimeouts;
  /** Headers added to every API answer (distributed mode: the replicas agents may move to). */
  responseHeaders?: () => Record<string, string>;
  /**
   * What /healthz adds about this replica: its id, whether it leads, and the DNS addresses it
   * answers on or stands by for (`wharf status` shows them). A single server is its own only
   * replica and always leads. A `status` other than ok (with its `error`) makes /healthz a 503.
   */
  health?: () => { replica: string; leader: boolean; dns?: { serving: string[]; standingBy: string[] }; status?: string; error?: string };
  /** Handles `Upgrade: websocket` requests (the agent channel). */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer, body: Buffer) => void;
  /** The web console's files (GET/HEAD only; server/static-files.ts): true when it answered. */
  staticFiles?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface WharfHttpServer {
  server: Server;
  metrics: Registry;
  listen(port: number, host: string): Promise<{ port: number; host: string }>;
  close(): Promise<void>;
}

/** Removes null members recursively: AWS SDKs choke on null where a value is optional. */
function replacer(_key: string, value: unknown): unknown {
  return value === null ? undefined : value;
}

/** Period of the event-loop delay sampling behind the `wharf_nodejs_eventloop_lag_*` metrics. */
const EVENT_LOOP_SAMPLE_MS = 100;

export function createHttpServer(opts: HttpServerOptions): WharfHttpServer {
  const timeouts = opts.timeouts ?? DEFAULT_REQUEST_TIMEOUTS;
  const metrics = opts.metrics ?? new Registry();
  // prom-client samples event-loop delay with a timer of this period (ms). Its default, 10, woke
  // an idle server 100 times a second (strace: 2,014 epoll_pwait in 10 s), which took an idle
  // server with one agent from 2-2.5 to 4-6 CPU-ms/s, on every replica. Ten samples a second
  // still feed the lag percentiles.
  if (!opts.metrics) collectDefaultMetrics({ register: metrics, prefix: 'wharf_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const requests = new Counter({
    name: 'wharf_api_requests_total',
    help: 'API requests by service, operation and result code',
    labelNames: ['service', 'operation', 'code'],
    registers: [metrics],
  });
  const latency = new Histogram({
    name: 'wharf_api_request_duration_seconds',
    help: 'API request latency by service and operation',
    labelNames: ['service', 'operation'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics],
  });
  const byPrefix = new Map(opts.apis.map((a) => [a.targetPrefix, a]));
  const bySigningName = new Map((opts.queryApis ?? []).map((a) => [a.signingName, a]));
  // An unsigned form names no service in a credential scope; its Version still says which API it
  // was meant for, so the refusal comes in that API's words (MissingAuthenticationToken, XML).
  const byApiVersion = new Map((opts.queryApis ?? []).map((a) => [a.model.metadata.apiVersion, a]));

  const send = (res: ServerResponse, status: number, body: unknown, requestId: string, contentType = 'application/x-amz-json-1.1') => {
    const text = typeof body === 'string' ? body : JSON.stringify(body, replacer);
    res.writeHead(status, {
      ...opts.responseHeaders?.(),
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': requestId,
    });
    res.end(text);
  };

  const sendError = (res: ServerResponse, err: WharfError, requestId: string) => {
    res.setHeader('x-amzn-errortype', err.code);
    send(res, errorStatus[err.code], { __type: err.code, message: err.message, ...(err.extra ?? {}) }, requestId);
  };

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_BODY_BYTES) {
        // Nothing of it is read: the answer closes the connection (see fail) instead of draining
        // what may be gigabytes.
        reject(new WharfError('RequestEntityTooLargeException', `Request body is larger than ${MAX_BODY_BYTES} bytes.`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      // A body announced and not sent (or sent a byte at a time) is cut after a few seconds of
      // silence, rather than when Node's whole-request timeout strikes.
      let idle: NodeJS.Timeout | undefined;
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          req.pause();
          reject(new WharfError('RequestTimeoutException', `The request body was not received: nothing arrived for ${timeouts.bodyIdleMs / 1000} s.`));
        }, timeouts.bodyIdleMs);
      };
      armIdle();
      req.on('data', (c: Buffer) => {
        armIdle();
        size += c.length;
        if (tooLarge) {
          // Keep draining (bounded) so the client, still sending, reads the 413 instead of a
          // reset connection; past the bound the peer is not a well-behaved client.
          if (size > DRAIN_LIMIT_BYTES) req.destroy();
          return;
        }
        if (size > MAX_BODY_BYTES) {
          tooLarge = true;
          chunks.length = 0;
          reject(new WharfError('RequestEntityTooLargeException', `Request body is larger than ${MAX_BODY_BYTES} bytes.`));
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        clearTimeout(idle);
        resolve(Buffer.concat(chunks));
      });
      req.on('error', () => {
        clearTimeout(idle);
        reject(new ClientDisconnected());
      });
      // A client that closes its socket mid-body sends no 'end'; 'close' always comes.
      req.on('close', () => {
        clearTimeout(idle);
        if (!req.complete) reject(new ClientDisconnected());
      });
    });

  const authenticate = (req: IncomingMessage, body: Buffer, signingName?: string, failures: AuthFailureCodes = JSON_AUTH_FAILURES): RequestContext => {
    const { identity, holder: cred, session } = verifyCaller(req, body, signingName, opts.credentials, opts.sessions, failures);
    const refusal = opts.regions.refusal(identity.region);
    if (refusal) throw new WharfError(failures.signature, refusal);
    const partition = { region: identity.region, accountId: opts.accountId };
    const out: RequestContext = {
      requestId: '',
      accessKeyId: identity.accessKeyId,
      ...(cred.userId ? { userId: cred.userId } : {}),
      principalArn: iamArn(partition, cred.principal.iamResource),
      isAgent: cred.principal.kind !== 'user',
      principal: cred.principal,
      region: identity.region,
    };
    if (session) out.session = { parentAccessKeyId: session.parentAccessKeyId, issuedAt: new Date(session.issuedAt), expiration: new Date(session.expiresAt) };
    if (typeof req.headers.host === 'string' && req.headers.host !== '') out.host = req.headers.host;
    const peer = peerAddress(req);
    if (peer) out.sourceIp = peer;
    out.secureTransport = isSecure(req);
    // The instance an agent speaks for counts only when the signature covers it.
    const instance = req.headers[CONTAINER_INSTANCE_HEADER];
    if (typeof instance === 'string' && instance !== '' && identity.signedHeaders.includes(CONTAINER_INSTANCE_HEADER)) out.containerInstanceArn = instance;
    return out;
  };

  /**
   * IAM's check of a user's call against its identity policy, after the input is validated and
   * before the handler runs, so a refused call changes nothing. Only users with a policy are
   * checked: the built-in key is the account's root; agents' keys are authorised by what they are
   * bound to (the agent operations check). Without an `authorize` hook the call is the action on
   * `*`; a hook answering undefined means the call needs no permission (GetCallerIdentity).
   */
  const authorizeCall = (api: { signingName: string; authorize?: JsonServiceApi['authorize']; deniedErrorCode?: ErrorCode }, op: string, input: Record<string, unknown>, ctx: RequestContext, log: Logger) => {
    const principal = ctx.principal;
    if (principal?.kind !== 'user' || !principal.policy) return;
    const partition = { region: ctx.region, accountId: opts.accountId };
    const request = api.authorize ? api.authorize(op, input, partition) : { action: `${api.signingName}:${op}`, resources: ['*'], context: {} };
    if (!request) return;
    const globals = callerConditionContext(ctx, principal.iamResource, opts.accountId);
    // The call itself first, then what it also needs (ecs:TagResource for a create with tags).
    for (const check of [request, ...(request.alsoRequires ?? [])]) {
      const d = evaluateAll(principal.policy, check.action, check.resources, { ...globals, ...check.context });
      if (d.decision === 'allow') continue;
      log.info({ principal: ctx.principalArn, action: check.action, resource: d.resource, decision: d.decision }, 'access denied');
      const message = accessDeniedMessage(ctx.principalArn, check.action, d.resource, d.decision);
      const code = api.deniedErrorCode ?? 'AccessDeniedException';
      // EC2 opens its refusals with its own sentence before IAM's.
      throw new WharfError(code, code === 'UnauthorizedOperation' ? `You are not authorized to perform this operation. ${message}` : message);
    }
  };

  async function handleApi(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const started = process.hrtime.bigint();
    let serviceLabel = 'unknown';
    let opLabel = 'unknown';
    let code = 'OK';
    // Set once the request is known to be for a query-protocol service: its errors are XML.
    let queryApi: QueryServiceApi | undefined;
    const log = opts.log.child({ requestId });
    const fail = (err: WharfError) => {
      // The rest of a body that was not read cannot be told from the next request: the
      // connection ends with this answer.
      if (!req.complete) res.setHeader('connection', 'close');
      if (!queryApi) return sendError(res, err, requestId);
      send(res, errorStatus[err.code], encodeQueryError(queryApi.model, { code: err.code, message: err.message, serverFault: errorStatus[err.code] >= 500 }, requestId), requestId, 'text/xml');
    };
    try {
      const body = await readBody(req);
      const target = String(req.headers['x-amz-target'] ?? '');
      // A query API's parameters come in the query string (a presigned GET or POST), the form
      // body, or both, as AWS's query protocol reads them.
      const presignedGet = req.method === 'GET' && isPresigned(req.url ?? '/');
      if (target === '' && (isForm(req) || presignedGet) && bySigningName.size > 0) {
        const form = [queryParameters(req.url ?? '/'), body.toString('utf8')].filter((p) => p !== '').join('&');
        const service = signingServiceOf(req);
        queryApi = service ? bySigningName.get(service) : byApiVersion.get(parseForm(form).get('Version') ?? '');
        if (queryApi) {
          serviceLabel = queryApi.signingName;
          const ctx = authenticate(req, body, queryApi.signingName, queryApi.authFailureCodes ?? QUERY_AUTH_FAILURES);
          ctx.requestId = requestId;
          const out = await handleQuery(queryApi, form, ctx, (op) => (opLabel = op), log);
          send(res, 200, out, requestId, 'text/xml');
          return;
        }
      }
      const dot = target.lastIndexOf('.');
      const api = dot > 0 ? byPrefix.get(target.slice(0, dot)) : undefined;
      // Authenticate before saying anything about the operation, so unsigned callers learn
      // nothing and change nothing.
      const ctx = authenticate(req, body, api?.signingName);
      ctx.requestId = requestId;
      if (!api) throw new WharfError('UnknownOperationException', `Unknown operation ${target || '(no X-Amz-Target header)'}`);
      const op = target.slice(dot + 1);
      serviceLabel = api.signingName;
      const handler = Object.prototype.hasOwnProperty.call(api.handlers, op) ? api.handlers[op] : undefined;
      if (!handler) {
        if (api.modelOperations.includes(op)) {
          opLabel = op;
          throw new WharfError('UnsupportedFeatureException', `Wharf does not implement ${op} yet.`);
        }
        throw new WharfError('UnknownOperationException', `Unknown operation ${op}`);
      }
      opLabel = op;
      if (ctx.isAgent && !(api.agentOperations ?? []).includes(op)) {
        log.warn({ principal: ctx.principalArn, accessKeyId: ctx.accessKeyId, containerInstanceArn: ctx.principal?.kind === 'instance' ? ctx.principal.containerInstanceArn : undefined, operation: op }, 'agent refused: not an agent operation');
        throw new WharfError('AccessDeniedException', `User: ${ctx.principalArn} is not authorized to perform: ${api.signingName}:${op} (a cluster join token may only call what an agent needs).`);
      }
      let input: unknown = {};
      if (body.length > 0) {
        try {
          input = JSON.parse(body.toString('utf8'));
        } catch {
          throw new WharfError('SerializationException', 'The request body is not valid JSON.');
        }
      }
      if (input === null || typeof input !== 'object' || Array.isArray(input)) {
        throw new WharfError('SerializationException', 'The request body must be a JSON object.');
      }
      if (nestedDeeperThan(input, MAX_NESTING)) {
        throw new WharfError('SerializationException', `The request body is nested more than ${MAX_NESTING} levels deep.`);
      }
      api.validate?.(op, input);
      authorizeCall(api, op, input as Record<string, unknown>, ctx, log);
      const out = await handler(input, ctx);
      send(res, 200, out ?? {}, requestId);
    } catch (e) {
      if (e instanceof ClientDisconnected) {
        code = CLIENT_DISCONNECTED;
        log.debug({ operation: opLabel }, 'client closed the connection before the answer');
      } else if (e instanceof WharfError) {
        code = e.code;
        if (errorStatus[e.code] >= 500) log.error({ err: e, operation: opLabel }, 'server error');
        fail(e);
      } else {
        code = 'ServerException';
        log.error({ err: e, operation: opLabel }, 'unhandled error');
        fail(new WharfError('ServerException', 'An internal error occurred.'));
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      requests.inc({ service: serviceLabel, operation: opLabel, code });
      latency.observe({ service: serviceLabel, operation: opLabel }, seconds);
      log.info({ service: serviceLabel, operation: opLabel, code, ms: Math.round(seconds * 1e6) / 1000 }, 'request');
    }
  }

  /** One query-protocol call: decode the form by the model, run the handler, encode its answer. */
  async function handleQuery(api: QueryServiceApi, formText: string, ctx: RequestContext, named: (op: string) => void, log: Logger): Promise<string> {
    const form = parseForm(formText);
    const action = form.get('Action') ?? '';
    const handler = Object.prototype.hasOwnProperty.call(api.handlers, action) ? api.handlers[action] : undefined;
    if (!handler) {
      if (action === '') throw new WharfError('MissingParameter', 'The request must contain the parameter Action');
      if (api.model.operations[action]) {
        named(action);
        throw new WharfError('UnsupportedFeatureException', `Wharf does not implement ${action} yet.`);
      }
      throw new WharfError('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
    named(action);
    if (ctx.isAgent) {
      log.warn({ principal: ctx.principalArn, accessKeyId: ctx.accessKeyId, containerInstanceArn: ctx.principal?.kind === 'instance' ? ctx.principal.containerInstanceArn : undefined, operation: `${api.signingName}:${action}` }, 'agent refused: not an agent operation');
      // In the service's own code (STS and ELBv2 AccessDenied, EC2 UnauthorizedOperation).
      const code = api.deniedErrorCode ?? 'AccessDeniedException';
      const message = `User: ${ctx.principalArn} is not authorized to perform: ${api.signingName}:${action} (a cluster join token may only call what an agent needs).`;
      throw new WharfError(code, code === 'UnauthorizedOperation' ? `You are not authorized to perform this operation. ${message}` : message);
    }
    let input: Record<string, unknown>;
    try {
      input = decodeQueryRequest(api.model, form).input;
    } catch (e) {
      if (!(e instanceof MalformedQuery)) throw e;
      throw new WharfError(api.validationErrorCode ?? (e.missing ? 'MissingParameter' : 'InvalidParameterValue'), e.message);
    }
    try {
      api.validate?.(action, input);
    } catch (e) {
      if (api.validationErrorCode && e instanceof WharfError && (e.code === 'InvalidParameterException' || e.code === 'SerializationException')) throw new WharfError(api.validationErrorCode, e.message);
      throw e;
    }
    authorizeCall(api, action, input, ctx, log);
    const out = await handler(input, ctx);
    return encodeQueryResponse(api.model, action, out ?? {}, ctx.requestId);
  }

  const listener: RequestListener = (req, res) => {
    const requestId = uuid();
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/healthz') {
      const health = { status: 'ok', region: opts.regions.defaultRegion, ...opts.health?.() };
      // Any status but ok is a 503: load balancers and probes read the code, not the body.
      send(res, health.status === 'ok' ? 200 : 503, health, requestId, 'application/json');
      return;
    }
    if (req.method === 'GET' && url === '/metrics') {
      metrics.metrics().then(
        (text) => send(res, 200, text, requestId, metrics.contentType),
        () => send(res, 500, 'metrics failed', requestId, 'text/plain'),
      );
      return;
    }
    // A presigned request (SigV4 in the query string) is an API call whatever its method, never
    // a console page.
    const presigned = isPresigned(url);
    if (!presigned && opts.staticFiles?.(req, res)) return;
    if (req.method !== 'POST' && !(presigned && req.method === 'GET')) {
      sendError(res, new WharfError('UnknownOperationException', `Unsupported method ${req.method} ${url}`), requestId);
      return;
    }
    handleApi(req, res, requestId).catch((e) => opts.log.error({ err: e }, 'request failed'));
  };
  // HTTPS is the same server behind TLS: node:https's Server is node:http's with a TLS socket.
  const serverOptions: ServerOptions = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    // How often Node looks for requests past those timeouts (its default is every 30 s).
    connectionsCheckingInterval: Math.min(1000, Math.ceil(timeouts.headersMs / 4)),
  };
  const server: Server = opts.tls ? createTlsServer({ ...serverOptions, cert: opts.tls.cert, key: opts.tls.key }, listener) : createServer(serverOptions, listener);
  server.keepAliveTimeout = 65_000;
  // What the HTTP parser refuses (a bad header line, a bad Content-Length, headers over Node's
  // size limit) and requests past the timeouts never reach handleApi; the peer still gets an
  // answer rather than a reset connection, unless an answer has already begun on this socket.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, reason, code, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'RequestTimeoutException', `The request was not received in time (headers within ${timeouts.headersMs / 1000} s, the whole request within ${timeouts.requestMs / 1000} s).`]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', 'RequestEntityTooLargeException', `The request headers are larger than ${maxHeaderSize} bytes.`]
          : [400, 'Bad Request', 'SerializationException', 'The request is not valid HTTP/1.1.'];
    requests.inc({ service: 'unknown', operation: 'unknown', code });
    const body = JSON.stringify({ __type: code, message });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-amzn-errortype: ${code}\r\nconnection: close\r\n\r\n${body}`);
  });
  if (opts.onUpgrade) {
    const onUpgrade = opts.onUpgrade;
    server.on('upgrade', (req, socket, head) => onUpgrade(req, socket, head, Buffer.alloc(0)));
  }

  return {
    server,
    metrics,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address();
          resolve({ port: typeof a === 'object' && a ? a.port : port, host });
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
