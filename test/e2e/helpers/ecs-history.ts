/**
 * Records a history of concurrent ECS operations for the linearizability checker: clients that
 * run RunTask, StopTask, UpdateService (desiredCount), DescribeServices and DescribeTasks in a
 * loop against replicas, each op with its invoke and return time (this process's clock) and its
 * outcome. Objects and their register values:
 *   service/<name>  desiredCount   UpdateService writes, DescribeServices reads
 *   task/<arn>      desiredStatus  RunTask writes RUNNING (a create), StopTask STOPPED,
 *                                  DescribeTasks reads (a MISSING failure reads as absent)
 * An answer of 4xx is a definite refusal (nothing happened) and is not recorded; any other error
 * (a dropped connection, a 5xx, a timeout) leaves the outcome unknown, as Knossos's `:info`.
 */
import {
  DescribeServicesCommand,
  DescribeTasksCommand,
  RunTaskCommand,
  StopTaskCommand,
  UpdateServiceCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import type { Operation } from './linearizability';

export interface HistoryTarget {
  cluster: string;
  /** Services whose desiredCount the clients write and read (they start at `initialCount`). */
  services: string[];
  /** The task definition RunTask starts (standalone tasks: no controller changes their desiredStatus). */
  taskDefinition: string;
  /** A client for the `i`th worker now (a live replica). */
  clientFor(worker: number): ECSClient;
}

export interface HistoryRecorder {
  ops: Operation[];
  /** Operations that completed with ok after a time (ms), counted by name. */
  okSince(t: number): number;
  stop(): Promise<void>;
}

function definitelyRefused(e: unknown): boolean {
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}

export function recordHistory(target: HistoryTarget, workers: number, seed = 1): HistoryRecorder {
  const ops: Operation[] = [];
  const tasks: string[] = [];
  let stopping = false;
  // A small deterministic generator, so that a failing run can be told apart from its choices.
  let s = seed;
  const rand = (n: number) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };

  async function one(worker: number): Promise<void> {
    const ecs = target.clientFor(worker);
    const { cluster } = target;
    const pick = rand(10);
    const invoke = Date.now();
    const label = `w${worker}`;
    const record = (o: Omit<Operation, 'invoke' | 'ret' | 'label'>, ret = Date.now()) => ops.push({ ...o, invoke, ret, label: `${label} ${o.kind} ${o.key}` });
    if (pick < 3) {
      const service = target.services[rand(target.services.length)]!;
      const desiredCount = rand(3);
      const key = `service/${service}`;
      try {
        await ecs.send(new UpdateServiceCommand({ cluster, service, desiredCount }));
        record({ key, kind: 'write', value: desiredCount, outcome: 'ok' });
      } catch (e) {
        if (!definitelyRefused(e)) record({ key, kind: 'write', value: desiredCount, outcome: 'unknown' });
      }
    } else if (pick < 6) {
      const service = target.services[rand(target.services.length)]!;
      const key = `service/${service}`;
      try {
        const out = await ecs.send(new DescribeServicesCommand({ cluster, services: [service] }));
        record({ key, kind: 'read', value: out.services?.[0]?.desiredCount, outcome: 'ok' });
      } catch {
        // A read that failed tells nothing.
      }
    } else if (pick < 7 || tasks.length === 0) {
      try {
        const out = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: target.taskDefinition }));
        const arn = out.tasks?.[0]?.taskArn;
        // Without an ARN no one can name the task: nothing to check about it.
        if (arn) {
          tasks.push(arn);
          record({ key: `task/${arn}`, kind: 'write', value: 'RUNNING', outcome: 'ok' });
        }
      } catch {
        // An unknown RunTask made a task no client knows of.
      }
    } else if (pick < 8) {
      const task = tasks[rand(tasks.length)]!;
      const key = `task/${task}`;
      try {
        await ecs.send(new StopTaskCommand({ cluster, task }));
        record({ key, kind: 'write', value: 'STOPPED', outcome: 'ok' });
      } catch (e) {
        if (!definitelyRefused(e)) record({ key, kind: 'write', value: 'STOPPED', outcome: 'unknown' });
      }
    } else {
      const task = tasks[rand(tasks.length)]!;
      const key = `task/${task}`;
      try {
        const out = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [task] }));
        const found = out.tasks?.[0];
        if (found) record({ key, kind: 'read', value: found.desiredStatus, outcome: 'ok' });
        else if (out.failures?.[0]?.reason === 'MISSING') record({ key, kind: 'read', value: undefined, outcome: 'ok' });
      } catch {
        // A read that failed tells nothing.
      }
    }
  }

  const loops = Array.from({ length: workers }, async (_, worker) => {
    while (!stopping) {
      await one(worker);
      await new Promise((r) => setTimeout(r, 10 + rand(30)));
    }
  });
  return {
    ops,
    okSince: (t) => ops.filter((o) => o.outcome === 'ok' && o.invoke >= t).length,
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}
