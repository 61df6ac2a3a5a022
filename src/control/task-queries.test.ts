import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { createCluster } from './clusters';
import { controlTestContext } from './control-test-context';
import { describeTasks } from './task-queries';

test('DescribeTasks with an empty tasks list answers ECS\'s InvalidParameterException', async () => {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  await assert.rejects(describeTasks(ctx, { cluster: 'c', tasks: [] }), (e: unknown) => {
    assert.ok(e instanceof WharfError);
    assert.equal(e.code, 'InvalidParameterException');
    assert.equal(e.message, 'Tasks cannot be empty.');
    return true;
  });
  const missing = await describeTasks(ctx, { cluster: 'c', tasks: ['0123456789abcdef0123456789abcdef'] });
  assert.deepEqual(missing.failures, [{ arn: 'arn:aws:ecs:eu-west-3:123456789012:task/c/0123456789abcdef0123456789abcdef', reason: 'MISSING' }]);
});
