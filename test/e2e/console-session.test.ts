/**
 * The console logs in through a short-lived session (STS GetSessionToken, issue 14), in Chromium:
 * the tab keeps only the session (never the long-term secret), every API request carries its
 * X-Amz-Security-Token, and when the server stops accepting the session (the user's key deleted,
 * or the session expired) the console returns to the login form and says why. Log out drops it.
 *
 * Run: node --import tsx --test test/e2e/console-session.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { SessionTokens } from '../../src/lib';
import { browserSkipReason, ensureConsoleBuilt, launchBrowser, screenshot, waitText } from './helpers/browser';
import { ACCOUNT_ID, awsCli, run, startTestServer, stsGetSessionTokenError, type Keys, type TestServer } from './helpers/wharf-server';

const skip = browserSkipReason();
const CLUSTER = 'session-cluster';
const STORAGE_KEY = 'wharf-console-session';

let srv: TestServer;
let dataDir: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let viewer: Keys;
const shots: string[] = [];
/** Every signed API request the page sent: its headers and body. */
const apiRequests: { headers: Record<string, string>; body: string }[] = [];

const wharf = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', ...args, '--data-dir', dataDir], srv.env());

async function login(keys: Keys) {
  await page.goto(`${srv.endpoint}/`);
  await page.getByLabel('Access key ID').fill(keys.accessKeyId);
  await page.getByLabel('Secret access key').fill(keys.secretAccessKey);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: /^Clusters/ }).waitFor();
}

/** Everything the page keeps in Web Storage, as text. */
const storage = () => page.evaluate<string>('JSON.stringify({ session: { ...sessionStorage }, local: { ...localStorage } })');
const stored = async () => JSON.parse((await page.evaluate<string | null>(`sessionStorage.getItem('${STORAGE_KEY}')`)) ?? 'null');


