import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith } from './control-test-context';
import { listTagsForResource, tagResource } from './tags';

test('TagResource past 50 user tags answers InvalidParameterException (not the retried LimitExceededException) and changes nothing', async () => {
  const ctx = await controlTestContext();
  const tags = Array.from({ length: 45 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
  const arn = (await createCluster(ctx, { clusterName: 'c', tags })).cluster!.clusterArn!;
  const more = Array.from({ length: 6 }, (_, i) => ({ key: `n${i}`, value: 'v' }));
  await rejectsWith(tagResource(ctx, { resourceArn: arn, tags: more }), 'InvalidParameterException', 'At most 50 tags may be applied to a resource.');
  assert.equal((await listTagsForResource(ctx, { resourceArn: arn })).tags!.length, 45);
  // A key already on the resource is overwritten, not counted again.
  await tagResource(ctx, { resourceArn: arn, tags: [...more.slice(0, 5), { key: 'k0', value: 'w' }] });
  assert.equal((await listTagsForResource(ctx, { resourceArn: arn })).tags!.length, 50);
});
