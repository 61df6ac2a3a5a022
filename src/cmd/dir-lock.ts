/**
 * A data dir (or a part of one) held by one process at a time: `wharf up` holds its data dir
 * (up-lock.ts), each `wharf agent` its agent state (agent.ts). Two holders would act as one
 * another (the same container instance, the same replicas) and undo each other's work.
 *
 * The lock is a kernel lock, so it dies with its process (kill -9 included) and a stale one cannot
 * block the next start: the lock file is an SQLite file held with locking_mode=EXCLUSIVE after a
 * write (the same POSIX lock the SQLite store takes on wharf.db; Node has no flock of its own).
 * A pid file beside it names the holder, for the refusal's message only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { processAlive } from '../lib';
import { ensurePrivateDir, makePrivate } from './data-dir';

export interface DirLock {
  release(): void;
}

/**
 * The open lock databases. A Database nothing refers to is closed when it is garbage collected,
 * which drops the lock: a caller that keeps no reference to what lockDir returned (a script, a
 * test's holder process) would lose it at the next collection. Held here until released.
 */
const held = new Set<Database.Database>();

const busy = (e: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((e as { code?: unknown }).code));

/**
 * Takes the lock `lockFile` in `dir` (made 0700 if missing) and writes this process's pid to
 * `pidFile` beside it. When another live process holds it, throws `refusal(who)`, where `who` is
 * ` (pid N)` when the holder's pid is known and it runs, else ''.
 */
export function lockDir(dir: string, o: { lockFile: string; pidFile: string; refusal: (who: string) => string }): DirLock {
  ensurePrivateDir(dir);
  const file = join(dir, o.lockFile);
  // timeout 0: a held lock is another live holder, and waiting will not change that.
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
      pid = Number(readFileSync(join(dir, o.pidFile), 'utf8').trim());
    } catch {
      // No pid file yet (the holder is just starting): the message goes without it.
    }
    const who = Number.isInteger(pid) && pid > 0 && processAlive(pid) ? ` (pid ${pid})` : '';
    throw new Error(o.refusal(who), { cause: e });
  }
  makePrivate(file);
  writeFileSync(join(dir, o.pidFile), `${process.pid}\n`, { mode: 0o600 });
  held.add(db);
  return {
    release: () => {
      held.delete(db);
      db.close();
    },
  };
}
