/**
 * Cluster operations through unmodified clients (AWS CLI v2, boto3, SDK v3) against a real
 * Wharf server: CreateCluster (default name, idempotent), DescribeClusters (sections, MISSING
 * failures, counters), ListClusters (pagination), DeleteCluster (refusals), UpdateCluster,
 * UpdateClusterSettings, PutClusterCapacityProviders.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  DeleteClusterCommand,
  DescribeClustersCommand,
  ListClustersCommand,
  paginateListClusters,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { ACCOUNT_ID, REGION, awsCli, boto3, sdkError, startTestServer, type TestServer } from './helpers/wharf-server';
import { seedInstance, seedService, seedTask } from './helpers/seed';

let srv: TestServer;
let ecs: ECSClient;
const arnOf = (name: string) => `arn:aws:ecs:${REGION}:${ACCOUNT_ID}:cluster/${name}`;

before(async () => {
  srv = await startTestServer();
  ecs = srv.ecs();
});
after(() => srv.close());

describe('CreateCluster', () => {
  test('with no name creates the cluster "default" (AWS CLI)', async () => {
    const r = await awsCli(srv, ['create-cluster']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.cluster.clusterName, 'default');
    assert.equal(r.json.cluster.clusterArn, arnOf('default'));
    assert.equal(r.json.cluster.status, 'ACTIVE');
    const d = await awsCli(srv, ['describe-clusters']);
    assert.deepEqual(d.json.clusters.map((c: any) => c.clusterName), ['default'], 'describe-clusters with no names describes default');
  });

  test('is idempotent for an ACTIVE name: same cluster, first tags kept, listed once', async () => {
    const first = await ecs.send(new CreateClusterCommand({ clusterName: 'idem', tags: [{ key: 'team', value: 'a' }] }));
    const again = await ecs.send(new CreateClusterCommand({ clusterName: 'idem', tags: [{ key: 'team', value: 'b' }] }));
    assert.equal(again.cluster!.clusterArn, first.cluster!.clusterArn);
    const d = await ecs.send(new DescribeClustersCommand({ clusters: ['idem'], include: ['TAGS'] }));
    assert.deepEqual(d.clusters![0]!.tags, [{ key: 'team', value: 'a' }]);
    const all = await ecs.send(new ListClustersCommand({}));
    assert.equal(all.clusterArns!.filter((a) => a === arnOf('idem')).length, 1);
  });

  test('refuses an invalid name and an unknown capacity provider', async () => {
    const bad = await sdkError(ecs.send(new CreateClusterCommand({ clusterName: 'has space' })));
    assert.equal(bad.name, 'InvalidParameterException');
    assert.equal(bad.$metadata?.httpStatusCode, 400);
    const cp = await sdkError(ecs.send(new CreateClusterCommand({ clusterName: 'cp', capacityProviders: ['NOPE'] })));
    assert.equal(cp.name, 'InvalidParameterException');
    const d = await ecs.send(new DescribeClustersCommand({ clusters: ['cp'] }));
    assert.equal(d.failures![0]!.reason, 'MISSING', 'a refused create leaves nothing behind');
  });
});

describe('DescribeClusters', () => {
  test('returns sections only when asked, with settings, tags and statistics', async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: 'sections', tags: [{ key: 'k', value: 'v' }], settings: [{ name: 'containerInsights', value: 'enabled' }] }));
    const plain = await ecs.send(new DescribeClustersCommand({ clusters: ['sections'] }));
    const c = plain.clusters![0]!;
    assert.equal(c.tags, undefined);
    assert.equal(c.settings, undefined);
    assert.equal(c.statistics, undefined);
    const full = await ecs.send(new DescribeClustersCommand({ clusters: [arnOf('sections')], include: ['TAGS', 'SETTINGS', 'STATISTICS'] }));
    const f = full.clusters![0]!;
    assert.deepEqual(f.tags, [{ key: 'k', value: 'v' }]);
    assert.deepEqual(f.settings, [{ name: 'containerInsights', value: 'enabled' }]);
    const stats = Object.fromEntries(f.statistics!.map((s) => [s.name, s.value]));
    for (const k of ['runningEC2TasksCount', 'runningFargateTasksCount', 'pendingEC2TasksCount', 'pendingFargateTasksCount', 'activeEC2ServiceCount', 'activeFargateServiceCount', 'drainingEC2ServiceCount', 'drainingFargateServiceCount']) {
      assert.equal(stats[k], '0', `statistic ${k}`);
    }
  });

  test('reports unknown names as failures with reason MISSING (boto3)', async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: 'known' }));
    const out = await boto3(srv, 'out(ecs.describe_clusters(clusters=["known", "ghost"]))');
    assert.deepEqual(out.clusters.map((c: any) => c.clusterName), ['known']);
    assert.deepEqual(out.failures, [{ arn: arnOf('ghost'), reason: 'MISSING' }]);
  });

  test('counts instances, running and pending tasks, and services', async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: 'counted' }));
    const undo = [
      await seedInstance(srv, 'counted'),
      await seedInstance(srv, 'counted', 'DRAINING'),
      await seedInstance(srv, 'counted', 'INACTIVE'),
      await seedTask(srv, 'counted', 'RUNNING'),
      await seedTask(srv, 'counted', 'RUNNING', 'FARGATE'),
      await seedTask(srv, 'counted', 'PENDING'),
      await seedTask(srv, 'counted', 'STOPPED'),
      await seedService(srv, 'counted', 'web'),
      await seedService(srv, 'counted', 'old', 'DRAINING'),
    ];
    const d = await ecs.send(new DescribeClustersCommand({ clusters: ['counted'], include: ['STATISTICS'] }));
    const c = d.clusters![0]!;
    assert.equal(c.registeredContainerInstancesCount, 2, 'ACTIVE + DRAINING instances');
    assert.equal(c.runningTasksCount, 2);
    assert.equal(c.pendingTasksCount, 1);
    assert.equal(c.activeServicesCount, 1);
    const stats = Object.fromEntries(c.statistics!.map((s) => [s.name, s.value]));
    assert.equal(stats.runningEC2TasksCount, '1');
    assert.equal(stats.runningFargateTasksCount, '1');
    assert.equal(stats.pendingEC2TasksCount, '1');
    assert.equal(stats.drainingEC2ServiceCount, '1');
    for (const u of undo) await u();
  });
});

describe('ListClusters', () => {
  test('pages with nextToken/maxResults (default 100) and the CLI and SDK paginate to the end', async () => {
    const names = Array.from({ length: 110 }, (_, i) => `page-${String(i).padStart(3, '0')}`);
    for (const n of names) await ecs.send(new CreateClusterCommand({ clusterName: n }));
    const listed = new Set<string>();
    const first = await ecs.send(new ListClustersCommand({}));
    assert.equal(first.clusterArns!.length, 100, 'ECS returns 100 by default');
    assert.ok(first.nextToken, 'and a nextToken when there is more');

    for await (const page of paginateListClusters({ client: ecs, pageSize: 7 }, {})) {
      assert.ok(page.clusterArns!.length <= 7);
      for (const a of page.clusterArns!) listed.add(a);
    }
    for (const n of names) assert.ok(listed.has(arnOf(n)), `SDK paginator saw ${n}`);

    const cli = await awsCli(srv, ['list-clusters', '--page-size', '9']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(new Set(cli.json.clusterArns).size, cli.json.clusterArns.length, 'no duplicates across pages');
    for (const n of names) assert.ok(cli.json.clusterArns.includes(arnOf(n)), `CLI auto-pagination saw ${n}`);

    const bad = await sdkError(ecs.send(new ListClustersCommand({ maxResults: 101 })));
    assert.equal(bad.name, 'InvalidParameterException');
  });
});

describe('DeleteCluster', () => {
  test('is refused while the cluster holds instances, services or tasks, then succeeds', async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: 'busy' }));
    const expectRefusal = async (code: string) => {
      const r = await awsCli(srv, ['delete-cluster', '--cluster', 'busy']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`\\(${code}\\)`));
      const d = await ecs.send(new DescribeClustersCommand({ clusters: ['busy'] }));
      assert.equal(d.clusters![0]!.status, 'ACTIVE', 'a refused delete changes nothing');
    };
    const dropInstance = await seedInstance(srv, 'busy');
    await expectRefusal('ClusterContainsContainerInstancesException');
    await dropInstance();
    const dropService = await seedService(srv, 'busy', 'api');
    await expectRefusal('ClusterContainsServicesException');
    await dropService();
    const dropTask = await seedTask(srv, 'busy', 'RUNNING');
    await expectRefusal('ClusterContainsTasksException');
    await dropTask();
    await seedTask(srv, 'busy', 'STOPPED');

    const r = await awsCli(srv, ['delete-cluster', '--cluster', arnOf('busy')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.cluster.status, 'INACTIVE');
    const list = await ecs.send(new ListClustersCommand({}));
    assert.ok(list.clusterArns!.includes(arnOf('busy')), 'an INACTIVE cluster stays listed for a while, as on ECS');
    const d = await ecs.send(new DescribeClustersCommand({ clusters: ['busy'] }));
    assert.equal(d.clusters![0]!.status, 'INACTIVE', 'but still describable');
    const again = await sdkError(ecs.send(new DeleteClusterCommand({ cluster: 'busy' })));
    assert.equal(again.name, 'ClusterNotFoundException');
    const missing = await sdkError(ecs.send(new DeleteClusterCommand({ cluster: 'never-was' })));
    assert.equal(missing.name, 'ClusterNotFoundException');
  });

  test('a deleted name can be created again, as a fresh cluster', async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: 'phoenix', tags: [{ key: 'gen', value: '1' }] }));
    await ecs.send(new DeleteClusterCommand({ cluster: 'phoenix' }));
    const c = await ecs.send(new CreateClusterCommand({ clusterName: 'phoenix' }));
    assert.equal(c.cluster!.status, 'ACTIVE');
    const d = await ecs.send(new DescribeClustersCommand({ clusters: ['phoenix'], include: ['TAGS'] }));
    assert.deepEqual(d.clusters![0]!.tags ?? [], []);
  });
});

describe('UpdateCluster, UpdateClusterSettings, PutClusterCapacityProviders', () => {
  test('update containerInsights and configuration, persisted for later describes (AWS CLI)', async () => {
    await awsCli(srv, ['create-cluster', '--cluster-name', 'upd']);
    const s = await awsCli(srv, ['update-cluster-settings', '--cluster', 'upd', '--settings', 'name=containerInsights,value=enhanced']);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(s.json.cluster.settings, [{ name: 'containerInsights', value: 'enhanced' }]);
    const bad = await awsCli(srv, ['update-cluster-settings', '--cluster', 'upd', '--settings', 'name=containerInsights,value=loud']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidParameterException/);
    const u = await awsCli(srv, ['update-cluster', '--cluster', 'upd', '--configuration', 'executeCommandConfiguration={logging=NONE}']);
    assert.equal(u.code, 0, u.stderr);
    const d = await awsCli(srv, ['describe-clusters', '--clusters', 'upd', '--include', 'SETTINGS', 'CONFIGURATIONS']);
    const c = d.json.clusters[0];
    assert.deepEqual(c.settings, [{ name: 'containerInsights', value: 'enhanced' }]);
    assert.deepEqual(c.configuration, { executeCommandConfiguration: { logging: 'NONE' } });
    const gone = await awsCli(srv, ['update-cluster-settings', '--cluster', 'nowhere', '--settings', 'name=containerInsights,value=enabled']);
    assert.match(gone.stderr, /ClusterNotFoundException/);
  });

  test('PutClusterCapacityProviders sets FARGATE, FARGATE_SPOT and the default strategy', async () => {
    await ecs.send(new CreateClusterCommand({ clusterName: 'cap' }));
    const r = await awsCli(srv, [
      'put-cluster-capacity-providers', '--cluster', 'cap',
      '--capacity-providers', 'FARGATE', 'FARGATE_SPOT',
      '--default-capacity-provider-strategy', 'capacityProvider=FARGATE,weight=1,base=2', 'capacityProvider=FARGATE_SPOT,weight=3',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const d = await ecs.send(new DescribeClustersCommand({ clusters: ['cap'] }));
    const c = d.clusters![0]!;
    assert.deepEqual(c.capacityProviders, ['FARGATE', 'FARGATE_SPOT']);
    assert.deepEqual(c.defaultCapacityProviderStrategy, [
      { capacityProvider: 'FARGATE', weight: 1, base: 2 },
      { capacityProvider: 'FARGATE_SPOT', weight: 3, base: 0 },
    ]);
    const notAssociated = await awsCli(srv, [
      'put-cluster-capacity-providers', '--cluster', 'cap', '--capacity-providers', 'FARGATE',
      '--default-capacity-provider-strategy', 'capacityProvider=FARGATE_SPOT,weight=1',
    ]);
    assert.match(notAssociated.stderr, /InvalidParameterException/);
    const unknown = await awsCli(srv, [
      'put-cluster-capacity-providers', '--cluster', 'cap', '--capacity-providers', 'MY_ASG', '--default-capacity-provider-strategy', '[]',
    ]);
    assert.match(unknown.stderr, /InvalidParameterException/);
    const after = await ecs.send(new DescribeClustersCommand({ clusters: ['cap'] }));
    assert.deepEqual(after.clusters![0]!.capacityProviders, ['FARGATE', 'FARGATE_SPOT'], 'refused puts change nothing');
  });
});
