import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { createLogger } from '../lib';
import { TaskReaperController } from '../controllers/task-reaper-controller';
import { INACTIVE_CLUSTER_VISIBLE_MS, createCluster, deleteCluster, describeClusters, listClusters } from './clusters';
import { putAccountSetting, putAccountSettingDefault } from './account-settings';
import { registerContainerInstance } from './container-instances';
import { controlTestContext, TEST_CALLER } from './control-test-context';
import { ecsHandlers } from './ecs-api';
import { createService } from './services';
import { listTagsForResource, tagResource, untagResource } from './tags';
import { runTask } from './tasks';

const rejects = (p: Promise<unknown>, code: string, message?: string | RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof WharfError, String(e));
    assert.equal(e.code, code);
    if (typeof message === 'string') assert.equal(e.message, message);
    else if (message !== undefined) assert.match(e.message, message);
    return true;
  });

test('a deleted cluster is INACTIVE: still listed and described, refused for new work and for tagging', async () => {
  const ctx = await controlTestContext();
  const { cluster } = await createCluster(ctx, { clusterName: 'old', tags: [{ key: 'team', value: 'a' }] });
  const arn = cluster!.clusterArn!;
  assert.equal(arn, 'arn:aws:ecs:eu-west-3:123456789012:cluster/old');
  const deleted = await deleteCluster(ctx, { cluster: 'old' });
  assert.equal(deleted.cluster!.status, 'INACTIVE');

  assert.ok((await listClusters(ctx, {})).clusterArns!.includes(arn), 'ListClusters keeps listing it for a while');
  const d = await describeClusters(ctx, { clusters: ['old'] });
  assert.equal(d.clusters![0]!.status, 'INACTIVE');
  assert.deepEqual(d.failures, []);

  const inactive = 'The specified cluster is inactive. Specify an active cluster and try again.';
  await rejects(tagResource(ctx, { resourceArn: arn, tags: [{ key: 'k', value: 'v' }] }), 'InvalidParameterException', inactive);
  await rejects(untagResource(ctx, { resourceArn: arn, tagKeys: ['team'] }), 'InvalidParameterException', inactive);
  assert.deepEqual((await listTagsForResource(ctx, { resourceArn: arn })).tags, [{ key: 'team', value: 'a' }]);

  await rejects(runTask(ctx, { cluster: 'old', taskDefinition: 'web' }), 'ClusterNotFoundException');
  await rejects(createService(ctx, { cluster: arn, serviceName: 's', taskDefinition: 'web', desiredCount: 1 }, TEST_CALLER), 'ClusterNotFoundException');
  await rejects(registerContainerInstance(ctx, { cluster: 'old' }), 'ClusterNotFoundException');
  await rejects(deleteCluster(ctx, { cluster: 'old' }), 'ClusterNotFoundException');
});

test("TagResource and CreateCluster refuse tags outside ECS's pattern and repeated keys, changing nothing", async () => {
  const ctx = await controlTestContext();
  const arn = (await createCluster(ctx, { clusterName: 'c', tags: [{ key: 'team', value: 'a' }] })).cluster!.clusterArn!;
  await rejects(tagResource(ctx, { resourceArn: arn, tags: [{ key: 'k', value: 'v' }, { key: 'bad!', value: 'v' }] }), 'InvalidParameterException', /^Invalid tag 'bad!'\./);
  await rejects(tagResource(ctx, { resourceArn: arn, tags: [{ key: 'team', value: 'b' }, { key: 'team', value: 'c' }] }), 'InvalidParameterException', "Duplicate tag key 'team'.");
  assert.deepEqual((await listTagsForResource(ctx, { resourceArn: arn })).tags, [{ key: 'team', value: 'a' }]);
  await rejects(createCluster(ctx, { clusterName: 'd', tags: [{ key: 'x', value: 'a' }, { key: 'x', value: 'b' }] }), 'InvalidParameterException', "Duplicate tag key 'x'.");
  assert.deepEqual((await describeClusters(ctx, { clusters: ['d'] })).failures?.map((f) => f.reason), ['MISSING']);
});

