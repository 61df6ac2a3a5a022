import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { deleteAccountSetting, listAccountSettings, putAccountSetting, putAccountSettingDefault } from './account-settings';
import { controlTestContext, TEST_CALLER } from './control-test-context';

test('disabling a long ARN setting answers ECS\'s message; enabling it is accepted', async () => {
  const ctx = await controlTestContext();
  for (const name of ['serviceLongArnFormat', 'taskLongArnFormat', 'containerInstanceLongArnFormat'] as const) {
    for (const put of [() => putAccountSetting(ctx, { name, value: 'disabled' }, TEST_CALLER), () => putAccountSettingDefault(ctx, { name, value: 'disabled' })]) {
      await assert.rejects(put(), (e: unknown) => {
        assert.ok(e instanceof WharfError);
        assert.equal(e.code, 'InvalidParameterException');
        assert.equal(e.message, 'You can no longer disable Long Arn settings.');
        return true;
      });
    }
    assert.equal((await putAccountSetting(ctx, { name, value: 'enabled' }, TEST_CALLER)).setting!.value, 'enabled');
  }
});

test('a named principalArn must be an IAM user or role of this account, or its root', async () => {
  const ctx = await controlTestContext();
  const { accountId } = ctx.partition;
  const refused = async (principalArn: string) => {
    for (const call of [
      () => putAccountSetting(ctx, { name: 'awsvpcTrunking', value: 'enabled', principalArn }, TEST_CALLER),
      () => listAccountSettings(ctx, { principalArn }, TEST_CALLER),
      () => deleteAccountSetting(ctx, { name: 'awsvpcTrunking', principalArn }, TEST_CALLER),
    ]) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof WharfError);
        assert.equal(e.code, 'InvalidParameterException');
        assert.equal(e.message, `principalArn '${principalArn}' is not the ARN of an IAM user or role of account ${accountId}, or of its root user.`);
        return true;
      });
    }
  };
  await refused('garbage');
  await refused('arn:aws:iam::999999999999:role/x');
  await refused(`arn:aws:iam::${accountId}:group/admins`);
  await refused(`arn:aws-cn:iam::${accountId}:role/x`);
  for (const principalArn of [`arn:aws:iam::${accountId}:role/deploy`, `arn:aws:iam::${accountId}:user/path/alice`, `arn:aws:iam::${accountId}:root`]) {
    assert.equal((await putAccountSetting(ctx, { name: 'awsvpcTrunking', value: 'enabled', principalArn }, TEST_CALLER)).setting!.principalArn, principalArn);
  }
  assert.equal((await listAccountSettings(ctx, { principalArn: `arn:aws:iam::${accountId}:role/deploy` }, TEST_CALLER)).settings![0]!.value, 'enabled');
});
