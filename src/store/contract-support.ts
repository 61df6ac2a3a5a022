/**
 * Helpers shared by the parts of the Store contract suite (contract-*.ts). Not a test file: the
 * suite runs only through `runStoreContract` in contract.ts.
 */
import assert from 'node:assert/strict';
import { StoreConflictError, type Store, type WatchEvent } from './store';

/** What `runStoreContract` hands each part of the suite. */
export interface ContractContext {
  /** The store of the test now running (a fresh one per test, closed after it). */
  store(): Store;
  /** Writes deliver their watch events before their promise resolves (in-process backends). */
  syncWatch: boolean;
}

/** Polls until `cond` holds; the deadline only bounds a failing test, it is not a timing goal. */
export async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function conflictOf(p: Promise<unknown>): Promise<StoreConflictError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StoreConflictError, `expected StoreConflictError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a StoreConflictError, but the write succeeded');
}

export function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Collects watch callbacks: each call is one batch. */
export function recorder() {
  const batches: WatchEvent[][] = [];
  return {
    batches,
    onEvents: (events: WatchEvent[]) => void batches.push(events),
    get events(): WatchEvent[] {
      return batches.flat();
    },
  };
}
