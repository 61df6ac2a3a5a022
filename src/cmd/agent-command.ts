/**
 * `wharf agent`: its flags, their parsing into agent settings (shared with `wharf up`, which runs
 * a local agent), and the command itself.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { AWS_REGIONS } from '../core/regions';
import { defaultVpcCidr } from '../core/vpc';
import { parseAttributes, parseHostPolicy, parseResources, startAgents } from './agent';
import { CAPACITY_PROVIDER_ATTRIBUTE } from '../control/capacity-providers';
import { FARGATE_POOL } from '../core/fargate-pool';
import { parseJoinToken, type KeyPair } from './credentials';
import { localAgentToken } from './agent-tokens';
import { DEFAULT_ENDPOINT, defaultDataDir } from './client';
import { untrustedCertificateMessage } from '../agent/control-plane-client';

export const AGENT_FLAGS = `  --cluster NAME          cluster to join (default 'default')
  --fargate               offer this host as Fargate capacity of the region instead: Wharf places
                          FARGATE tasks of every cluster there; it is never a container instance
                          users see
  --fargate-sandbox gvisor|runc   what isolates this pool host's Fargate tasks (default gvisor
                          where the engine has the runsc runtime, else runc; runc on a gVisor host
                          is for comparing the two, e.g. bench/fargate-tasks.ts)
  --pause-pool N          awsvpc pause containers kept started ahead per subnet, so a task's
                          start skips its own (default 2 with --fargate, else 0)
  --capacity-provider NAME  join the instance group of the Auto Scaling group capacity provider
                          NAME: tasks launched through NAME are placed only on such instances
                          (the attribute wharf.capacity-provider=NAME)
  --availability-zone AZ  the ecs.availability-zone attribute (default <region>a)
  --instance-type TYPE    the ecs.instance-type attribute (default wharf.host)
  --attribute NAME=VALUE  a custom attribute (repeatable)
  --resources cpu=UNITS,memory=MIB   offer these instead of what is detected
                          (detected: 1024 CPU units per core, memory minus a 256 MiB reserve)
  --image-pull-behavior default|always|once|prefer-cached   (default: default)
  --runtime docker|simulated   simulated runs hollow instances with a fake container engine,
                          FOR SCALE TESTS AND BENCHMARKS ONLY: nothing really runs
  --instances N           simulated only: how many hollow instances (default 1)
  --public-ip ADDR        where awsvpc tasks run with assignPublicIp ENABLED publish their ports
                          on this host (default 0.0.0.0; 127.0.0.1 keeps them on loopback)
  --simulated-start-latency MS / --simulated-failure-rate P   simulated only
  --task-endpoint HOST:PORT   where the agent serves ECS_AGENT_URI (task scale-in protection) to
                          its tasks' containers (default: the Docker bridge gateway, port 51679);
                          'off' serves nothing
  --task-dns ADDR,...     resolvers of tasks whose definition names none (bridge containers and
                          awsvpc tasks): Wharf's service discovery DNS server. 'wharf up' uses its
                          server's address on the Docker bridge gateway when it listens there

Host policy (what tasks may not ask of this host; placement avoids the host where an attribute
says so, and the agent stops any such task before creating a container, with the reason):
  --disable-privileged    no privileged containers (also ECS_DISABLE_PRIVILEGED=true); the host
                          stops advertising com.amazonaws.ecs.capability.privileged-container
  --disallow-host-network no networkMode host; the host stops advertising
                          wharf.capability.host-network
  --disable-capabilities ALL|CAP,...   no linuxParameters.capabilities.add of these (ALL: of
                          any; then wharf.capability.linux-capabilities-add is not advertised)
  --allowed-host-paths PATH,...   bind mounts (host sourcePath volumes) only of these paths or
                          below them, e.g. /data,/var/log (default: any path)
`;

export const AGENT_HELP = `wharf agent: register this host as a container instance of a cluster and run its tasks on Docker

Flags:
  --endpoint URL[,URL]    the Wharf control plane (default ${DEFAULT_ENDPOINT}); in distributed mode any
                          replicas (the agent also learns the live ones from their answers and
                          moves to another when it cannot reach its own)
  --join-token ID:SECRET  a join token of the cluster (\`wharf credentials --agent --cluster C\` on the
                          server makes one; with --fargate, the pool's: --cluster '~fargate');
                          without it, a token of the cluster from the local
                          server's data dir. Registration hands the agent an instance credential,
                          kept in the data dir (0600), which it uses from then on
  --region REGION         the region to register into (default: the server's default region)
  --data-dir DIR          where the agent keeps its identity (default $WHARF_DATA_DIR or ~/.wharf);
                          one agent per data dir: a second one started on it is refused
  --ca FILE               PEM certificate(s) an https endpoint's certificate must chain to (its
                          self-signed certificate, or the CA that signed it); default the system's
${AGENT_FLAGS}`;

export const agentOptions = {
  cluster: { type: 'string' },
  fargate: { type: 'boolean' },
  'fargate-sandbox': { type: 'string' },
  'pause-pool': { type: 'string' },
  'capacity-provider': { type: 'string' },
  'availability-zone': { type: 'string' },
  'instance-type': { type: 'string' },
  attribute: { type: 'string', multiple: true },
  resources: { type: 'string' },
  'image-pull-behavior': { type: 'string', default: 'default' },
  runtime: { type: 'string', default: 'docker' },
  instances: { type: 'string', default: '1' },
  'simulated-start-latency': { type: 'string' },
  'simulated-failure-rate': { type: 'string' },
  'task-endpoint': { type: 'string' },
  'task-dns': { type: 'string' },
  'public-ip': { type: 'string' },
  'disable-privileged': { type: 'boolean' },
  'disallow-host-network': { type: 'boolean' },
  'disable-capabilities': { type: 'string' },
  'allowed-host-paths': { type: 'string' },
} as const;

function parseTaskEndpoint(v: string | undefined): { host?: string; port?: number } | false | undefined {
  if (v === undefined) return undefined;
  if (v === 'off') return false;
  const i = v.lastIndexOf(':');
  const host = i >= 0 ? v.slice(0, i).replace(/^\[|\]$/g, '') : v;
  const port = i >= 0 ? Number(v.slice(i + 1)) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new Error(`--task-endpoint wants HOST:PORT or 'off', not '${v}'`);
  return { ...(host ? { host } : {}), ...(port !== undefined ? { port } : {}) };
}

/** `--capacity-provider NAME`: the attribute that puts the instance in NAME's group. */
function withCapacityProvider(attributes: Record<string, string>, values: Record<string, unknown>): Record<string, string> {
  const name = values['capacity-provider'] as string | undefined;
  if (name === undefined) return attributes;
  if (values.fargate) throw new Error('--capacity-provider is for instances of a cluster; Fargate hosts serve FARGATE and FARGATE_SPOT');
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(name)) throw new Error(`--capacity-provider wants a capacity provider name, not '${name}'`);
  return { ...attributes, [CAPACITY_PROVIDER_ATTRIBUTE]: name };
}

