import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planReap } from './task-reaper-controller';
import type { TaskDefinitionRecord, TaskRecord } from '../core/resources';

const task = (id: string, lastStatus: string, expiresAt?: number, td = 'arn:aws:ecs:us-east-1:0:task-definition/web:1'): { value: TaskRecord; modRevision: number } => ({
  value: { taskArn: `t/${id}`, clusterArn: 'c', lastStatus, desiredStatus: 'STOPPED', version: 1, taskDefinitionArn: td, wharf: { id, cluster: 'default', expiresAt } } as TaskRecord,
  modRevision: 7,
});
const taskDef = (rev: number, status: TaskDefinitionRecord['status']): { value: TaskDefinitionRecord; modRevision: number } => ({
  value: { taskDefinitionArn: `arn:aws:ecs:us-east-1:0:task-definition/web:${rev}`, family: 'web', revision: rev, status, tags: [] } as TaskDefinitionRecord,
  modRevision: 3,
});

test('stopped tasks are reaped only once their retention has passed', () => {
  const plan = planReap([task('a', 'STOPPED', 1000), task('b', 'STOPPED', 5000), task('c', 'RUNNING')], [], 2000);
  assert.deepEqual(plan.tasks, [{ key: 'tasks/default/a', revision: 7 }]);
});

test('a deleted task definition is removed only when no remaining task uses it', () => {
  const used = planReap([task('a', 'RUNNING', undefined, taskDef(1, 'DELETE_IN_PROGRESS').value.taskDefinitionArn)], [taskDef(1, 'DELETE_IN_PROGRESS'), taskDef(2, 'DELETE_IN_PROGRESS'), taskDef(3, 'INACTIVE')], 0);
  assert.deepEqual(used.taskDefinitions, [{ key: 'taskdefs/web/0000000002', revision: 3 }]);
});

test('idempotency tokens are forgotten after they expire', () => {
  const plan = planReap([], [], 10_000, [
    { key: 'tokens/RunTask/old', value: { expiresAt: 9_000 }, modRevision: 4 },
    { key: 'tokens/RunTask/new', value: { expiresAt: 11_000 }, modRevision: 5 },
  ]);
  assert.deepEqual(plan.tokens, [{ key: 'tokens/RunTask/old', revision: 4 }]);
});
