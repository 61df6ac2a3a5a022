/**
 * Agent join tokens (issue 12): key pairs an agent registers with, each bound to one cluster,
 * kept in `<dataDir>/agent-tokens.json` (0600; the directory is 0700) and managed with
 * `wharf credentials --agent --cluster C` (creates and prints one), `--list`, `--revoke <key id>`.
 *
 * A join token can do one thing: RegisterContainerInstance into its cluster, which answers with
 * the instance credential the agent uses from then on (control/instance-credentials.ts). So a
 * leaked token lets someone add a host to that cluster, never speak for an existing instance.
 *
 * Legacy tokens: data dirs from before had unbound tokens in credentials.json (`agentTokens`).
 * The first time this file is made it takes them over as tokens bound to no cluster, so existing
 * agents keep joining (into any cluster, as before, but each still gets an instance credential
 * bound to its instance); the server warns about them at start, `--list` shows them as
 * `(any cluster)`, and `--revoke` removes them. From then on this file alone is read.
 *
 * The running server sees changes without a restart: it looks at the file's mtime and size
 * whenever a key id it does not know as a user or an instance is presented (a registration, or
 * an unknown key), and reads it again when they changed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Principal } from '../control';
import { parseArn } from '../core/arn';
import { FARGATE_POOL } from '../core/fargate-pool';
import { isRegionName } from '../core/regions';
import type { KeyPair } from './credentials';

export interface AgentToken extends KeyPair {
  /** The one cluster it may register into; absent on a legacy token (any cluster). */
  cluster?: string;
  /**
   * The region of that cluster (`--region R`, or the region of a cluster ARN); absent: the
   * cluster of that name in any region, as tokens made before regions were bound.
   */
  region?: string;
  /** ISO time it was made (absent on legacy tokens). */
  createdAt?: string;
}

interface AgentTokensFile {
  tokens: AgentToken[];
}

export const AGENT_TOKEN_PREFIX = 'AKIAWAGENT';

export function agentTokensPath(dataDir: string): string {
  return join(dataDir, 'agent-tokens.json');
}

function newToken(cluster: string, region: string | undefined, now: Date): AgentToken {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = AGENT_TOKEN_PREFIX + [...randomBytes(20 - AGENT_TOKEN_PREFIX.length)].map((b) => abc[b % abc.length]).join('');
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64url'), cluster, ...(region !== undefined ? { region } : {}), createdAt: now.toISOString() };
}

function write(dataDir: string, file: AgentTokensFile): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = agentTokensPath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600); // whatever the umask
  renameSync(tmp, path);
}

/** The legacy tokens of credentials.json, if any (read without depending on that file's shape). */
function legacyTokens(dataDir: string): AgentToken[] {
  try {
    const c = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as { agentTokens?: unknown };
    if (!Array.isArray(c.agentTokens)) return [];
    return c.agentTokens.filter((t): t is KeyPair => typeof t?.accessKeyId === 'string' && typeof t?.secretAccessKey === 'string').map((t) => ({ accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey }));
  } catch {
    return [];
  }
}

/** The tokens of a data dir; the file is made (with the legacy tokens) on first use. */
export function loadAgentTokens(dataDir: string): AgentToken[] {
  const path = agentTokensPath(dataDir);
  if (!existsSync(path)) write(dataDir, { tokens: legacyTokens(dataDir) });
  const file = JSON.parse(readFileSync(path, 'utf8')) as AgentTokensFile;
  return Array.isArray(file.tokens) ? file.tokens : [];
}

export function createAgentToken(dataDir: string, cluster: string, now = new Date(), region?: string): AgentToken {
  const tokens = loadAgentTokens(dataDir);
  const t = newToken(cluster, region, now);
  write(dataDir, { tokens: [...tokens, t] });
  return t;
}

/** Removes a token; false if there was none with that key id. */
export function revokeAgentToken(dataDir: string, accessKeyId: string): boolean {
  const tokens = loadAgentTokens(dataDir);
  const kept = tokens.filter((t) => t.accessKeyId !== accessKeyId);
  if (kept.length === tokens.length) return false;
  write(dataDir, { tokens: kept });
  return true;
}

/**
 * A token bound to `cluster` (in `region`, when given), made if there is none (`wharf up`'s own
 * agents). A token of the cluster bound to no region (made before regions were bound) will do.
 */
export function ensureAgentToken(dataDir: string, cluster: string, region?: string): AgentToken {
  const tokens = loadAgentTokens(dataDir).filter((t) => t.cluster === cluster);
  return tokens.find((t) => t.region === region) ?? tokens.find((t) => t.region === undefined) ?? createAgentToken(dataDir, cluster, new Date(), region);
}

/**
 * The token a local agent (`wharf agent` without --join-token) uses from the data dir it shares
 * with the server: one bound to its cluster (and region, else to no region), else a legacy
 * unbound one. Never a user's key.
 */
export function localAgentToken(dataDir: string, cluster: string, region?: string): AgentToken {
  const tokens = existsSync(agentTokensPath(dataDir)) ? loadAgentTokens(dataDir) : legacyTokens(dataDir);
  const ofCluster = tokens.filter((x) => x.cluster === cluster);
  const t = ofCluster.find((x) => x.region === region) ?? ofCluster.find((x) => x.region === undefined) ?? tokens.find((x) => x.cluster === undefined);
  if (!t) throw new Error(`no join token for cluster ${cluster} in ${dataDir}: create one with \`wharf credentials --agent --cluster ${cluster}\` and pass it with --join-token`);
  return t;
}

