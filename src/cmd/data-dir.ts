/**
 * The data dir's files are the server's alone: the store, access keys, the secrets key, TLS keys,
 * HAProxy's config and sockets. Everything Wharf creates in it is 0600 (files) or 0700
 * (directories) whatever the umask, so these helpers set the mode explicitly rather than trusting
 * the `mode` of open(2), which the umask can only narrow, and tighten what an older build left.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SECRET_KEY_BYTES, aesGcmSecretCipher, type SecretCipher } from '../lib';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Creates `dir` (and missing parents) and makes it 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(dir, PRIVATE_DIR_MODE);
}

/**
 * What Wharf keeps in a data dir, at its top. Only these are narrowed at start: a data dir may be
 * a directory that also holds the user's own files (`--data-dir /srv`), which are not Wharf's to
 * change. A new file or directory Wharf writes at the top belongs in this list.
 */
export const DATA_DIR_ENTRIES = [
  'wharf.db', 'wharf.db-wal', 'wharf.db-shm', 'wharf.db-journal', 'wharf.db.lock',
  'credentials.json', 'credentials.json.tmp', 'secrets.key', 'session-token.key',
  'tls', 'agent', 'agent-fargate', 'haproxy', 'up.lock', 'up.pid',
] as const;

/**
 * Narrows the data dir and what Wharf keeps in it (DATA_DIR_ENTRIES, and everything under its
 * directories) to 0700 / 0600: a data dir an older build wrote, or one made by hand. What the
 * server writes from now on is created so. Symbolic links are left alone (chmod would follow
 * them out of the data dir). Returns how many modes were changed.
 */
export function tightenDataDir(dir: string): number {
  let changed = 0;
  const visit = (path: string): void => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) return;
    const want = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    if ((st.mode & 0o777) !== want) {
      chmodSync(path, want);
      changed++;
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  const before = lstatSync(dir, { throwIfNoEntry: false });
  ensurePrivateDir(dir);
  if (before && (before.mode & 0o777) !== PRIVATE_DIR_MODE) changed++;
  for (const name of DATA_DIR_ENTRIES) visit(join(dir, name));
  return changed;
}

/** Makes an existing file (or directory) private; a missing one is fine. */
export function makePrivate(path: string, mode = PRIVATE_FILE_MODE): void {
  try {
    chmodSync(path, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Writes `path` 0600 (created so, and chmod-ed in case it existed wider), synced. `exclusive`
 * refuses to replace an existing file (for keys made once).
 */
export function writePrivateFile(path: string, data: string | Buffer, opts: { exclusive?: boolean } = {}): void {
  const fd = openSync(path, opts.exclusive ? 'wx' : 'w', PRIVATE_FILE_MODE);
  try {
    chmodSync(path, PRIVATE_FILE_MODE);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export const SECRETS_KEY_FILE = 'secrets.key';

/**
 * The cipher of the data dir's Secrets Manager values: AES-256-GCM under `<dataDir>/secrets.key`
 * (32 random bytes, made 0600 on first start). A key file of the wrong size is refused rather
 * than replaced: replacing it would make every stored secret unreadable.
 */
export function loadOrCreateSecretCipher(dataDir: string): SecretCipher {
  const path = join(dataDir, SECRETS_KEY_FILE);
  if (!existsSync(path)) {
    try {
      writePrivateFile(path, randomBytes(SECRET_KEY_BYTES), { exclusive: true });
    } catch (e) {
      // Another process made it between the check and the open: use theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  makePrivate(path);
  const key = readFileSync(path);
  if (key.length !== SECRET_KEY_BYTES) {
    throw new Error(`${path} holds ${key.length} bytes, not the ${SECRET_KEY_BYTES} of an AES-256 key; restore the key the secrets were written with (or remove it only if the data dir holds no secrets)`);
  }
  return aesGcmSecretCipher(key);
}

export const SESSION_TOKEN_KEY_FILE = 'session-token.key';
const SESSION_TOKEN_KEY_BYTES = 32;

/**
 * The key that authenticates session tokens and derives their secrets (lib/session-token.ts):
 * `<dataDir>/session-token.key`, 32 random bytes made 0600 on first start. Replicas given the same
 * data dir share it, so each accepts the sessions the others issued. It is written whole beside
 * its final name and hard-linked into place, so replicas starting at once never read half a key:
 * the first link wins and the others read it. Losing it only ends the sessions issued under it.
 */
export function loadOrCreateSessionTokenKey(dataDir: string): Buffer {
  const path = join(dataDir, SESSION_TOKEN_KEY_FILE);
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writePrivateFile(tmp, randomBytes(SESSION_TOKEN_KEY_BYTES), { exclusive: true });
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      unlinkSync(tmp);
    }
  }
  makePrivate(path);
  const key = readFileSync(path);
  if (key.length !== SESSION_TOKEN_KEY_BYTES) {
    throw new Error(`${path} holds ${key.length} bytes, not ${SESSION_TOKEN_KEY_BYTES}; remove it to make a new one (this ends every session issued so far)`);
  }
  return key;
}
