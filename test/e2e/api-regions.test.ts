/**
 * One Wharf answers every AWS region, each with its own state, as AWS partitions them: the region
 * of a request's SigV4 credential scope decides which clusters, task definitions (and revision
 * counters), tasks, instances, settings, tags and secrets it sees, and every ARN carries it.
 * Also: `--regions` restricts the set, names that are not regions are refused, a restart brings
 * every used region back, a data dir from before regions keeps its data (in the region its ARNs
 * name), and an agent registered into eu-west-1 runs a real task there.
 *
 * Run: npx tsx --test test/e2e/api-regions.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  DescribeClustersCommand,
  DescribeTasksCommand,
  ECSClient,
  ListClustersCommand,
  ListContainerInstancesCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
} from '@aws-sdk/client-ecs';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type ServerProcess } from './helpers/processes';
import { ACCOUNT_ID, AWS_CLI, TARGET_PREFIX, awsCli, rawCall, run, startTestServer, type TestServer } from './helpers/wharf-server';

/** `wharf` from the sources, as the spawned servers and agents run. */
const WHARF = ['--import', 'tsx', 'src/cmd/main.ts'];
const EU = 'eu-west-1';
const US = 'us-east-1';

describe('every region, each alone', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv?.close();
  });

  const cli = (region: string, args: string[]) => awsCli(srv, args, { AWS_DEFAULT_REGION: region, AWS_REGION: region });

  test('the same cluster name in two regions, through the AWS CLI and SDK v3: each sees its own, ARNs per region', async () => {
    const us = await cli(US, ['create-cluster', '--cluster-name', 'twin', '--tags', 'key=side,value=us']);
    assert.equal(us.code, 0, us.stderr);
    const eu = srv.ecs({ region: EU });
    const euOut = await eu.send(new CreateClusterCommand({ clusterName: 'twin', tags: [{ key: 'side', value: 'eu' }] }));
    assert.equal(us.json.cluster.clusterArn, `arn:aws:ecs:${US}:${ACCOUNT_ID}:cluster/twin`);
    assert.equal(euOut.cluster?.clusterArn, `arn:aws:ecs:${EU}:${ACCOUNT_ID}:cluster/twin`);

    // Only in eu-west-1: a second cluster.
    await eu.send(new CreateClusterCommand({ clusterName: 'paris-only' }));
    const usList = await cli(US, ['list-clusters']);
    assert.deepEqual(usList.json.clusterArns.filter((a: string) => /twin|paris/.test(a)), [`arn:aws:ecs:${US}:${ACCOUNT_ID}:cluster/twin`]);
    const euList = (await eu.send(new ListClustersCommand({}))).clusterArns!.filter((a) => /twin|paris/.test(a)).sort();
    assert.deepEqual(euList, [`arn:aws:ecs:${EU}:${ACCOUNT_ID}:cluster/paris-only`, `arn:aws:ecs:${EU}:${ACCOUNT_ID}:cluster/twin`]);
    const missing = await cli(US, ['describe-clusters', '--clusters', 'paris-only']);
    assert.equal(missing.json.failures[0].reason, 'MISSING');
    // An ARN of another region is refused as ECS refuses it, not resolved by name here.
    const foreign = await cli(US, ['describe-clusters', '--clusters', euOut.cluster!.clusterArn!]);
    assert.notEqual(foreign.code, 0);
    assert.match(foreign.stderr, /InvalidParameterException.*Invalid Region in ARN/);

    // Tags are the region's own.
    const euTags = (await eu.send(new DescribeClustersCommand({ clusters: ['twin'], include: ['TAGS'] }))).clusters![0]!.tags;
    assert.deepEqual(euTags, [{ key: 'side', value: 'eu' }]);
    const usTags = await cli(US, ['list-tags-for-resource', '--resource-arn', us.json.cluster.clusterArn]);
    assert.deepEqual(usTags.json.tags, [{ key: 'side', value: 'us' }]);
  });

  test('task definition revisions count per region', async () => {
    const def = ['--family', 'regional', '--container-definitions', '[{"name":"a","image":"busybox","memory":32}]'];
    for (let i = 0; i < 2; i++) assert.equal((await cli(US, ['register-task-definition', ...def])).code, 0);
    const eu = await cli(EU, ['register-task-definition', ...def]);
    assert.equal(eu.json.taskDefinition.taskDefinitionArn, `arn:aws:ecs:${EU}:${ACCOUNT_ID}:task-definition/regional:1`);
    const usDescribe = await cli(US, ['describe-task-definition', '--task-definition', 'regional']);
    assert.equal(usDescribe.json.taskDefinition.revision, 2);
    const apFamilies = await cli('ap-southeast-2', ['list-task-definition-families', '--family-prefix', 'regional']);
    assert.deepEqual(apFamilies.json.families, []);
  });

  test('account settings and secrets belong to their region', async () => {
    assert.equal((await cli(EU, ['put-account-setting-default', '--name', 'containerInsights', '--value', 'enabled'])).code, 0);
    const eu = await cli(EU, ['list-account-settings', '--name', 'containerInsights', '--effective-settings']);
    const us = await cli(US, ['list-account-settings', '--name', 'containerInsights', '--effective-settings']);
    assert.equal(eu.json.settings[0].value, 'enabled');
    assert.notEqual(us.json.settings[0]?.value, 'enabled');

    const env = srv.env({ AWS_DEFAULT_REGION: EU, AWS_REGION: EU });
    const made = await run(AWS_CLI, ['secretsmanager', 'create-secret', '--name', 'db', '--secret-string', 'pw', '--endpoint-url', srv.endpoint, '--output', 'json'], env);
    assert.equal(made.code, 0, made.stderr);
    assert.match(JSON.parse(made.stdout).ARN, new RegExp(`^arn:aws:secretsmanager:${EU}:${ACCOUNT_ID}:secret:db-`));
    const fromUs = await run(AWS_CLI, ['secretsmanager', 'get-secret-value', '--secret-id', 'db', '--endpoint-url', srv.endpoint], srv.env());
    assert.notEqual(fromUs.code, 0);
    assert.match(fromUs.stderr, /ResourceNotFoundException/);
  });

  test('China and GovCloud regions carry their own ARN partition', async () => {
    const cn = srv.ecs({ region: 'cn-north-1' });
    const out = await cn.send(new CreateClusterCommand({ clusterName: 'beijing' }));
    assert.equal(out.cluster?.clusterArn, `arn:aws-cn:ecs:cn-north-1:${ACCOUNT_ID}:cluster/beijing`);
  });

  test('a name that is not a region is refused with the list of regions, and nothing is created', async () => {
    const r = await rawCall(srv.endpoint, srv.keys, `${TARGET_PREFIX}.CreateCluster`, JSON.stringify({ clusterName: 'nowhere' }), { region: 'mars-east-1' });
    assert.equal(r.status, 403);
    assert.equal(r.json.__type, 'InvalidSignatureException');
    assert.match(r.json.message, /'mars-east-1' is not an AWS region; it answers: every AWS region \(af-south-1, .*us-west-2\)/);
    const regions = await srv.server.regions.running();
    assert.ok(!regions.some((x) => x.region === 'mars-east-1'), 'no state was brought up for it');
  });
});

