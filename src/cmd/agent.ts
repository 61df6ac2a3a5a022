/** `wharf agent`: registers this host (or N simulated ones) as container instances of a cluster. */
import type { Agent as HttpAgent } from 'node:http';
import { join } from 'node:path';
import {
  Agent,
  controlPlaneHttpAgent,
  DockerRuntime,
  HttpControlPlaneClient,
  SimulatedFleet,
  type PullBehaviour,
} from '../agent';
import { regionZones } from '../core/vpc';
import { TaskFirewall, firewallAvailable } from '../agent/firewall';
import { parseAllowedHostPaths, parseDisabledCapabilities, type HostPolicy } from '../agent/host-policy';
import { FARGATE_POOL } from '../core/fargate-pool';
import { createLogger, systemClock, type Logger } from '../lib';
import { AwslogsShipper } from '../agent/awslogs-shipper';
import type { KeyPair } from './credentials';
import { lockDir, type DirLock } from './dir-lock';

export interface AgentCommandOptions {
  endpoint: string;
  region: string;
  cluster: string;
  credentials: KeyPair;
  dataDir: string;
  availabilityZone?: string;
  instanceType?: string;
  attributes: Record<string, string>;
  resources?: { cpu?: number; memory?: number };
  /** `runc`: Fargate tasks run under runc even where gVisor is set up (for comparisons). */
  fargateSandbox?: 'gvisor' | 'runc';
  /** Docker runtime only: pause containers kept started ahead per awsvpc subnet (default 2 on a Fargate pool host, else 0). */
  pausePoolSize?: number;
  runtime: 'docker' | 'simulated';
  /** simulated only: how many hollow instances. */
  instances: number;
  /** simulated only: delay of each container create/start, and the share of starts that fail. */
  simulatedStartLatencyMs?: number;
  simulatedFailureRate?: number;
  pullBehaviour: PullBehaviour;
  log?: Logger;
  /** Docker runtime only: the control plane deregistered the instance while the agent ran. */
  onDeregistered?: (reason: string) => void;
  /**
   * Docker runtime only: where the task endpoint (ECS_AGENT_URI) listens. Host default: the
   * Docker bridge gateway; port default 51679 (the ECS agent's task endpoint port). A fixed port
   * keeps running containers' ECS_AGENT_URI valid across agent restarts; `false` turns it off.
   */
  taskEndpoint?: { host?: string; port?: number } | false;
  /** Docker runtime only: resolvers for tasks that name none (Wharf's DNS server, `--dns`). */
  dnsServers?: string[];
  /** Docker runtime only: the host address assignPublicIp ENABLED tasks publish their ports on. */
  publicIp?: string;
  /** What tasks may not ask of this host (privileged, host network, capabilities, host paths). */
  hostPolicy?: HostPolicy;
  /** PEM certificates an https endpoint must chain to (`--ca FILE`). */
  ca?: Buffer;
}

export const DEFAULT_TASK_ENDPOINT_PORT = 51679;

/**
 * Pause containers a Fargate pool host keeps started ahead per subnet (agent/pause-pool.ts): two,
 * so a pair of tasks launched together both skip their pause container's start.
 */
export const DEFAULT_FARGATE_PAUSE_POOL = 2;

/**
 * How long a stopped task's containers and task volumes stay before the agent removes them,
 * from the ECS agent's own setting `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION` (a Go duration such
 * as `3h`, `10m`, `30s`; the agent's default, 3 h, when unset). Throws on anything else, so a
 * typo does not silently keep the default.
 */
