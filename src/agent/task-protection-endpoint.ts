/**
 * The agent's endpoint for the containers of its tasks, `ECS_AGENT_URI`: today the task scale-in
 * protection path, as the ECS agent serves it.
 *
 *   PUT $ECS_AGENT_URI/task-protection/v1/state  {"ProtectionEnabled": true, "ExpiresInMinutes": 60}
 *   GET $ECS_AGENT_URI/task-protection/v1/state
 *
 * answer `{"protection": {ExpirationDate, ProtectionEnabled, TaskArn}}`, `{"failure": {Arn,
 * Detail, Reason}}` (the control plane refused the task, e.g. TASK_NOT_VALID) or `{"requestID"?,
 * "error": {Arn?, Code, Message}}`, with the ECS agent's status codes and texts.
 *
 * Where: on ECS, ECS_AGENT_URI is `http://169.254.170.2/api/<v4 endpoint id>`, an address the
 * ECS agent's host routes to itself. Wharf needs no routing rule: the agent listens on the
 * Docker bridge's gateway address (docker0, 172.17.0.1 by default), which is a local address of
 * the host. A bridge container reaches it through its default route, an awsvpc task (a
 * user-defined bridge network) through its network's gateway into the host, and a host-mode
 * container directly; no other machine can route to it.
 *
 * Who: the path carries a per-task endpoint id, an HMAC of the task ARN under a key the agent
 * keeps with its identity, so the id survives agent restarts (running containers keep their
 * environment) and cannot be guessed by another container. The agent forwards the request to
 * UpdateTaskProtection / GetTaskProtection with its own key, naming its container instance, and
 * the control plane lets it act only on that instance's tasks. (The ECS agent signs with the
 * task's IAM role; Wharf has no IAM, so no task role is needed.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { GetTaskProtectionRequest, GetTaskProtectionResponse, ProtectedTask, UpdateTaskProtectionRequest, UpdateTaskProtectionResponse } from '../core/shapes/ecs';
import type { Logger } from '../lib/logger';
import { hostPort } from '../lib/process';
import { containerMetadata, taskMetadata, type MetadataContext } from './task-metadata';

type StatsBody = Record<string, unknown>;

export interface TaskProtectionApi {
  updateTaskProtection(req: UpdateTaskProtectionRequest, containerInstanceArn: string): Promise<UpdateTaskProtectionResponse>;
  getTaskProtection(req: GetTaskProtectionRequest, containerInstanceArn: string): Promise<GetTaskProtectionResponse>;
}

export interface EndpointTask {
  taskArn: string;
  clusterArn: string;
}

export interface TaskProtectionEndpointOptions {
  /** Address to listen on (the Docker bridge gateway for a Docker host). */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  api: TaskProtectionApi;
  /** The task an endpoint id stands for, if this agent runs it. */
  taskFor(endpointId: string): EndpointTask | undefined;
  /** This agent's container instance (undefined before it registered). */
  containerInstanceArn(): string | undefined;
  /** The task metadata (v4) of the task an endpoint id stands for, when this agent runs it. */
  metadataFor?(endpointId: string): MetadataContext | undefined | Promise<MetadataContext | undefined>;
  /**
   * The `/stats` document of one container (`container` set) or `/task/stats` of the whole task,
   * when this agent runs the task (agent/task-metadata.ts statsMetadata).
   */
  statsFor?(endpointId: string, container: string | undefined): Promise<StatsBody | undefined>;
  logger?: Logger;
}

const PATH = /^\/api\/([^/]+)\/task-protection\/v1\/state\/?$/;
/** ECS_CONTAINER_METADATA_URI_V4 is `/v4/<task endpoint id>/<container name>`. */
const METADATA_PATH = /^\/v4\/([^/]+)\/([^/]+?)(\/task)?(\/stats)?\/?$/;
const TASK_NOT_FOUND = 'Failed to find a task for the request';
const MAX_BODY = 64 * 1024;

type Body = Record<string, unknown>;

