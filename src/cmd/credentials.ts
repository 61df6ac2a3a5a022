/**
 * Wharf's credentials: one user key pair (generated on first start and kept in the data dir, or
 * taken from WHARF_ACCESS_KEY_ID / WHARF_SECRET_ACCESS_KEY) and agent join tokens (key pairs that
 * may only call the agent operations).
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
  /** Join tokens for agents, `<accessKeyId>:<secret>`. */
  agentTokens: KeyPair[];
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
    file = { user: newKeyPair('AKIAWHARF'), agentTokens: [newKeyPair('AKIAWAGENT')] };
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
