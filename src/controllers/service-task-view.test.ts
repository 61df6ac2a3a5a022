import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceDeploymentRecord } from '../core/resources';
import { DEFAULT_THROTTLE } from '../core/service-math';
import { judgeStoppedTasks, type PlanOptions, type ServiceTaskView } from './service-task-view';

const opts: PlanOptions = { healthyAfterRunningMs: 1000, throttle: DEFAULT_THROTTLE, newDeploymentId: () => 'ecs-svc/2', newEventId: () => 'e' };
const NOW = 1_800_000_000_000;

const deployment: ServiceDeploymentRecord = {
  id: 'ecs-svc/1',
  status: 'PRIMARY',
  revisionId: '1',
  taskDefinition: 'td:1',
  desiredCount: 10,
  failedTasks: 0,
  createdAt: 0,
  updatedAt: 0,
  rolloutState: 'IN_PROGRESS',
  rolloutStateReason: '',
  judged: [],
  startFailures: 0,
};

/** n tasks of the deployment that exited on their own without ever running, written at revisions 1..n. */
function failedTasks(n: number, from = 0): ServiceTaskView[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `t${from + i}`,
    deploymentId: 'ecs-svc/1',
    lastStatus: 'STOPPED',
    desiredStatus: 'STOPPED',
    createdAt: NOW - 5000,
    stoppedAt: NOW - 1000,
    stopCode: 'TaskFailedToStart',
    hasHealthCheck: false,
    revision: from + i + 1,
  }));
}

test('thousands of stopped tasks are judged once each: the next pass changes nothing', () => {
  const tasks = failedTasks(2500);
  const once = judgeStoppedTasks(deployment, tasks, NOW, opts, 2500);
  assert.equal(once.failedTasks, 2500);
  const twice = judgeStoppedTasks(once, tasks, NOW, opts, 2600);
  assert.equal(twice, once, 'nothing new: the same record, so the service is not rewritten');
  assert.equal(twice.failedTasks, 2500);
});

test('a task stopped after the previous pass is judged on the next one', () => {
  const first = failedTasks(1200);
  const once = judgeStoppedTasks(deployment, first, NOW, opts, 1200);
  const more = [...first, ...failedTasks(1, 1200)];
  const twice = judgeStoppedTasks(once, more, NOW, opts, 1201);
  assert.equal(twice.failedTasks, 1201);
  assert.equal(judgeStoppedTasks(twice, more, NOW, opts, 1300), twice);
});
