import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith } from './control-test-context';
import { describeTasks, listTasks } from './task-queries';

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

test("DescribeTasks with more than 100 tasks answers ECS's own words", async () => {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  const ids = (n: number) => Array.from({ length: n }, (_, i) => i.toString(16).padStart(32, '0'));
  await rejectsWith(describeTasks(ctx, { cluster: 'c', tasks: ids(101) }), 'InvalidParameterException', 'taskIds can have at most 100 items.');
  assert.equal((await describeTasks(ctx, { cluster: 'c', tasks: ids(100) })).failures!.length, 100);
});

test('ListTasks refuses startedBy with another filter, and family with serviceName, as ECS does', async () => {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  for (const other of [{ family: 'web' }, { containerInstance: 'abc' }, { serviceName: 'svc' }, { launchType: 'EC2' as const }]) {
    await rejectsWith(listTasks(ctx, { cluster: 'c', startedBy: 'me', ...other }), 'InvalidParameterException', 'cannot specify startedBy with other arguments');
  }
  await rejectsWith(listTasks(ctx, { cluster: 'c', family: 'web', serviceName: 'svc' }), 'InvalidParameterException', 'cannot specify family with serviceName');
  // Alone, or startedBy with desiredStatus, the filters are taken.
  assert.deepEqual((await listTasks(ctx, { cluster: 'c', startedBy: 'me', desiredStatus: 'STOPPED' })).taskArns, []);
  assert.deepEqual((await listTasks(ctx, { cluster: 'c', family: 'web', launchType: 'EC2' })).taskArns, []);
});