describe('--regions restricts the set', () => {
  test('a region outside the set is refused naming the allowed ones; the allowed ones work', async () => {
    const srv = await startTestServer({ region: EU, regions: [EU, 'eu-central-1'] });
    try {
      const r = await rawCall(srv.endpoint, srv.keys, `${TARGET_PREFIX}.CreateCluster`, JSON.stringify({ clusterName: 'x' }), { region: US });
      assert.equal(r.status, 403);
      assert.equal(r.json.message, "Credential should be scoped to a valid region. Region 'us-east-1' is not served by this Wharf; it answers: eu-central-1, eu-west-1.");
      const ok = await srv.ecs({ region: 'eu-central-1' }).send(new CreateClusterCommand({ clusterName: 'x' }));
      assert.equal(ok.cluster?.clusterArn, `arn:aws:ecs:eu-central-1:${ACCOUNT_ID}:cluster/x`);
    } finally {
      await srv.close();
    }
  });

  test('the server refuses to start when its default region is not in the set, or a name is not a region', async () => {
    await assert.rejects(startTestServer({ region: US, regions: [EU] }), /--region us-east-1 is not among --regions eu-west-1/);
    const bad = await run(process.execPath, [...WHARF, 'server', '--regions', 'eu-west-1,moon-1', '--data-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-r-'))], process.env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not AWS region names: moon-1 \(known: af-south-1/);
  });
});

