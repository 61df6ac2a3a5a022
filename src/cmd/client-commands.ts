/**
 * The `wharf` commands that talk to a running server as a client does (logs, task-definition
 * register, subnets, credentials), apart from the composition roots in main.ts.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseLenientTaskDefinition } from '../api/ecs/lenient-json';
import { idOf } from '../core/arn';
import { DockerRuntime, streamTaskLogs } from '../agent';
import { DEFAULT_ENDPOINT, Ec2Client, EcsClient, defaultDataDir, resolveCredentials } from './client';
import { credentialsPath, joinToken, type CredentialsFile } from './credentials';
import { CREDENTIALS_HELP, cmdCredentialUsers } from './credentials-commands';
import { cmdAgentTokens } from './agent-tokens';

const LOGS_HELP = `wharf logs TASK [CONTAINER]: print a task's container output

TASK is a task id or ARN; CONTAINER defaults to the task's only (or first) container.
Flags:
  --cluster NAME   the task's cluster (default: the one a task ARN names, else 'default')
  --follow, -f     keep following the output
  --endpoint URL   the Wharf endpoint (default ${DEFAULT_ENDPOINT})
  --ca FILE        PEM certificate(s) an https endpoint must chain to (default $AWS_CA_BUNDLE)
  --data-dir DIR   a server's data dir on this host, for its root key when AWS_ACCESS_KEY_ID and
                   AWS_SECRET_ACCESS_KEY are not set (default $WHARF_DATA_DIR, else ~/.wharf)
Reads the containers of this host's Docker Engine (run it where the task runs).
`;

const TD_HELP = `wharf task-definition register: register a task definition from a file

Flags:
  --file FILE            the task definition JSON (as for 'aws ecs register-task-definition
                         --cli-input-json'); trailing commas, comments and numbers written as
                         strings are normalised, and each normalisation is reported
  --endpoint URL         the Wharf endpoint (default ${DEFAULT_ENDPOINT})
  --ca FILE              PEM certificate(s) an https endpoint must chain to (default $AWS_CA_BUNDLE)
  --data-dir DIR         where to find the local server's credentials when AWS_ACCESS_KEY_ID and
                         AWS_SECRET_ACCESS_KEY are not set (default $WHARF_DATA_DIR or ~/.wharf)
`;

/** The cluster `wharf logs` asks about: --cluster, else the one a task ARN names (arn:...:task/CLUSTER/ID), else default. */
export function logsCluster(given: string | undefined, task: string): string {
  return given ?? idOf(task, 'task').cluster ?? 'default';
}

export async function cmdLogs(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      cluster: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      endpoint: { type: 'string', default: process.env.WHARF_ENDPOINT ?? DEFAULT_ENDPOINT },
      ca: { type: 'string' },
      'data-dir': { type: 'string', default: defaultDataDir() },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(LOGS_HELP);
    if (!values.help) process.exitCode = 2;
    return;
  }
  const client = new EcsClient(values.endpoint!, resolveCredentials(values['data-dir']), undefined, values.ca);
  const cluster = logsCluster(values.cluster, positionals[0]!);
  const out = await client.call('DescribeTasks', { cluster, tasks: [positionals[0]] });
  const task = out.tasks?.[0];
  if (!task) throw new Error(`task ${positionals[0]} not found in cluster ${cluster}`);
  const containerName = positionals[1] ?? task.containers?.[0]?.name;
  if (!task.containers?.some((c: { name: string }) => c.name === containerName)) {
    throw new Error(`task has no container '${containerName}' (it has: ${task.containers.map((c: { name: string }) => c.name).join(', ')})`);
  }
  const runtime = new DockerRuntime();
  const stream = await streamTaskLogs(runtime, { taskArn: task.taskArn, containerName }, { follow: values.follow ?? false });
  stream.pipe(process.stdout);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
}

