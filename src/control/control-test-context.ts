/** A control plane in memory for control/ unit tests: MemoryStore, State, PlacementView, a fake clock. */
import assert from 'node:assert/strict';
import type { Partition } from '../core/arn';
import { WharfError } from '../core/errors';
import { FakeClock, createLogger } from '../lib';
import { PlacementView } from '../state/placement-view';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import type { Caller, ControlContext } from './context';

export const TEST_CALLER: Caller = { requestId: 'r', accessKeyId: 'AKID', principalArn: 'arn:aws:iam::123456789012:root', isAgent: false, region: 'us-east-1' };

export async function controlTestContext(partition: Partition = { region: 'eu-west-3', accountId: '123456789012' }): Promise<ControlContext & { clock: FakeClock }> {
  const store = new MemoryStore();
  const state = new State(store);
  await state.start();
  return {
    store,
    state,
    placement: new PlacementView(state),
    partition,
    clock: new FakeClock(),
    log: createLogger('test', 'silent'),
  };
}

/** Asserts that `p` rejects with a WharfError of exactly this code and message. */
export const rejectsWith = (p: Promise<unknown>, code: string, message: string) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof WharfError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.message, message);
    return true;
  });
