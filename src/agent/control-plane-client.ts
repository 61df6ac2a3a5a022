/**
 * How the agent talks to the control plane: the ECS API (JSON 1.1 over HTTP, SigV4-signed) for
 * registration and state reports, and the agent channel WebSocket for desired state
 * (src/api/agent/protocol.ts). `ControlPlaneClient` is the swap point; tests pass a fake.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname } from 'node:path';
import WebSocket from 'ws';
import type {
  ContainerInstance,
  GetTaskProtectionRequest,
  GetTaskProtectionResponse,
  RegisterContainerInstanceRequest,
  UpdateTaskProtectionRequest,
  UpdateTaskProtectionResponse,
} from '../core/shapes/ecs';
import {
  AGENT_CONNECT_PATH,
  CONTAINER_INSTANCE_HEADER,
  REPLICAS_HEADER,
  type ServerToAgentMessage,
  type WharfSubmitContainerStateChange,
  type WharfTaskStateChange,
} from '../api/agent/protocol';
import { signRequest, type SigningCredentials } from '../lib/sigv4';
import { backoffMs } from '../lib/backoff';
import type { Logger } from '../lib/logger';

export interface AgentChannel {
  readonly connected: boolean;
  close(): void;
}

export interface ChannelHandlers {
  onMessage(message: ServerToAgentMessage): void;
  onConnected?(): void;
  onDisconnected?(reason: string): void;
  /**
   * The control plane says this container instance is deregistered (the socket was closed with
   * CLOSE_INACTIVE, or the upgrade refused with InactiveInstanceException). The channel stops
   * reconnecting: no later attempt can succeed.
   */
  onDeregistered?(reason: string): void;
}

/** The gateway's close code for a deregistered instance (server/agent-gateway.ts). */
const CLOSE_INACTIVE = 4001;

export interface ControlPlaneClient {
  registerContainerInstance(req: RegisterContainerInstanceRequest): Promise<{ containerInstanceArn: string; clusterArn?: string }>;
  submitTaskStateChange(req: WharfTaskStateChange): Promise<void>;
  submitContainerStateChange(req: WharfSubmitContainerStateChange): Promise<void>;
  /** Opens the agent channel and keeps it open (reconnecting) until `close()`. */
  connect(params: { cluster: string; containerInstanceArn: string }, handlers: ChannelHandlers): AgentChannel;
}

/** An error answer of the API (`__type` + message) or a transport failure (code `NetworkError`). */
/**
 * How long the agent waits before its next attempt to reach the control plane: 250 ms growing to
 * RECONNECT_MAX_MS, jittered. The ECS agent grows to 2 minutes, but ECS never takes an instance
 * for lost while its agent is away; Wharf does after `wharf server --agent-timeout` (30 s by
 * default), counted from the server's own start after a restart. Capped well below that, an agent
 * whose control plane was down for a while is back before its instance's tasks are replaced.
 */
export const RECONNECT_MAX_MS = 10_000;

export function reconnectDelayMs(attempt: number, random = Math.random): number {
  return backoffMs(attempt, 250, RECONNECT_MAX_MS, random);
}

export class ControlPlaneError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus?: number,
    /** The control plane's x-amzn-requestid, when it answered. */
    readonly requestId?: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'ControlPlaneError';
  }

  /** Retrying cannot help: the request itself was refused. */
  get permanent(): boolean {
    return ['ClientException', 'InvalidParameterException', 'ClusterNotFoundException', 'AccessDeniedException', 'UnknownOperationException', 'UntrustedCertificate'].includes(this.code);
  }
}

export interface HttpControlPlaneClientOptions {
  /**
   * Base URL of the Wharf server, e.g. http://127.0.0.1:4566, or several replicas' (comma-
   * separated): the agent uses one at a time and moves to the next when it cannot reach it. It
   * also learns the live replicas from the server's answers (REPLICAS_HEADER).
   */
  endpoint: string;
  region: string;
  /** The join token: signs registrations of a new instance (and everything, until one is made). */
  credentials: SigningCredentials;
  /**
   * Where the instance credential registration hands back is kept (0600), so that a restarted
   * agent speaks as the same instance; in memory only when absent (simulated instances).
   */
  instanceCredentialFile?: string;
  logger?: Logger;
  /** Close and reconnect when nothing (message or ping) arrived for this long. */
  channelIdleTimeoutMs?: number;
  /**
   * Connection pool for API calls. Clients that share a process (the simulated fleet) share
   * one, so a thousand instances do not open a thousand pools. Default: a keep-alive pool of
   * `maxSockets` connections owned by this client.
   */
  httpAgent?: http.Agent;
  /** Connections of the default pool (default 8). */
  maxSockets?: number;
  /** An API call without an answer for this long fails with NetworkError (default 60 s). */
  requestTimeoutMs?: number;
  /**
   * The certificates (PEM) an https endpoint's certificate must chain to (`wharf agent --ca`),
   * for API calls and the agent channel alike; default the system's trusted CAs.
   */
  ca?: Buffer;
}