describe('console login through a session, in Chromium', { skip }, () => {
  before(async () => {
    ensureConsoleBuilt();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-console-session-'));
    srv = await startTestServer({ dataDir });
    assert.equal((await awsCli(srv, ['create-cluster', '--cluster-name', CLUSTER])).code, 0);
    const r = await wharf(['credentials', 'create', '--name', 'viewer', '--policy', 'readonly', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const k = JSON.parse(r.stdout).AccessKey;
    viewer = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
    await sleep(1100); // the server re-reads users.json at most once a second
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('request', (req: Request) => {
      if (req.method() !== 'POST' || new URL(req.url()).pathname !== '/') return;
      void req.allHeaders().then((headers) => apiRequests.push({ headers, body: req.postData() ?? '' }));
    });
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await srv?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    if (shots.length > 0) console.log(`screenshots:\n  ${shots.join('\n  ')}`);
  });

  test('a wrong key is refused with STS\'s answer verbatim, and nothing is kept', async () => {
    const wrong = { accessKeyId: 'AKIAWRONGWRONGWRONG1', secretAccessKey: 'not-the-secret' };
    await page.goto(`${srv.endpoint}/`);
    await page.getByLabel('Access key ID').fill(wrong.accessKeyId);
    await page.getByLabel('Secret access key').fill(wrong.secretAccessKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    const shown = await waitText(page.getByRole('alert'), (t) => t !== '', 'the login error');
    assert.equal(shown, await stsGetSessionTokenError(srv, wrong));
    assert.equal(shown, 'InvalidClientTokenId: The security token included in the request is invalid');
    assert.equal(await page.evaluate<number>('sessionStorage.length + localStorage.length'), 0);
  });

  test('logging in keeps only a session: no long-term secret in storage, every call carries the token', async () => {
    apiRequests.length = 0;
    await login(viewer);
    await page.getByRole('row', { name: new RegExp(CLUSTER) }).waitFor();
    shots.push(await screenshot(page, 'session-clusters'));
    const all = await storage();
    assert.ok(!all.includes(viewer.secretAccessKey), 'the long-term secret is not in sessionStorage or localStorage');
    assert.ok(!all.includes(viewer.accessKeyId), 'nor is the long-term key id');
    const s = await stored();
    assert.match(s.accessKeyId, /^ASIA/);
    assert.ok(s.sessionToken.length > 100);
    assert.notEqual(s.secretAccessKey, viewer.secretAccessKey);
    assert.equal(s.arn, `arn:aws:iam::${ACCOUNT_ID}:user/viewer`);
    const hours = (Date.parse(s.expiration) - Date.now()) / 3_600_000;
    assert.ok(hours > 11.9 && hours <= 12, `a user's session lasts 12 hours (${hours})`);
    assert.equal(await page.evaluate<number>('localStorage.length'), 0);
    // The header says who the session acts as.
    assert.equal((await page.locator('header .who').textContent())?.trim(), 'user/viewer');

    // The first request used the long-term key, for GetSessionToken alone; all others the session.
    await sleep(2500); // at least one poll of the clusters page
    const [first, ...rest] = apiRequests;
    assert.ok(first && first.body.includes('Action=GetSessionToken'), first?.body);
    assert.match(first.headers.authorization ?? '', new RegExp(`Credential=${viewer.accessKeyId}/`));
    assert.equal(first.headers['x-amz-security-token'], undefined);
    const ecsCalls = rest.filter((r) => r.headers['x-amz-target']?.startsWith('AmazonEC2ContainerServiceV20141113.'));
    assert.ok(ecsCalls.length >= 2, `ECS calls seen: ${ecsCalls.length}`);
    for (const r of rest) {
      assert.equal(r.headers['x-amz-security-token'], s.sessionToken, `${r.headers['x-amz-target'] ?? r.body} carries the session token`);
      assert.match(r.headers.authorization ?? '', new RegExp(`Credential=${s.accessKeyId}/.*SignedHeaders=[^,]*x-amz-security-token`));
    }
  });

  test("deleting the user's key sends the console back to the login form, saying why", async () => {
    await page.getByRole('row', { name: new RegExp(CLUSTER) }).waitFor();
    assert.equal((await wharf(['credentials', 'delete', '--name', 'viewer'])).code, 0);
    // The server re-reads users.json within a second; the page polls every 2 s.
    const shown = await waitText(page.getByRole('alert'), (t) => t.includes('no longer valid'), 'the session-ended message', 30_000);
    assert.equal(shown, 'Your session is no longer valid (UnrecognizedClientException: The security token included in the request is invalid.); its access key may have been deleted or rotated. Log in again.');
    assert.ok(await page.getByRole('button', { name: 'Log in' }).isVisible());
    assert.equal(await page.evaluate<number>('sessionStorage.length'), 0);
    shots.push(await screenshot(page, 'session-ended'));
  });

  test('a session past its end is refused by the server and the console says it expired', async () => {
    // A session of the built-in key that ended a second ago, made with the data dir's key as the
    // server would have made it, and put in the tab as if the console had kept it: the page sends
    // it (its stored end is in the future) and the server answers ExpiredTokenException.
    const tokens = new SessionTokens(fs.readFileSync(path.join(dataDir, 'session-token.key')));
    const old = tokens.issue({ accessKeyId: srv.keys.accessKeyId, secret: srv.keys.secretAccessKey }, 900_000, Date.now() - 901_000);
    const kept = { accessKeyId: old.accessKeyId, secretAccessKey: old.secretAccessKey, sessionToken: old.sessionToken, expiration: new Date(Date.now() + 3_600_000).toISOString(), arn: `arn:aws:iam::${ACCOUNT_ID}:root`, region: srv.region };
    await page.evaluate(`sessionStorage.setItem('${STORAGE_KEY}', ${JSON.stringify(JSON.stringify(kept))})`);
    await page.reload();
    const shown = await waitText(page.getByRole('alert'), (t) => t !== '', 'the expired message', 30_000);
    assert.equal(shown, 'Your session has expired. Log in again with your access key.');
    assert.equal(await page.evaluate<number>('sessionStorage.length'), 0);
  });

  test('log out discards the session; the built-in key gets a one-hour session', async () => {
    await login(srv.keys);
    const s = await stored();
    const minutes = (Date.parse(s.expiration) - Date.now()) / 60_000;
    assert.ok(minutes > 59 && minutes <= 60, `${minutes} min`);
    assert.equal((await page.locator('header .who').textContent())?.trim(), 'root');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    assert.equal(await page.evaluate<number>('sessionStorage.length + localStorage.length'), 0);
    assert.equal(await page.getByRole('alert').count(), 0, 'a plain log out shows no error');
  });
  test("a user kept to one cluster sees it on the Clusters page, is told which clusters are not shown, and sees the cluster's page", async () => {
    assert.equal((await awsCli(srv, ['create-cluster', '--cluster-name', 'not-theirs'])).code, 0);
    const policy = path.join(dataDir, 'team-policy.json');
    fs.writeFileSync(policy, JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'ecs:*', Resource: '*', Condition: { ArnLike: { 'ecs:cluster': `arn:aws:ecs:*:*:cluster/${CLUSTER}` } } },
        { Effect: 'Allow', Action: ['ecs:DescribeClusters', 'ecs:ListContainerInstances'], Resource: `arn:aws:ecs:*:*:cluster/${CLUSTER}` },
        { Effect: 'Allow', Action: ['ecs:ListClusters'], Resource: '*' },
      ],
    }));
    const r = await wharf(['credentials', 'create', '--name', 'team', '--policy', policy, '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const k = JSON.parse(r.stdout).AccessKey;
    await sleep(1100); // the server re-reads users.json at most once a second
    await login({ accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey });
    await page.getByRole('link', { name: CLUSTER, exact: true }).waitFor();
    assert.equal((await page.getByTestId('clusters-denied').textContent())?.trim(), 'Not shown, as your policy does not allow ecs:DescribeClusters on them: not-theirs.');
    assert.equal(await page.getByRole('alert').count(), 0, 'no error for the page as a whole');
    shots.push(await screenshot(page, 'console-team-clusters'));
    await page.getByRole('link', { name: CLUSTER, exact: true }).click();
    await page.getByRole('heading', { name: new RegExp(`^Cluster ${CLUSTER}`) }).waitFor();
    await page.getByText('No container instances registered').waitFor();
    assert.equal(await page.getByRole('alert').count(), 0);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
  });
});