/** `--vpc-base A.B`, checked against every region it must give a /16 to. */
export function parseVpcBase(v: string | undefined, region: string): string | undefined {
  if (v === undefined) return undefined;
  defaultVpcCidr(region, v);
  for (const r of AWS_REGIONS) defaultVpcCidr(r, v);
  return v;
}

function parsePublicIp(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!isIP(v)) throw new Error(`--public-ip wants an IP address of this host, not '${v}'`);
  return v;
}

export function agentSettings(values: Record<string, unknown>) {
  const pull = String(values['image-pull-behavior']);
  if (!['default', 'always', 'once', 'prefer-cached'].includes(pull)) throw new Error('--image-pull-behavior must be default, always, once or prefer-cached');
  const runtime = String(values.runtime);
  if (runtime !== 'docker' && runtime !== 'simulated') throw new Error('--runtime must be docker or simulated');
  const instances = Number(values.instances);
  if (!Number.isInteger(instances) || instances < 1) throw new Error('--instances must be a positive integer');
  if (runtime === 'docker' && instances !== 1) throw new Error('--instances is for --runtime simulated only; one agent runs one host');
  if (values.fargate && values.cluster !== undefined) throw new Error('--fargate hosts join the region\'s Fargate pool, not a cluster: drop --cluster');
  const sandbox = values['fargate-sandbox'] as string | undefined;
  if (sandbox !== undefined && sandbox !== 'gvisor' && sandbox !== 'runc') throw new Error('--fargate-sandbox must be gvisor or runc');
  const pausePool = values['pause-pool'] !== undefined ? Number(values['pause-pool']) : undefined;
  if (pausePool !== undefined && !(Number.isInteger(pausePool) && pausePool >= 0 && pausePool <= 16)) throw new Error('--pause-pool must be a whole number from 0 to 16');
  return {
    pausePoolSize: pausePool,
    fargateSandbox: sandbox as 'gvisor' | 'runc' | undefined,
    cluster: values.fargate ? FARGATE_POOL : String(values.cluster ?? 'default'),
    availabilityZone: values['availability-zone'] as string | undefined,
    instanceType: values['instance-type'] as string | undefined,
    attributes: withCapacityProvider(parseAttributes(values.attribute as string[] | undefined), values),
    resources: parseResources(values.resources as string | undefined),
    pullBehaviour: pull as 'default',
    runtime: runtime as 'docker' | 'simulated',
    instances,
    simulatedStartLatencyMs: values['simulated-start-latency'] !== undefined ? Number(values['simulated-start-latency']) : undefined,
    simulatedFailureRate: values['simulated-failure-rate'] !== undefined ? Number(values['simulated-failure-rate']) : undefined,
    taskEndpoint: parseTaskEndpoint(values['task-endpoint'] as string | undefined),
    dnsServers: parseTaskDns(values['task-dns'] as string | undefined),
    publicIp: parsePublicIp(values['public-ip'] as string | undefined),
    hostPolicy: parseHostPolicy({
      disablePrivileged: values['disable-privileged'] as boolean | undefined,
      disallowHostNetwork: values['disallow-host-network'] as boolean | undefined,
      disableCapabilities: values['disable-capabilities'] as string | undefined,
      allowedHostPaths: values['allowed-host-paths'] as string | undefined,
    }),
  };
}

