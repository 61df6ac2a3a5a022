import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { keys, type TaskRecord } from '../core/resources';
import { controlTestContext, TEST_CALLER } from './control-test-context';
import type { Caller, ControlContext } from './context';
import { ecsHandlers } from './ecs-api';
import { instancePrincipal } from './instance-credentials';
import { authorizeAgentLogs } from './logs-agent-authorization';

const REGION = 'eu-west-3';
const ACCOUNT = '123456789012';
const TOTAL = [
  { name: 'CPU', type: 'INTEGER', integerValue: 1024 },
  { name: 'MEMORY', type: 'INTEGER', integerValue: 2048 },
];

/**
 * Cluster `a` with instances X and Y; a task on X whose `app` container logs with awslogs to group
 * `g` (prefix `web`, in this region, create-group on), whose `side` container logs to `far` in
 * us-west-2, and whose `plain` container uses json-file; and a task on Y with the same definition.
 */
async function fixture() {
  const ctx = await controlTestContext({ region: REGION, accountId: ACCOUNT });
  const ecs = ecsHandlers(ctx);
  await ecs.CreateCluster!({ clusterName: 'a' }, TEST_CALLER);
  const token: Caller = { ...TEST_CALLER, isAgent: true, principal: { kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: 'a' } };
  const register = async () => {
    const out = (await ecs.RegisterContainerInstance!({ cluster: 'a', totalResources: TOTAL }, token)) as { containerInstance: { containerInstanceArn: string } };
    const id = out.containerInstance.containerInstanceArn.split('/').pop()!;
    return { id, rec: ctx.state.instances.get('a', id)!.value };
  };
  const x = await register();
  const y = await register();
  const td = (await ecs.RegisterTaskDefinition!(
    {
      family: 'web',
      containerDefinitions: [
        { name: 'app', image: 'i', memory: 32, logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': REGION, 'awslogs-stream-prefix': 'web', 'awslogs-create-group': 'true' } } },
        { name: 'side', image: 'i', memory: 32, logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'far', 'awslogs-region': 'us-west-2', 'awslogs-stream-prefix': 'web' } } },
        { name: 'plain', image: 'i', memory: 32 },
      ],
    },
    TEST_CALLER,
  )) as { taskDefinition: { taskDefinitionArn: string } };
  const task = (id: string, instanceId: string, status = 'RUNNING'): TaskRecord => ({
    taskArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/a/${id}`,
    clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/a`,
    taskDefinitionArn: td.taskDefinition.taskDefinitionArn,
    lastStatus: status,
    desiredStatus: status,
    containers: [],
    version: 1,
    wharf: { id, cluster: 'a', instanceId, ...(status === 'STOPPED' ? { released: true } : {}) },
  });
  for (const t of [task('t1', x.id), task('t2', y.id), task('t3', x.id, 'STOPPED')]) await ctx.store.create(keys.task('a', t.wharf.id), t);
  await ctx.state.waitFor(await ctx.store.revision());
  const callerX: Caller = { ...TEST_CALLER, isAgent: true, principalArn: `arn:aws:iam::${ACCOUNT}:role/wharf-agent`, principal: instancePrincipal(x.rec) };
  const home = (r: string): ControlContext | undefined => (r === REGION ? ctx : undefined);
  const check = (op: string, input: Record<string, unknown>, logsRegion = REGION, caller = callerX) => authorizeAgentLogs(home, op, input, caller, logsRegion);
  return { check, token };
}

const denied = (fn: () => void, why: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WharfError, String(e));
    assert.equal(e.code, 'AccessDeniedException');
    assert.match(e.message, /^User: arn:aws:iam::123456789012:\S+ is not authorized to perform: logs:\w+ on resource: arn:aws:logs:[a-z0-9-]+:123456789012:log-group:\S+ because /);
    assert.match(e.message, why);
    return true;
  });

test("an instance writes the awslogs streams of its own tasks' containers, as ECS names them", async () => {
  const { check } = await fixture();
  check('CreateLogStream', { logGroupName: 'g', logStreamName: 'web/app/t1' });
  check('PutLogEvents', { logGroupName: 'g', logStreamName: 'web/app/t1' });
  check('DescribeLogStreams', { logGroupName: 'g', logStreamNamePrefix: 'web/app/t1' });
  check('CreateLogGroup', { logGroupName: 'g' });
  // A stopped task's last lines may still go out.
  check('PutLogEvents', { logGroupName: 'g', logStreamName: 'web/app/t3' });
  // awslogs-region naming another region: the stream is written there, judged on this region's task.
  check('PutLogEvents', { logGroupName: 'far', logStreamName: 'web/side/t1' }, 'us-west-2');
});

test("an instance may not write another instance's task, another container's group, or another region's copy", async () => {
  const { check } = await fixture();
  const own = /an instance credential may only write the awslogs streams of its own instance's tasks/;
  denied(() => check('PutLogEvents', { logGroupName: 'g', logStreamName: 'web/app/t2' }), own);
  denied(() => check('PutLogEvents', { logGroupName: 'other', logStreamName: 'web/app/t1' }), own);
  denied(() => check('PutLogEvents', { logGroupName: 'g', logStreamName: 'web/plain/t1' }), own);
  denied(() => check('PutLogEvents', { logGroupName: 'far', logStreamName: 'web/side/t1' }), own);
  denied(() => check('PutLogEvents', { logGroupName: 'g', logStreamName: 'web/app/t1' }, 'us-west-2'), own);
  denied(() => check('DescribeLogStreams', { logGroupName: 'g', logStreamNamePrefix: 'web/' }), own);
  denied(() => check('CreateLogGroup', { logGroupName: 'far' }, 'us-west-2'), /no task on this container instance names this log group with awslogs-create-group=true/);
  denied(() => check('GetLogEvents', { logGroupName: 'g', logStreamName: 'web/app/t1' }), /may not call logs:GetLogEvents/);
});

test('a join token ships no logs', async () => {
  const { check, token } = await fixture();
  denied(() => check('PutLogEvents', { logGroupName: 'g', logStreamName: 'web/app/t1' }, REGION, token), /only a container instance credential ships task logs/);
});
