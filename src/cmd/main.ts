/**
 * The `wharf` command line. Composition root: the only place that picks concretes (SQLite store,
 * Docker or simulated runtime).
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { parseEtcdUrl, startServer } from './server';
import { dockerBridgeAddress, parseDnsFlag, taskDnsWarning } from './dns';
import { parseRegionList } from '../core/regions';
import { AWS_REGIONS } from '../core/regions';
import { DEFAULT_VPC_BASE, defaultVpcCidr } from '../core/vpc';
import { applyHeapGrowth, parseHeapGrowth } from './heap-growth';
import { DEFAULT_TASK_ENDPOINT_PORT, startAgents, type RunningAgents } from './agent';
import { AGENT_FLAGS, AGENT_HELP, agentOptions, agentSettings, cmdAgent, parseVpcBase } from './agent-command';
import { CAPACITY_PROVIDER_ATTRIBUTE } from '../control/capacity-providers';
import { FARGATE_POOL } from '../core/fargate-pool';
import { ensureDocker, ensureEtcdServer, ensureHaproxy } from './docker-setup';
import { haBanner, upReplicas } from './up-ha';
import { cmdStatus } from './status';
import { lockUp } from './up-lock';
import { ensureAgentToken } from './agent-tokens';
import { DEFAULT_PORT, EcsCallError, defaultDataDir } from './client';
import { cmdCredentials, cmdLogs, cmdSubnets, cmdTaskDefinition } from './client-commands';
import { ensureSelfSignedCertificate, trustInstructions } from './tls';

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
  --advertise-url URL    the URL agents and the other replicas are told to use for this server
                         (http[s]://HOST:PORT), when it is not the --listen address: behind NAT or
                         a proxy, or for agents in other network namespaces (with --tls-cert, a
                         name or address its certificate holds). Default: the --listen
                         address; on 0.0.0.0 or ::, the address of the interface of this host's
                         default route (the log says which)
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
                         subnets the first /20s; us-east-1 is region ${AWS_REGIONS.indexOf('us-east-1')}, at
                         ${defaultVpcCidr('us-east-1')} by default; \`wharf subnets\` shows them); each
                         subnet is a Docker network on the hosts, so pick a range no network of
                         theirs uses
  --heap-growth PERCENT  let the heap grow at most this far past its live data before a full
                         garbage collection (default 50; 0 = V8's own sizing, faster, ~3x the memory)
  --dns ADDR:PORT,...    where the service discovery DNS server answers (Cloud Map private DNS
                         namespaces; other names are forwarded to /etc/resolv.conf's servers).
                         Default: 127.0.0.1:53 and the Docker bridge gateway (docker0):53, each
                         skipped with a warning if it cannot be bound; 'off' disables it.
                         With --store etcd://..., an address another replica holds is waited
                         for (standby) and taken over when that replica dies
  --scale-command CMD    run CMD (through sh -c) when the desired instance count of an Auto
                         Scaling group capacity provider with managed scaling changes: $1 is the
                         provider, $2 the count; WHARF_* variables say the rest (see
                         docs/ARCHITECTURE.md "Capacity providers"). A run not done after
                         5 minutes is killed (its process group) and logged as failed
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

const UP_HELP = `wharf up: the control plane and one local agent in one command (cluster 'default')

Takes the flags of 'wharf server' (--listen, --data-dir, --region, --regions, --account-id,
--sync, --heap-growth, --dns, --vpc-base, --scale-command, --load-balancers, --haproxy; the local
agent joins --region) and of
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
Every replica gets --dns: one holds each address, the others stand by to take it over. Replicas
left running by a 'wharf up --ha' that was killed are adopted by the next one, not started twice
(or replaced one at a time when this run's flags differ from theirs). While it runs, a replica or
etcd member that dies is started again (the same member, on its data), at once and then after
growing waits (1 s doubling to 30 s) if it keeps dying; its log says each time.
'wharf status' then shows which replica leads and the health of each replica and etcd member.
--etcd-ports FIRST (with --ha) puts the etcd members on 127.0.0.1 ports FIRST to FIRST+5: member
m1 client FIRST, peer FIRST+1; m2 FIRST+2 and FIRST+3; m3 FIRST+4 and FIRST+5 (default: free
ports). Ports are chosen when the cluster is made and kept in DATA_DIR/ha/etcd/members.json, as
a member's peer address is part of the cluster's state: a later --etcd-ports must match them.

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
      'advertise-url': { type: 'string' },
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
    advertiseUrl: values['advertise-url'],
  });
  printBanner(srv.advertisedEndpoint, values.region!, srv.credentials.user.accessKeyId, srv.credentials.user.secretAccessKey);
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
  Console:            ${endpoint}/console/

Try it with the AWS CLI:
  export AWS_ACCESS_KEY_ID=${id} AWS_SECRET_ACCESS_KEY=${secret} AWS_DEFAULT_REGION=${region}${caFile ? ` AWS_CA_BUNDLE=${caFile}` : ''}
  aws ecs create-cluster --cluster-name demo --endpoint-url ${endpoint}
  aws ecs list-clusters --endpoint-url ${endpoint}

`);
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
      'etcd-ports': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(UP_HELP);
  // Before anything starts: a second `wharf up` here would double the agents and the replicas.
  if (values['etcd-ports'] !== undefined && !values.ha) throw new Error('--etcd-ports goes with --ha');
  const lock = lockUp(values['data-dir']!);
  if (values.ha) ensureEtcdServer((s) => process.stderr.write(s + '\n'));
  if (values.fargate) throw new Error('wharf up offers this host as Fargate capacity already (--without-fargate to not)');
  applyHeapGrowth(parseHeapGrowth(values['heap-growth']));
  // The server's data dir (root key, users, secrets' key) is on this very host: no task of the
  // local agents may bind-mount it, whoever was allowed to run the task (README, Users).
  const protectedDir = { path: resolvePath(values['data-dir']!), what: "the Wharf server's data directory" };
  const agentFlags = agentSettings(values);
  const settings = { ...agentFlags, hostPolicy: { ...agentFlags.hostPolicy, protectedHostPaths: [protectedDir] } };
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
  let dnsServers: string[] | undefined;
  let dnsWarning: string | undefined;
  const agents = {
    get agents() {
      return started.flatMap((a) => a.agents);
    },
    stop: async () => void (await Promise.all(started.map((a) => a.stop()))),
  };
  try {
    // Each local agent joins with a token bound to its own cluster (made on first start).
    const local = { endpoint: 'ha' in srv ? srv.ha.replicas.map((r) => r.endpoint).join(',') : srv.endpoint, region: values.region!, credentials: ensureAgentToken(values['data-dir']!, settings.cluster, values.region!), dataDir: values['data-dir']!, ...(tls ? { ca: readFileSync(tls.certFile) } : {}) };
    // Tasks resolve through the server's DNS server (service discovery) when it listens on the
    // bridge gateway, where containers reach it.
    const bridge = dockerBridgeAddress();
    const taskDns = settings.dnsServers ?? (values['task-dns'] === 'off' ? undefined : srv.dns.filter((a) => a.host === bridge && a.port === 53).map((a) => a.host));
    dnsServers = taskDns?.length ? taskDns : undefined;
    if (settings.runtime === 'docker') dnsWarning = taskDnsWarning({ bridge, serving: srv.dns, taskDns: dnsServers, dnsFlag: values.dns, taskDnsFlag: values['task-dns'] as string | undefined });
    started.push(await startAgents({ ...settings, ...local, dnsServers }));
    // The same host is the region's Fargate capacity, so FARGATE and FARGATE_SPOT tasks run with
    // no extra step (a --capacity-provider group is the cluster instance's, not the pool's).
    const { [CAPACITY_PROVIDER_ATTRIBUTE]: _group, ...poolAttributes } = settings.attributes;
    // Its task endpoint (ECS_AGENT_URI) on the next port: the cluster's agent holds the first.
    const poolEndpoint = settings.taskEndpoint === false ? false : { ...settings.taskEndpoint, port: (settings.taskEndpoint?.port ?? DEFAULT_TASK_ENDPOINT_PORT) + 1 };
    if (!values['without-fargate']) started.push(await startAgents({ ...settings, ...local, credentials: ensureAgentToken(values['data-dir']!, FARGATE_POOL, values.region!), dnsServers, attributes: poolAttributes, cluster: FARGATE_POOL, instances: 1, taskEndpoint: poolEndpoint }));
  } catch (e) {
    await agents.stop();
    await srv.close();
    throw e;
  }
  printBanner(srv.endpoint, values.region!, srv.credentials.user.accessKeyId, srv.credentials.user.secretAccessKey, tls?.certFile);
  if (tls) process.stdout.write(trustInstructions(tls.certFile, srv.endpoint));
  if (values.ha && 'ha' in srv) process.stdout.write(haBanner(srv.ha));
  process.stdout.write(`Local agent: ${started[0]!.agents.length} container instance(s) in cluster ${settings.cluster} (${settings.runtime})${started.length > 1 ? ', and this host is the Fargate capacity of ' + values.region : ''}.\n`);
  process.stdout.write(dnsServers ? `Its tasks resolve names through Wharf's DNS at ${dnsServers.join(', ')} (service discovery, then this host's resolvers).\n\n` : '\n');
  if (dnsWarning) process.stderr.write(`wharf: warning: ${dnsWarning}\n\n`);
  const stop = async () => {
    process.stderr.write('\nwharf: shutting down (tasks keep running; they are adopted on the next start)\n');
    await agents.stop();
    await srv.close();
    lock.release();
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
