/**
 * The web console in a real browser (Debian's Chromium, headless, through playwright-core) against
 * a real `wharf server` and `wharf agent` running containers on this host's Docker Engine. Every
 * step is what a user does with the mouse or keyboard; what the page shows is checked against the
 * API and against Docker. Screenshots land in test-artifacts/console/.
 *
 * Run: node --import tsx --test test/e2e/console-browser.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeContainerInstancesCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListContainerInstancesCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type ECSClient as Client,
} from '@aws-sdk/client-ecs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { dockerSkipReason } from '../images/docker-test-env';
import { browserSkipReason, ensureConsoleBuilt, launchBrowser, screenshot, waitText } from './helpers/browser';
import { killAllSpawned, listClusterContainers, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { stsGetSessionTokenError } from './helpers/wharf-server';

const skip = dockerSkipReason() || browserSkipReason();
const CLUSTER = `console-${process.pid}`;
const FAMILY = `console-web-${process.pid}`;
const SERVICE = 'web';

let srv: ServerProcess;
let agent: AgentProcess;
let ecs: Client;
let clusterArn: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const shots: string[] = [];

/** What the console must show for an API error: the SDK's error name and message, as they are. */
async function apiError(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    const err = e as Error;
    return `${err.name}: ${err.message}`;
  }
  throw new Error('the call was expected to fail');
}


const running = async () => (await listClusterContainers(clusterArn)).filter((c) => c.running && c.family === FAMILY);

async function login(p: Page) {
  await p.goto(`${srv.endpoint}/`);
  await p.getByLabel('Access key ID').fill(srv.keys.accessKeyId);
  await p.getByLabel('Secret access key').fill(srv.keys.secretAccessKey);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('heading', { name: /^Clusters/ }).waitFor();
}

async function confirmIn(p: Page, opener: string, confirm: string) {
  await p.getByRole('button', { name: opener }).click();
  const dialog = p.getByRole('dialog', { name: opener });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: confirm }).click();
  return dialog;
}

