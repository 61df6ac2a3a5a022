import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWharfError } from '../core/errors';
import { keys, type ContainerInstanceRecord, type TaskRecord } from '../core/resources';
import { casUpdate } from '../store/store';
import { createCluster } from './clusters';
import { NO_UPDATE_AVAILABLE, discoverPollEndpoint, submitAttachmentStateChanges, updateContainerAgent } from './container-agent';
import { deregisterContainerInstance, registerContainerInstance } from './container-instances';
import type { Caller, ControlContext } from './context';
import { controlTestContext } from './control-test-context';
import { describeTasks } from './task-queries';

const CALLER: Caller = { requestId: 'r', accessKeyId: 'AK', principalArn: 'arn:aws:iam::000000000000:role/wharf-agent', isAgent: true, region: 'us-east-1' };

async function context(): Promise<ControlContext> {
  const ctx = await controlTestContext({ region: 'us-east-1', accountId: '000000000000' });
  await createCluster(ctx, { clusterName: 'c1' });
  return ctx;
}

async function instance(ctx: ControlContext, connected: boolean): Promise<string> {
  const r = await registerContainerInstance(ctx, { cluster: 'c1', totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }] });
  const arn = r.containerInstance!.containerInstanceArn!;
  const id = arn.split('/').pop()!;
  const { revision } = await casUpdate<ContainerInstanceRecord>(ctx.store, keys.instance('c1', id), (cur) => ({ ...cur!.value, agentConnected: connected }));
  await ctx.state.waitFor(revision);
  return arn;
}

const code = (c: string, message: RegExp) => (e: unknown) => isWharfError(e, c as never) && message.test(e.message);

test('DiscoverPollEndpoint answers this server as the caller reached it, else its own URL', async () => {
  const ctx = await context();
  const viaHost = await discoverPollEndpoint(ctx, { cluster: 'c1' }, { ...CALLER, host: '10.0.0.5:4566' });
  assert.deepEqual(viaHost, { endpoint: 'http://10.0.0.5:4566/', telemetryEndpoint: 'http://10.0.0.5:4566/', serviceConnectEndpoint: 'http://10.0.0.5:4566/' });
  ctx.endpoint = 'http://127.0.0.1:4566';
  const fallback = await discoverPollEndpoint(ctx, {}, CALLER);
  assert.equal(fallback.endpoint, 'http://127.0.0.1:4566/');
  assert.equal(fallback.telemetryEndpoint, 'http://127.0.0.1:4566/');
});

test('UpdateContainerAgent: no update for a connected agent; errors for unknown, disconnected and inactive instances', async () => {
  const ctx = await context();
  const up = await instance(ctx, true);
  const down = await instance(ctx, false);
  await assert.rejects(updateContainerAgent(ctx, { cluster: 'c1', containerInstance: up }), code('NoUpdateAvailableException', /^There is no update available for your container agent\.$/));
  await assert.rejects(updateContainerAgent(ctx, { cluster: 'c1', containerInstance: up.split('/').pop()! }), code('NoUpdateAvailableException', new RegExp(NO_UPDATE_AVAILABLE.replace(/\./g, '\\.'))));
  await assert.rejects(updateContainerAgent(ctx, { cluster: 'c1', containerInstance: down }), code('ClientException', /not connected/));
  await assert.rejects(updateContainerAgent(ctx, { cluster: 'c1', containerInstance: 'ffffffffffffffffffffffffffffffff' }), code('InvalidParameterException', /Container instance not found/));
  await assert.rejects(updateContainerAgent(ctx, { cluster: 'nope', containerInstance: up }), code('ClusterNotFoundException', /Cluster not found/));
  // The default cluster is assumed when none is named; it does not exist here.
  await assert.rejects(updateContainerAgent(ctx, { containerInstance: up }), code('ClusterNotFoundException', /Cluster not found/));
  await deregisterContainerInstance(ctx, { cluster: 'c1', containerInstance: down, force: true });
  await assert.rejects(updateContainerAgent(ctx, { cluster: 'c1', containerInstance: down }), code('ClientException', /inactive/));
});

async function awsvpcTask(ctx: ControlContext, attachmentId: string): Promise<string> {
  const id = 'a'.repeat(31) + attachmentId.slice(-1);
  const t: TaskRecord = {
    taskArn: `arn:aws:ecs:us-east-1:000000000000:task/c1/${id}`,
    clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/c1',
    lastStatus: 'PENDING',
    desiredStatus: 'RUNNING',
    version: 1,
    attachments: [{ id: attachmentId, type: 'ElasticNetworkInterface', status: 'PRECREATED', details: [] }],
    wharf: { id, cluster: 'c1' },
  };
  await ctx.state.waitFor(await ctx.store.create(keys.task('c1', id), t));
  return t.taskArn;
}

test('SubmitAttachmentStateChanges sets the status of the task attachment it names', async () => {
  const ctx = await context();
  const a1 = '11111111-2222-3333-4444-555555555551';
  const a2 = '11111111-2222-3333-4444-555555555552';
  const t1 = await awsvpcTask(ctx, a1);
  const t2 = await awsvpcTask(ctx, a2);
  const ack = await submitAttachmentStateChanges(ctx, {
    cluster: 'c1',
    attachments: [
      { attachmentArn: `arn:aws:ecs:us-east-1:000000000000:attachment/${a1}`, status: 'ATTACHED' },
      { attachmentArn: a2, status: 'ATTACHING' },
    ],
  });
  assert.deepEqual(ack, { acknowledgment: 'true' });
  const d = await describeTasks(ctx, { cluster: 'c1', tasks: [t1, t2] });
  assert.deepEqual(d.tasks!.map((t) => [t.attachments![0]!.status, t.version]), [['ATTACHED', 2], ['ATTACHING', 2]]);

  // Bad input changes nothing, not even the valid entries beside it.
  const bad = (attachments: { attachmentArn: string; status: string }[], c: string, m: RegExp) =>
    assert.rejects(submitAttachmentStateChanges(ctx, { cluster: 'c1', attachments }), code(c, m));
  await bad([{ attachmentArn: a1, status: 'DETACHED' }, { attachmentArn: a2, status: 'GLUED' }], 'InvalidParameterException', /Invalid attachment status 'GLUED'/);
  await bad([{ attachmentArn: a1, status: 'DETACHED' }, { attachmentArn: 'no-such-attachment', status: 'ATTACHED' }], 'InvalidParameterException', /Attachment not found: no-such-attachment/);
  await bad([], 'InvalidParameterException', /empty/);
  await assert.rejects(submitAttachmentStateChanges(ctx, { cluster: 'nope', attachments: [{ attachmentArn: a1, status: 'ATTACHED' }] }), code('ClusterNotFoundException', /Cluster not found/));
  const after = await describeTasks(ctx, { cluster: 'c1', tasks: [t1] });
  assert.equal(after.tasks![0]!.attachments![0]!.status, 'ATTACHED');
});
