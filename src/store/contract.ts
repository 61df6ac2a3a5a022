/**
 * The shared Store contract suite (STYLE.md: one contract, many backends, one suite). A backend's
 * test file calls `runStoreContract('sqlite', () => open a fresh, empty store)`; every backend
 * must pass all of it. Each test gets its own store and closes it.
 *
 * Key order means UTF-8 byte order (= Unicode code point order), which is what SQLite's BINARY
 * collation and etcd's byte keys both give.
 *
 * The tests live in one file per part of the contract: contract-single-key.ts (writes, values,
 * list, casUpdate), contract-txn.ts, contract-watch.ts (snapshot and watch); helpers in
 * contract-support.ts.
 */
import { describe, test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from './store';
import type { ContractContext } from './contract-support';
import { casUpdateContract, singleKeyContract } from './contract-single-key';
import { txnContract } from './contract-txn';
import { watchContract } from './contract-watch';

export interface StoreContractOptions {
  /**
   * The backend runs in-process and delivers a write's watch events before the write's promise
   * resolves (sqlite, memory). Default true; a networked backend (etcd) passes false and the
   * suite then waits for events instead.
   */
  syncWatch?: boolean;
}

export function runStoreContract(name: string, makeStore: () => Promise<Store>, options: StoreContractOptions = {}): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });
    const ctx: ContractContext = { store: () => store, syncWatch: options.syncWatch ?? true };

    singleKeyContract(ctx);
    txnContract(ctx);
    watchContract(ctx);
    casUpdateContract(ctx);

    test('operations after close are rejected', async () => {
      const s = await makeStore();
      await s.create('k', 1);
      await s.close();
      await assert.rejects(s.get('k'));
      await assert.rejects(s.create('j', 1));
    });
  });
}