test('an INACTIVE cluster disappears after an hour and the reaper removes it', async () => {
  const ctx = await controlTestContext();
  const arn = (await createCluster(ctx, { clusterName: 'gone' })).cluster!.clusterArn!;
  await deleteCluster(ctx, { cluster: 'gone' });
  ctx.clock.advance(INACTIVE_CLUSTER_VISIBLE_MS - 1000);
  assert.ok((await listClusters(ctx, {})).clusterArns!.includes(arn), 'still listed just before the hour');

  const reaper = new TaskReaperController({ state: ctx.state, store: ctx.store, clock: ctx.clock, log: createLogger('test', 'silent') });
  assert.deepEqual((await reaper.reconcile()).clusters, [], 'nothing to reap inside the window');
  ctx.clock.advance(1000);
  assert.ok(!(await listClusters(ctx, {})).clusterArns!.includes(arn), 'no longer listed after the hour');
  assert.deepEqual((await describeClusters(ctx, { clusters: ['gone'] })).failures, [{ arn, reason: 'MISSING' }]);
  await rejects(listTagsForResource(ctx, { resourceArn: arn }), 'ClusterNotFoundException');
  assert.equal((await reaper.reconcile()).clusters.length, 1);
  await ctx.state.waitFor(await ctx.store.revision());
  assert.equal(ctx.state.clusters.get('', 'gone'), undefined, 'the record is removed from the store');
});

test('CreateCluster of an INACTIVE name makes it ACTIVE again, with the request settings and tags', async () => {
  const ctx = await controlTestContext();
  const first = (await createCluster(ctx, { clusterName: 'again', tags: [{ key: 'gen', value: '1' }] })).cluster!;
  await deleteCluster(ctx, { cluster: 'again' });
  const again = (await createCluster(ctx, { clusterName: 'again', tags: [{ key: 'gen', value: '2' }] })).cluster!;
  assert.equal(again.status, 'ACTIVE');
  assert.equal(again.clusterArn, first.clusterArn);
  assert.deepEqual(again.tags, [{ key: 'gen', value: '2' }]);
  // ACTIVE again, so never reaped, however long ago it was deleted.
  ctx.clock.advance(2 * INACTIVE_CLUSTER_VISIBLE_MS);
  const reaper = new TaskReaperController({ state: ctx.state, store: ctx.store, clock: ctx.clock, log: createLogger('test', 'silent') });
  assert.deepEqual((await reaper.reconcile()).clusters, []);
  assert.deepEqual((await listClusters(ctx, {})).clusterArns, [first.clusterArn]);
  await tagResource(ctx, { resourceArn: first.clusterArn!, tags: [{ key: 'k', value: 'v' }] });
});

test('DescribeClusters names a missing cluster by the ARN it was given, whatever its kind', async () => {
  const ctx = await controlTestContext();
  const service = `arn:aws:ecs:${ctx.partition.region}:${ctx.partition.accountId}:service/default`;
  const cluster = `arn:aws:ecs:${ctx.partition.region}:${ctx.partition.accountId}:cluster/nope`;
  const out = await describeClusters(ctx, { clusters: [service, cluster, 'gone'] });
  assert.deepEqual(out.failures, [
    { arn: service, reason: 'MISSING' },
    { arn: cluster, reason: 'MISSING' },
    { arn: `arn:aws:ecs:${ctx.partition.region}:${ctx.partition.accountId}:cluster/gone`, reason: 'MISSING' },
  ]);
});

