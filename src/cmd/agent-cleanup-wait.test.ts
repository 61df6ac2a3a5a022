import { test } from 'node:test';
import assert from 'node:assert/strict';
import { taskCleanupWaitMs } from './agent';

test('ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION is read as a Go duration; unset keeps the default; a typo is refused', () => {
  assert.equal(taskCleanupWaitMs(undefined), undefined);
  assert.equal(taskCleanupWaitMs(''), undefined);
  assert.equal(taskCleanupWaitMs('3h'), 3 * 3_600_000);
  assert.equal(taskCleanupWaitMs('1m30s'), 90_000);
  assert.equal(taskCleanupWaitMs('2s'), 2000);
  assert.throws(() => taskCleanupWaitMs('10 minutes'), /ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION: 10 minutes is not a duration/);
  assert.throws(() => taskCleanupWaitMs('5'), /not a duration/);
});
