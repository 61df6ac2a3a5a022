/**
 * Tags (TagResource, UntagResource, ListTagsForResource on clusters and task definitions: 50
 * user tags, `aws:` reserved) and account settings (PutAccountSetting, PutAccountSettingDefault,
 * DeleteAccountSetting, ListAccountSettings with its pagination), through unmodified clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  DeleteClusterCommand,
  ListAccountSettingsCommand,
  ListTagsForResourceCommand,
  PutAccountSettingCommand,
  RegisterTaskDefinitionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { ACCOUNT_ID, REGION, awsCli, boto3, sdkError, simpleTaskDefinition, startTestServer, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
let ecs: ECSClient;
const ROOT = `arn:aws:iam::${ACCOUNT_ID}:root`;

before(async () => {
  srv = await startTestServer();
  ecs = srv.ecs();
});
after(() => srv.close());

describe('tags', () => {
  test('tag, overwrite, list and untag a cluster with the AWS CLI', async () => {
    const c = await awsCli(srv, ['create-cluster', '--cluster-name', 'tagged', '--tags', 'key=env,value=dev']);
    const arn = c.json.cluster.clusterArn;
    let r = await awsCli(srv, ['tag-resource', '--resource-arn', arn, '--tags', 'key=env,value=prod', 'key=team,value=core']);
    assert.equal(r.code, 0, r.stderr);
    r = await awsCli(srv, ['list-tags-for-resource', '--resource-arn', arn]);
    assert.deepEqual(
      [...r.json.tags].sort((a: any, b: any) => a.key.localeCompare(b.key)),
      [{ key: 'env', value: 'prod' }, { key: 'team', value: 'core' }],
      'TagResource merges and overwrites by key',
    );
    r = await awsCli(srv, ['untag-resource', '--resource-arn', arn, '--tag-keys', 'env', 'not-there']);
    assert.equal(r.code, 0, r.stderr);
    r = await awsCli(srv, ['list-tags-for-resource', '--resource-arn', arn]);
    assert.deepEqual(r.json.tags, [{ key: 'team', value: 'core' }]);
  });

  test('task definition revisions are taggable, each on its own (boto3)', async () => {
    await ecs.send(new RegisterTaskDefinitionCommand(simpleTaskDefinition('tagtd', { tags: [{ key: 'v', value: '1' }] })));
    await ecs.send(new RegisterTaskDefinitionCommand(simpleTaskDefinition('tagtd')));
    const arn1 = `arn:aws:ecs:${REGION}:${ACCOUNT_ID}:task-definition/tagtd:1`;
    const arn2 = `arn:aws:ecs:${REGION}:${ACCOUNT_ID}:task-definition/tagtd:2`;
    const out = await boto3(srv, `
ecs.tag_resource(resourceArn=inp["arn2"], tags=[{"key": "stage", "value": "canary"}])
a = ecs.list_tags_for_resource(resourceArn=inp["arn1"])["tags"]
b = ecs.list_tags_for_resource(resourceArn=inp["arn2"])["tags"]
d = ecs.describe_task_definition(taskDefinition="tagtd:2", include=["TAGS"])["tags"]
out({"a": a, "b": b, "d": d})`, { arn1, arn2 });
    assert.deepEqual(out.a, [{ key: 'v', value: '1' }]);
    assert.deepEqual(out.b, [{ key: 'stage', value: 'canary' }]);
    assert.deepEqual(out.d, out.b, 'DescribeTaskDefinition include TAGS shows the same tags');
  });

  test('50 user tags at most, aws: prefix reserved, unknown resources refused; refusals change nothing', async () => {
    const c = await ecs.send(new CreateClusterCommand({ clusterName: 'limits' }));
    const arn = c.cluster!.clusterArn!;
    const fifty = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: String(i) }));
    await ecs.send(new TagResourceCommand({ resourceArn: arn, tags: fifty }));
    const more = await sdkError(ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'k50', value: 'x' }] })));
    // Not LimitExceededException: SDKs retry that code as throttling.
    assert.equal(more.name, 'InvalidParameterException');
    assert.equal(more.message, 'At most 50 tags may be applied to a resource.');
    // Overwriting an existing key does not add one.
    await ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'k0', value: 'new' }] }));
    const reserved = await sdkError(ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'aws:owner', value: 'x' }] })));
    assert.equal(reserved.name, 'InvalidParameterException');
    const untagReserved = await sdkError(ecs.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ['aws:owner'] })));
    assert.equal(untagReserved.name, 'InvalidParameterException');
    const listed = await ecs.send(new ListTagsForResourceCommand({ resourceArn: arn }));
    assert.equal(listed.tags!.length, 50);
    assert.equal(listed.tags!.find((t) => t.key === 'k0')!.value, 'new');
    assert.ok(!listed.tags!.some((t) => t.key === 'k50' || t.key!.startsWith('aws:')));

    const tooManyAtCreate = await sdkError(ecs.send(new CreateClusterCommand({ clusterName: 'too-many', tags: [...fifty, { key: 'x', value: 'y' }] })));
    assert.match(tooManyAtCreate.name, /InvalidParameterException|LimitExceededException/);

    const ghostCluster = await sdkError(ecs.send(new ListTagsForResourceCommand({ resourceArn: arn.replace('/limits', '/ghost') })));
    assert.match(ghostCluster.name, /ClusterNotFoundException|ResourceNotFoundException/);
    const ghostTd = await sdkError(ecs.send(new TagResourceCommand({ resourceArn: `arn:aws:ecs:${REGION}:${ACCOUNT_ID}:task-definition/nope:1`, tags: [{ key: 'a', value: 'b' }] })));
    assert.equal(ghostTd.name, 'ResourceNotFoundException');
    const otherAccount = await sdkError(ecs.send(new ListTagsForResourceCommand({ resourceArn: `arn:aws:ecs:${REGION}:999999999999:cluster/limits` })));
    // Another account's resource: IAM refuses it (ECS has no resource-based policies).
    assert.equal(otherAccount.name, 'AccessDeniedException');
    assert.match(otherAccount.message, /ecs:ListTagsForResource on resource: arn:aws:ecs:\S+:999999999999:cluster\/limits because no resource-based policy allows/);
    const garbage = await sdkError(ecs.send(new ListTagsForResourceCommand({ resourceArn: 'not-an-arn' })));
    assert.equal(garbage.name, 'InvalidParameterException');

    // A deleted (INACTIVE) cluster is still describable, so its tags can be read, but not changed.
    await ecs.send(new DeleteClusterCommand({ cluster: 'limits' }));
    assert.equal((await ecs.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags!.length, 50);
    const inactive = await sdkError(ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: 'late', value: 'x' }] })));
    assert.equal(inactive.name, 'InvalidParameterException');
    assert.equal(inactive.message, 'The specified cluster is inactive. Specify an active cluster and try again.');
    const cli = await awsCli(srv, ['tag-resource', '--resource-arn', arn, '--tags', 'key=late,value=x']);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /\(InvalidParameterException\).*The specified cluster is inactive\. Specify an active cluster and try again\./);
  });
});

describe('account settings', () => {
  test('default, own setting, delete: effective value follows (AWS CLI)', async () => {
    const eff = async (name: string) => {
      const r = await awsCli(srv, ['list-account-settings', '--effective-settings', '--name', name]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.settings.length, 1);
      return r.json.settings[0].value;
    };
    assert.equal(await eff('awsvpcTrunking'), 'disabled', 'built-in default');
    let r = await awsCli(srv, ['put-account-setting-default', '--name', 'awsvpcTrunking', '--value', 'enabled']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json.setting, { name: 'awsvpcTrunking', value: 'enabled', principalArn: ROOT });
    assert.equal(await eff('awsvpcTrunking'), 'enabled');
    r = await awsCli(srv, ['list-account-settings']);
    assert.deepEqual(r.json.settings, [{ name: 'awsvpcTrunking', value: 'enabled', principalArn: ROOT }], 'the root user sees the account default as its own');

    // A role without its own setting inherits the account default; with one, its own wins.
    const role = `arn:aws:iam::${ACCOUNT_ID}:role/deployer`;
    const roleEff = await ecs.send(new ListAccountSettingsCommand({ principalArn: role, effectiveSettings: true, name: 'awsvpcTrunking' }));
    assert.equal(roleEff.settings![0]!.value, 'enabled');
    await ecs.send(new PutAccountSettingCommand({ principalArn: role, name: 'awsvpcTrunking', value: 'disabled' }));
    const roleOwn = await ecs.send(new ListAccountSettingsCommand({ principalArn: role }));
    assert.deepEqual(roleOwn.settings!.map((s) => [s.name, s.value, s.principalArn]), [['awsvpcTrunking', 'disabled', role]]);
    r = await awsCli(srv, ['delete-account-setting', '--name', 'awsvpcTrunking', '--principal-arn', role]);
    assert.equal(r.code, 0, r.stderr);
    const roleAfter = await ecs.send(new ListAccountSettingsCommand({ principalArn: role, effectiveSettings: true, name: 'awsvpcTrunking' }));
    assert.equal(roleAfter.settings![0]!.value, 'enabled', 'back to the account default');
  });

  test('values are checked; the long ARN formats cannot be turned off', async () => {
    const bad = await sdkError(ecs.send(new PutAccountSettingCommand({ name: 'containerInsights', value: 'sometimes' })));
    assert.equal(bad.name, 'InvalidParameterException');
    const arnOff = await sdkError(ecs.send(new PutAccountSettingCommand({ name: 'taskLongArnFormat', value: 'disabled' })));
    assert.equal(arnOff.name, 'InvalidParameterException');
    const notAName = await sdkError(ecs.send(new PutAccountSettingCommand({ name: 'noSuchSetting' as any, value: 'enabled' })));
    assert.equal(notAName.name, 'InvalidParameterException');
    const eff = await ecs.send(new ListAccountSettingsCommand({ effectiveSettings: true, name: 'taskLongArnFormat' }));
    assert.equal(eff.settings![0]!.value, 'enabled');
  });

  test('ListAccountSettings pages by 10 at most, and the CLI and boto3 paginate', async () => {
    const first = await ecs.send(new ListAccountSettingsCommand({ effectiveSettings: true, maxResults: 4 }));
    assert.equal(first.settings!.length, 4);
    assert.ok(first.nextToken);
    const tooMany = await sdkError(ecs.send(new ListAccountSettingsCommand({ effectiveSettings: true, maxResults: 11 })));
    assert.equal(tooMany.name, 'InvalidParameterException');
    const cli = await awsCli(srv, ['list-account-settings', '--effective-settings', '--page-size', '3']);
    assert.equal(cli.code, 0, cli.stderr);
    const names = cli.json.settings.map((s: any) => s.name);
    assert.equal(new Set(names).size, names.length, 'no repeats across pages');
    for (const n of ['containerInsights', 'awsvpcTrunking', 'serviceLongArnFormat', 'taskLongArnFormat', 'containerInstanceLongArnFormat']) {
      assert.ok(names.includes(n), `CLI paginated to ${n}`);
    }
    const b = await boto3(srv, `
names = []
for p in ecs.get_paginator("list_account_settings").paginate(effectiveSettings=True, PaginationConfig={"PageSize": 2}):
    names.extend(s["name"] for s in p["settings"])
out(names)`);
    assert.deepEqual([...b].sort(), [...names].sort(), 'boto3 pages through the same settings');
  });
});
