/**
 * The `wharf` command line. Composition root: the only place that picks concretes (SQLite store,
 * Docker or simulated runtime).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parseEtcdUrl, startServer } from './server';
import { dockerBridgeAddress, parseDnsFlag } from './dns';
import { AWS_REGIONS, parseRegionList } from '../core/regions';
import { DEFAULT_VPC_BASE, defaultVpcCidr } from '../core/vpc';
import { applyHeapGrowth, parseHeapGrowth } from './heap-growth';
import { parseAttributes, parseHostPolicy, parseResources, startAgents, type RunningAgents } from './agent';
import { CAPACITY_PROVIDER_ATTRIBUTE } from '../control/capacity-providers';
import { FARGATE_POOL } from '../core/fargate-pool';
import { ensureDocker, ensureEtcdServer, ensureHaproxy } from './docker-setup';
import { haBanner, upReplicas } from './up-ha';
import { cmdStatus } from './status';
import { parseJoinToken, type KeyPair } from './credentials';
import { ensureAgentToken, localAgentToken } from './agent-tokens';
import { DEFAULT_ENDPOINT, DEFAULT_PORT, EcsCallError, defaultDataDir } from './client';
import { cmdCredentials, cmdLogs, cmdSubnets, cmdTaskDefinition } from './client-commands';
import { ensureSelfSignedCertificate, trustInstructions } from './tls';
import { untrustedCertificateMessage } from '../agent/control-plane-client';

const HELP = `wharf: a self-hosted container orchestrator that speaks the Amazon ECS API

Usage: wharf <command> [flags]

Commands:
  up                          control plane and one local agent in one command (cluster 'default')
  server                      run the control plane (ECS API) with the embedded store
  agent                       register this host as a container instance and run its tasks
  logs TASK [CONTAINER]       print a task's container output (--follow to keep following)
  task-definition register    register a task definition from a JSON file (lenient: trailing
                              commas and numbers written as strings are accepted and reported)
  credentials                 print the credentials of the local server as shell exports;
                              create, list, rotate, delete: users with IAM policies
  credentials --agent --cluster C   make a join token for the agents of cluster C (--list, --revoke KEYID)
  subnets                     print the region's default VPC and its subnets (zone, range)
  status                      which replica leads, each replica's health and each etcd member's

Run 'wharf <command> --help' for a command's flags.
`;

const SERVER_HELP = `wharf server: run the control plane (ECS API, SigV4-authenticated) with the embedded SQLite store

Flags:
  --listen HOST:PORT     address to listen on (default 127.0.0.1:${DEFAULT_PORT})
  --data-dir DIR         where the store and credentials live (default $WHARF_DATA_DIR or ~/.wharf)
  --region REGION        the default region: shown in the banner and joined by agents that name
                         none (default us-east-1). Every request is served by the region of its
                         SigV4 credential scope; each region's state is its own, as on AWS
  --regions A,B,...      serve only these regions (default: every AWS region); others are refused
  --account-id ID        12-digit account id used in ARNs (default 000000000000)
  --sync full|normal     SQLite synchronous mode: full (default) never loses an acknowledged
                         write on power loss; normal is faster and still safe against crashes
  --agent-timeout MS     how long an instance may have no agent connection before its tasks
                         are replaced elsewhere (default 30000)
  --fargate-host-lost MS how long a Fargate pool host may have no agent connection before its
                         tasks are stopped (TerminationNotice) and services replace them (default 120000)
  --healthy-after-running MS   how long a service task without a health check must run before
                         it counts as healthy for deployments (default 40000, as ECS)
  --vpc-base A.B         the first two octets of the first region's default VPC range (default
                         ${DEFAULT_VPC_BASE}: region i of the AWS region list gets A.(B+i).0.0/16, its
                         subnets the first /20s); each subnet is a Docker network on the hosts,
                         so pick a range no network of theirs uses
  --heap-growth PERCENT  let the heap grow at most this far past its live data before a full
                         garbage collection (default 50; 0 = V8's own sizing, faster, ~3x the memory)
  --dns ADDR:PORT,...    where the service discovery DNS server answers (Cloud Map private DNS
                         namespaces; other names are forwarded to /etc/resolv.conf's servers).
                         Default: 127.0.0.1:53 and the Docker bridge gateway (docker0):53, each
                         skipped with a warning if it cannot be bound; 'off' disables it
  --scale-command CMD    run CMD (through sh -c) when the desired instance count of an Auto
                         Scaling group capacity provider with managed scaling changes: $1 is the
                         provider, $2 the count; WHARF_* variables say the rest (see
                         docs/ARCHITECTURE.md "Capacity providers")
  --load-balancers on|off  run the ELBv2 load balancer controller and its HAProxy (default on;
                         without haproxy installed it logs one line and the rest runs)
  --haproxy PATH         the haproxy binary (default $WHARF_HAPROXY or /usr/sbin/haproxy)
  --store URL            where the state lives: the data dir's SQLite file (default), or
                         etcd://HOST:PORT[,HOST:PORT...][/PREFIX/] for distributed mode: any number
                         of servers share the etcd cluster's state (keys under PREFIX, default
                         wharf/), every one serves the whole API, and the controllers run on the
                         one elected leader (docs/ARCHITECTURE.md "Distributed mode")
  --tls-cert FILE --tls-key FILE   serve HTTPS (and the agents' channel as WSS) with this PEM
                         certificate (chain) and key; clients must trust it (aws --ca-bundle,
                         wharf agent --ca). 'wharf up --tls' makes a self-signed pair
  -h, --help             this help

Credentials are generated on first start and kept in DATA_DIR/credentials.json, unless
WHARF_ACCESS_KEY_ID and WHARF_SECRET_ACCESS_KEY are set.
`;

const AGENT_FLAGS = `  --cluster NAME          cluster to join (default 'default')
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

const AGENT_HELP = `wharf agent: register this host as a container instance of a cluster and run its tasks on Docker

Flags:
  --endpoint URL[,URL]    the Wharf control plane (default ${DEFAULT_ENDPOINT}); in distributed mode any
                          replicas (the agent also learns the live ones from their answers and
                          moves to another when it cannot reach its own)
  --join-token ID:SECRET  a join token of the cluster (\`wharf credentials --agent --cluster C\` on the
                          server makes one); without it, a token of the cluster from the local
                          server's data dir. Registration hands the agent an instance credential,
                          kept in the data dir (0600), which it uses from then on
  --region REGION         the region to register into (default: the server's default region)
  --data-dir DIR          where the agent keeps its identity (default $WHARF_DATA_DIR or ~/.wharf)
  --ca FILE               PEM certificate(s) an https endpoint's certificate must chain to (its
                          self-signed certificate, or the CA that signed it); default the system's
${AGENT_FLAGS}`;

const UP_HELP = `wharf up: the control plane and one local agent in one command (cluster 'default')

Takes the flags of 'wharf server' (--listen, --data-dir, --region, --regions, --account-id,
--sync, --heap-growth, --dns, --scale-command, --load-balancers, --haproxy; the local agent joins --region) and of
'wharf agent' (below). If no Docker Engine answers and it runs as root on Debian, it says so,
installs docker.io and starts dockerd. The host is also the region's Fargate capacity, so
'aws ecs run-task --launch-type FARGATE' (and the built-in FARGATE / FARGATE_SPOT capacity
providers) work at once; --without-fargate leaves it out. With --capacity-provider NAME the local
instance joins the group of the Auto Scaling group capacity provider NAME.
--tls serves HTTPS/WSS with a self-signed certificate made on first use in DATA_DIR/tls (key
0600, names 127.0.0.1, ::1, localhost and the --listen host), trusted by the local agents; the
banner says how to trust it from the AWS CLI, boto3 and other agents.
--ha runs distributed mode on this machine: a three-member etcd cluster (installs etcd-server
with apt if missing; data in DATA_DIR/ha/etcd, left running on exit and adopted by the next
'wharf up --ha'), three 'wharf server --store etcd://...' replicas as child processes on the
--listen port and the next two (logs in DATA_DIR/ha), and the local agents joined to all three.
'wharf status' then shows which replica leads and the health of each replica and etcd member.

${AGENT_FLAGS}`;

function parseListen(s: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(s);
  if (!m) throw new Error(`--listen wants HOST:PORT, not '${s}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(m[2]) };
}

function parseLoadBalancers(v: string | undefined, haproxy: string | undefined): { enabled: boolean; haproxy?: string } {
  if (v !== undefined && v !== 'on' && v !== 'off') throw new Error(`--load-balancers must be on or off, not '${v}'`);
  return { enabled: v !== 'off', ...(haproxy ? { haproxy } : {}) };
}

function optionalMs(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} wants a whole number of milliseconds, not '${v}'`);
  return n;
}

async function cmdServer(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: `127.0.0.1:${DEFAULT_PORT}` },
      'data-dir': { type: 'string', default: defaultDataDir() },
      region: { type: 'string', default: 'us-east-1' },
      regions: { type: 'string' },
      'account-id': { type: 'string', default: '000000000000' },
      sync: { type: 'string', default: 'full' },
      'agent-timeout': { type: 'string' },
      'fargate-host-lost': { type: 'string' },
      'healthy-after-running': { type: 'string' },
      'heap-growth': { type: 'string' },
      dns: { type: 'string' },
      'scale-command': { type: 'string' },
      'vpc-base': { type: 'string' },
      'load-balancers': { type: 'string' },
      haproxy: { type: 'string' },
      store: { type: 'string', default: process.env.WHARF_STORE },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(SERVER_HELP);
  if (values.store?.startsWith('etcd:')) parseEtcdUrl(values.store);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const tls = values['tls-cert'] !== undefined ? { certFile: values['tls-cert'], keyFile: values['tls-key']! } : undefined;
  const loadBalancers = parseLoadBalancers(values['load-balancers'], values.haproxy);
  const dns = parseDnsFlag(values.dns);
  const vpcBase = parseVpcBase(values['vpc-base'], values.region!);
  applyHeapGrowth(parseHeapGrowth(values['heap-growth']));
  const agentTimeoutMs = optionalMs(values['agent-timeout'], '--agent-timeout');
  const poolHostLostMs = optionalMs(values['fargate-host-lost'], '--fargate-host-lost');
  const healthyAfterRunningMs = optionalMs(values['healthy-after-running'], '--healthy-after-running');
  if (!/^\d{12}$/.test(values['account-id']!)) throw new Error('--account-id must be 12 digits');
  const sync = values.sync!.toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error('--sync must be full or normal');
  const { host, port } = parseListen(values.listen!);
  const srv = await startServer({
    host,
    port,
    dataDir: values['data-dir']!,
    region: values.region!,
    regions: values.regions !== undefined ? parseRegionList(values.regions) : undefined,
    accountId: values['account-id']!,
    synchronous: sync,
    agentTimeoutMs,
    poolHostLostMs,
    healthyAfterRunningMs,
    dns,
    scaleCommand: values['scale-command'],
    vpcBase,
    loadBalancers,
    store: values.store,
    tls,
  });
  printBanner(srv.endpoint, values.region!, srv.credentials.user.accessKeyId, srv.credentials.user.secretAccessKey);
  const stop = async () => {
    process.stderr.write('\nwharf: shutting down\n');
    await srv.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function printBanner(endpoint: string, region: string, id: string, secret: string, caFile?: string): void {
  process.stdout.write(`
Wharf is running.
  Endpoint:           ${endpoint}
  Region:             ${region}
  Access key id:      ${id}
  Secret access key:  ${secret}

Try it with the AWS CLI:
  export AWS_ACCESS_KEY_ID=${id} AWS_SECRET_ACCESS_KEY=${secret} AWS_DEFAULT_REGION=${region}${caFile ? ` AWS_CA_BUNDLE=${caFile}` : ''}
  aws ecs create-cluster --cluster-name demo --endpoint-url ${endpoint}
  aws ecs list-clusters --endpoint-url ${endpoint}

`);
}

const agentOptions = {
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
function parseVpcBase(v: string | undefined, region: string): string | undefined {
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

function agentSettings(values: Record<string, unknown>) {
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
function readCa(path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read --ca ${path}: ${(e as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--ca ${path} holds no PEM certificate`);
  return pem;
}

async function cmdAgent(argv: string[]): Promise<void> {
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
  const credentials: KeyPair = values['join-token'] ? parseJoinToken(values['join-token']) : localAgentToken(values['data-dir']!, settings.cluster);
  const ca = values.ca !== undefined ? readCa(values.ca) : undefined;
  // --endpoint may list several replicas (distributed mode): any of them knows the default region.
  const region = values.region ?? (await serverDefaultRegion(values.endpoint!.split(',')[0]!, ca));
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

async function cmdUp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...agentOptions,
      listen: { type: 'string', default: `127.0.0.1:${DEFAULT_PORT}` },
      'data-dir': { type: 'string', default: defaultDataDir() },
      region: { type: 'string', default: 'us-east-1' },
      regions: { type: 'string' },
      'account-id': { type: 'string', default: '000000000000' },
      sync: { type: 'string', default: 'full' },
      'heap-growth': { type: 'string' },
      'scale-command': { type: 'string' },
      'vpc-base': { type: 'string' },
      'without-fargate': { type: 'boolean' },
      tls: { type: 'boolean' },
      dns: { type: 'string' },
      'load-balancers': { type: 'string' },
      haproxy: { type: 'string' },
      ha: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(UP_HELP);
  if (values.ha) ensureEtcdServer((s) => process.stderr.write(s + '\n'));
  if (values.fargate) throw new Error('wharf up offers this host as Fargate capacity already (--without-fargate to not)');
  applyHeapGrowth(parseHeapGrowth(values['heap-growth']));
  const settings = agentSettings(values);
  if (settings.runtime === 'docker') await ensureDocker((s) => process.stderr.write(s + '\n'));
  const loadBalancers = parseLoadBalancers(values['load-balancers'], values.haproxy);
  if (loadBalancers.enabled && values.haproxy === undefined) ensureHaproxy((s) => process.stderr.write(s + '\n'));
  const sync = values.sync!.toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error('--sync must be full or normal');
  const { host, port } = parseListen(values.listen!);
  const regions = values.regions !== undefined ? parseRegionList(values.regions) : undefined;
  const vpcBase = parseVpcBase(values['vpc-base'], values.region!);
  const tls = values.tls ? ensureSelfSignedCertificate(values['data-dir']!, [host], (s) => process.stderr.write(s + '\n')) : undefined;
  const srv = values.ha
    ? await upReplicas(values, host, port, tls)
    : await startServer({ host, port, dataDir: values['data-dir']!, region: values.region!, regions, accountId: values['account-id']!, synchronous: sync, dns: parseDnsFlag(values.dns), scaleCommand: values['scale-command'], vpcBase, loadBalancers, tls });
  const started: RunningAgents[] = [];
  const agents = {
    get agents() {
      return started.flatMap((a) => a.agents);
    },
    stop: async () => void (await Promise.all(started.map((a) => a.stop()))),
  };
  try {
    // Each local agent joins with a token bound to its own cluster (made on first start).
    const local = { endpoint: 'ha' in srv ? srv.ha.replicas.map((r) => r.endpoint).join(',') : srv.endpoint, region: values.region!, credentials: ensureAgentToken(values['data-dir']!, settings.cluster), dataDir: values['data-dir']!, ...(tls ? { ca: readFileSync(tls.certFile) } : {}) };
    // Tasks resolve through the server's DNS server (service discovery) when it listens on the
    // bridge gateway, where containers reach it.
    const bridge = dockerBridgeAddress();
    const taskDns = settings.dnsServers ?? (values['task-dns'] === 'off' ? undefined : srv.dns.filter((a) => a.host === bridge && a.port === 53).map((a) => a.host));
    const dnsServers = taskDns?.length ? taskDns : undefined;
    started.push(await startAgents({ ...settings, ...local, dnsServers }));
    // The same host is the region's Fargate capacity, so FARGATE and FARGATE_SPOT tasks run with
    // no extra step (a --capacity-provider group is the cluster instance's, not the pool's).
    const { [CAPACITY_PROVIDER_ATTRIBUTE]: _group, ...poolAttributes } = settings.attributes;
    if (!values['without-fargate']) started.push(await startAgents({ ...settings, ...local, credentials: ensureAgentToken(values['data-dir']!, FARGATE_POOL), dnsServers, attributes: poolAttributes, cluster: FARGATE_POOL, instances: 1 }));
  } catch (e) {
    await agents.stop();
    await srv.close();
    throw e;
  }
  printBanner(srv.endpoint, values.region!, srv.credentials.user.accessKeyId, srv.credentials.user.secretAccessKey, tls?.certFile);
  if (tls) process.stdout.write(trustInstructions(tls.certFile, srv.endpoint));
  if (values.ha && 'ha' in srv) process.stdout.write(haBanner(srv.ha));
  process.stdout.write(`Local agent: ${started[0]!.agents.length} container instance(s) in cluster ${settings.cluster} (${settings.runtime})${started.length > 1 ? ', and this host is the Fargate capacity of ' + values.region : ''}.\n\n`);
  const stop = async () => {
    process.stderr.write('\nwharf: shutting down (tasks keep running; they are adopted on the next start)\n');
    await agents.stop();
    await srv.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up':
      return cmdUp(rest);
    case 'server':
      return cmdServer(rest);
    case 'agent':
      return cmdAgent(rest);
    case 'logs':
      return cmdLogs(rest);
    case 'task-definition':
      return cmdTaskDefinition(rest);
    case 'credentials':
      return cmdCredentials(rest);
    case 'subnets':
      return cmdSubnets(rest);
    case 'status':
      return cmdStatus(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return;
    default:
      process.stderr.write(`wharf: unknown command '${cmd}'\n\n${HELP}`);
      process.exitCode = 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    if (e instanceof EcsCallError) process.stderr.write(`wharf: ${e.message}\n`);
    else process.stderr.write(`wharf: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