/** Go's time.Time JSON form (RFC 3339, fraction without trailing zeros), as the ECS agent writes it. */
export function goTime(epochSeconds: number): string {
  return new Date(Math.round(epochSeconds * 1000)).toISOString().replace(/\.(\d*?)0*Z$/, (_m, f: string) => (f ? `.${f}Z` : 'Z'));
}

function protectionOf(p: ProtectedTask): Body {
  return {
    protection: {
      ExpirationDate: p.protectionEnabled && p.expirationDate !== undefined ? goTime(p.expirationDate) : null,
      ProtectionEnabled: p.protectionEnabled ?? false,
      TaskArn: p.taskArn ?? null,
    },
  };
}

const errorBody = (arn: string, code: string, message: string, requestId?: string): Body => ({
  ...(requestId ? { requestID: requestId } : {}),
  error: { ...(arn ? { Arn: arn } : {}), Code: code, Message: message },
});

/**
 * The PUT body as the ECS agent decodes it (Go's encoding/json with DisallowUnknownFields): keys
 * match case-insensitively, unknown keys and wrong types are a decode failure, `null` is empty.
 */
function decodeRequest(text: string): { ok: true; enabled?: boolean; minutes?: number } | { ok: false } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  if (v === null) return { ok: true };
  if (typeof v !== 'object' || Array.isArray(v)) return { ok: false };
  let enabled: boolean | undefined;
  let minutes: number | undefined;
  for (const [k, val] of Object.entries(v as Body)) {
    const key = k.toLowerCase();
    if (key === 'protectionenabled') {
      if (val === null) continue;
      if (typeof val !== 'boolean') return { ok: false };
      enabled = val;
    } else if (key === 'expiresinminutes') {
      if (val === null) continue;
      if (typeof val !== 'number' || !Number.isInteger(val)) return { ok: false };
      minutes = val;
    } else return { ok: false };
  }
  return { ok: true, enabled, minutes };
}

export class TaskProtectionEndpoint {
  private server?: Server;
  private address?: { host: string; port: number };

