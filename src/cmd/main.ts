/**
 * The `wharf` command line. Composition root: the only place that picks concretes (SQLite store,
 * Docker or simulated runtime).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseLenientTaskDefinition } from '../api/ecs/lenient-json';
import { startServer } from './server';
import { DEFAULT_ENDPOINT, DEFAULT_PORT, EcsCallError, EcsClient, defaultDataDir, resolveCredentials } from './client';

const HELP = `wharf: a self-hosted container orchestrator that speaks the Amazon ECS API

Usage: wharf <command> [flags]

Commands:
  server                      run the control plane (ECS API) with the embedded store
  task-definition register    register a task definition from a JSON file (lenient: trailing
                              commas and numbers written as strings are accepted and reported)
  credentials                 print the credentials of the local server as shell exports

Run 'wharf <command> --help' for a command's flags.
`;

const SERVER_HELP = `wharf server: run the control plane (ECS API, SigV4-authenticated) with the embedded SQLite store

Flags:
  --listen HOST:PORT     address to listen on (default 127.0.0.1:${DEFAULT_PORT})
  --data-dir DIR         where the store and credentials live (default $WHARF_DATA_DIR or ~/.wharf)
  --region REGION        region used in ARNs and expected in signatures' scope (default us-east-1)
  --account-id ID        12-digit account id used in ARNs (default 000000000000)
  --sync full|normal     SQLite synchronous mode: full (default) never loses an acknowledged
                         write on power loss; normal is faster and still safe against crashes
  -h, --help             this help

Credentials are generated on first start and kept in DATA_DIR/credentials.json, unless
WHARF_ACCESS_KEY_ID and WHARF_SECRET_ACCESS_KEY are set.
`;

const TD_HELP = `wharf task-definition register: register a task definition from a file

Flags:
  --file FILE            the task definition JSON (as for 'aws ecs register-task-definition
                         --cli-input-json'); trailing commas, comments and numbers written as
                         strings are normalised, and each normalisation is reported
  --endpoint URL         the Wharf endpoint (default ${DEFAULT_ENDPOINT})
  --data-dir DIR         where to find the local server's credentials when AWS_ACCESS_KEY_ID and
                         AWS_SECRET_ACCESS_KEY are not set (default $WHARF_DATA_DIR or ~/.wharf)
`;

function parseListen(s: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(s);
  if (!m) throw new Error(`--listen wants HOST:PORT, not '${s}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(m[2]) };
}

async function cmdServer(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: `127.0.0.1:${DEFAULT_PORT}` },
      'data-dir': { type: 'string', default: defaultDataDir() },
      region: { type: 'string', default: 'us-east-1' },
      'account-id': { type: 'string', default: '000000000000' },
      sync: { type: 'string', default: 'full' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(SERVER_HELP);
  if (!/^\d{12}$/.test(values['account-id']!)) throw new Error('--account-id must be 12 digits');
  const sync = values.sync!.toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error('--sync must be full or normal');
  const { host, port } = parseListen(values.listen!);
  const srv = await startServer({ host, port, dataDir: values['data-dir']!, region: values.region!, accountId: values['account-id']!, synchronous: sync });
  printBanner(srv.endpoint, values.region!, srv.credentials.user.accessKeyId, srv.credentials.user.secretAccessKey);
  const stop = async () => {
    process.stderr.write('\nwharf: shutting down\n');
    await srv.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function printBanner(endpoint: string, region: string, id: string, secret: string): void {
  process.stdout.write(`
Wharf is running.
  Endpoint:           ${endpoint}
  Region:             ${region}
  Access key id:      ${id}
  Secret access key:  ${secret}

Try it with the AWS CLI:
  export AWS_ACCESS_KEY_ID=${id} AWS_SECRET_ACCESS_KEY=${secret} AWS_DEFAULT_REGION=${region}
  aws ecs create-cluster --cluster-name demo --endpoint-url ${endpoint}
  aws ecs list-clusters --endpoint-url ${endpoint}

`);
}

async function cmdTaskDefinition(argv: string[]): Promise<void> {
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
  const client = new EcsClient(values.endpoint!, resolveCredentials(values['data-dir']));
  const out = await client.call('RegisterTaskDefinition', value);
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

async function cmdCredentials(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'data-dir': { type: 'string', default: defaultDataDir() } } });
  const k = resolveCredentials(values['data-dir']);
  process.stdout.write(`export AWS_ACCESS_KEY_ID=${k.accessKeyId}\nexport AWS_SECRET_ACCESS_KEY=${k.secretAccessKey}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'server':
      return cmdServer(rest);
    case 'task-definition':
      return cmdTaskDefinition(rest);
    case 'credentials':
      return cmdCredentials(rest);
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