/** Node's codes for a server certificate that does not verify (no retry can help). */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A clear message when `err` is a TLS verification failure, else undefined. */
export function untrustedCertificateMessage(err: unknown, endpoint: string): string | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !UNTRUSTED_CERTIFICATE.has(code)) return undefined;
  return `the TLS certificate of ${endpoint} is not trusted (${code}: ${(err as Error).message}); give the agent the certificate or CA the server uses with --ca FILE`;
}

/** A keep-alive pool for API calls to one control plane. */
export function controlPlaneHttpAgent(endpoint: string, maxSockets = 8, ca?: Buffer): http.Agent {
  const opts = { keepAlive: true, maxSockets, scheduling: 'fifo' as const };
  return new URL(endpoint).protocol === 'https:' ? new https.Agent({ ...opts, ...(ca ? { ca } : {}) }) : new http.Agent(opts);
}

const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113';

/** The credential bound to one container instance (control/instance-credentials.ts on the server). */
export interface InstanceCredential extends SigningCredentials {
  containerInstanceArn: string;
}

/** The RegisterContainerInstance answer's Wharf extension member carrying it. */
const INSTANCE_CREDENTIAL_MEMBER = 'wharfInstanceCredential';

/**
 * Reads the kept instance credential; anything unreadable counts as none (the agent then
 * registers as a new instance, which is what a lost identity means).
 */
function readInstanceCredential(path: string | undefined): InstanceCredential | undefined {
  if (!path) return undefined;
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as Partial<InstanceCredential>;
    if (typeof c.accessKeyId === 'string' && typeof c.secretAccessKey === 'string' && typeof c.containerInstanceArn === 'string') {
      return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, containerInstanceArn: c.containerInstanceArn };
    }
  } catch {
    // none kept yet
  }
  return undefined;
}

