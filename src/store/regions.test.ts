import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from './memory/memory-store';
import { markRegionUsed, migrateUnprefixedKeys, regionStore, usedRegions } from './regions';

describe('regions in one store', () => {
  test('a data directory from before regions moves, whole, under the region its ARNs name', async () => {
    const store = new MemoryStore();
    await store.create('clusters/demo', { clusterName: 'demo', clusterArn: 'arn:aws:ecs:eu-west-1:000000000000:cluster/demo' });
    await store.create('families/web', { family: 'web', last: 3 });
    const r = await migrateUnprefixedKeys(store, 'us-east-1', 1);
    assert.deepEqual(r, { region: 'eu-west-1', moved: 2 });
    const eu = regionStore(store, 'eu-west-1');
    assert.equal((await eu.get<{ clusterName: string }>('clusters/demo'))?.value.clusterName, 'demo');
    assert.deepEqual((await eu.get('families/web'))?.value, { family: 'web', last: 3 });
    assert.deepEqual((await store.list('clusters/')).length, 0);
    assert.deepEqual(await usedRegions(store), ['eu-west-1']);
    // A second start finds nothing left to move.
    assert.deepEqual(await migrateUnprefixedKeys(store, 'us-east-1', 2), { region: 'us-east-1', moved: 0 });
  });

  test('records without ARNs go to the fallback region', async () => {
    const store = new MemoryStore();
    await store.create('settings/x/y', { name: 'y' });
    assert.deepEqual(await migrateUnprefixedKeys(store, 'ap-south-1', 1), { region: 'ap-south-1', moved: 1 });
    assert.ok(await regionStore(store, 'ap-south-1').get('settings/x/y'));
  });

  test('used regions are listed in the order they were first used, once each', async () => {
    const store = new MemoryStore();
    await markRegionUsed(store, 'us-east-1', 1);
    await markRegionUsed(store, 'eu-west-1', 2);
    await markRegionUsed(store, 'us-east-1', 3);
    assert.deepEqual(await usedRegions(store), ['us-east-1', 'eu-west-1']);
  });
});
