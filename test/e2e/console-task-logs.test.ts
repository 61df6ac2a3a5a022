/**
 * The console's task page shows each awslogs container's log and follows it live, in a real
 * browser (Debian's Chromium through playwright-core) against `wharf server` and `wharf agent`
 * running the task on this host's Docker Engine: new lines arrive without a reload, the box stays
 * at the bottom while the user is there and stays put once they scroll up, its size never moves,
 * and a container without awslogs says why it shows no log. Screenshots in test-artifacts/console/.
 *
 * Run: node --import tsx --test test/e2e/console-task-logs.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateClusterCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import type { Browser, Page } from 'playwright-core';
import { dockerSkipReason } from '../images/docker-test-env';
import { browserSkipReason, ensureConsoleBuilt, launchBrowser, screenshot, waitText } from './helpers/browser';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { rawCall } from './helpers/wharf-server';

const skip = dockerSkipReason() || browserSkipReason();
const CLUSTER = `console-logs-${process.pid}`;
const GROUP = `/ecs/console-logs-${process.pid}`;

describe('the console follows a task’s log', { skip, timeout: 240_000 }, () => {
  let srv: ServerProcess;
  let agent: AgentProcess;
  let clusterArn = '';
  let browser: Browser;
  let page: Page;
  let taskId = '';

  before(async () => {
    ensureConsoleBuilt();
    srv = await spawnServer();
    const ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, extraArgs: ['--image-pull-behavior', 'prefer-cached'] });
    const made = await rawCall(srv.endpoint, srv.keys, 'Logs_20140328.CreateLogGroup', JSON.stringify({ logGroupName: GROUP }), { service: 'logs' });
    assert.equal(made.status, 200, made.text);
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'console-logs',
        containerDefinitions: [
          {
            name: 'talker',
            image: 'wharf-test/busybox',
            memory: 32,
            essential: true,
            stopTimeout: 1,
            logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': GROUP, 'awslogs-region': srv.region, 'awslogs-stream-prefix': 'app' } },
            command: ['sh', '-c', 'i=0; while :; do echo "line-$i"; i=$((i+1)); sleep 0.2; done'],
          },
          { name: 'quiet', image: 'wharf-test/busybox', memory: 16, essential: false, stopTimeout: 1, command: ['sleep', '3600'] },
        ],
      }),
    );
    const arn = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'console-logs' }))).tasks![0]!.taskArn!;
    taskId = arn.split('/').pop()!;
    await waitUntil(async () => (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [arn] }))).tasks![0]!.lastStatus === 'RUNNING', 'the task to run');
    browser = await launchBrowser();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(`${srv.endpoint}/`);
    await page.getByLabel('Access key ID').fill(srv.keys.accessKeyId);
    await page.getByLabel('Secret access key').fill(srv.keys.secretAccessKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: /^Clusters/ }).waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
  });

  const highest = (text: string) => Math.max(-1, ...[...text.matchAll(/line-(\d+)/g)].map((m) => Number(m[1])));

  test('the task page shows the awslogs stream and appends new lines as they come', async () => {
    await page.goto(`${srv.endpoint}/console/#/tasks/${CLUSTER}/${taskId}`);
    const box = page.getByTestId('log-lines-talker');
    const first = await waitText(box, (t) => /line-0\n/.test(t) && highest(t) >= 3, 'the first lines', 30_000);
    assert.match((await page.getByTestId('log-talker').textContent()) ?? '', new RegExp(`${GROUP} · app/talker/${taskId}`));
    // Followed live: later lines arrive without a reload, each once and in order.
    const later = await waitText(box, (t) => highest(t) >= highest(first) + 10, 'ten more lines, live', 30_000);
    const numbers = [...later.matchAll(/line-(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(numbers, numbers.map((_, i) => i), 'every line once, in order');
    await screenshot(page, 'task-logs');
  });

  test('the box keeps its size and its bottom while the user is there, and stays put once scrolled up', async () => {
    const box = page.getByTestId('log-lines-talker');
    // Enough lines to overflow the box (20 lines high at five lines a second).
    await waitText(box, (t) => highest(t) >= 40, 'forty lines', 30_000);
    const geometry = () => box.evaluate((el) => ({ top: el.scrollTop, height: el.clientHeight, scroll: el.scrollHeight, rect: el.getBoundingClientRect().height }));
    const a = await geometry();
    assert.ok(a.scroll > a.height, 'the lines overflow the box');
    assert.ok(a.top + a.height >= a.scroll - 4, `at the bottom: ${JSON.stringify(a)}`);
    await waitText(box, (t) => highest(t) >= 50, 'more lines', 30_000);
    const b = await geometry();
    assert.equal(b.rect, a.rect, 'the box did not grow: no layout shift');
    assert.ok(b.top + b.height >= b.scroll - 4, 'still at the bottom after new lines');
    // The user scrolls up to read: new lines must not pull the box back down.
    await box.evaluate((el) => (el.scrollTop = 0));
    const before = highest((await box.textContent()) ?? '');
    await waitText(box, (t) => highest(t) >= before + 10, 'ten more lines while scrolled up', 30_000);
    assert.equal((await geometry()).top, 0, 'the box stays where the user left it');
  });

  test('a container without awslogs says why it shows no log', async () => {
    const why = (await page.getByTestId('log-why-quiet').textContent()) ?? '';
    assert.match(why, /^No log shown: it logs with the default json-file driver, not awslogs: its output stays on the host that runs it\. On that host: wharf logs --cluster /);
    assert.equal(await page.getByTestId('log-lines-quiet').count(), 0);
  });
});
