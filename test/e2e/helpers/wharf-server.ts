/**
 * Shared end-to-end helpers: a real Wharf control plane (SQLite store, SigV4, HTTP) in a temp
 * dir on 127.0.0.1:0, and the three kinds of client a user has: the AWS SDK for JavaScript v3,
 * boto3 (through the python3 that has it) and the AWS CLI v2 (/usr/bin/aws), all with credentials from the
 * environment and `--endpoint-url`, exactly as a user would call them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import type { DnsSettings } from '../../../src/cmd/dns';
import type { LoadBalancerSettings } from '../../../src/cmd/load-balancers';
import { startServer, type RunningServer } from '../../../src/cmd/server';
import { createLogger, signRequest, type Logger } from '../../../src/lib';
import { AWS_CLI_V2, pythonWithBoto3 } from '../../preflight/test-deps';

export const REGION = 'us-east-1';
export const ACCOUNT_ID = '123456789012';
/**
 * The tests' VPC ranges (region i: 10.(160+i).0.0/16), away from the default (10.100) that a
 * `wharf up` the user keeps running on this machine uses: each subnet is a Docker network, and
 * Docker refuses a second network over the same range ("Pool overlaps with other one on this
 * address space"), which failed every awsvpc task of the tests while `npm start` ran beside them.
 */
export const TEST_VPC_BASE = '10.160';
export const TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113';
export const REPO = path.join(__dirname, '..', '..', '..');
/** The AWS CLI v2 from Debian; the first `aws` on PATH may be v1. */
export const AWS_CLI = AWS_CLI_V2;

export interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface TestServer {
  endpoint: string;
  dataDir: string;
  keys: Keys;
  /** The server's default region; its clients sign for it. */
  region: string;
  server: RunningServer;
  /** An SDK v3 client pointed at the server. */
  ecs(overrides?: Partial<Keys> & { region?: string }): ECSClient;
  /** Environment for a child process (AWS CLI, boto3, wharf CLI) with the server's credentials. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /**
   * Stops the server. Its HAProxy (load balancers) is stopped too and its addresses taken off
   * wharf-elb0, so no test leaves one behind; `keepLoadBalancers` leaves HAProxy serving, as a
   * normal stop of `wharf server` does, for a restart on the same data dir to adopt.
   */
  close(opts?: { keepLoadBalancers?: boolean }): Promise<void>;
}

export async function startTestServer(
  opts: { region?: string; regions?: string[]; accountId?: string; dataDir?: string; log?: Logger; dns?: DnsSettings; loadBalancers?: LoadBalancerSettings } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-e2e-'));
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    region: opts.region ?? REGION,
    regions: opts.regions,
    accountId: opts.accountId ?? ACCOUNT_ID,
    // NORMAL keeps the tests quick; the durability test runs the real binary with FULL.
    synchronous: 'NORMAL',
    log: opts.log ?? createLogger('wharf-e2e', process.env.WHARF_LOG_LEVEL ?? 'silent'),
    dns: opts.dns,
    loadBalancers: opts.loadBalancers,
    vpcBase: TEST_VPC_BASE,
  });
  const keys = server.credentials.user;
  const region = opts.region ?? REGION;
  const clients: ECSClient[] = [];
  return {
    endpoint: server.endpoint,
    dataDir,
    keys,
    region,
    server,
    ecs(overrides = {}) {
      const { region: inRegion, ...keyOverrides } = overrides;
      const c = new ECSClient({
        endpoint: server.endpoint,
        region: inRegion ?? region,
        credentials: { ...keys, ...keyOverrides },
        maxAttempts: 1,
      });
      clients.push(c);
      return c;
    },
    env(extra = {}) {
      return childEnv(keys, region, extra);
    },
    async close(closeOpts = {}) {
      for (const c of clients) c.destroy();
      const lbs = server.loadBalancers;
      await server.close();
      if (lbs && !closeOpts.keepLoadBalancers) await lbs.stop();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A clean environment for AWS tools: credentials from env only, no config files, no pager. */
export function childEnv(keys: Keys, region = REGION, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'PYENV_ROOT', 'PYENV_VERSION']) if (process.env[k]) env[k] = process.env[k];
  return {
    ...env,
    AWS_ACCESS_KEY_ID: keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    AWS_DEFAULT_REGION: region,
    AWS_REGION: region,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_MAX_ATTEMPTS: '1',
    WHARF_LOG_LEVEL: 'silent',
    ...extra,
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    };
    child.on('close', finish);
    // 'close' waits for the pipes too: a grandchild that kept them (a pager, a daemon) would hold
    // the caller forever after the command itself exited.
    child.on('exit', (code) =>
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code);
      }, 2000).unref(),
    );
    child.stdin.end(input ?? '');
  });
}

/**
 * `aws ecs <args> --endpoint-url E --output json`; parses stdout when it is JSON. Takes an
 * in-process TestServer or a spawned server process (anything with an endpoint and an env).
 */