describe('regions across restarts', () => {
  test('every used region comes back; a pre-region data dir keeps its data in the region its ARNs name', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-regions-'));
    try {
      // A data dir as Wharf wrote it before regions: keys at the top level.
      const legacy = SqliteStore.open({ path: path.join(dataDir, 'wharf.db'), synchronous: 'NORMAL' });
      const clusterArn = `arn:aws:ecs:ap-south-1:${ACCOUNT_ID}:cluster/old`;
      await legacy.create('clusters/old', {
        clusterArn, clusterName: 'old', status: 'ACTIVE', registeredContainerInstancesCount: 0, runningTasksCount: 0, pendingTasksCount: 0,
        activeServicesCount: 0, statistics: [], tags: [], settings: [{ name: 'containerInsights', value: 'disabled' }], capacityProviders: [],
        defaultCapacityProviderStrategy: [], wharf: { createdAt: 1 },
      });
      await legacy.close();

      let srv = await startTestServer({ dataDir, region: US });
      const inMumbai = srv.ecs({ region: 'ap-south-1' });
      const described = await inMumbai.send(new DescribeClustersCommand({ clusters: ['old'] }));
      assert.equal(described.clusters?.[0]?.clusterArn, clusterArn, 'the old cluster is in the region its ARN names');
      assert.deepEqual((await srv.ecs().send(new DescribeClustersCommand({ clusters: ['old'] }))).failures?.[0]?.reason, 'MISSING');
      await srv.ecs({ region: EU }).send(new CreateClusterCommand({ clusterName: 'kept' }));
      await srv.close();

      srv = await startTestServer({ dataDir, region: US });
      try {
        const up = (await srv.server.regions.running()).map((r) => r.region).sort();
        assert.deepEqual(up, ['ap-south-1', EU, US].sort(), 'regions holding data start with the server');
        const kept = await srv.ecs({ region: EU }).send(new DescribeClustersCommand({ clusters: ['kept'] }));
        assert.equal(kept.clusters?.[0]?.status, 'ACTIVE');
      } finally {
        await srv.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

const skip = dockerSkipReason();

describe('an agent in eu-west-1', { skip, timeout: 180_000 }, () => {
  let srv: ServerProcess;
  let clusterArn = '';
  const agentDirs: string[] = [];
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    for (const d of agentDirs) removeDir(d);
  });

  test('registers into eu-west-1 (not the default region) and runs a real task there', async () => {
    srv = await spawnServer({ region: US });
    const cluster = `regional-${process.pid}`;
    const eu = new ECSClient({ endpoint: srv.endpoint, region: EU, credentials: srv.keys, maxAttempts: 3 });
    try {
      clusterArn = (await eu.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
      assert.equal(clusterArn, `arn:aws:ecs:${EU}:${ACCOUNT_ID}:cluster/${cluster}`);
      const agent = await spawnAgent({ server: srv, region: EU, cluster });
      agentDirs.push(agent.dataDir);
      assert.match(agent.instanceArns[0] ?? '', new RegExp(`^arn:aws:ecs:${EU}:${ACCOUNT_ID}:container-instance/${cluster}/`));
      // The default region knows nothing of it.
      const usInstances = await srv.ecs().send(new ListContainerInstancesCommand({ cluster })).then((o) => o.containerInstanceArns, (e: Error) => e.name);
      assert.equal(usInstances, 'ClusterNotFoundException');

      await eu.send(new RegisterTaskDefinitionCommand({ family: 'regional-sleeper', containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }] }));
      const started = await eu.send(new RunTaskCommand({ cluster, taskDefinition: 'regional-sleeper' }));
      const taskArn = started.tasks![0]!.taskArn!;
      assert.match(taskArn, new RegExp(`^arn:aws:ecs:${EU}:`));
      const task = await waitUntil(async () => {
        const t = (await eu.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }))).tasks![0]!;
        return t.lastStatus === 'RUNNING' ? t : undefined;
      }, 'the task RUNNING in eu-west-1', { timeoutMs: 60_000 });
      assert.equal(task.containers?.[0]?.lastStatus, 'RUNNING');

      // An agent given no --region joins the server's default region, and one whose data dir
      // belongs to eu-west-1 refuses to register anywhere else.
      const usAgent = await spawnAgent({ server: srv, region: null });
      agentDirs.push(usAgent.dataDir);
      assert.match(usAgent.instanceArns[0] ?? '', new RegExp(`^arn:aws:ecs:${US}:`));
      await agent.stop();
      const wrong = await run(process.execPath, [...WHARF, 'agent', '--endpoint', srv.endpoint, '--join-token', srv.joinToken, '--region', 'eu-west-2', '--cluster', cluster, '--data-dir', agent.dataDir], { ...process.env, WHARF_LOG_LEVEL: 'silent' });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /belongs to container instance arn:aws:ecs:eu-west-1:.* in region eu-west-1, not eu-west-2/);
    } finally {
      eu.destroy();
    }
  });
});
