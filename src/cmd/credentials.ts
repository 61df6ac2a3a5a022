/**
 * Wharf's built-in credentials: the account's root key pair (generated on first start and kept in
 * the data dir, or taken from WHARF_ACCESS_KEY_ID / WHARF_SECRET_ACCESS_KEY). Users are in
 * users.ts, agents' join tokens (one cluster each) in agent-tokens.ts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface CredentialsFile {
  user: KeyPair;
  /**
   * Join tokens bound to no cluster, as data dirs made before tokens had a cluster hold them
   * (cmd/agent-tokens.ts takes them over once, as "any cluster"). New data dirs get none: every
   * token is made for one cluster (`wharf credentials --agent --cluster C`).
   */
  agentTokens?: KeyPair[];
}

const alnum = (n: number) => {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return [...randomBytes(n)].map((b) => abc[b % abc.length]).join('');
};

export function newKeyPair(prefix: string): KeyPair {
  return { accessKeyId: prefix + alnum(20 - prefix.length), secretAccessKey: randomBytes(30).toString('base64url') };
}

export function credentialsPath(dataDir: string): string {
  return join(dataDir, 'credentials.json');
}

/** Reads (or creates on first start) the credentials kept in the data dir. */
export function loadOrCreateCredentials(dataDir: string, env = process.env): CredentialsFile {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = credentialsPath(dataDir);
  let file: CredentialsFile;
  if (existsSync(path)) {
    file = JSON.parse(readFileSync(path, 'utf8')) as CredentialsFile;
  } else {
    file = { user: newKeyPair('AKIAWHARF') };
    const tmp = path + '.tmp';
    writeFileSync(tmp, JSON.stringify(file, null, 2), { mode: 0o600 });
    renameSync(tmp, path);
  }
  if (env.WHARF_ACCESS_KEY_ID && env.WHARF_SECRET_ACCESS_KEY) {
    file = { ...file, user: { accessKeyId: env.WHARF_ACCESS_KEY_ID, secretAccessKey: env.WHARF_SECRET_ACCESS_KEY } };
  }
  return file;
}

export function joinToken(k: KeyPair): string {
  return `${k.accessKeyId}:${k.secretAccessKey}`;
}

export function parseJoinToken(token: string): KeyPair {
  const i = token.indexOf(':');
  if (i <= 0) throw new Error('a join token looks like ACCESSKEYID:SECRET');
  return { accessKeyId: token.slice(0, i), secretAccessKey: token.slice(i + 1) };
}