test("an ARN of another account or partition is refused at the door as IAM refuses it; another region is 'Invalid Region in ARN'", async () => {
  const ctx = await controlTestContext();
  const ecs = ecsHandlers(ctx);
  await createCluster(ctx, { clusterName: 'default' });
  const { region, accountId } = ctx.partition;
  const other = `arn:aws:ecs:${region}:111111111111:cluster/default`;
  await rejects(
    ecs.DescribeClusters!({ clusters: [other] }, TEST_CALLER),
    'AccessDeniedException',
    `User: ${TEST_CALLER.principalArn} is not authorized to perform: ecs:DescribeClusters on resource: ${other} because no resource-based policy allows the ecs:DescribeClusters action`,
  );
  await rejects(ecs.DescribeServices!({ cluster: other, services: ['s'] }, TEST_CALLER), 'AccessDeniedException');
  await rejects(ecs.DescribeTaskDefinition!({ taskDefinition: `arn:aws:ecs:${region}:111111111111:task-definition/web:1` }, TEST_CALLER), 'AccessDeniedException');
  await rejects(ecs.DescribeClusters!({ clusters: [`arn:aws-cn:ecs:${region}:${accountId}:cluster/default`] }, TEST_CALLER), 'AccessDeniedException');
  await rejects(ecs.DescribeClusters!({ clusters: [`arn:aws:ecs:ap-south-2:${accountId}:cluster/default`] }, TEST_CALLER), 'InvalidParameterException', 'Invalid Region in ARN');
  // This account's own ARN still names the cluster.
  const own = (await ecs.DescribeClusters!({ clusters: [`arn:aws:ecs:${region}:${accountId}:cluster/default`] }, TEST_CALLER)) as { clusters: unknown[] };
  assert.equal(own.clusters.length, 1);
});

test("a cluster created without containerInsights takes the caller's effective account setting; a cluster value overrides it", async () => {
  const ctx = await controlTestContext();
  const insights = async (name: string, settings?: { name: 'containerInsights'; value: string }[]) =>
    (await createCluster(ctx, { clusterName: name, settings }, TEST_CALLER)).cluster!.settings!.find((s) => s.name === 'containerInsights')?.value;
  assert.equal(await insights('a'), 'disabled', "ECS's own default");
  await putAccountSettingDefault(ctx, { name: 'containerInsights', value: 'enabled' });
  assert.equal(await insights('b'), 'enabled', 'the account default');
  await putAccountSetting(ctx, { name: 'containerInsights', value: 'enhanced' }, TEST_CALLER);
  assert.equal(await insights('c'), 'enhanced', "the caller's own setting");
  assert.equal(await insights('d', []), 'enhanced');
  assert.equal(await insights('e', [{ name: 'containerInsights', value: 'disabled' }]), 'disabled', "the cluster's own value");
});

test('executeCommandConfiguration: OVERRIDE needs a logConfiguration, and a logConfiguration needs OVERRIDE (CreateCluster and UpdateCluster)', async () => {
  const ctx = await controlTestContext();
  const needsLog = 'If the OVERRIDE logging option is specified, the logConfiguration is required.';
  const needsOverride = "You must set logging to 'OVERRIDE' when you supply a log configuration";
  const override = { executeCommandConfiguration: { logging: 'OVERRIDE' as const } };
  await rejects(createCluster(ctx, { clusterName: 'c', configuration: override }), 'InvalidParameterException', needsLog);
  await createCluster(ctx, { clusterName: 'c' });
  await rejects(ecsHandlers(ctx).UpdateCluster!({ cluster: 'c', configuration: override }, TEST_CALLER), 'InvalidParameterException', needsLog);
  await rejects(
    ecsHandlers(ctx).UpdateCluster!({ cluster: 'c', configuration: { executeCommandConfiguration: { logging: 'NONE', logConfiguration: { cloudWatchLogGroupName: 'g' } } } }, TEST_CALLER),
    'InvalidParameterException',
    needsOverride,
  );
  const ok = { executeCommandConfiguration: { logging: 'OVERRIDE' as const, logConfiguration: { cloudWatchLogGroupName: 'g' } } };
  const c = (await ecsHandlers(ctx).UpdateCluster!({ cluster: 'c', configuration: ok }, TEST_CALLER)) as { cluster: { configuration?: unknown } };
  assert.deepEqual(c.cluster.configuration, ok);
});