export async function cmdTaskDefinition(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'register') {
    process.stdout.write(TD_HELP);
    if (sub !== '--help' && sub !== '-h') process.exitCode = 2;
    return;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      file: { type: 'string' },
      endpoint: { type: 'string', default: process.env.WHARF_ENDPOINT ?? DEFAULT_ENDPOINT },
      ca: { type: 'string' },
      'data-dir': { type: 'string', default: defaultDataDir() },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.file) {
    process.stdout.write(TD_HELP);
    if (!values.help) process.exitCode = 2;
    return;
  }
  const text = readFileSync(values.file, 'utf8');
  const { value, notes } = parseLenientTaskDefinition(text);
  for (const n of notes) process.stderr.write(`normalised: ${n}\n`);
  const client = new EcsClient(values.endpoint!, resolveCredentials(values['data-dir']), undefined, values.ca);
  const out = await client.call('RegisterTaskDefinition', value);
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

const SUBNETS_HELP = `wharf subnets: print the region's default VPC and its subnets, one per availability zone
(what awsvpc tasks name in --network-configuration)

Flags:
  --region REGION  the region (default $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)
  --endpoint URL   the Wharf endpoint (default ${DEFAULT_ENDPOINT})
  --ca FILE        PEM certificate(s) an https endpoint must chain to (default $AWS_CA_BUNDLE)
  --data-dir DIR   where to find the local server's credentials when AWS_ACCESS_KEY_ID and
                   AWS_SECRET_ACCESS_KEY are not set (default $WHARF_DATA_DIR or ~/.wharf)
`;

export async function cmdSubnets(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      region: { type: 'string' },
      endpoint: { type: 'string', default: process.env.WHARF_ENDPOINT ?? DEFAULT_ENDPOINT },
      ca: { type: 'string' },
      'data-dir': { type: 'string', default: defaultDataDir() },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(SUBNETS_HELP);
  const client = new Ec2Client(values.endpoint!, resolveCredentials(values['data-dir']), values.region, values.ca);
  const vpcs = await client.list('DescribeVpcs', 'vpcSet');
  const subnets = await client.list('DescribeSubnets', 'subnetSet');
  const rows: string[][] = [['VPC', 'CIDR', 'DEFAULT']];
  for (const v of vpcs) rows.push([v.vpcId ?? '', v.cidrBlock ?? '', v.isDefault === 'true' ? 'yes' : 'no']);
  const table = (r: string[][]) => {
    const w = r[0]!.map((_, i) => Math.max(...r.map((x) => (x[i] ?? '').length)));
    return r.map((x) => x.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n';
  };
  process.stdout.write(`Region ${client.region}\n${table(rows)}\n`);
  const srows: string[][] = [['SUBNET', 'ZONE', 'CIDR', 'DEFAULT', 'VPC']];
  for (const s of subnets) srows.push([s.subnetId ?? '', s.availabilityZone ?? '', s.cidrBlock ?? '', s.defaultForAz === 'true' ? 'yes' : 'no', s.vpcId ?? '']);
  process.stdout.write(table(srows));
}

export async function cmdCredentials(argv: string[]): Promise<void> {
  // Users and their policies (create, list, rotate, delete) live in credentials-commands.ts.
  if (argv[0] !== undefined && !argv[0].startsWith('-') && cmdCredentialUsers(argv[0], argv.slice(1))) return;
  if (argv[0] !== undefined && !argv[0].startsWith('-')) throw new Error(`wharf credentials: unknown subcommand '${argv[0]}' (create, list, rotate, delete)`);
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: defaultDataDir() },
      agent: { type: 'boolean' },
      // Join tokens (cmd/agent-tokens.ts): --agent --cluster C | --list | --revoke KEYID.
      cluster: { type: 'string' },
      region: { type: 'string' },
      list: { type: 'boolean' },
      revoke: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.agent) return cmdAgentTokens(values['data-dir']!, { cluster: values.cluster, region: values.region, list: values.list, revoke: values.revoke, help: values.help });
  if (values.help) return void process.stdout.write(CREDENTIALS_HELP);
  const k = resolveCredentials(values['data-dir']);
  process.stdout.write(`export AWS_ACCESS_KEY_ID=${k.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${k.secretAccessKey}\n${k.sessionToken ? `export AWS_SESSION_TOKEN=${k.sessionToken}\n` : ''}`);
}
