import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { deregisterTaskDefinition, describeTaskDefinition, registerTaskDefinition } from './task-definitions';
import { runTask } from './tasks';

async function context() {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }] }, TEST_CALLER);
  return ctx;
}

test('a revision that is not a number is "Invalid revision number" wherever a task definition is named', async () => {
  const ctx = await context();
  await rejects(describeTaskDefinition(ctx, { taskDefinition: 'web:latest' }), 'InvalidParameterException', 'Invalid revision number. Number: latest');
  await rejects(
    describeTaskDefinition(ctx, { taskDefinition: 'arn:aws:ecs:eu-west-3:123456789012:task-definition/web:x1' }),
    'InvalidParameterException',
    'Invalid revision number. Number: x1',
  );
  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'web:one' }), 'InvalidParameterException', 'Invalid revision number. Number: one');
  await rejects(deregisterTaskDefinition(ctx, { taskDefinition: 'web:abc' }), 'InvalidParameterException', 'Invalid revision number. Number: abc');
  // The family alone and family:revision still name it.
  assert.equal((await describeTaskDefinition(ctx, { taskDefinition: 'web' })).taskDefinition!.revision, 1);
  assert.equal((await describeTaskDefinition(ctx, { taskDefinition: 'web:1' })).taskDefinition!.revision, 1);
});

test('DeregisterTaskDefinition with a family and no revision: "Revision is missing."', async () => {
  const ctx = await context();
  await rejects(deregisterTaskDefinition(ctx, { taskDefinition: 'web' }), 'ClientException', 'Revision is missing.');
  await rejects(deregisterTaskDefinition(ctx, { taskDefinition: 'arn:aws:ecs:eu-west-3:123456789012:task-definition/web' }), 'ClientException', 'Revision is missing.');
  assert.equal((await describeTaskDefinition(ctx, { taskDefinition: 'web:1' })).taskDefinition!.status, 'ACTIVE', 'nothing was deregistered');
  assert.equal((await deregisterTaskDefinition(ctx, { taskDefinition: 'web:1' })).taskDefinition!.status, 'INACTIVE');
});

test("a task definition over 64 KiB is refused in ECS's words; one just under registers", async () => {
  const ctx = await context();
  const withEnv = (n: number, size: number) => ({
    family: 'big',
    containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, environment: Array.from({ length: n }, (_, i) => ({ name: `V${i}`, value: 'x'.repeat(size) })) }],
  });
  const over = withEnv(70, 1000);
  const bytes = Buffer.byteLength(JSON.stringify(over));
  assert.ok(bytes > 65_536);
  await rejects(registerTaskDefinition(ctx, over, TEST_CALLER), 'ClientException', `Actual length: '${bytes}'. Max allowed length is '65536' bytes.`);
  await rejects(describeTaskDefinition(ctx, { taskDefinition: 'big' }), 'ClientException', 'Unable to describe task definition.');
  // Tags do not count, as on ECS (they are not part of the definition).
  const under = { ...withEnv(60, 1000), tags: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: 'v'.repeat(200) })) };
  assert.equal((await registerTaskDefinition(ctx, under, TEST_CALLER)).taskDefinition!.revision, 1);
});
