/** RunTask/StartTask/StopTask request checks that come before any placement or write. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys, type ContainerInstanceRecord } from '../core/resources';
import type { RuntimePlatform } from '../core/shapes/ecs';
import { casUpdate } from '../store/store';
import { createCluster } from './clusters';
import { registerContainerInstance } from './container-instances';
import { committed } from './context';
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

test('runtimePlatform is honoured at placement: an ARM64 or Windows definition fails ATTRIBUTE on a Linux x86_64 instance and runs on a matching one', async () => {
  const ctx = await context();
  const host = async (arch: string, os: string) => {
    const ci = (
      await registerContainerInstance(ctx, {
        cluster: 'c',
        totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 4096 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 4096 }],
        attributes: [{ name: 'ecs.cpu-architecture', value: arch }, { name: 'ecs.os-type', value: os }],
      })
    ).containerInstance!;
    const id = ci.containerInstanceArn!.split('/').pop()!;
    const { revision } = await casUpdate<ContainerInstanceRecord>(ctx.store, keys.instance('c', id), (cur) => ({ ...cur!.value, agentConnected: true, version: cur!.value.version + 1 }));
    await committed(ctx, revision);
    return ci.containerInstanceArn!;
  };
  const x86 = await host('x86_64', 'linux');
  const td = async (family: string, runtimePlatform: RuntimePlatform) =>
    (await registerTaskDefinition(ctx, { family, runtimePlatform, containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }] }, TEST_CALLER)).taskDefinition!;
  const arm = await td('arm', { cpuArchitecture: 'ARM64', operatingSystemFamily: 'LINUX' });
  assert.deepEqual(arm.requiresAttributes!.filter((a) => a.name.startsWith('ecs.os-type') || a.name === 'ecs.cpu-architecture'), [
    { name: 'ecs.cpu-architecture', value: 'arm64' },
    { name: 'ecs.os-type', value: 'linux' },
  ]);
  await td('win', { operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE' });
  for (const family of ['arm', 'win']) {
    const r = await runTask(ctx, { cluster: 'c', taskDefinition: family });
    assert.deepEqual([r.tasks, r.failures], [[], [{ arn: x86, reason: 'ATTRIBUTE' }]], family);
  }
  assert.equal((await runTask(ctx, { cluster: 'c', taskDefinition: 'web' })).tasks![0]!.containerInstanceArn, x86, 'no runtimePlatform: no requirement');
  const armHost = await host('arm64', 'linux');
  const placed = await runTask(ctx, { cluster: 'c', taskDefinition: 'arm' });
  assert.deepEqual([placed.tasks!.map((t) => t.containerInstanceArn), placed.failures], [[armHost], []]);
});
