import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { putAccountSetting, putAccountSettingDefault } from './account-settings';
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
