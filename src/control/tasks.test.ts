/** RunTask/StartTask/StopTask request checks that come before any placement or write. */
import { test } from 'node:test';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { registerTaskDefinition } from './task-definitions';
import { runTask, startTask } from './tasks';

async function context() {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }] }, TEST_CALLER);
  return ctx;
}

/** Overrides whose JSON is exactly `chars` characters long. */
function overridesOf(chars: number) {
  const frame = JSON.stringify({ containerOverrides: [{ name: 'app', environment: [{ name: 'A', value: '' }] }] }).length;
  return { containerOverrides: [{ name: 'app', environment: [{ name: 'A', value: 'x'.repeat(chars - frame) }] }] };
}

test('overrides over 8192 characters of JSON are refused by RunTask and StartTask; 8192 are taken', async () => {
  const ctx = await context();
  const message = 'Container Overrides length must be at most 8192';
  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'web', overrides: overridesOf(8193) }), 'InvalidParameterException', message);
  await rejects(startTask(ctx, { cluster: 'c', taskDefinition: 'web', containerInstances: ['abc'], overrides: overridesOf(8193) }), 'InvalidParameterException', message);
  // At the limit the request goes on, to placement (this cluster has no instance).
  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'web', overrides: overridesOf(8192) }), 'InvalidParameterException', 'No Container Instances were found in your cluster.');
});

test('propagateTags SERVICE is refused by StartTask as by RunTask: neither starts a service task', async () => {
  const ctx = await context();
  const message = 'propagateTags SERVICE is only valid for tasks started by a service.';
  await rejects(runTask(ctx, { cluster: 'c', taskDefinition: 'web', propagateTags: 'SERVICE' }), 'InvalidParameterException', message);
  await rejects(startTask(ctx, { cluster: 'c', taskDefinition: 'web', containerInstances: ['abc'], propagateTags: 'SERVICE' }), 'InvalidParameterException', message);
});
