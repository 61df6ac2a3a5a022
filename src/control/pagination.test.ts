import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { createCluster, listClusters } from './clusters';
import { controlTestContext, rejectsWith, TEST_CALLER } from './control-test-context';
import { paginate } from './pagination';
import { listTaskDefinitionFamilies, registerTaskDefinition } from './task-definitions';
import { listTasks } from './task-queries';

const items = ['a', 'b', 'c', 'd', 'e'];
const limits = { default: 2, max: 10, operation: 'ListThings' };
const invalid = (e: unknown) => e instanceof WharfError && e.code === 'InvalidParameterException' && e.message === 'Invalid nextToken.';

test('a token takes the next page of the same request, whatever maxResults it then asks for', () => {
  const first = paginate(items, (x) => x, { family: 'f' } as object, limits);
  assert.deepEqual(first.page, ['a', 'b']);
  const second = paginate(items, (x) => x, { family: 'f', nextToken: first.nextToken, maxResults: 3 } as object, limits);
  assert.deepEqual(second.page, ['c', 'd', 'e']);
  assert.equal(second.nextToken, undefined);
});

test("another operation's token, or one made under other filters, is refused", () => {
  const { nextToken } = paginate(items, (x) => x, { family: 'f' } as object, limits);
  assert.throws(() => paginate(items, (x) => x, { family: 'f', nextToken } as object, { ...limits, operation: 'ListOther' }), invalid);
  assert.throws(() => paginate(items, (x) => x, { family: 'g', nextToken } as object, limits), invalid);
  assert.throws(() => paginate(items, (x) => x, { nextToken }, limits), invalid);
  assert.throws(() => paginate(items, (x) => x, { nextToken: 'not a token' }, limits), invalid);
});

test('ListClusters refuses a ListTaskDefinitionFamilies token; ListTasks one made for another family', async () => {
  const ctx = await controlTestContext();
  for (const c of ['c1', 'c2', 'c3']) await createCluster(ctx, { clusterName: c });
  for (const f of ['f1', 'f2', 'f3']) {
    await registerTaskDefinition(ctx, { family: f, containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true }] }, TEST_CALLER);
  }
  const families = await listTaskDefinitionFamilies(ctx, { maxResults: 1 });
  assert.ok(families.nextToken);
  await rejectsWith(listClusters(ctx, { nextToken: families.nextToken }), 'InvalidParameterException', 'Invalid nextToken.');
  const clusters = await listClusters(ctx, { maxResults: 1 });
  assert.equal((await listClusters(ctx, { nextToken: clusters.nextToken })).clusterArns!.length, 2);
  await rejectsWith(listTasks(ctx, { cluster: 'c1', family: 'f2', nextToken: clusters.nextToken }), 'InvalidParameterException', 'Invalid nextToken.');
});
