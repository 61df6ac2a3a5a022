/**
 * TaskRunners on the real Docker Engine, without a control plane: for the e2e files that drive
 * the agent's runner directly (agent-task-runner, tasks-restart-policy). Every runner started
 * here is stopped and cleaned up, and the runtime closed, after the file's tests.
 */
import { after } from 'node:test';
import type { ContainerDefinition, TaskDefinition } from '../../../src/core/shapes/ecs';
import type { AgentTask, WharfSubmitContainerStateChange, WharfTaskStateChange } from '../../../src/api/agent/protocol';
import type { Clock } from '../../../src/lib/clock';
import { hexId } from '../../../src/lib/ids';
import { DockerRuntime } from '../../../src/agent/runtime/docker-runtime';
import { TaskRunner } from '../../../src/agent/task-runner';
import { dockerSkipReason } from '../../images/docker-test-env';

export interface RunnerHarness {
  /** Why the file must skip (no Docker), or false. */
  skip: ReturnType<typeof dockerSkipReason>;
  /** The runtime the runners use (undefined when skipping). */
  rt: DockerRuntime | undefined;
  makeTask(containers: ContainerDefinition[], extra?: Partial<TaskDefinition>, more?: Partial<AgentTask>): AgentTask;
  run(task: AgentTask, opts?: { stopTimeoutSec?: number }): { runner: TaskRunner; tasks: WharfTaskStateChange[]; containers: WharfSubmitContainerStateChange[] };
}

const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** Call at the top level of a test file: it registers the file's `after` cleanup. */
export function runnerHarness(family: string): RunnerHarness {
  const skip = dockerSkipReason();
  const rt = skip ? undefined : new DockerRuntime();
  const runners: TaskRunner[] = [];
  const containerInstanceArn = `arn:aws:ecs:us-east-1:123456789012:container-instance/wharf-test/${hexId()}`;
  after(async () => {
    for (const r of runners) {
      r.stop();
      await Promise.race([r.whenStopped(), new Promise((res) => setTimeout(res, 15_000))]);
      await r.cleanup().catch(() => undefined);
    }
    rt?.close();
  });
  return {
    skip,
    rt,
    makeTask: (containers, extra = {}, more = {}) => ({
      taskArn: `arn:aws:ecs:us-east-1:123456789012:task/wharf-test/${hexId()}`,
      clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/wharf-test',
      desiredStatus: 'RUNNING',
      version: 1,
      taskDefinition: { family, revision: 1, containerDefinitions: containers, ...extra },
      ...more,
    }),
    run(task, opts = {}) {
      const tasks: WharfTaskStateChange[] = [];
      const containers: WharfSubmitContainerStateChange[] = [];
      const runner = new TaskRunner(task, {
        runtime: rt!,
        containerInstanceArn,
        clock,
        pollIntervalMs: 500,
        // Test images exist only locally: never let a pull reach out to Docker Hub.
        pullBehaviour: 'prefer-cached',
        defaultStopTimeoutSec: opts.stopTimeoutSec ?? 2,
        onTaskStateChange: (c) => tasks.push(c),
        onContainerStateChange: (c) => containers.push(c),
      });
      runners.push(runner);
      runner.start();
      return { runner, tasks, containers };
    },
  };
}

/** Polls `cond` until true, or throws after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