  constructor(private readonly o: TaskProtectionEndpointOptions) {}

  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.o.logger?.error({ err }, 'task protection endpoint failed');
        if (!res.headersSent) send(res, 500, errorBody('', 'ServerException', 'Unexpected error occurred'));
      });
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    // A client may half-close once it has sent its request (busybox `nc` does on end of input).
    // Node's HTTP server then aborts a request still being answered; Go's, which the ECS agent
    // uses, answers it. The answer here waits on the control plane, so keep half-open
    // connections (a long-standing Node server property, undocumented).
    (server as Server & { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    this.server = server;
    this.address = { host: this.o.host, port: typeof a === 'object' && a ? a.port : this.o.port };
    return this.address;
  }

  /** ECS_AGENT_URI for a task's containers. */
  uriFor(endpointId: string): string {
    if (!this.address) throw new Error('task protection endpoint not started');
    return `http://${hostPort(this.address.host, this.address.port)}/api/${endpointId}`;
  }

  close(): Promise<void> {
    const s = this.server;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  /** The task metadata endpoint v4 (agent/task-metadata.ts): the container's or the task's document. */
  private async metadata(req: IncomingMessage, res: ServerResponse, id: string, container: string, task: boolean): Promise<void> {
    req.resume();
    if (req.method !== 'GET') return send(res, 405, { error: `Method ${req.method} is not allowed` });
    let m: MetadataContext | undefined;
    try {
      m = await this.o.metadataFor!(id);
    } catch (err) {
      this.o.logger?.warn({ err }, 'task metadata failed');
      return send(res, 500, { error: 'Unable to get task metadata: the container engine did not answer' });
    }
    const doc = metadataOf(m, container, task);
    // The ECS agent answers an id it does not know with 404 and a plain message.
    if (!doc) return send(res, 404, { error: 'Unable to get task metadata: no task or container for this endpoint' });
    send(res, 200, doc);
  }

  /** `/stats` and `/task/stats`: the engine's stats documents, read when asked. */
  private async stats(req: IncomingMessage, res: ServerResponse, id: string, container: string, task: boolean): Promise<void> {
    req.resume();
    if (req.method !== 'GET') return send(res, 405, { error: `Method ${req.method} is not allowed` });
    let doc: StatsBody | undefined;
    try {
      doc = await this.o.statsFor!(id, task ? undefined : container);
    } catch (err) {
      this.o.logger?.warn({ err }, 'task metadata stats failed');
      return send(res, 500, { error: 'Unable to get stats: the container engine did not answer' });
    }
    if (!doc) return send(res, 404, { error: 'Unable to get task stats: no task or container for this endpoint' });
    send(res, 200, doc);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const md = METADATA_PATH.exec((req.url ?? '').split('?')[0]!);
    if (md && md[4] !== undefined && this.o.statsFor) return this.stats(req, res, decodeURIComponent(md[1]!), decodeURIComponent(md[2]!), md[3] !== undefined);
    if (md && md[4] === undefined && this.o.metadataFor) return this.metadata(req, res, decodeURIComponent(md[1]!), decodeURIComponent(md[2]!), md[3] !== undefined);
    const m = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!m) return send(res, 404, errorBody('', 'ResourceNotFoundException', `No such path: ${req.url}`));
    if (req.method !== 'GET' && req.method !== 'PUT') return send(res, 405, errorBody('', 'InvalidParameterException', `Method ${req.method} is not allowed`));
    const body = await readBody(req);
    let decoded: { enabled?: boolean; minutes?: number } = {};
    if (req.method === 'PUT') {
      const d = body === undefined ? { ok: false as const } : decodeRequest(body);
      if (!d.ok) return send(res, 400, errorBody('', 'InvalidParameterException', 'UpdateTaskProtection: failed to decode request'));
      decoded = d;
    }
    const task = this.o.taskFor(decodeURIComponent(m[1]!));
    const instance = this.o.containerInstanceArn();
    if (!task || !instance) return send(res, 404, errorBody('', 'ResourceNotFoundException', TASK_NOT_FOUND));
    if (req.method === 'PUT' && decoded.enabled === undefined) {
      return send(res, 400, errorBody(task.taskArn, 'InvalidParameterException', "Invalid request: does not contain 'ProtectionEnabled' field"));
    }
    let out: UpdateTaskProtectionResponse | GetTaskProtectionResponse;
    try {
      out =
        req.method === 'PUT'
          ? await this.o.api.updateTaskProtection(
              { cluster: task.clusterArn, tasks: [task.taskArn], protectionEnabled: decoded.enabled!, ...(decoded.minutes !== undefined ? { expiresInMinutes: decoded.minutes } : {}) },
              instance,
            )
          : await this.o.api.getTaskProtection({ cluster: task.clusterArn, tasks: [task.taskArn] }, instance);
    } catch (err) {
      const e = err as { code?: string; message?: string; httpStatus?: number; requestId?: string };
      const message = (e.message ?? String(err)).replace(/^[A-Za-z]+: /, '');
      // An API error keeps the control plane's status; a transport failure is the agent's 500.
      const status = e.code && e.code !== 'NetworkError' && e.httpStatus ? e.httpStatus : 500;
      const code = e.code && e.code !== 'NetworkError' ? e.code : 'ServerException';
      this.o.logger?.warn({ taskArn: task.taskArn, code, message }, 'task protection call failed');
      return send(res, status, errorBody(task.taskArn, code, message, e.requestId));
    }
    const failures = out.failures ?? [];
    const tasks = out.protectedTasks ?? [];
    if (failures.length > 1 || (failures.length === 0 && tasks.length !== 1)) {
      return send(res, 500, errorBody(task.taskArn, 'ServerException', 'Unexpected error occurred'));
    }
    if (failures.length === 1) {
      const f = failures[0]!;
      return send(res, 200, { failure: { Arn: f.arn ?? null, Detail: f.detail ?? null, Reason: f.reason ?? null } });
    }
    return send(res, 200, protectionOf(tasks[0]!));
  }
}

function metadataOf(ctx: MetadataContext | undefined, container: string, task: boolean): Body | undefined {
  if (!ctx) return undefined;
  return task ? taskMetadata(ctx) : containerMetadata(ctx, container);
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: Body): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
