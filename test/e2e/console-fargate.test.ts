/**
 * The console's cluster page for a cluster that runs on Fargate: no container instances, and the
 * capacity its Fargate tasks hold (counts from DescribeClusters' statistics, vCPU and memory summed
 * from the tasks), following the tasks live. Real `wharf server`, a real Fargate pool agent on this
 * host's Docker Engine, Debian's Chromium through playwright-core.
 *
 * Run: node --import tsx --test test/e2e/console-fargate.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateClusterCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type ECSClient } from '@aws-sdk/client-ecs';
import type { Browser, Page } from 'playwright-core';
import { dockerSkipReason } from '../images/docker-test-env';
import { browserSkipReason, ensureConsoleBuilt, launchBrowser, screenshot, waitText } from './helpers/browser';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { defaultSubnets } from './helpers/wharf-server';

const skip = dockerSkipReason() || browserSkipReason();
const CLUSTER = `console-fg-${process.pid}`;

describe('the console shows Fargate capacity in use', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let pool: AgentProcess;
  let ecs: ECSClient;
  let clusterArn = '';
  let browser: Browser;
  let page: Page;
  const taskArns: string[] = [];

  before(async () => {
    ensureConsoleBuilt();
    srv = await spawnServer();
    ecs = srv.ecs();
    pool = await spawnAgent({ server: srv, fargate: true, resources: 'cpu=2048,memory=4096', extraArgs: ['--fargate-sandbox', 'runc'] });
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'console-fg',
        requiresCompatibilities: ['FARGATE'],
        networkMode: 'awsvpc',
        cpu: '512',
        memory: '1024',
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', command: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'], stopTimeout: 2 }],
      }),
    );
    const subnets = Object.values(await defaultSubnets(srv)).map((s) => s.id);
    const out = await ecs.send(
      new RunTaskCommand({
        cluster: CLUSTER,
        taskDefinition: 'console-fg',
        launchType: 'FARGATE',
        count: 2,
        networkConfiguration: { awsvpcConfiguration: { subnets, assignPublicIp: 'DISABLED' } },
      }),
    );
    assert.deepEqual(out.failures, []);
    taskArns.push(...out.tasks!.map((t) => t.taskArn!));
    await waitUntil(
      async () => ((await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: taskArns }))).tasks ?? []).every((t) => t.lastStatus === 'RUNNING'),
      'both Fargate tasks RUNNING',
      { timeoutMs: 180_000 },
    );
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (pool) removeDir(pool.dataDir);
  });

  test('the cluster page sums its Fargate tasks, has no instances, and follows a stop live', async () => {
    await page.goto(`${srv.endpoint}/console/`);
    await page.getByLabel('Access key ID').fill(srv.keys.accessKeyId);
    await page.getByLabel('Secret access key').fill(srv.keys.secretAccessKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: /^Clusters/ }).waitFor();
    await page.goto(`${srv.endpoint}/console/#/clusters/${CLUSTER}`);

    const panel = page.getByRole('region', { name: 'Fargate capacity in use' });
    await waitText(panel.getByTestId('fargate-running'), (t) => t === '2', 'two running Fargate tasks');
    // Two tasks of 512 CPU units and 1024 MiB: one vCPU and 2 GiB reserved.
    assert.equal(await panel.getByTestId('fargate-cpu').textContent(), '1.00');
    assert.equal(await panel.getByTestId('fargate-memory').textContent(), '2.00 GiB');
    assert.equal(await panel.getByTestId('fargate-pending').textContent(), '0');
    await page.getByText(/No container instances registered/).waitFor();
    await screenshot(page, 'cluster-fargate');

    await ecs.send(new StopTaskCommand({ cluster: CLUSTER, task: taskArns[0], reason: 'console-fargate test' }));
    await waitText(panel.getByTestId('fargate-cpu'), (t) => t === '0.50', 'half a vCPU once one task stopped', 60_000);
    assert.equal(await panel.getByTestId('fargate-memory').textContent(), '1.00 GiB');
    await waitText(panel.getByTestId('fargate-running'), (t) => t === '1', 'one running Fargate task', 60_000);
  });
});