export function taskCleanupWaitMs(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value.trim()) {
    throw new Error(`ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION: ${value} is not a duration (e.g. 3h, 10m, 30s)`);
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

export const AGENT_LOCK_FILE = 'agent.lock';
export const AGENT_PID_FILE = 'agent.pid';

/**
 * One agent per agent state dir (DATA_DIR/agent, or agent-fargate): two would be the same
 * container instance, replace each other's channel, and each run every task it is sent, so every
 * task would get two containers and each would remove the other's as orphans. A second one is
 * refused, naming the first; the lock dies with its process, so a kill -9 leaves none behind.
 */
export function lockAgentDir(agentDir: string): DirLock {
  return lockDir(agentDir, {
    lockFile: AGENT_LOCK_FILE,
    pidFile: AGENT_PID_FILE,
    refusal: (who) =>
      `another wharf agent is already running on this data dir${who}: ${agentDir} (two agents on one data dir are one container instance and would run every task twice; stop it, or give this agent a --data-dir of its own)`,
  });
}

export interface RunningAgents {
  agents: Agent[];
  stop(): Promise<void>;
}

export async function startAgents(o: AgentCommandOptions): Promise<RunningAgents> {
  const log = o.log ?? createLogger('wharf-agent');
  if (o.hostPolicy) log.info({ hostPolicy: o.hostPolicy }, 'host policy: tasks asking for more are kept off this host or stopped before any container is created');
  // A Fargate task runs in a subnet of its host's zone: a pool host elsewhere would get none.
  const zones = regionZones(o.region);
  if (o.cluster === FARGATE_POOL && o.availabilityZone !== undefined && !zones.includes(o.availabilityZone)) {
    throw new Error(`--availability-zone of a Fargate pool host must be a zone of ${o.region} with a subnet: ${zones.join(', ')}`);
  }
  // A pool host keeps an identity of its own, so one machine can be both (as under `wharf up`).
  const agentDir = join(o.dataDir, o.cluster === FARGATE_POOL ? 'agent-fargate' : 'agent');
  const makeClient = (httpAgent?: HttpAgent, instanceCredentialFile?: string) =>
    new HttpControlPlaneClient({ endpoint: o.endpoint, region: o.region, credentials: o.credentials, logger: log, httpAgent, instanceCredentialFile, ca: o.ca });
  if (o.runtime === 'simulated') {
    // Every hollow instance reports through one pool: the control plane is one process, and a
    // pool per instance would mean thousands of mostly idle connections.
    const pool = controlPlaneHttpAgent(o.endpoint.split(',')[0]!, 64, o.ca);
    const fleet = new SimulatedFleet({
      count: o.instances,
      makeClient: () => makeClient(pool),
      cluster: o.cluster,
      region: o.region,
      resources: o.resources,
      logger: log,
      runtime: { startLatencyMs: o.simulatedStartLatencyMs, failureRate: o.simulatedFailureRate },
      agent: { hostPolicy: o.hostPolicy },
    });
    await fleet.start();
    return {
      agents: fleet.agents,
      stop: async () => {
        await fleet.stop();
        pool.destroy();
      },
    };
  }
  // Before anything else is touched: the Docker runtime and its state are the holder's.
  const lock = lockAgentDir(agentDir);
  try {
    return await startDockerAgent(o, agentDir, log, makeClient, lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function startDockerAgent(
  o: AgentCommandOptions,
  agentDir: string,
  log: Logger,
  makeClient: (httpAgent?: HttpAgent, instanceCredentialFile?: string) => HttpControlPlaneClient,
  lock: DirLock,
): Promise<RunningAgents> {
  const runtime = new DockerRuntime();
  try {
    await runtime.info();
  } catch (e) {
    throw new Error(
      `cannot reach the Docker Engine (${e instanceof Error ? e.message : String(e)}).\n` +
        'Install it on Debian with `apt-get install -y docker.io` and start it (`dockerd &` when there is no systemd), ' +
        'or run `wharf up` as root, which does both.',
    );
  }
  // The instance credential registration returns lives beside the identity it belongs to.
  const client = makeClient(undefined, join(agentDir, 'instance-credential.json'));
  // Security groups are enforced with iptables on the subnet bridges where the host allows it.
  const firewall = (await firewallAvailable()) ? new TaskFirewall(runtime, { logger: log }) : undefined;
  if (!firewall) log.warn('iptables (DOCKER-USER) is not available: security groups are not enforced on this host');
  let taskEndpoint: { host: string; port: number; api: HttpControlPlaneClient } | undefined;
  if (o.taskEndpoint !== false) {
    const host = o.taskEndpoint?.host ?? (await runtime.bridgeGateway().catch(() => undefined));
    if (host) taskEndpoint = { host, port: o.taskEndpoint?.port ?? DEFAULT_TASK_ENDPOINT_PORT, api: client };
    else log.warn('no Docker bridge gateway address found; tasks get no ECS_AGENT_URI (set --task-endpoint)');
  }
  // The awslogs driver: containers' output goes to the control plane's logs API (json-file stays
  // underneath for `wharf logs`).
  const awslogs = new AwslogsShipper({ api: client, runtime, clock: systemClock, logger: log });
  const agent = new Agent({
    client,
    taskEndpoint,
    runtime,
    cluster: o.cluster,
    dataDir: agentDir,
    region: o.region,
    availabilityZone: o.availabilityZone,
    instanceType: o.instanceType,
    attributes: o.attributes,
    resources: o.resources,
    fargateSandbox: o.fargateSandbox,
    pausePoolSize: o.pausePoolSize ?? (o.cluster === FARGATE_POOL ? DEFAULT_FARGATE_PAUSE_POOL : 0),
    hostPolicy: o.hostPolicy,
    pullBehaviour: o.pullBehaviour,
    taskCleanupWaitMs: taskCleanupWaitMs(process.env.ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION),
    logger: log,
    onDeregistered: o.onDeregistered,
    runner: { ...(o.dnsServers?.length ? { dnsServers: o.dnsServers } : {}), ...(o.publicIp ? { publicBindIp: o.publicIp } : {}), ...(firewall ? { firewall } : {}), awslogs },
  });
  try {
    await agent.start();
  } catch (e) {
    awslogs.close();
    runtime.close();
    throw e;
  }
  firewall?.watch();
  return {
    agents: [agent],
    // The agent leaves its containers running (a restart adopts them), but the runtime's Docker
    // event stream is this process's to close: left open, it keeps the event loop alive.
    stop: async () => {
      firewall?.stop();
      await agent.stop();
      awslogs.close();
      runtime.close();
      lock.release();
    },
  };
}

/** `--resources cpu=2048,memory=4096` */
export function parseResources(s: string | undefined): { cpu?: number; memory?: number } | undefined {
  if (!s) return undefined;
  const out: { cpu?: number; memory?: number } = {};
  for (const part of s.split(',')) {
    const [k, v] = part.split('=');
    const n = Number(v);
    if ((k !== 'cpu' && k !== 'memory') || !Number.isInteger(n) || n < 0) {
      throw new Error(`--resources wants cpu=UNITS,memory=MIB, not '${s}'`);
    }
    out[k] = n;
  }
  return out;
}

/** Repeated `--attribute k=v`. */
export function parseAttributes(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list ?? []) {
    const i = a.indexOf('=');
    if (i <= 0) throw new Error(`--attribute wants NAME=VALUE, not '${a}'`);
    out[a.slice(0, i)] = a.slice(i + 1);
  }
  return out;
}

/**
 * The host policy flags, and ECS_DISABLE_PRIVILEGED as the ECS agent reads it (a Go boolean:
 * true/false, 1/0, t/f in any case); undefined when nothing is restricted.
 */
export function parseHostPolicy(
  flags: { disablePrivileged?: boolean; disallowHostNetwork?: boolean; disableCapabilities?: string; allowedHostPaths?: string },
  env: NodeJS.ProcessEnv = process.env,
): HostPolicy | undefined {
  const fromEnv = env.ECS_DISABLE_PRIVILEGED;
  let envPrivileged = false;
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    if (/^(1|t|true)$/i.test(fromEnv.trim())) envPrivileged = true;
    else if (!/^(0|f|false)$/i.test(fromEnv.trim())) throw new Error(`ECS_DISABLE_PRIVILEGED must be true or false, not '${fromEnv}'`);
  }
  const policy: HostPolicy = {
    ...(flags.disablePrivileged || envPrivileged ? { disablePrivileged: true } : {}),
    ...(flags.disallowHostNetwork ? { disallowHostNetwork: true } : {}),
    ...(flags.disableCapabilities !== undefined ? { disabledCapabilities: parseDisabledCapabilities(flags.disableCapabilities) } : {}),
    ...(flags.allowedHostPaths !== undefined ? { allowedHostPaths: parseAllowedHostPaths(flags.allowedHostPaths) } : {}),
  };
  return Object.keys(policy).length ? policy : undefined;
}
