/**
 * One `wharf up` per data dir. Two of them would register their local agents as the same container
 * instances (the data dir's agent/ state), kick each other off the agent channel, run every task
 * twice, and under --ha adopt the same replicas and stop them under each other.
 *
 * The lock is a kernel lock, so it dies with its process (kill -9 included) and a stale one cannot
 * block the next start: DATA_DIR/up.lock is an SQLite file held with locking_mode=EXCLUSIVE after a
 * write (the same POSIX lock the SQLite store takes on wharf.db; Node has no flock of its own).
 * A pid file beside it names the holder, for the message only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { processAlive } from '../lib';
import { ensurePrivateDir, makePrivate } from './data-dir';

export const UP_LOCK_FILE = 'up.lock';
export const UP_PID_FILE = 'up.pid';

export interface UpLock {
  release(): void;
}

/**
 * The open lock databases. A Database nothing refers to is closed when it is garbage collected,
 * which drops the lock: a caller that keeps no reference to what lockUp returned (a script, a
 * test's holder process) would lose it at the next collection. Held here until released.
 */
const held = new Set<Database.Database>();

const busy = (e: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: unknown }).code));

/** Takes the data dir's `wharf up` lock, or throws naming the process that holds it. */
export function lockUp(dataDir: string): UpLock {
  ensurePrivateDir(dataDir);
  const file = join(dataDir, UP_LOCK_FILE);
  // timeout 0: a held lock is another live `wharf up`, and waiting will not change that.
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // No journal file beside it: the lock is all this database is for.
    db.pragma('journal_mode = MEMORY');
    // A write takes the exclusive lock, which EXCLUSIVE mode keeps until close (or death).
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
  } catch (e) {
    db.close();
    if (!busy(e)) throw e;
    let pid = NaN;
    try {
      pid = Number(readFileSync(join(dataDir, UP_PID_FILE), 'utf8').trim());
    } catch {
      // No pid file yet (the holder is just starting): the message goes without it.
    }
    const who = Number.isInteger(pid) && pid > 0 && processAlive(pid) ? ` (pid ${pid})` : '';
    throw new Error(`wharf up is already running on this data dir${who}: ${dataDir}`, { cause: e });
  }
  makePrivate(file);
  writeFileSync(join(dataDir, UP_PID_FILE), `${process.pid}\n`, { mode: 0o600 });
  held.add(db);
  return {
    release: () => {
      held.delete(db);
      db.close();
    },
  };
}
