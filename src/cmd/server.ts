/** `wharf server`: the control plane with the embedded SQLite store. */
import { join } from 'node:path';
import type { Partition } from '../core/arn';
import { loadModel, validateInput } from '../api/model';
import { AGENT_OPERATIONS, ecsHandlers, type ControlContext } from '../control';
import { SECRETS_MODEL_OPERATIONS, SECRETS_SIGNING_NAME, SECRETS_TARGET_PREFIX, secretsHandlers } from '../control/secrets';
import { createHttpServer, type WharfHttpServer } from '../server/http-server';
import type { Handler } from '../server/api-registry';
import { createAgentGateway } from '../server/agent-gateway';
import { InstanceLivenessController } from '../controllers/instance-liveness-controller';
import { TaskReaperController } from '../controllers/task-reaper-controller';
import { ServiceController } from '../controllers/service-controller';
import { State } from '../state/state';
import { PlacementView } from '../state/placement-view';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import type { Store } from '../store/store';
import { createLogger, systemClock, type Logger } from '../lib';
import { loadOrCreateCredentials, type CredentialsFile } from './credentials';

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  region: string;
  accountId: string;
  synchronous?: 'NORMAL' | 'FULL';
  log?: Logger;
  /** How long an instance may have no agent connection before agentConnected=false (ms). */
  agentTimeoutMs?: number;
  /** WebSocket ping interval of the agent channel (ms). */
  pingIntervalMs?: number;
  /** How long a service task without a health check must run before it counts as healthy (ms; ECS: 40 s). */
  healthyAfterRunningMs?: number;
}

export interface RunningServer {
  endpoint: string;
  port: number;
  credentials: CredentialsFile;
  partition: Partition;
  ctx: ControlContext;
  http: WharfHttpServer;
  store: Store;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = opts.log ?? createLogger('wharf-server');
  const credentials = loadOrCreateCredentials(opts.dataDir);
  const store = SqliteStore.open({ path: join(opts.dataDir, 'wharf.db'), synchronous: opts.synchronous ?? 'FULL', compactKeep: 20_000 });
  const state = new State(store);
  await state.start();
  const partition = { region: opts.region, accountId: opts.accountId };
  const placement = new PlacementView(state);
  const ctx: ControlContext = { store, state, placement, partition, clock: systemClock, log };
  const model = loadModel('ecs');
  const keyTable = new Map<string, { secret: string; isAgent: boolean }>();
  keyTable.set(credentials.user.accessKeyId, { secret: credentials.user.secretAccessKey, isAgent: false });
  for (const t of credentials.agentTokens) keyTable.set(t.accessKeyId, { secret: t.secretAccessKey, isAgent: true });
  const credentialLookup = { lookup: (id: string) => keyTable.get(id) };
  const gateway = createAgentGateway({ ctx, credentials: credentialLookup, pingIntervalMs: opts.pingIntervalMs });
  const http = createHttpServer({
    apis: [
      {
        targetPrefix: model.metadata.targetPrefix!,
        signingName: 'ecs',
        modelOperations: Object.keys(model.operations),
        handlers: ecsHandlers(ctx) as Record<string, Handler>,
        agentOperations: AGENT_OPERATIONS,
        validate: (op, input) => validateInput(model, op, input),
      },
      // The Secrets Manager subset that private-registry credentials need (control/secrets.ts).
      { targetPrefix: SECRETS_TARGET_PREFIX, signingName: SECRETS_SIGNING_NAME, modelOperations: SECRETS_MODEL_OPERATIONS, handlers: secretsHandlers(ctx) as Record<string, Handler> },
    ],
    credentials: credentialLookup,
    accountId: opts.accountId,
    region: opts.region,
    log,
    onUpgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
  });
  const liveness = new InstanceLivenessController({ state, store, clock: systemClock, log, connections: gateway.connections, timeoutMs: opts.agentTimeoutMs });
  liveness.start();
  const reaper = new TaskReaperController({ state, store, clock: systemClock, log });
  reaper.start();
  const services = new ServiceController({ ctx, healthyAfterRunningMs: opts.healthyAfterRunningMs });
  services.start();
  const { port } = await http.listen(opts.port, opts.host);
  const endpoint = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  ctx.endpoint = endpoint;
  log.info({ endpoint, dataDir: opts.dataDir }, 'wharf server listening');
  return {
    endpoint,
    port,
    credentials,
    partition,
    ctx,
    http,
    store,
    async close() {
      services.stop();
      reaper.stop();
      liveness.stop();
      await gateway.close();
      await http.close();
      state.stop();
      await store.close();
    },
  };
}