function writeInstanceCredential(path: string, c: InstanceCredential): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(c), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export class HttpControlPlaneClient implements ControlPlaneClient {
  private agent?: http.Agent;
  /**
   * The credential bound to this agent's container instance, once registered: it signs every
   * call and the channel. The join token signs only the registration of a new instance; the
   * re-registration of a known instance (an agent restart) is signed with the instance's own
   * credential, which is how it proves it is the same agent.
   */
  private instance?: InstanceCredential;

  /** The control-plane replicas known, and the one in use. */
  private endpoints: string[];
  private at = 0;

  constructor(private readonly o: HttpControlPlaneClientOptions) {
    this.instance = readInstanceCredential(o.instanceCredentialFile);
    this.endpoints = [...new Set(o.endpoint.split(',').map((e) => e.trim()).filter(Boolean))];
  }

  /** The replica in use. */
  get endpoint(): string {
    return this.endpoints[this.at % this.endpoints.length]!;
  }

  /** Moves to the next known replica (after failing to reach the one in use). */
  private rotate(): void {
    if (this.endpoints.length < 2) return;
    const from = this.endpoint;
    this.at = (this.at + 1) % this.endpoints.length;
    this.o.logger?.warn({ from, to: this.endpoint }, 'control plane unreachable: moving to another replica');
  }

  /** Takes in the replicas a server listed, keeping the one in use and the configured ones. */
  private learn(header: string | string[] | undefined): void {
    if (typeof header !== 'string' || header === '') return;
    const current = this.endpoint;
    const listed = header.split(',').map((e) => e.trim()).filter((e) => /^https?:\/\//.test(e));
    const next = [...new Set([current, ...listed, ...this.endpoints])];
    if (next.length === this.endpoints.length && next.every((e, i) => e === this.endpoints[i])) return;
    this.endpoints = next;
    this.at = 0;
  }

  /** The key signing calls now: the instance credential once there is one, else the join token. */
  private get signing(): SigningCredentials {
    return this.instance ?? this.o.credentials;
  }

  private async call<T>(
    operation: string,
    body: unknown,
    extraHeaders: Record<string, string> = {},
    signWith: SigningCredentials = this.signing,
    api: { targetPrefix: string; service: string; region: string } = { targetPrefix: TARGET_PREFIX, service: 'ecs', region: this.o.region },
  ): Promise<T> {
    const url = new URL('/', this.endpoint);
    const payload = JSON.stringify(body);
    const headers: Record<string, string> = {
      ...extraHeaders,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `${api.targetPrefix}.${operation}`,
    };
    Object.assign(headers, signRequest({ method: 'POST', url: url.toString(), headers, body: payload }, { accessKeyId: signWith.accessKeyId, secretAccessKey: signWith.secretAccessKey, region: api.region, service: api.service }));
    headers['content-length'] = String(Buffer.byteLength(payload));
    let res: { status: number; text: string; requestId?: string };
    try {
      res = await this.post(url, headers, payload);
    } catch (err) {
      const untrusted = untrustedCertificateMessage(err, this.endpoint);
      if (untrusted) throw new ControlPlaneError('UntrustedCertificate', untrusted);
      // The caller retries; the next attempt goes to another replica, if there is one.
      this.rotate();
      throw new ControlPlaneError('NetworkError', (err as Error).message);
    }
    const json = res.text ? (JSON.parse(res.text) as Record<string, unknown>) : {};
    if (res.status < 200 || res.status >= 300) {
      const type = String(json.__type ?? `Http${res.status}`);
      throw new ControlPlaneError(type.slice(type.lastIndexOf('#') + 1), String(json.message ?? json.Message ?? http.STATUS_CODES[res.status] ?? ''), res.status, res.requestId);
    }
    return json as T;
  }

  /**
   * One POST over the keep-alive pool (node:http: fetch costs several times the CPU per call,
   * which a thousand simulated instances in one process feel). A pooled connection the server
   * closed just as it was reused fails before anything was processed, so that case is retried
   * once at once on a fresh connection, as Node's documentation advises.
   */
  private post(url: URL, headers: Record<string, string>, payload: string, retried = false): Promise<{ status: number; text: string; requestId?: string }> {
    this.agent ??= this.o.httpAgent ?? controlPlaneHttpAgent(this.endpoint, this.o.maxSockets, this.o.ca);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: 'POST', headers, agent: this.agent, timeout: this.o.requestTimeoutMs ?? 60_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const requestId = res.headers['x-amzn-requestid'];
        this.learn(res.headers[REPLICAS_HEADER]);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), requestId: typeof requestId === 'string' ? requestId : undefined }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${this.o.requestTimeoutMs ?? 60_000} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') resolve(this.post(url, headers, payload, true));
        else reject(err);
      });
      req.end(payload);
    });
  }

  async registerContainerInstance(req: RegisterContainerInstanceRequest): Promise<{ containerInstanceArn: string; clusterArn?: string }> {
    // Re-registering the instance this client holds the credential of: prove it with that
    // credential. A new instance (or one whose credential was lost): the join token.
    const own = req.containerInstanceArn !== undefined && this.instance?.containerInstanceArn === req.containerInstanceArn ? this.instance : undefined;
    const out = await this.call<{ containerInstance?: ContainerInstance & { clusterArn?: string }; [INSTANCE_CREDENTIAL_MEMBER]?: SigningCredentials }>(
      'RegisterContainerInstance',
      req,
      {},
      own ?? this.o.credentials,
    );
    const arn = out.containerInstance?.containerInstanceArn;
    if (!arn) throw new ControlPlaneError('ServerException', 'RegisterContainerInstance returned no containerInstanceArn');
    const issued = out[INSTANCE_CREDENTIAL_MEMBER];
    if (issued && typeof issued.accessKeyId === 'string' && typeof issued.secretAccessKey === 'string') {
      this.instance = { accessKeyId: issued.accessKeyId, secretAccessKey: issued.secretAccessKey, containerInstanceArn: arn };
      if (this.o.instanceCredentialFile) writeInstanceCredential(this.o.instanceCredentialFile, this.instance);
    } else if (!own) {
      // An older server binds no credential to instances: keep signing with the join token.
      this.instance = undefined;
    }
    return { containerInstanceArn: arn, clusterArn: out.containerInstance?.clusterArn };
  }

  async submitTaskStateChange(req: WharfTaskStateChange): Promise<void> {
    await this.call('SubmitTaskStateChange', req);
  }

  async submitContainerStateChange(req: WharfSubmitContainerStateChange): Promise<void> {
    await this.call('SubmitContainerStateChange', req);
  }

  /**
   * A CloudWatch Logs call (the awslogs driver's shipping, agent/awslogs-shipper.ts) in `region`,
   * which is the container's awslogs-region and may not be this instance's.
   */
  logsCall<T = Record<string, unknown>>(operation: string, body: unknown, region: string): Promise<T> {
    return this.call(operation, body, {}, this.signing, { targetPrefix: 'Logs_20140328', service: 'logs', region });
  }

  /** On behalf of a task of `containerInstanceArn` (the control plane allows an agent no other). */
  updateTaskProtection(req: UpdateTaskProtectionRequest, containerInstanceArn: string): Promise<UpdateTaskProtectionResponse> {
    return this.call('UpdateTaskProtection', req, { [CONTAINER_INSTANCE_HEADER]: containerInstanceArn });
  }

  getTaskProtection(req: GetTaskProtectionRequest, containerInstanceArn: string): Promise<GetTaskProtectionResponse> {
    return this.call('GetTaskProtection', req, { [CONTAINER_INSTANCE_HEADER]: containerInstanceArn });
  }

  connect(params: { cluster: string; containerInstanceArn: string }, handlers: ChannelHandlers): AgentChannel {
    const o = this.o;
    // The channel URL of the replica in use (it changes when the agent moves to another).
    const channelUrl = () => {
      const u = new URL(AGENT_CONNECT_PATH, this.endpoint);
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      u.searchParams.set('cluster', params.cluster);
      u.searchParams.set('containerInstance', params.containerInstanceArn);
      return u;
    };
    let ws: WebSocket | undefined;
    let closed = false;
    let connected = false;
    let attempt = 0;
    let deregistered: string | undefined;
    let idle: NodeJS.Timeout | undefined;
    let retry: NodeJS.Timeout | undefined;
    const idleMs = o.channelIdleTimeoutMs ?? 90_000;

    const touch = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => ws?.terminate(), idleMs);
    };
    const open = () => {
      if (closed) return;
      const base = channelUrl();
      // The upgrade GET is signed like an API call; the signature covers the https form of the URL.
      const signUrl = new URL(base);
      signUrl.protocol = base.protocol === 'wss:' ? 'https:' : 'http:';
      const key = this.signing;
      const headers = signRequest({ method: 'GET', url: signUrl.toString(), headers: {}, body: '' }, { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: o.region, service: 'ecs' });
      delete headers.host;
      const sock = new WebSocket(base.toString(), { headers, ...(o.ca ? { ca: o.ca } : {}) });
      ws = sock;
      sock.on('open', () => {
        attempt = 0;
        connected = true;
        touch();
        handlers.onConnected?.();
      });
      sock.on('unexpected-response', (_req, res) => {
        const type = String(res.headers['x-amzn-errortype'] ?? '');
        res.resume();
        if (type === 'InactiveInstanceException') deregistered = `the control plane refused the channel: ${type} (HTTP ${res.statusCode})`;
        else o.logger?.debug({ status: res.statusCode, type }, 'agent channel refused');
        sock.terminate();
      });
      sock.on('ping', touch);
      sock.on('message', (data) => {
        touch();
        let message: ServerToAgentMessage;
        try {
          message = JSON.parse(data.toString()) as ServerToAgentMessage;
        } catch {
          // Not the parser's error: its text quotes the input, and a message may carry secrets.
          o.logger?.warn({ bytes: (data as Buffer).length }, 'unparsable message on agent channel');
          return;
        }
        try {
          handlers.onMessage(message);
        } catch (err) {
          o.logger?.warn({ err: (err as Error).message }, 'handling a message of the agent channel failed');
        }
      });
      sock.on('error', (err) => {
        // A certificate that does not verify will not verify on the next attempt either: say so.
        const untrusted = untrustedCertificateMessage(err, base.origin);
        if (untrusted) o.logger?.error({ err: err.message }, untrusted);
        else o.logger?.debug({ err: err.message }, 'agent channel error');
      });
      sock.on('close', (code, reason) => {
        if (idle) clearTimeout(idle);
        const was = connected;
        connected = false;
        if (was) handlers.onDisconnected?.(`closed ${code} ${reason.toString()}`);
        if (code === CLOSE_INACTIVE) deregistered ??= `the control plane closed the channel: ${reason.toString() || 'container instance deregistered'}`;
        if (deregistered !== undefined && !closed) {
          closed = true;
          handlers.onDeregistered?.(deregistered);
        }
        if (closed) return;
        // A replica that could not be reached (or took the socket down with it): try the next.
        if (!was || code === 1006) this.rotate();
        retry = setTimeout(open, reconnectDelayMs(attempt++));
      });
    };
    open();
    return {
      get connected() {
        return connected;
      },
      close() {
        closed = true;
        if (idle) clearTimeout(idle);
        if (retry) clearTimeout(retry);
        ws?.close();
        ws?.terminate();
      },
    };
  }
}
