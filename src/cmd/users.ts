/**
 * Wharf's IAM users: named access keys, each with an identity policy, kept in
 * `<dataDir>/users.json` (0600 in a 0700 dir, written atomically). `wharf credentials create`
 * and friends edit the file; the running server re-reads it when it changes.
 *
 * A user's secret is shown once and never stored: secrets are 64 characters, so the server keeps
 * only SHA-256("AWS4" + secret), which verifies SigV4 signatures as the secret would
 * (lib/sigv4.ts deriveSecret). That derived key still signs requests, so the file stays
 * readable by its owner (root) only; what it protects is the secret string itself.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MalformedPolicyDocument, parsePolicy, type PolicyDocument } from '../core/iam-policy';
import { GLOBAL_CONDITION_KEYS, unsupportedConditionKeys } from '../core/iam-condition-keys';
import { SERVICE_CONDITION_KEYS } from '../control/iam-resources';
import type { Principal } from '../control/context';
import type { Logger } from '../lib';
import type { DerivedSecret } from '../lib/sigv4';
import { deriveSecret } from '../lib/sigv4';
import { BUILTIN_POLICIES, type BuiltinPolicyName } from './builtin-policies';

export interface UserRecord {
  name: string;
  /** IAM's unique id of the user (`AIDA...`), what GetCallerIdentity answers as UserId. */
  userId: string;
  accessKeyId: string;
  /** base64 of SHA-256("AWS4" + secret). */
  aws4Key: string;
  /** `readonly`, `operator`, `admin` (the server applies the current built-in), or `custom` (a file's policy). */
  policyName: string;
  policy: PolicyDocument;
  /** ISO time the user was created. */
  created: string;
  /** ISO time its current key was made (create or rotate). */
  keyCreated: string;
}

export interface UsersFile {
  users: UserRecord[];
}

