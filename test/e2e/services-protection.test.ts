/**
 * Task scale-in protection end to end on a real Docker Engine: a container protects itself
 * through the agent's endpoint ($ECS_AGENT_URI/task-protection/v1/state), the task shows as
 * protected in GetTaskProtection, a scale-in of its service leaves it running, and removing
 * the protection lets the scale-in finish. The endpoint is reached from bridge, host and awsvpc
 * containers alike (a standalone task gets ECS's TASK_NOT_VALID failure through it).
 *
 * Run: npx tsx --test test/e2e/services-protection.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeServicesCommand,
  GetTaskProtectionCommand,
  ListTasksCommand,
  RunTaskCommand,
  StopTaskCommand,
  UpdateServiceCommand,
  UpdateTaskProtectionCommand,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { sleep, waitUntil } from './helpers/processes';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';
import { defaultSubnets } from './helpers/wharf-server';

const skip = dockerSkipReason();

/**
 * Shell for busybox: split $ECS_AGENT_URI into host, port and path, then speak HTTP/1.0 with nc
 * (busybox wget has no PUT, and segfaults writing to stdout on some networks). Each answer's
 * body is printed on a line of its own, prefixed, for the test to read from the logs.
 */
const CLIENT = [
  'u=${ECS_AGENT_URI#http://}; hp=${u%%/*}; p=/${u#*/}; h=${hp%:*}; port=${hp##*:}',
  'put() { printf "PUT %s/task-protection/v1/state HTTP/1.0\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\n\\r\\n%s" "$p" "${#1}" "$1" | nc -w 5 "$h" "$port" | tail -1; }',
  'get() { printf "GET %s/task-protection/v1/state HTTP/1.0\\r\\n\\r\\n" "$p" | nc -w 5 "$h" "$port" | tail -1; }',
].join('\n');

const PROTECT_SELF = `${CLIENT}
echo "URI $ECS_AGENT_URI"
echo "PUT $(put '{"ProtectionEnabled":true,"ExpiresInMinutes":60}')"
echo "GET $(get)"
exec sleep 3600`;

const ASK = `${CLIENT}
echo "GET $(get)"
exec sleep 3600`;

function logs(containerId: string): string {
  return execFileSync('docker', ['logs', containerId], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The JSON a container printed after `prefix` (waits for it). */
async function printed(containerId: string, prefix: string): Promise<any> {
  const line = await waitUntil(() => logs(containerId).split('\n').find((l) => l.startsWith(`${prefix} {`)), `${prefix} in the logs of ${containerId}`, { timeoutMs: 30_000, intervalMs: 200, describe: () => logs(containerId) });
  return JSON.parse(line.slice(prefix.length + 1));
}

const running = (id: string) => execFileSync('docker', ['inspect', '-f', '{{.State.Running}}', id], { encoding: 'utf8' }).trim() === 'true';

describe('task scale-in protection through ECS_AGENT_URI', { skip, timeout: 300_000 }, () => {
  let h: TasksHarness;
  /** The default subnet of the agent's zone. */
  let subnet: string;
  before(async () => {
    h = await startTasksHarness('protection');
    subnet = (await defaultSubnets(h.srv))[`${h.srv.region}a`]!.id;
  });
  after(async () => {
    await h?.close();
  });

  test('a container protects its task; scale-in leaves it running until the protection is removed', async () => {
    const td = await h.register('protect-self', [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sh', '-c', PROTECT_SELF] }]);
    await h.ecs.send(new CreateServiceCommand({ cluster: h.cluster, serviceName: 'worker', taskDefinition: td, desiredCount: 1 }));
    const taskArn = await waitUntil(async () => (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, serviceName: 'worker' }))).taskArns?.[0], 'the service task');
    const t = await h.waitTask(taskArn, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
    const cid = t.containers![0]!.runtimeId!;

    // What the container saw: ECS_AGENT_URI on the agent's address, and the ECS agent's JSON.
    const uri = logs(cid).split('\n').find((l) => l.startsWith('URI '))!.slice(4);
    assert.match(uri, /^http:\/\/\d+\.\d+\.\d+\.\d+:\d+\/api\/[0-9a-f]{32}$/);
    assert.equal(uri, h.agents.agents[0]!.agentUriOf(taskArn));
    const put = await printed(cid, 'PUT');
    assert.deepEqual(Object.keys(put), ['protection']);
    assert.equal(put.protection.TaskArn, taskArn);
    assert.equal(put.protection.ProtectionEnabled, true);
    const expires = Date.parse(put.protection.ExpirationDate);
    assert.ok(Math.abs(expires - (Date.now() + 60 * 60_000)) < 120_000, put.protection.ExpirationDate);
    assert.deepEqual(await printed(cid, 'GET'), put);

    // The API shows the task protected, until the same instant.
    const g = await h.ecs.send(new GetTaskProtectionCommand({ cluster: h.cluster, tasks: [taskArn] }));
    assert.deepEqual(g.failures, []);
    assert.equal(g.protectedTasks![0]!.protectionEnabled, true);
    assert.equal(g.protectedTasks![0]!.expirationDate!.getTime(), expires);

    // Scale-in: the service wants none, the protected task keeps running.
    await h.ecs.send(new UpdateServiceCommand({ cluster: h.cluster, service: 'worker', desiredCount: 0 }));
    await waitUntil(async () => (await h.ecs.send(new DescribeServicesCommand({ cluster: h.cluster, services: ['worker'] }))).services![0]!.desiredCount === 0, 'desiredCount 0');
    await sleep(3000);
    assert.equal((await h.describe(taskArn)).desiredStatus, 'RUNNING');
    assert.equal((await h.describe(taskArn)).lastStatus, 'RUNNING');
    assert.ok(running(cid), 'the protected container still runs');

    // Protection removed: the scale-in goes on.
    const off = await h.ecs.send(new UpdateTaskProtectionCommand({ cluster: h.cluster, tasks: [taskArn], protectionEnabled: false }));
    assert.equal(off.protectedTasks![0]!.protectionEnabled, false);
    await h.waitTask(taskArn, (x) => x.lastStatus === 'STOPPED', 'STOPPED after the protection was removed');
    await h.ecs.send(new DeleteServiceCommand({ cluster: h.cluster, service: 'worker' }));
  });

  for (const mode of ['host', 'awsvpc'] as const) {
    test(`a ${mode} container reaches the endpoint; a standalone task is TASK_NOT_VALID`, async () => {
      const td = await h.register(`ask-${mode}`, [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sh', '-c', ASK] }], { networkMode: mode });
      const out = await h.ecs.send(
        new RunTaskCommand({
          cluster: h.cluster,
          taskDefinition: td,
          ...(mode === 'awsvpc' ? { networkConfiguration: { awsvpcConfiguration: { subnets: [subnet] } } } : {}),
        }),
      );
      const arn = out.tasks![0]!.taskArn!;
      const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
      const cid = t.containers![0]!.runtimeId!;
      assert.deepEqual(await printed(cid, 'GET'), { failure: { Arn: arn, Detail: 'The task is not part of a service.', Reason: 'TASK_NOT_VALID' } });
      await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
      await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    });
  }
});
