/**
 * Timing tasks as an ECS client sees them: RunTask calls at once, then DescribeTasks polled until
 * every task says RUNNING (or STOPPED). Shared by the benchmarks that time RunTask against the
 * Docker Engine API floor (tasks-docker, fargate-tasks).
 */
import { DescribeTasksCommand, RunTaskCommand, StopTaskCommand, type ECSClient, type RunTaskCommandInput } from '@aws-sdk/client-ecs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TaskTimer {
  /** Polls DescribeTasks every `pollMs` until every task is `status`; a task that stops instead throws. */
  waitAll(arns: string[], status: 'RUNNING' | 'STOPPED', pollMs?: number): Promise<void>;
  /** `calls` concurrent RunTask calls of `request`; ms from sending them until all their tasks are RUNNING (polled every `pollMs`, default the timer's). */
  runTasks(request: RunTaskCommandInput, calls: number, pollMs?: number): Promise<{ ms: number; arns: string[] }>;
  /** StopTask for each, then waits (polling every 100 ms) until all are STOPPED. */
  stopAll(arns: string[]): Promise<void>;
}

export function taskTimer(ecs: ECSClient, cluster: string, o: { pollMs: number; timeoutMs: number }): TaskTimer {
  const waitAll: TaskTimer['waitAll'] = async (arns, status, pollMs = o.pollMs) => {
    const deadline = Date.now() + o.timeoutMs;
    // Each poll names only the tasks not yet there, as a careful client does: a task once
    // RUNNING is not asked about again, so a burst's polls shrink as its tasks start.
    const pending = new Set(arns);
    for (;;) {
      const ask = [...pending];
      for (let i = 0; i < ask.length; i += 100) {
        const out = await ecs.send(new DescribeTasksCommand({ cluster, tasks: ask.slice(i, i + 100) }));
        for (const t of out.tasks ?? []) {
          if (t.lastStatus === status) pending.delete(t.taskArn!);
          else if (t.lastStatus === 'STOPPED') throw new Error(`task stopped: ${t.stoppedReason}`);
        }
      }
      if (pending.size === 0) return;
      if (Date.now() > deadline) throw new Error(`${pending.size} tasks not ${status} after ${o.timeoutMs / 1000} s`);
      await sleep(pollMs);
    }
  };
  return {
    waitAll,
    async runTasks(request, calls, pollMs) {
      const t0 = performance.now();
      const outs = await Promise.all(Array.from({ length: calls }, () => ecs.send(new RunTaskCommand({ ...request, cluster }))));
      const arns = outs.flatMap((out) => {
        if (out.failures?.length) throw new Error(`RunTask failures: ${JSON.stringify(out.failures)}`);
        return out.tasks!.map((t) => t.taskArn!);
      });
      await waitAll(arns, 'RUNNING', pollMs);
      return { ms: performance.now() - t0, arns };
    },
    async stopAll(arns) {
      await Promise.all(arns.map((a) => ecs.send(new StopTaskCommand({ cluster, task: a }))));
      await waitAll(arns, 'STOPPED', 100);
    },
  };
}