export function usersPath(dataDir: string): string {
  return join(dataDir, 'users.json');
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const base32 = (n: number) => [...randomBytes(n)].map((b) => BASE32[b % 32]).join('');

/** IAM user names: 1-64 of letters, digits and `+=,.@_-`. */
export function checkUserName(name: string): void {
  if (!/^[\w+=,.@-]{1,64}$/.test(name)) {
    throw new Error(`invalid user name '${name}': 1 to 64 letters, digits and + = , . @ _ - (IAM's user name rules)`);
  }
}

export function readUsers(dataDir: string): UsersFile {
  const path = usersPath(dataDir);
  if (!existsSync(path)) return { users: [] };
  const file = JSON.parse(readFileSync(path, 'utf8')) as UsersFile;
  if (!file || !Array.isArray(file.users)) throw new Error(`${path} is not a users file`);
  return file;
}

/** Writes the file atomically, 0600, in a 0700 dir, whatever the umask. */
export function writeUsers(dataDir: string, file: UsersFile): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const path = usersPath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * Runs a read-modify-write of users.json under a lock file, so two `wharf credentials` commands
 * run at once cannot lose each other's change. A lock older than 30 s is a crashed command's.
 */
function withUsersLock<T>(dataDir: string, fn: () => T): T {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = `${usersPath(dataDir)}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30_000) unlinkSync(lock);
      } catch {
        // gone meanwhile: try again
      }
      if (Date.now() > deadline) throw new Error(`${lock} is held by another wharf credentials command`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    unlinkSync(lock);
  }
}

/** Every condition key a request checked by Wharf may carry: the global ones and the services'. */
export const SUPPORTED_CONDITION_KEYS: readonly string[] = [...GLOBAL_CONDITION_KEYS, ...SERVICE_CONDITION_KEYS];

/**
 * Why a policy cannot be given to a user as written, or undefined: it names a condition key that
 * Wharf never puts in a request, so its condition would act on every call as if the key were
 * absent (false, or true for a negated or IfExists operator) rather than as the author meant.
 */
export function unsupportedKeysProblem(policy: PolicyDocument): string | undefined {
  const bad = unsupportedConditionKeys(policy, SUPPORTED_CONDITION_KEYS);
  if (bad.length === 0) return undefined;
  const named = bad.map((b) => `${b.key} (Statement ${b.statement}, ${b.operator})`).join(', ');
  return `the condition key${bad.length > 1 ? 's' : ''} ${named} ${bad.length > 1 ? 'are' : 'is'} never in Wharf's requests, so the condition could not work as written. Wharf supplies: ${SUPPORTED_CONDITION_KEYS.join(', ')}`;
}

/** A `--policy` argument: a built-in name or a file holding a policy document. */
export function resolvePolicy(spec: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): { policyName: string; policy: PolicyDocument } {
  if (Object.prototype.hasOwnProperty.call(BUILTIN_POLICIES, spec)) {
    return { policyName: spec, policy: parsePolicy(BUILTIN_POLICIES[spec as BuiltinPolicyName]) };
  }
  let text: string;
  try {
    text = read(spec);
  } catch {
    throw new Error(`--policy ${spec}: neither a built-in policy (${Object.keys(BUILTIN_POLICIES).join(', ')}) nor a readable file`);
  }
  let policy: PolicyDocument;
  try {
    policy = parsePolicy(text);
  } catch (e) {
    if (e instanceof MalformedPolicyDocument) throw new Error(`--policy ${spec}: MalformedPolicyDocument: ${e.message}`);
    throw e;
  }
  const problem = unsupportedKeysProblem(policy);
  if (problem) throw new Error(`--policy ${spec}: ${problem}`);
  return { policyName: 'custom', policy };
}

export interface NewKey {
  user: UserRecord;
  secretAccessKey: string;
}

function newKey(): { accessKeyId: string; secretAccessKey: string; aws4Key: string } {
  // 48 random bytes: 64 base64url characters, long enough to be kept only as a derived key.
  const secretAccessKey = randomBytes(48).toString('base64url');
  return { accessKeyId: 'AKIA' + base32(16), secretAccessKey, aws4Key: deriveSecret(secretAccessKey).aws4Key.toString('base64') };
}

export function createUser(dataDir: string, name: string, policy: { policyName: string; policy: PolicyDocument }, now = new Date()): NewKey {
  checkUserName(name);
  return withUsersLock(dataDir, () => {
    const file = readUsers(dataDir);
    // IAM user names are unique case-insensitively.
    const same = file.users.find((u) => u.name.toLowerCase() === name.toLowerCase());
    if (same) throw new Error(`user ${same.name} already exists (rotate its key with 'wharf credentials rotate --name ${same.name}')`);
    const { secretAccessKey, ...key } = newKey();
    const user: UserRecord = { name, userId: 'AIDA' + base32(17), ...key, ...policy, created: now.toISOString(), keyCreated: now.toISOString() };
    writeUsers(dataDir, { users: [...file.users, user] });
    return { user, secretAccessKey };
  });
}

export function rotateUser(dataDir: string, name: string, now = new Date()): NewKey {
  return withUsersLock(dataDir, () => {
    const file = readUsers(dataDir);
    const old = file.users.find((u) => u.name === name);
    if (!old) throw new Error(`no user ${name}`);
    const { secretAccessKey, ...key } = newKey();
    const user = { ...old, ...key, keyCreated: now.toISOString() };
    writeUsers(dataDir, { users: file.users.map((u) => (u === old ? user : u)) });
    return { user, secretAccessKey };
  });
}

export function deleteUser(dataDir: string, name: string): void {
  withUsersLock(dataDir, () => {
    const file = readUsers(dataDir);
    if (!file.users.some((u) => u.name === name)) throw new Error(`no user ${name}`);
    writeUsers(dataDir, { users: file.users.filter((u) => u.name !== name) });
  });
}

export interface UserKey {
  secret: DerivedSecret;
  principal: Principal;
  userId: string;
}

/**
 * The server's view of users.json: looked up on every request, re-read when the file changed
 * (its inode, size or mtime; the CLI replaces it by rename), checked at most once a second so a
 * stream of requests costs one stat a second. A file that cannot be read or parsed keeps the last
 * good table and is logged: a half-edited file must not lock every user out.
 */
export class UserTable {
  private byKey = new Map<string, UserKey>();
  private seen = '';
  private checkedAt = -Infinity;

  constructor(
    private readonly dataDir: string,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
    private readonly intervalMs = 1000,
  ) {
    this.refresh();
  }

  lookup(accessKeyId: string): UserKey | undefined {
    if (this.now() - this.checkedAt >= this.intervalMs) this.refresh();
    return this.byKey.get(accessKeyId);
  }

  private refresh(): void {
    this.checkedAt = this.now();
    const path = usersPath(this.dataDir);
    let stamp = 'absent';
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      // absent: no users
    }
    if (stamp === this.seen) return;
    try {
      const file = readUsers(this.dataDir);
      const next = new Map<string, UserKey>();
      for (const u of file.users) {
        // A built-in policy is applied as this version defines it, not as it was when the user was
        // made (as AWS's managed policies change under their users): readonly gained Logs reads.
        const policy = Object.prototype.hasOwnProperty.call(BUILTIN_POLICIES, u.policyName) ? parsePolicy(BUILTIN_POLICIES[u.policyName as BuiltinPolicyName]) : parsePolicy(u.policy);
        // A file written by hand or before the check: loaded, but said once per change.
        const problem = unsupportedKeysProblem(policy);
        if (problem) this.log?.warn({ user: u.name }, `the policy of user ${u.name}: ${problem}`);
        next.set(u.accessKeyId, {
          secret: { aws4Key: Buffer.from(u.aws4Key, 'base64') },
          principal: { kind: 'user', iamResource: `user/${u.name}`, policy },
          userId: u.userId,
        });
      }
      this.byKey = next;
      this.seen = stamp;
      this.log?.info({ users: next.size }, 'users loaded');
    } catch (e) {
      this.log?.error({ err: e, path }, 'cannot read the users file; keeping the users loaded before');
    }
  }
}