/**
 * The server's view of the tokens: key id -> secret and principal, read again when the file
 * changes (mtime or size), so `--agent --cluster`/`--revoke` take effect without a restart.
 */
export class AgentTokenTable {
  private byId = new Map<string, { secret: string; principal: Principal }>();
  private seen = '';

  constructor(
    private readonly dataDir: string,
    private readonly onLoad?: (tokens: AgentToken[]) => void,
  ) {
    this.refresh();
  }

  lookup(accessKeyId: string): { secret: string; principal: Principal } | undefined {
    this.refresh();
    return this.byId.get(accessKeyId);
  }

  private refresh(): void {
    const path = agentTokensPath(this.dataDir);
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      stamp = 'none';
    }
    if (stamp === this.seen) return;
    let tokens: AgentToken[];
    try {
      tokens = loadAgentTokens(this.dataDir);
    } catch {
      return; // a file being written by hand: keep the last good table, look again next time
    }
    this.seen = stamp === 'none' ? '' : stamp;
    const next = new Map<string, { secret: string; principal: Principal }>();
    for (const t of tokens) {
      const principal: Principal = { kind: 'agent-token', iamResource: 'role/wharf-agent', ...(t.cluster !== undefined ? { cluster: t.cluster } : {}), ...(t.region !== undefined ? { region: t.region } : {}) };
      next.set(t.accessKeyId, { secret: t.secretAccessKey, principal });
    }
    this.byId = next;
    this.onLoad?.(tokens);
  }
}

const CREDENTIALS_AGENT_HELP = `Usage: wharf credentials --agent [--cluster C [--region R] | --list | --revoke KEYID] [--data-dir DIR]

  --agent --cluster C    create a join token for cluster C and print it (ACCESSKEYID:SECRET);
                         give it to \`wharf agent --join-token\` on the hosts of C; C = '~fargate'
                         makes the token of the Fargate pool, for \`wharf agent --fargate\` hosts.
                         C may be a cluster ARN, which binds the token to the ARN's region
    --region R           the token registers only into cluster C of region R (without it and
                         without an ARN: cluster C of any region)
  --agent --list         list the join tokens (key id, cluster, region, created)
  --agent --revoke ID    revoke a join token (the running server stops accepting it at once;
                         agents that already registered keep their instance credentials)
  --agent                print a legacy token bound to no cluster, if the data dir has one
`;

/** The cluster name and region a token is for: `--cluster NAME [--region R]` or `--cluster ARN`. */
function tokenScope(cluster: string, region: string | undefined): { name: string; region?: string } {
  if (region !== undefined && !isRegionName(region)) throw new Error(`--region: ${region} is not a region name`);
  if (cluster.startsWith('arn:')) {
    const a = parseArn(cluster);
    if (!a || a.type !== 'cluster' || !isRegionName(a.region)) throw new Error(`--cluster: ${cluster} is not a cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)`);
    if (region !== undefined && region !== a.region) throw new Error(`--region ${region} and the cluster ARN's region ${a.region} differ`);
    return tokenScope(a.resource, a.region);
  }
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(cluster) && cluster !== FARGATE_POOL) throw new Error(`--cluster: ${cluster} is not a cluster name`);
  return { name: cluster, ...(region !== undefined ? { region } : {}) };
}

/** `wharf credentials --agent ...` (runs on the server's host: it edits the data dir). */
export function cmdAgentTokens(dataDir: string, o: { cluster?: string; region?: string; list?: boolean; revoke?: string; help?: boolean }, out: Pick<NodeJS.WritableStream, 'write'> = process.stdout, err: Pick<NodeJS.WritableStream, 'write'> = process.stderr): void {
  if (o.help) return void out.write(CREDENTIALS_AGENT_HELP);
  if (o.list) {
    const rows = loadAgentTokens(dataDir).map((t) => [t.accessKeyId, t.cluster ?? '(any cluster)', t.region ?? '(any region)', t.createdAt ?? '(legacy)']);
    const all = [['KEY ID', 'CLUSTER', 'REGION', 'CREATED'], ...rows];
    const w = [0, 1, 2, 3].map((i) => Math.max(...all.map((r) => r[i]!.length)));
    return void out.write(all.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
  }
  if (o.revoke !== undefined) {
    if (!revokeAgentToken(dataDir, o.revoke)) throw new Error(`no join token with key id ${o.revoke}`);
    return void out.write(`revoked ${o.revoke}\n`);
  }
  if (o.region !== undefined && o.cluster === undefined) throw new Error('--region binds the token made with --cluster C: give both');
  if (o.cluster !== undefined) {
    const { name, region } = tokenScope(o.cluster, o.region);
    const t = createAgentToken(dataDir, name, new Date(), region);
    return void out.write(`${t.accessKeyId}:${t.secretAccessKey}\n`);
  }
  const legacy = loadAgentTokens(dataDir).find((t) => t.cluster === undefined);
  if (!legacy) throw new Error('give --cluster C to create a join token for cluster C (see --help)');
  err.write('wharf: this join token is bound to no cluster (a legacy token); prefer `wharf credentials --agent --cluster C`, and revoke it with --revoke\n');
  out.write(`${legacy.accessKeyId}:${legacy.secretAccessKey}\n`);
}