export async function awsCli(srv: Pick<TestServer, 'endpoint' | 'env'>, args: string[], env: Record<string, string> = {}, timeoutMs?: number): Promise<RunResult & { json: any }> {
  const r = await run(AWS_CLI, ['ecs', ...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env(env), undefined, timeoutMs);
  let json: any;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/**
 * Runs a boto3 snippet. The snippet sees `ecs` and `ec2` (boto3 clients on the server), `inp` (the
 * JSON given here) and `out(value)` which prints JSON for the test to read.
 */
export async function boto3(srv: TestServer, snippet: string, inp: unknown = null): Promise<any> {
  const prelude = [
    'import json, sys, datetime, boto3, botocore',
    'from botocore.config import Config',
    `ecs = boto3.client("ecs", endpoint_url=${JSON.stringify(srv.endpoint)}, config=Config(retries={"max_attempts": 1}))`,
    `ec2 = boto3.client("ec2", endpoint_url=${JSON.stringify(srv.endpoint)}, config=Config(retries={"max_attempts": 1}))`,
    'inp = json.loads(sys.stdin.read() or "null")',
    'def _default(o):',
    '    if isinstance(o, datetime.datetime): return {"$datetime": o.timestamp()}',
    '    raise TypeError(repr(o))',
    'def out(v): print(json.dumps(v, default=_default))',
  ].join('\n');
  const python = pythonWithBoto3();
  if (!python) throw new Error('no python3 here imports boto3: install python3-boto3 (`npm test` does so as root)');
  const r = await run(python, ['-c', `${prelude}\n${snippet}`], srv.env(), JSON.stringify(inp));
  if (r.code !== 0) throw new Error(`boto3 snippet failed (${r.code}): ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return last ? JSON.parse(last) : undefined;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/**
 * A raw JSON 1.1 call. By default it is signed with the given keys; `sign: false` sends it
 * unsigned, and `tamper` may change the request after signing (to test wrong signatures).
 */
export async function rawCall(
  endpoint: string,
  keys: Keys | undefined,
  target: string | undefined,
  body: string | Buffer,
  opts: { region?: string; service?: string; tamper?: (h: Record<string, string>) => void; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const url = endpoint.replace(/\/?$/, '/');
  const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', ...(opts.headers ?? {}) };
  if (target !== undefined) headers['x-amz-target'] = target;
  if (keys) {
    Object.assign(headers, signRequest({ method: 'POST', url, headers, body }, { ...keys, region: opts.region ?? REGION, service: opts.service ?? 'ecs' }));
    delete headers.host;
  }
  opts.tamper?.(headers);
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A signed call of one ECS operation with a JSON body. */
export function ecsCall(srv: TestServer, operation: string, input: unknown): Promise<RawResponse> {
  return rawCall(srv.endpoint, srv.keys, `${TARGET_PREFIX}.${operation}`, JSON.stringify(input), { region: srv.region });
}

/** A small valid EC2 task definition for family `family`. */
export function simpleTaskDefinition(family: string, extra: Record<string, unknown> = {}): any {
  return {
    family,
    containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, command: ['sleep', '3600'] }],
    ...extra,
  };
}

/** The error an SDK v3 call fails with (its `name` is the ECS error code). */
export async function sdkError(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/** The default subnets of the server's region by zone (`us-east-1a` -> `subnet-...`), as `aws ec2 describe-subnets` lists them. */
export async function defaultSubnets(srv: Pick<TestServer, 'endpoint' | 'env'>, region?: string): Promise<Record<string, { id: string; cidr: string }>> {
  const r = await run(AWS_CLI, ['ec2', 'describe-subnets', '--endpoint-url', srv.endpoint, '--output', 'json', ...(region ? ['--region', region] : [])], srv.env());
  if (r.code !== 0) throw new Error(`describe-subnets failed: ${r.stderr}`);
  const out: Record<string, { id: string; cidr: string }> = {};
  for (const s of JSON.parse(r.stdout).Subnets) out[s.AvailabilityZone] = { id: s.SubnetId, cidr: s.CidrBlock };
  return out;
}

/** `--network-configuration` for the AWS CLI: every default subnet of the server's region, no public IP. */
export async function defaultSubnetsNetwork(srv: Pick<TestServer, 'endpoint' | 'env'>): Promise<string[]> {
  const ids = Object.values(await defaultSubnets(srv)).map((s) => s.id);
  return ['--network-configuration', `awsvpcConfiguration={subnets=[${ids.join(',')}],assignPublicIp=DISABLED}`];
}

/**
 * What STS answers GetSessionToken signed with `keys`, as `Code: Message` (the console's login
 * shows STS's answer verbatim; tests compare the page with this).
 */
export async function stsGetSessionTokenError(srv: { endpoint: string; region: string }, keys: { accessKeyId: string; secretAccessKey: string }): Promise<string> {
  const url = `${srv.endpoint}/`;
  const body = 'Action=GetSessionToken&Version=2011-06-15';
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
  Object.assign(headers, signRequest({ method: 'POST', url, headers, body }, { ...keys, region: srv.region, service: 'sts' }));
  delete headers.host;
  const text = await (await fetch(url, { method: 'POST', headers, body })).text();
  const field = (n: string) => new RegExp(`<${n}>([^<]*)</${n}>`).exec(text)?.[1];
  return `${field('Code')}: ${field('Message')}`;
}