function parseTaskDns(v: string | undefined): string[] | undefined {
  if (v === undefined || v === 'off') return undefined;
  const list = v.split(',').map((s) => s.trim());
  if (list.some((a) => !isIP(a))) throw new Error(`--task-dns wants IP addresses separated by commas, not '${v}'`);
  return list;
}

/** The default region of the server at `endpoint` (its /healthz says), for agents given none. */
/** GET a small JSON document (node:http/https, so that `ca` applies). */
function getJson(url: URL, ca: Buffer | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { timeout: timeoutMs, ...(ca && url.protocol === 'https:' ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(e);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function serverDefaultRegion(endpoint: string, ca?: Buffer): Promise<string> {
  let body: { region?: unknown };
  try {
    body = (await getJson(new URL('/healthz', endpoint), ca, 10_000)) as { region?: unknown };
  } catch (e) {
    const untrusted = untrustedCertificateMessage(e, endpoint);
    if (untrusted) throw new Error(untrusted);
    throw new Error(`cannot ask ${endpoint} for its region (${e instanceof Error ? e.message : String(e)}); pass --region`);
  }
  if (typeof body.region !== 'string') throw new Error(`${endpoint}/healthz names no region; pass --region`);
  return body.region;
}

/** `--ca FILE`: PEM certificates, read now so that a wrong path is told at once. */
export function readCa(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read --ca ${path}: ${(e as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--ca ${path} holds no PEM certificate`);
  return pem;
}

export async function cmdAgent(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...agentOptions,
      endpoint: { type: 'string', default: process.env.WHARF_ENDPOINT ?? DEFAULT_ENDPOINT },
      'join-token': { type: 'string', default: process.env.WHARF_JOIN_TOKEN },
      region: { type: 'string' },
      'data-dir': { type: 'string', default: defaultDataDir() },
      ca: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(AGENT_HELP);
  const settings = agentSettings(values);
  // Without --join-token, an agent beside its server takes a join token of its cluster from the
  // shared data dir (never the user's key: an agent must not hold more than an agent's rights).
  const ca = values.ca !== undefined ? readCa(values.ca) : undefined;
  // --endpoint may list several replicas (distributed mode): any of them knows the default region.
  const region = values.region ?? (await serverDefaultRegion(values.endpoint!.split(',')[0]!, ca));
  const credentials: KeyPair = values['join-token'] ? parseJoinToken(values['join-token']) : localAgentToken(values['data-dir']!, settings.cluster, region);
  const running = await startAgents({
    ...settings,
    endpoint: values.endpoint!,
    region,
    credentials,
    dataDir: values['data-dir']!,
    ca,
    onDeregistered: (why) => {
      // As the ECS agent does, stop for good: retrying cannot succeed. The containers stay until
      // the next start, which removes them and joins as a new instance.
      process.stderr.write(`wharf agent: this container instance was deregistered (${why}); stopping. Start the agent again to join as a new instance.\n`);
      void running.stop().finally(() => process.exit(5));
    },
  });
  const where = settings.cluster === FARGATE_POOL ? 'the Fargate pool' : `cluster ${settings.cluster}`;
  process.stdout.write(`wharf agent: ${running.agents.length} container instance(s) registered in ${where} (${region})\n`);
  for (const a of running.agents.slice(0, 5)) process.stdout.write(`  ${a.containerInstanceArn}\n`);
  const stop = async () => {
    await running.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
