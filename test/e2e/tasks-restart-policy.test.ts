/**
 * Container restart policy (containerDefinitions[].restartPolicy) on a real Docker Engine.
 * The shortest attempt period ECS allows is 60 s, so the restart case lets containers really run
 * 61 s; the tasks of that case run side by side to keep the file near 65 s.
 * Run: npx tsx --test test/e2e/tasks-restart-policy.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { runnerHarness, until } from './helpers/runner-harness';
import type { ContainerDefinition } from '../../src/core/shapes/ecs';

const { skip, makeTask, run } = runnerHarness('wharf-restart');
const docker = new Docker();

/** An essential busybox container running `script`, with a 60 s restart policy. */
function app(script: string, ignoredExitCodes?: number[]): ContainerDefinition {
  return {
    name: 'app',
    image: 'wharf-test/busybox',
    entryPoint: ['sh', '-c'],
    command: [script],
    memory: 32,
    restartPolicy: { enabled: true, restartAttemptPeriod: 60, ...(ignoredExitCodes ? { ignoredExitCodes } : {}) },
  };
}

test('a container that exits before the attempt period is not restarted: the task stops as without a policy', { skip }, async () => {
  const { runner, tasks } = run(makeTask([app('sleep 1; exit 3')]));
  await until(() => runner.isStopped, 'STOPPED');
  const last = tasks.at(-1)!;
  assert.equal(last.stopCode, 'EssentialContainerExited');
  assert.equal(last.containers![0]!.exitCode, 3);
  const info = await docker.getContainer(last.containers![0]!.runtimeId!).inspect();
  assert.equal(info.State.ExitCode, 3);
  assert.equal(runner.snapshot().containers[0]!.restartCount, 0);
});

test('after running the attempt period: the same container is restarted, unless the exit code is ignored', { skip, timeout: 85_000 }, async () => {
  // Exits 1 after 61 s the first time only (a marker in its own filesystem survives the restart).
  const restarting = run(makeTask([app('if [ -e /tmp/ran ]; then sleep 3600; fi; touch /tmp/ran; sleep 61; exit 1')]));
  const ignored = run(makeTask([app('sleep 61; exit 0', [0])]));
  await until(() => restarting.runner.knownStatus === 'RUNNING' && ignored.runner.knownStatus === 'RUNNING', 'both RUNNING');
  const id = restarting.runner.snapshot().containers[0]!.dockerId!;
  const firstStart = (await docker.getContainer(id).inspect()).State.StartedAt;

  await until(() => restarting.runner.snapshot().containers[0]!.restartCount === 1, 'restarted', 75_000);
  const info = await docker.getContainer(id).inspect();
  assert.equal(info.State.Running, true, 'running again');
  assert.notEqual(info.State.StartedAt, firstStart, 'started a second time');
  const snap = restarting.runner.snapshot();
  assert.equal(snap.knownStatus, 'RUNNING');
  assert.equal(snap.containers[0]!.dockerId, id, 'the same container');
  assert.deepEqual(restarting.tasks.map((t) => t.status), ['PENDING', 'RUNNING'], 'the task never stopped');
  assert.ok(!restarting.containers.some((c) => c.status === 'STOPPED'));

  await until(() => ignored.runner.isStopped, 'the ignored-exit task STOPPED', 15_000);
  const last = ignored.tasks.at(-1)!;
  assert.equal(last.stopCode, 'EssentialContainerExited');
  assert.equal(last.containers![0]!.exitCode, 0);
  assert.equal(ignored.runner.snapshot().containers[0]!.restartCount, 0);
});
