/**
 * One `wharf up` per data dir. Two of them would register their local agents as the same container
 * instances (the data dir's agent/ state), kick each other off the agent channel, run every task
 * twice, and under --ha adopt the same replicas and stop them under each other. The lock is
 * dir-lock.ts's: DATA_DIR/up.lock, its holder's pid in DATA_DIR/up.pid.
 */
import { lockDir, type DirLock } from './dir-lock';

export const UP_LOCK_FILE = 'up.lock';
export const UP_PID_FILE = 'up.pid';

export type UpLock = DirLock;

/** Takes the data dir's `wharf up` lock, or throws naming the process that holds it. */
export function lockUp(dataDir: string): UpLock {
  return lockDir(dataDir, { lockFile: UP_LOCK_FILE, pidFile: UP_PID_FILE, refusal: (who) => `wharf up is already running on this data dir${who}: ${dataDir}` });
}