describe('the web console in Chromium', { skip }, () => {
  before(async () => {
    ensureConsoleBuilt();
    // New tasks count as healthy after 3 s of running: a rolling deployment lasts long enough to see.
    srv = await spawnServer({ healthyAfterRunningMs: 3000 });
    ecs = srv.ecs();
    clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, availabilityZone: 'us-east-1a' });
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: FAMILY,
        networkMode: 'bridge',
        requiresCompatibilities: ['EC2'],
        containerDefinitions: [
          {
            name: 'web',
            image: 'wharf-test/busybox',
            essential: true,
            memory: 32,
            stopTimeout: 2,
            command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'],
            portMappings: [{ containerPort: 8080, hostPort: 0 }],
          },
        ],
      }),
    );
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
    if (shots.length > 0) console.log(`screenshots:\n  ${shots.join('\n  ')}`);
  });

  test('/ leads to the console, and a wrong key is refused with the API error verbatim (STS GetSessionToken, which the login calls)', async () => {
    await page.goto(`${srv.endpoint}/`);
    assert.equal(new URL(page.url()).pathname, '/console/');
    await page.getByLabel('Access key ID').fill('AKIAWRONGWRONGWRONG1');
    await page.getByLabel('Secret access key').fill('not-the-secret');
    shots.push(await screenshot(page, 'login'));
    await page.getByRole('button', { name: 'Log in' }).click();
    const expected = await stsGetSessionTokenError(srv, { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'not-the-secret' });
    assert.equal(expected, 'InvalidClientTokenId: The security token included in the request is invalid');
    const shown = await waitText(page.getByRole('alert'), (t) => t !== '', 'the login error');
    assert.equal(shown, expected);
    shots.push(await screenshot(page, 'login-error'));
    // Nothing was kept: the keys are not in sessionStorage.
    assert.equal(await page.evaluate<number>('sessionStorage.length'), 0);
  });

  test('logging in shows the cluster, and its instance with capacity bars, zone and agent status', async () => {
    await login(page);
    const row = page.getByRole('row', { name: new RegExp(CLUSTER) });
    await row.waitFor();
    assert.equal(await page.evaluate<string>("JSON.parse(sessionStorage.getItem('wharf-console-session')).region"), srv.region);
    shots.push(await screenshot(page, 'clusters-1280x800'));
    await row.getByRole('link', { name: CLUSTER }).click();
    const instance = page.getByRole('row', { name: /us-east-1a/ });
    await instance.waitFor();
    const text = (await instance.textContent()) ?? '';
    assert.match(text, /ACTIVE/);
    assert.match(text, /connected/);
    assert.equal(await instance.getByRole('meter').count(), 2, 'a CPU bar and a memory bar');
    const memMax = Number(await instance.getByRole('meter', { name: /Memory used/ }).getAttribute('max'));
    assert.ok(memMax > 0, 'registered memory is the bar’s maximum');
    shots.push(await screenshot(page, 'cluster'));
  });

  test('a service created from the console reaches a steady state', async () => {
    await page.goto(`${srv.endpoint}/console/#/services?cluster=${CLUSTER}`);
    await page.getByLabel('Service name').fill(SERVICE);
    await page.getByLabel(/^Task definition/).fill(FAMILY);
    await page.getByLabel('Desired count').fill('2');
    await confirmIn(page, 'Create service…', 'Create');
    await page.getByRole('heading', { name: new RegExp(`^Service ${SERVICE}`) }).waitFor();
    await waitText(page.getByTestId('running'), (t) => t === '2', 'two running tasks on the service page');
    await waitText(page.locator('ol.events'), (t) => t.includes(`(service ${SERVICE}) has reached a steady state.`), 'the steady state event', 90_000);
    const rows = page.locator('table.deployments tbody tr');
    assert.equal(await rows.count(), 1);
    assert.match((await rows.first().textContent()) ?? '', /PRIMARY.*2 \/ 2 running.*COMPLETED/);
    assert.equal((await running()).length, 2, 'Docker runs the two tasks');
    shots.push(await screenshot(page, 'service-steady'));
  });

  test('scaling from the console changes the desired count and Docker follows', async () => {
    await page.getByLabel('Desired count').fill('3');
    await confirmIn(page, 'Scale…', 'Scale');
    await waitText(page.getByTestId('desired'), (t) => t === '3', 'desired count 3');
    await waitText(page.getByTestId('running'), (t) => t === '3', 'three running tasks');
    await waitUntil(async () => (await running()).length === 3, 'three containers of the service');
  });

  test('a forced deployment rolls, with a progress bar per deployment, to COMPLETED', async () => {
    const before = (await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: [SERVICE] }))).services![0]!.deployments![0]!.id;
    await confirmIn(page, 'Force new deployment…', 'Deploy');
    // Layout shifts (Chromium's Layout Instability API) from here on: live updates must not move
    // what the user reads. Shifts right after the user's own click do not count, as in CLS.
    await page.evaluate(`(() => { window.__shifts = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) window.__shifts.push({ value: e.value, moved: (e.sources || []).map((s) => (s.node && (s.node.className || s.node.nodeName)) + ' ' + Math.round(s.previousRect.y) + '->' + Math.round(s.currentRect.y)) }); }).observe({ type: 'layout-shift' }); })()`);
    // While it rolls the page shows both deployments, each with its own bar.
    await waitUntil(async () => (await page.locator('table.deployments tbody tr').count()) === 2, 'two deployments on the page', { intervalMs: 100 });
    const bars = page.locator('table.deployments progress');
    assert.equal(await bars.count(), 2);
    assert.match((await bars.first().getAttribute('aria-label')) ?? '', /^PRIMARY deployment: \d+ of 3 running$/);
    assert.match((await page.locator('table.deployments').textContent()) ?? '', /IN_PROGRESS/);
    shots.push(await screenshot(page, 'service-rolling'));
    await waitUntil(async () => (await page.locator('table.deployments tbody tr').count()) === 1, 'the old deployment gone', { timeoutMs: 120_000 });
    await waitText(page.locator('table.deployments tbody tr'), (t) => /PRIMARY.*3 \/ 3 running.*COMPLETED/.test(t), 'the new deployment COMPLETED', 60_000);
    const after = (await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: [SERVICE] }))).services![0]!.deployments!;
    assert.equal(after.length, 1);
    assert.notEqual(after[0]!.id, before, 'a new deployment replaced the old one');
    const shifts = await page.evaluate<{ value: number; moved: string[] }[]>('window.__shifts');
    assert.deepEqual(shifts, [], 'nothing on the service page moved while the deployment rolled (two deployments, new events, counts)');
  });

  test('a task stopped from the console is replaced, and its page says why it stopped', async () => {
    await page.getByRole('link', { name: 'Tasks of this service' }).click();
    const rows = page.locator('tbody tr');
    await waitUntil(async () => (await rows.count()) === 3, 'three running tasks listed');
    shots.push(await screenshot(page, 'tasks'));
    // A running task's page: its container, image and the host port Docker bound.
    const other = ((await rows.nth(1).getByRole('rowheader').textContent()) ?? '').trim();
    await rows.nth(1).getByRole('link', { name: other }).click();
    await waitText(page.getByTestId('task-status'), (t) => t === 'RUNNING', 'a running task page');
    const live = (await page.getByRole('row', { name: /^web / }).textContent()) ?? '';
    assert.match(live, /wharf-test\/busybox/);
    assert.match(live, /RUNNING/);
    assert.match(live, /127\.0\.0\.1:\d+ → 8080\/tcp|0\.0\.0\.0:\d+ → 8080\/tcp/, 'the network binding is shown');
    shots.push(await screenshot(page, 'task-running'));
    await page.goBack();
    await waitUntil(async () => (await rows.count()) === 3, 'the task list again');
    const victim = ((await rows.first().getByRole('rowheader').textContent()) ?? '').trim();
    await rows.first().getByRole('button', { name: 'Stop' }).click();
    await rows.first().getByRole('dialog').getByRole('button', { name: 'Stop task' }).click();
    await waitUntil(async () => {
      const ids = await page.locator('tbody tr th').allTextContents();
      return ids.length === 3 && !ids.includes(victim);
    }, 'a replacement listed instead of the stopped task', { timeoutMs: 90_000 });
    await page.goto(`${srv.endpoint}/console/#/tasks/${CLUSTER}/${victim}`);
    await waitText(page.getByTestId('task-status'), (t) => t === 'STOPPED', 'the stopped task STOPPED', 60_000);
    const details = (await page.locator('dl.details').textContent()) ?? '';
    assert.match(details, /UserInitiated/);
    assert.match(details, /Stopped from the Wharf console/);
    const container = (await page.getByRole('row', { name: /^web / }).textContent()) ?? '';
    assert.match(container, /STOPPED/);
    const stopped = (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [victim] }))).tasks![0]!;
    const exitCode = stopped.containers![0]!.exitCode;
    assert.equal(typeof exitCode, 'number', 'the agent reported an exit code');
    assert.equal(await page.getByRole('row', { name: /^web / }).getByRole('cell').nth(2).textContent(), String(exitCode), 'the exit code is shown');
    shots.push(await screenshot(page, 'task-stopped'));
    const tasks = (await ecs.send(new ListTasksCommand({ cluster: CLUSTER, serviceName: SERVICE }))).taskArns ?? [];
    assert.equal(tasks.length, 3);
  });

  test('a task run from the console starts on the instance and is listed', async () => {
    await page.goto(`${srv.endpoint}/console/#/tasks?cluster=${CLUSTER}&family=${FAMILY}`);
    await page.getByLabel('Task definition', { exact: true }).fill(`${FAMILY}:1`);
    await confirmIn(page, 'Run task…', 'Run');
    const arn = await waitUntil(async () => {
      const arns = (await ecs.send(new ListTasksCommand({ cluster: CLUSTER, family: FAMILY, desiredStatus: 'RUNNING' }))).taskArns ?? [];
      const tasks = arns.length ? (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns }))).tasks! : [];
      return tasks.find((t) => t.group === `family:${FAMILY}`)?.taskArn;
    }, 'the run task in the API');
    const id = arn.slice(arn.lastIndexOf('/') + 1);
    const row = page.getByRole('row', { name: new RegExp(id) });
    await waitText(row, (t) => t.includes('RUNNING'), 'the run task RUNNING in the list');
    await waitUntil(async () => (await running()).length === 4, 'Docker runs the run task beside the service’s three');
  });

  test('the task list filters by service, family and desired status, as ListTasks does', async () => {
    await page.goto(`${srv.endpoint}/console/#/tasks?cluster=${CLUSTER}`);
    const form = page.getByRole('form', { name: 'Filter tasks' });
    const listed = async () => (await page.locator('tbody tr th').allTextContents()).map((t) => t.trim()).sort();
    const api = async (input: { serviceName?: string; family?: string; desiredStatus: 'RUNNING' | 'STOPPED' }) =>
      ((await ecs.send(new ListTasksCommand({ cluster: CLUSTER, ...input }))).taskArns ?? []).map((a) => a.slice(a.lastIndexOf('/') + 1)).sort();
    const filterBy = async (service: string, family: string, status: 'RUNNING' | 'STOPPED') => {
      await form.getByLabel('Service').fill(service);
      await form.getByLabel('Family').fill(family);
      await form.getByLabel('Desired status').selectOption(status);
      // The list polls while the user types: what was typed must survive a poll's re-render.
      const updated = page.locator('h1 .updated');
      const before = await updated.textContent();
      await waitUntil(async () => (await updated.textContent()) !== before, 'a poll of the list while the filter is typed', { intervalMs: 100 });
      await form.getByRole('button', { name: 'Filter' }).click();
      const want = await api({ ...(service ? { serviceName: service } : {}), ...(family ? { family } : {}), desiredStatus: status });
      await waitUntil(async () => JSON.stringify(await listed()) === JSON.stringify(want), `the page to list ${JSON.stringify(want)} (service ${service || '-'}, family ${family || '-'}, ${status})`, {
        describe: async () => `listed ${JSON.stringify(await listed())} at ${page.url()}: ${(await page.locator('body').textContent())?.slice(0, 1500)}`,
        timeoutMs: 20_000,
      });
      return want;
    };
    // The service's three, without the task run by hand; then the family's four, with it.
    assert.equal((await filterBy(SERVICE, '', 'RUNNING')).length, 3);
    assert.equal((await filterBy('', FAMILY, 'RUNNING')).length, 4);
    // Stopped ones: the task stopped from the console and those the forced deployment replaced.
    const stopped = await filterBy(SERVICE, '', 'STOPPED');
    assert.ok(stopped.length >= 4, `stopped tasks of the service: ${stopped.length}`);
    const statuses = await page.locator('tbody tr td:nth-child(4)').allTextContents();
    assert.ok(statuses.every((t) => t === 'STOPPED'), `desired status column: ${statuses.join(', ')}`);
    assert.match(new URL(page.url()).hash, /status=STOPPED/, 'the filter is in the address, so it survives a reload');
  });

  test('an API error in an action is shown verbatim in its dialog', async () => {
    await page.goto(`${srv.endpoint}/console/#/services?cluster=${CLUSTER}`);
    await page.getByLabel('Service name').fill('broken');
    await page.getByLabel(/^Task definition/).fill('no-such-family:7');
    await page.getByLabel('Desired count').fill('1');
    const dialog = await confirmIn(page, 'Create service…', 'Create');
    const expected = await apiError(ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'broken', taskDefinition: 'no-such-family:7', desiredCount: 1, launchType: 'EC2' })));
    assert.equal(await waitText(dialog.getByRole('alert'), (t) => t !== '', 'the error in the dialog'), expected);
    shots.push(await screenshot(page, 'error-verbatim'));
    await dialog.getByRole('button', { name: 'Cancel' }).click();
  });

  test('a new revision registered from JSON shows ECS’s validation error inline, then a side-by-side diff', async () => {
    await page.goto(`${srv.endpoint}/console/#/taskdefs/${FAMILY}`);
    const box = page.getByLabel('RegisterTaskDefinition input (JSON)');
    await waitText(box, () => true, 'the editor');
    await waitUntil(async () => (await box.inputValue()).includes('containerDefinitions'), 'the latest revision in the editor');
    const good = JSON.parse(await box.inputValue()) as { containerDefinitions: { memory?: number }[] };
    const bad = { ...good, containerDefinitions: [{ ...good.containerDefinitions[0], memory: undefined }] };
    await box.fill(JSON.stringify(bad, null, 2));
    await page.getByRole('button', { name: 'Register' }).click();
    const expected = await apiError(ecs.send(new RegisterTaskDefinitionCommand(bad as never)));
    assert.equal(await waitText(page.locator('#register-error [role=alert]'), (t) => t !== '', 'the inline error'), expected);
    assert.equal(await box.getAttribute('aria-invalid'), 'true');
    good.containerDefinitions[0]!.memory = 48;
    await box.fill(JSON.stringify(good, null, 2));
    await page.getByRole('button', { name: 'Register' }).click();
    await waitText(page.locator('#register-error'), (t) => t === `Registered ${FAMILY}:2.`, 'the registered revision');
    await waitUntil(async () => (await page.locator('ol.revisions li').count()) === 2, 'two revisions listed');
    await page.getByLabel('Left').selectOption({ label: `${FAMILY}:1` });
    await page.getByLabel('Right').selectOption({ label: `${FAMILY}:2` });
    const changed = page.locator('table.diff tr.changed');
    await waitUntil(async () => (await changed.count()) > 0, 'changed lines in the diff');
    const lines = await changed.allTextContents();
    assert.ok(lines.some((l) => /"memory": 32.*"memory": 48/.test(l)), `memory 32 -> 48 side by side in ${JSON.stringify(lines)}`);
    assert.ok(lines.some((l) => /"revision": 1.*"revision": 2/.test(l)));
    shots.push(await screenshot(page, 'taskdef-diff'));
  });

  test('keyboard: skip link first, the main menu by Tab and Enter, Escape closes a dialog', async () => {
    await page.goto(`${srv.endpoint}/console/#/clusters`);
    await page.reload();
    await page.getByRole('heading', { name: /^Clusters/ }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string | null>('document.activeElement && document.activeElement.textContent'), 'Skip to content');
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate<string | null>('document.activeElement && document.activeElement.textContent')) === 'Services') break;
    }
    assert.equal(await page.evaluate<string | null>('document.activeElement && document.activeElement.textContent'), 'Services');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /^Services/ }).waitFor();
    // The skip link takes focus to the content and leaves the page where it is.
    await page.reload();
    await page.getByRole('heading', { name: /^Services/ }).waitFor();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate<string | null>('document.activeElement && document.activeElement.id'), 'main');
    assert.match(new URL(page.url()).hash, /^#\/services/);
    await page.goto(`${srv.endpoint}/console/#/services/${CLUSTER}/${SERVICE}`);
    await page.getByRole('button', { name: 'Scale…' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Scale…' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: [SERVICE] }))).services![0]!.desiredCount, 3, 'Escape changed nothing');
  });

  test('the region switcher signs for another region, and a phone-size page stays readable', async () => {
    await page.goto(`${srv.endpoint}/console/#/clusters`);
    await page.getByRole('row', { name: new RegExp(CLUSTER) }).waitFor();
    await page.getByLabel('Region').selectOption('eu-west-1');
    await page.getByText('No clusters in eu-west-1.').waitFor();
    await page.getByLabel('Region').selectOption(srv.region);
    await page.getByRole('row', { name: new RegExp(CLUSTER) }).waitFor();
    // sessionStorage belongs to the tab, so the phone size is this tab resized.
    const phone = page;
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${srv.endpoint}/console/#/services/${CLUSTER}/${SERVICE}`);
    await waitText(phone.getByTestId('running'), (t) => t === '3', 'the service on a phone');
    // Nothing wider than the screen but the tables, which scroll inside their own box.
    assert.equal(await phone.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth'), true);
    shots.push(await screenshot(phone, 'service-phone-390x844'));
    await phone.setViewportSize({ width: 1280, height: 800 });
  });

  test('the console survives a control-plane restart: it shows the outage, then recovers by itself', async () => {
    await page.goto(`${srv.endpoint}/console/#/services/${CLUSTER}/${SERVICE}`);
    await waitText(page.getByTestId('running'), (t) => t === '3', 'the service page');
    const { dataDir, port } = srv;
    await srv.stop();
    await waitText(page.getByRole('alert'), (t) => t.startsWith('Cannot reach the Wharf control plane'), 'the outage on the page');
    assert.equal(await page.getByTestId('running').textContent(), '3', 'the last known counts stay on screen');
    srv = await spawnServer({ dataDir, port, healthyAfterRunningMs: 3000 });
    ecs = srv.ecs();
    await waitUntil(async () => (await page.getByRole('alert').count()) === 0, 'the error gone after the restart', { timeoutMs: 60_000 });
    await waitText(page.getByTestId('running'), (t) => t === '3', 'the service after the restart');
    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: SERVICE, desiredCount: 0 }));
  });

  test('draining the instance from the console marks it DRAINING', async () => {
    await page.goto(`${srv.endpoint}/console/#/clusters/${CLUSTER}`);
    const instance = page.getByRole('row', { name: /us-east-1a/ });
    await instance.waitFor();
    await instance.getByRole('button', { name: 'Drain' }).click();
    await instance.getByRole('dialog').getByRole('button', { name: 'Drain instance' }).click();
    await waitText(instance, (t) => t.includes('DRAINING'), 'the instance DRAINING on the page');
    const arn = (await ecs.send(new ListContainerInstancesCommand({ cluster: CLUSTER }))).containerInstanceArns![0]!;
    const ci = (await ecs.send(new DescribeContainerInstancesCommand({ cluster: CLUSTER, containerInstances: [arn] }))).containerInstances![0]!;
    assert.equal(ci.status, 'DRAINING');
    shots.push(await screenshot(page, 'cluster-draining'));
  });
});
