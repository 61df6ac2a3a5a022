/**
 * The load balancer data plane (src/loadbalancer/) on a real HAProxy on loopback, with node HTTP
 * servers on 127.0.0.1 as targets: round robin and forwarded headers, path rules, health checks
 * taking a dead target out, draining, two load balancers on one port, HAProxy killed and back,
 * a control-plane restart that adopts it, and targets changing under a steady request stream.
 *
 * Run: npx tsx --test test/e2e/loadbalancer-data-plane.test.ts
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { targetGroupDefaults } from '../../src/loadbalancer/model';
import type { DesiredState, TargetGroup } from '../../src/loadbalancer/model';
import { LoadBalancerReconciler } from '../../src/loadbalancer/reconciler';
import { forwardListener, get, haproxySkipReason, httpGroup, startDataPlane, startTarget, tempDataDir, waitForStates, type TestTarget } from './helpers/lb-harness';
import { waitUntil } from './helpers/processes';

const skip = haproxySkipReason();
const PORT = 18000 + (process.pid % 1000);
// Each test has its own load balancer address, so tests never share a listener.
const addr = (n: number) => `127.100.${200 + (process.pid % 50)}.${n}`;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function targets(...names: string[]): Promise<TestTarget[]> {
  const ts = await Promise.all(names.map((n) => startTarget(n)));
  for (const t of ts) cleanups.push(() => t.close());
  return ts;
}

async function dataPlane(dataDir?: string): Promise<LoadBalancerReconciler> {
  const r = await startDataPlane(dataDir);
  cleanups.push(() => r.stop());
  return r;
}

function oneListener(n: number, groups: ReturnType<typeof httpGroup>[]): DesiredState {
  return { loadBalancers: [{ id: `lb${n}`, type: 'application', address: addr(n), listeners: [forwardListener('l80', PORT, groups[0]!.id)] }], targetGroups: groups };
}

/**
 * Sends slow requests through load balancer `n`'s listener until one lands on `t` (round robin
 * may pick another target first); that request's answer (or error), or undefined after 4 tries.
 */
async function slowRequestOn(t: TestTarget, n: number, ms: number): Promise<Promise<unknown> | undefined> {
  for (let i = 0; i < 4; i++) {
    const before = t.hits;
    const p = get(`http://${addr(n)}:${PORT}/slow?ms=${ms}`).catch((e: Error) => e);
    await new Promise((res) => setTimeout(res, 150));
    if (t.hits > before) return p;
  }
  return undefined;
}

describe('load balancer data plane on HAProxy', { skip }, () => {
  test('every target answers in turn, with X-Forwarded-For/Proto/Port', async () => {
    const ts = await targets('a', 'b', 'c');
    const r = await dataPlane();
    const first = await r.apply(oneListener(1, [httpGroup('web', ts)]));
    assert.equal(first.added.length, 3);
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // Level-triggered: the same desired state again changes nothing.
    assert.deepEqual(await r.apply(oneListener(1, [httpGroup('web', ts)])), { reloaded: false, added: [], draining: [], freed: [] });
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) bodies.push((await get(`http://${addr(1)}:${PORT}/`)).body);
    // Round robin: each target once in every three consecutive requests.
    assert.deepEqual([...bodies.slice(0, 3)].sort(), ['a', 'b', 'c']);
    assert.deepEqual(bodies.slice(3), bodies.slice(0, 3));
    const h = ts.find((t) => t.name === bodies[5])!.lastHeaders;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-port'], String(PORT));
  });

  test('path rules route to two target groups; fixed-response and redirect rules answer themselves', async () => {
    const [a, b] = await targets('svc-a', 'svc-b');
    const r = await dataPlane();
    const desired: DesiredState = {
      loadBalancers: [
        {
          id: 'lb2',
          type: 'application',
          address: addr(2),
          listeners: [
            {
              id: 'l80',
              port: PORT,
              protocol: 'HTTP',
              defaultActions: [{ type: 'fixed-response', statusCode: 404, contentType: 'text/plain', messageBody: 'no route' }],
              rules: [
                { priority: 20, conditions: [{ field: 'path-pattern', values: ['/b/*'] }], actions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'tg-b', weight: 1 }] }] },
                { priority: 10, conditions: [{ field: 'path-pattern', values: ['/a/*', '/alpha'] }], actions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'tg-a', weight: 1 }] }] },
                { priority: 5, conditions: [{ field: 'path-pattern', values: ['/b/blocked'] }], actions: [{ type: 'fixed-response', statusCode: 403, messageBody: 'blocked' }] },
                { priority: 30, conditions: [{ field: 'host-header', values: ['old.example.*'] }], actions: [{ type: 'redirect', statusCode: 301, host: 'new.example.com' }] },
                {
                  priority: 40,
                  conditions: [{ field: 'http-header', headerName: 'X-Canary', values: ['yes'] }],
                  actions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'tg-a', weight: 0 }, { targetGroupId: 'tg-b', weight: 5 }] }],
                },
              ],
            },
          ],
        },
      ],
      targetGroups: [httpGroup('tg-a', [a!]), httpGroup('tg-b', [b!])],
    };
    await r.apply(desired);
    await waitForStates(r, 'tg-a', (s) => s === 'healthy');
    await waitForStates(r, 'tg-b', (s) => s === 'healthy');
    const base = `http://${addr(2)}:${PORT}`;
    assert.equal((await get(`${base}/a/x`)).body, 'svc-a');
    assert.equal((await get(`${base}/alpha`)).body, 'svc-a');
    assert.equal((await get(`${base}/b/y?q=1`)).body, 'svc-b');
    assert.deepEqual(await get(`${base}/b/blocked`).then((x) => [x.status, x.body]), [403, 'blocked']);
    assert.deepEqual(await get(`${base}/other`).then((x) => [x.status, x.body]), [404, 'no route']);
    const redirect = await get(`${base}/p?x=1`, { host: 'old.example.org' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.location, `http://new.example.com:${PORT}/p?x=1`);
    assert.equal((await get(`${base}/c`, { 'x-canary': 'yes' })).body, 'svc-b');
  });

  test('a fixed-response body with newlines, tabs and other special characters is served byte for byte; the other listeners keep answering', async () => {
    const [t] = await targets('beside-fixed');
    const r = await dataPlane();
    // Pretty-printed JSON, CR LF, a tab, quotes, backslash, %, $, a control character, NUL, non-ASCII.
    const body = '{\n  "ok": true,\r\n\t"path": "C:\\\\x %s ${HOME}"\u0001\u0000 é ✓\n}';
    const rule = 'line one\nline two\n';
    await r.apply({
      loadBalancers: [
        {
          id: 'lb14',
          type: 'application',
          address: addr(14),
          listeners: [
            {
              id: 'fixed',
              port: PORT,
              protocol: 'HTTP',
              defaultActions: [{ type: 'fixed-response', statusCode: 200, contentType: 'application/json', messageBody: body }],
              rules: [{ priority: 1, conditions: [{ field: 'path-pattern', values: ['/rule'] }], actions: [{ type: 'fixed-response', statusCode: 503, messageBody: rule }] }],
            },
            forwardListener('fwd', PORT + 1, 'web'),
          ],
        },
      ],
      targetGroups: [httpGroup('web', [t!])],
    });
    await waitForStates(r, 'web', (s) => s === 'healthy');
    const fixed = await get(`http://${addr(14)}:${PORT}/`);
    assert.deepEqual([fixed.status, fixed.headers['content-type'], fixed.body], [200, 'application/json', body]);
    assert.equal(fixed.headers['content-length'], String(Buffer.byteLength(body)));
    assert.deepEqual(await get(`http://${addr(14)}:${PORT}/rule`).then((x) => [x.status, x.body]), [503, rule]);
    assert.equal((await get(`http://${addr(14)}:${PORT + 1}/`)).body, 'beside-fixed');
  });

  test('a 204 fixed-response with a body and a forward whose groups all weigh 0 are served (204 without body, 503), beside the other rules', async () => {
    const [t] = await targets('beside-204');
    const r = await dataPlane();
    const path = (p: string) => [{ field: 'path-pattern' as const, values: [p] }];
    await r.apply({
      loadBalancers: [
        {
          id: 'lb30',
          type: 'application',
          address: addr(30),
          listeners: [
            {
              ...forwardListener('l', PORT, 'web'),
              rules: [
                { priority: 1, conditions: path('/204'), actions: [{ type: 'fixed-response', statusCode: 204, contentType: 'text/plain', messageBody: 'not sent' }] },
                { priority: 2, conditions: path('/zero'), actions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'web', weight: 0 }, { targetGroupId: 'idle', weight: 0 }] }] },
              ],
            },
          ],
        },
      ],
      targetGroups: [httpGroup('web', [t!]), httpGroup('idle', [])],
    });
    await waitForStates(r, 'web', (s) => s === 'healthy');
    assert.deepEqual(await get(`http://${addr(30)}:${PORT}/204`).then((x) => [x.status, x.body]), [204, '']);
    assert.equal((await get(`http://${addr(30)}:${PORT}/zero`)).status, 503);
    assert.equal((await get(`http://${addr(30)}:${PORT}/`)).body, 'beside-204');
  });

  test('X-Forwarded-For: append adds the client to the header as sent, in one comma-separated header (with its port if asked); preserve leaves it; remove takes it out', async () => {
    const [t] = await targets('xff');
    const r = await dataPlane();
    const modes = [
      { n: 31, xForwardedFor: { mode: 'append' as const, clientPort: false } },
      { n: 32, xForwardedFor: { mode: 'append' as const, clientPort: true } },
      { n: 33, xForwardedFor: { mode: 'preserve' as const, clientPort: true } },
      { n: 34, xForwardedFor: { mode: 'remove' as const, clientPort: false } },
    ];
    await r.apply({
      loadBalancers: [
        ...modes.map((m) => ({ id: `lb${m.n}`, type: 'application' as const, address: addr(m.n), xForwardedFor: m.xForwardedFor, listeners: [forwardListener('l', PORT, 'web')] })),
        // No attributes given: ELB's default, append.
        { id: 'lb35', type: 'application', address: addr(35), listeners: [forwardListener('l', PORT, 'web')] },
      ],
      targetGroups: [httpGroup('web', [t!])],
    });
    await waitForStates(r, 'web', (s) => s === 'healthy');
    /** The X-Forwarded-For lines the target got, as sent. */
    const xff = async (n: number, sent?: string[]) => {
      await get(`http://${addr(n)}:${PORT}/`, sent ? { 'X-Forwarded-For': sent } : {});
      return t!.lastRawHeaders.flatMap((v, i, all) => (i % 2 === 0 && v.toLowerCase() === 'x-forwarded-for' ? [all[i + 1]!] : []));
    };
    const two = ['198.51.100.1', '198.51.100.2, 198.51.100.3'];
    assert.deepEqual(await xff(31, two), ['198.51.100.1, 198.51.100.2, 198.51.100.3, 127.0.0.1']);
    assert.deepEqual(await xff(31), ['127.0.0.1']);
    assert.deepEqual(await xff(35, ['203.0.113.7']), ['203.0.113.7, 127.0.0.1']);
    const [withPort] = await xff(32, ['203.0.113.7']);
    assert.match(withPort!, /^203\.0\.113\.7, 127\.0\.0\.1:\d+$/);
    assert.deepEqual(await xff(33, two), two);
    assert.deepEqual(await xff(33), []);
    assert.deepEqual(await xff(34, two), []);
  });

  test('X-Amzn-Trace-Id: a Root when the request has none, a Self in front of a Root, a Self replaced, other fields kept', async () => {
    const [t] = await targets('traced');
    const r = await dataPlane();
    await r.apply(oneListener(37, [httpGroup('web', [t!])]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    const trace = async (sent?: string) => {
      await get(`http://${addr(37)}:${PORT}/`, sent ? { 'X-Amzn-Trace-Id': sent } : {});
      return t!.lastRawHeaders.flatMap((v, i, all) => (i % 2 === 0 && v.toLowerCase() === 'x-amzn-trace-id' ? [all[i + 1]!] : []));
    };
    const before = Math.floor(Date.now() / 1000);
    const id = '1-([0-9a-f]{8})-[0-9a-f]{24}';
    const [fresh] = await trace();
    const m = new RegExp(`^Root=${id}$`).exec(fresh ?? '');
    assert.ok(m, `a new Root: ${fresh}`);
    assert.ok(Math.abs(parseInt(m[1]!, 16) - before) <= 5, `its time is now's epoch seconds: ${fresh}`);
    assert.notEqual((await trace())[0], fresh, 'each request its own id');
    const root = 'Root=1-67891233-abcdef012345678912345678';
    assert.match((await trace(root))[0]!, new RegExp(`^Self=${id};${root}$`));
    assert.match((await trace(`${root};CalledFrom=app`))[0]!, new RegExp(`^Self=${id};${root};CalledFrom=app$`));
    const replaced = (await trace(`Self=1-11111111-222222222222222222222222;${root};CalledFrom=app`))[0]!;
    assert.match(replaced, new RegExp(`^Self=${id};${root};CalledFrom=app$`));
    assert.ok(!replaced.includes('222222222222222222222222'), replaced);
    assert.match((await trace('CalledFrom=app'))[0]!, new RegExp(`^Root=${id};CalledFrom=app$`));
  });

  test("health checks carry the target's address and port as Host, and ELB's User-Agent", async () => {
    const [t] = await targets('host-checked');
    const r = await dataPlane();
    await r.apply(oneListener(36, [httpGroup('web', [t!])]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // Healthy takes two checks: at least one of them HAProxy's own (the first may be the reconciler's).
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(t!.lastHealthHeaders.host, `127.0.0.1:${t!.port}`);
    assert.equal(t!.lastHealthHeaders['user-agent'], 'ELB-HealthChecker/2.0');
  });

  test('a health check port changed and changed back is followed: the target is healthy again', async () => {
    const [t] = await targets('port-back');
    const r = await dataPlane();
    const withPort = (port: 'traffic-port' | number) => {
      const g = httpGroup('web', [t!]);
      return oneListener(15, [{ ...g, healthCheck: { ...g.healthCheck, port } }]);
    };
    await r.apply(withPort('traffic-port'));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // Nothing listens on port 1: checks fail there.
    await r.apply(withPort(1));
    await waitForStates(r, 'web', (s) => s === 'unhealthy');
    await r.apply(withPort('traffic-port'));
    // Interval 1 s, healthy threshold 2: a few intervals (the server-state file once kept port 1).
    await waitForStates(r, 'web', (s) => s === 'healthy', 6000);
    await r.apply(withPort(1));
    await waitForStates(r, 'web', (s) => s === 'unhealthy');
    await r.apply(withPort(t!.port));
    await waitForStates(r, 'web', (s) => s === 'healthy', 6000);
    assert.equal((await get(`http://${addr(15)}:${PORT}/`)).body, 'port-back');
  });

  test('lb_cookie stickiness: AWSALB and AWSALBCORS expire after the duration, and either one keeps a client on its target', async () => {
    const ts = await targets('sticky-a', 'sticky-b');
    const r = await dataPlane();
    await r.apply(oneListener(16, [httpGroup('web', ts, { stickiness: { type: 'lb_cookie', durationSeconds: 86400 } })]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    const url = `http://${addr(16)}:${PORT}/`;
    const first = await get(url);
    const cookies = first.headers['set-cookie'] ?? [];
    const alb = cookies.find((c) => c.startsWith('AWSALB='));
    const cors = cookies.find((c) => c.startsWith('AWSALBCORS='));
    assert.ok(alb && cors, JSON.stringify(cookies));
    const expiry = (c: string) => Date.parse(/; Expires=([^;]+)/.exec(c)?.[1] ?? '');
    for (const c of [alb, cors]) assert.ok(Math.abs(expiry(c) - (Date.now() + 86_400_000)) < 5000, c);
    assert.match(cors, /; Path=\/; SameSite=None; Secure$/);
    const value = (c: string) => c.slice(c.indexOf('=') + 1, c.indexOf(';'));
    for (const cookie of [`AWSALB=${value(alb)}`, `AWSALBCORS=${value(cors)}`]) {
      const bodies = new Set<string>();
      for (let i = 0; i < 4; i++) bodies.add((await get(url, { cookie })).body);
      assert.deepEqual([...bodies], [first.body], cookie);
    }
  });

  test('a target that stops answering gets no traffic within interval x threshold and shows unhealthy', async () => {
    const ts = await targets('up1', 'up2', 'dies');
    const [, , dies] = ts;
    const r = await dataPlane();
    await r.apply(oneListener(3, [httpGroup('web', ts)]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    await dies!.close();
    const stoppedAt = Date.now();
    await waitForStates(r, 'web', (s, key) => (key.endsWith(`:${dies!.port}`) ? s === 'unhealthy' : s === 'healthy'));
    const tookMs = Date.now() - stoppedAt;
    // interval 1 s x unhealthyThreshold 2, plus the check timeout and our polling.
    assert.ok(tookMs < 4000, `marked unhealthy after ${tookMs} ms`);
    const web = (await r.health()).get('web')!;
    const dead = web.find((d) => d.target.port === dies!.port)!;
    assert.deepEqual(dead.health, { state: 'unhealthy', reason: 'Target.FailedHealthChecks', description: 'Health checks failed' });
    for (let i = 0; i < 10; i++) assert.ok(['up1', 'up2'].includes((await get(`http://${addr(3)}:${PORT}/`)).body));
    // A target answering its health check with 500 shows the code.
    ts[0]!.failHealth = true;
    await waitForStates(r, 'web', (s, key) => !key.endsWith(`:${ts[0]!.port}`) || s === 'unhealthy');
    const mismatch = (await r.health()).get('web')!.find((d) => d.target.port === ts[0]!.port)!;
    assert.deepEqual(mismatch.health, { state: 'unhealthy', reason: 'Target.ResponseCodeMismatch', description: 'Health checks failed with these codes: [500]' });
  });

  test('fail-open: when every target is unhealthy they all get traffic again, and one healthy target ends it', async () => {
    const ts = await targets('fo1', 'fo2', 'fo3');
    const r = await dataPlane();
    await r.apply(oneListener(20, [httpGroup('web', ts)]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    const url = `http://${addr(20)}:${PORT}/`;
    const answers = async (n: number) => {
      const got: string[] = [];
      for (let i = 0; i < n; i++) {
        const x = await get(url);
        got.push(x.status === 200 ? x.body : `status ${x.status}`);
      }
      return got;
    };
    // Two of three fail their checks: only the healthy one answers.
    ts[0]!.failHealth = true;
    ts[1]!.failHealth = true;
    await waitForStates(r, 'web', (s, key) => (key.endsWith(`:${ts[2]!.port}`) ? s === 'healthy' : s === 'unhealthy'));
    await new Promise((res) => setTimeout(res, 1200)); // a reconciler pass after the change
    assert.deepEqual([...new Set(await answers(6))], ['fo3']);
    // All three unhealthy: ELB routes to all of them (HAProxy alone would answer 503).
    ts[2]!.failHealth = true;
    await waitForStates(r, 'web', (s) => s === 'unhealthy');
    // The twins follow HAProxy's checks one reconciler pass (0.5 s here) behind.
    let failedOpen: string[] = [];
    await waitUntil(async () => new Set((failedOpen = await answers(9))).size === 3, 'all three targets to answer', { timeoutMs: 5000, describe: () => failedOpen });
    assert.deepEqual([...new Set(failedOpen)].sort(), ['fo1', 'fo2', 'fo3'], failedOpen.join(','));
    assert.deepEqual([...new Set(await answers(9))].sort(), ['fo1', 'fo2', 'fo3']);
    // DescribeTargetHealth still says unhealthy: failing open changes routing, not health.
    assert.ok((await r.health()).get('web')!.every((d) => d.health.state === 'unhealthy'));
    // One target passes again: traffic goes to it alone.
    ts[1]!.failHealth = false;
    await waitForStates(r, 'web', (s, key) => (key.endsWith(`:${ts[1]!.port}`) ? s === 'healthy' : s === 'unhealthy'));
    await new Promise((res) => setTimeout(res, 1200));
    assert.deepEqual([...new Set(await answers(6))], ['fo2']);
    // A deregistered unhealthy target gets nothing, even while the group fails open again.
    ts[1]!.failHealth = true;
    await r.apply(oneListener(20, [httpGroup('web', [ts[0]!, ts[1]!])]));
    await waitForStates(r, 'web', (s) => s === 'unhealthy');
    await new Promise((res) => setTimeout(res, 1200));
    assert.deepEqual([...new Set(await answers(8))].sort(), ['fo1', 'fo2']);
  });

  test('a new target is initial until it passes its checks, and gets no traffic before', async () => {
    const [a, b] = await targets('first', 'newcomer');
    const r = await dataPlane();
    await r.apply(oneListener(4, [httpGroup('web', [a!])]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // The newcomer fails its first checks (the one made at registration and HAProxy's next ones).
    b!.failHealth = true;
    await r.apply(oneListener(4, [httpGroup('web', [a!, b!])]));
    await new Promise((res) => setTimeout(res, 300));
    const web = (await r.health()).get('web')!;
    assert.deepEqual(web.find((d) => d.target.port === b!.port)!.health.state, 'initial');
    assert.match(web.find((d) => d.target.port === b!.port)!.health.reason!, /^Elb\.(InitialHealthChecking|RegistrationInProgress)$/);
    for (let i = 0; i < 4; i++) assert.equal((await get(`http://${addr(4)}:${PORT}/`)).body, 'first');
    b!.failHealth = false;
    await waitForStates(r, 'web', (s) => s === 'healthy');
  });

  test('a new target is checked as soon as it is registered, not when its slot timer next fires', async () => {
    const [a, b] = await targets('old', 'new');
    const r = await dataPlane();
    // HAProxy alone would check a new target's slot on the slot's own timer: up to 30 s here.
    const slow = (ts: TestTarget[]) => {
      const g = httpGroup('web', ts);
      return { ...g, healthCheck: { ...g.healthCheck, intervalSeconds: 30, timeoutSeconds: 2 } };
    };
    await r.apply(oneListener(13, [slow([a!])]));
    await waitForStates(r, 'web', (s) => s === 'healthy', 8000);
    await new Promise((res) => setTimeout(res, 1000));
    await r.apply(oneListener(13, [slow([a!, b!])]));
    // Healthy within 8 s of registration (waitForStates throws after that), with checks every 30 s.
    await waitForStates(r, 'web', (s) => s === 'healthy', 8000);
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) bodies.add((await get(`http://${addr(13)}:${PORT}/`)).body);
    assert.deepEqual([...bodies].sort(), ['new', 'old']);
  });

  test('draining lets an in-flight slow request finish while new requests go elsewhere', async () => {
    const [slow, other] = await targets('leaving', 'staying');
    const r = await dataPlane();
    await r.apply(oneListener(5, [httpGroup('web', [slow!, other!])]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // Send requests until one lands on the leaving target and hangs there for 3 s.
    let inFlight: Promise<{ status: number; body: string }> | undefined;
    for (let i = 0; i < 4 && !inFlight; i++) {
      const before = slow!.hits;
      const p = get(`http://${addr(5)}:${PORT}/slow?ms=3000`);
      await new Promise((res) => setTimeout(res, 150));
      if (slow!.hits > before) inFlight = p;
      else await p;
    }
    assert.ok(inFlight, 'a slow request reached the leaving target');
    const result = await r.apply(oneListener(5, [httpGroup('web', [other!])]));
    assert.deepEqual(result.draining, [`web/127.0.0.1:${slow!.port}`]);
    const draining = (await r.health()).get('web')!.find((d) => d.target.port === slow!.port)!;
    assert.deepEqual(draining.health, { state: 'draining', reason: 'Target.DeregistrationInProgress', description: 'Target deregistration is in progress' });
    for (let i = 0; i < 6; i++) assert.equal((await get(`http://${addr(5)}:${PORT}/`)).body, 'staying');
    const finished = await inFlight;
    assert.deepEqual([finished.status, finished.body], [200, 'leaving']);
  });

  test('lowering the deregistration delay shortens a drain under way', async () => {
    const [slow, other] = await targets('long-leaving', 'long-staying');
    const r = await dataPlane();
    await r.apply(oneListener(22, [httpGroup('web', [slow!, other!], { deregistrationDelaySeconds: 300 })]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // A request that would hang on the leaving target for 60 s keeps its drain going.
    assert.ok(await slowRequestOn(slow!, 22, 60_000), 'a slow request reached the leaving target');
    await r.apply(oneListener(22, [httpGroup('web', [other!], { deregistrationDelaySeconds: 300 })]));
    const isDraining = async () => (await r.health()).get('web')!.some((d) => d.target.port === slow!.port && d.health.state === 'draining');
    assert.equal(await isDraining(), true);
    // The delay goes down to 1 s: the drain, 300 s long until now, is over within a pass or two.
    await r.apply(oneListener(22, [httpGroup('web', [other!], { deregistrationDelaySeconds: 1 })]));
    await waitUntil(async () => !(await isDraining()), 'the drain to end after the new delay', { timeoutMs: 5000 });
  });

  test('a target registered again while its slot drains starts over as a new target (initial), not with the drained one\'s health', async () => {
    const [back, other] = await targets('comes-back', 'stays-put');
    const r = await dataPlane();
    await r.apply(oneListener(23, [httpGroup('web', [back!, other!])]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    // Deregistered with a slow request in flight, so its slot drains.
    assert.ok(await slowRequestOn(back!, 23, 20_000), 'a slow request reached the target');
    await r.apply(oneListener(23, [httpGroup('web', [other!])]));
    // The same address and port registered again (a new task there) now fails its checks: it is
    // initial and gets no traffic, where the drained slot's UP state made it healthy at once.
    back!.failHealth = true;
    await r.apply(oneListener(23, [httpGroup('web', [back!, other!])]));
    await new Promise((res) => setTimeout(res, 300));
    const state = (await r.health()).get('web')!.find((d) => d.target.port === back!.port)!.health;
    assert.equal(state.state, 'initial', JSON.stringify(state));
    for (let i = 0; i < 4; i++) assert.equal((await get(`http://${addr(23)}:${PORT}/`)).body, 'stays-put');
    back!.failHealth = false;
    await waitForStates(r, 'web', (s) => s === 'healthy');
  });

  test('two load balancers listen on the same port on different addresses', async () => {
    const [a, b] = await targets('behind-6', 'behind-7');
    const r = await dataPlane();
    await r.apply({
      loadBalancers: [
        { id: 'lb6', type: 'application', address: addr(6), listeners: [forwardListener('l', PORT, 'g6')] },
        { id: 'lb7', type: 'application', address: addr(7), listeners: [forwardListener('l', PORT, 'g7')] },
      ],
      targetGroups: [httpGroup('g6', [a!]), httpGroup('g7', [b!])],
    });
    await waitForStates(r, 'g6', (s) => s === 'healthy');
    await waitForStates(r, 'g7', (s) => s === 'healthy');
    assert.equal((await get(`http://${addr(6)}:${PORT}/`)).body, 'behind-6');
    assert.equal((await get(`http://${addr(7)}:${PORT}/`)).body, 'behind-7');
  });

  test('killing haproxy (SIGKILL) brings it back within seconds with the same targets', async () => {
    const ts = await targets('k1', 'k2');
    const r = await dataPlane();
    await r.apply(oneListener(8, [httpGroup('web', ts)]));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    const oldPid = r.supervisor.masterPid!;
    process.kill(oldPid, 'SIGKILL');
    const killedAt = Date.now();
    const seen = await waitUntil(async () => {
      const bodies = new Set<string>();
      for (let i = 0; i < 4; i++) bodies.add((await get(`http://${addr(8)}:${PORT}/`)).body);
      return bodies.size === 2 ? bodies : undefined;
    }, 'both targets answer again', { timeoutMs: 10_000, intervalMs: 100 });
    const tookMs = Date.now() - killedAt;
    console.log(`haproxy SIGKILLed; both targets answering again after ${tookMs} ms`);
    assert.deepEqual([...seen].sort(), ['k1', 'k2']);
    assert.notEqual(r.supervisor.masterPid, oldPid);
    assert.equal(r.supervisor.restarts, 1);
    assert.ok(tookMs < 5000);
  });

  test('a control-plane restart leaves haproxy serving and adopts it', async () => {
    const ts = await targets('c1');
    const dataDir = tempDataDir();
    const first = new LoadBalancerReconciler(dataDir);
    await first.start(500);
    await first.apply(oneListener(9, [httpGroup('web', ts)]));
    await waitForStates(first, 'web', (s) => s === 'healthy');
    const pid = first.supervisor.masterPid;
    first.detach();
    assert.equal((await get(`http://${addr(9)}:${PORT}/`)).body, 'c1');
    const second = new LoadBalancerReconciler(dataDir);
    cleanups.push(() => second.stop());
    assert.equal(await second.start(500), 'adopted');
    assert.equal(second.supervisor.masterPid, pid);
    const again = await second.apply(oneListener(9, [httpGroup('web', ts)]));
    assert.deepEqual(again.added, [], 'the adopted haproxy already carries the target');
    await waitForStates(second, 'web', (s) => s === 'healthy');
    assert.equal((await get(`http://${addr(9)}:${PORT}/`)).body, 'c1');
  });

  test('adding and removing targets under a steady request stream loses no request', async () => {
    const ts = await targets('s1', 's2', 's3', 's4');
    const r = await dataPlane();
    const desired = (set: TestTarget[]) => oneListener(10, [httpGroup('web', set, { deregistrationDelaySeconds: 2 })]);
    await r.apply(desired(ts.slice(0, 2)));
    await waitForStates(r, 'web', (s) => s === 'healthy');
    let ok = 0;
    let failed = 0;
    const errors: string[] = [];
    let running = true;
    const stream = (async () => {
      while (running) {
        await Promise.all(
          Array.from({ length: 4 }, () =>
            get(`http://${addr(10)}:${PORT}/`).then(
              (x) => (x.status === 200 ? ok++ : (failed++, errors.push(`status ${x.status}`))),
              (e: Error) => (failed++, errors.push(e.message)),
            ),
          ),
        );
      }
    })();
    const steps = [ts.slice(0, 3), ts.slice(1, 4), ts.slice(2, 4), ts, ts.slice(0, 1)];
    // As a rolling deployment does: new targets pass their checks before the old ones leave.
    for (const set of steps) {
      await r.apply(desired(set));
      await waitForStates(r, 'web', (s) => s === 'healthy' || s === 'draining');
      await new Promise((res) => setTimeout(res, 1000));
    }
    running = false;
    await stream;
    console.log(`steady stream while targets changed: ${ok} requests answered, ${failed} failed`);
    assert.equal(failed, 0, errors.slice(0, 5).join('; '));
    assert.ok(ok > 100, `only ${ok} requests were sent`);
  });

  test('TCP groups: a drained target keeps its connections unless connection termination is on; an unhealthy one loses them unless turned off', async () => {
    // An echo server as the target, its health checked on a port of its own that the test can close.
    const conns = new Set<net.Socket>();
    const echo = net.createServer((c) => (conns.add(c), c.on('close', () => conns.delete(c)), c.pipe(c)));
    let hc = net.createServer((c) => c.end());
    await new Promise<void>((res) => echo.listen(0, '127.0.0.1', res));
    await new Promise<void>((res) => hc.listen(0, '127.0.0.1', res));
    const hcPort = (hc.address() as net.AddressInfo).port;
    cleanups.push(async () => {
      for (const c of conns) c.destroy();
      echo.close();
      hc.close();
    });
    const target = { id: '127.0.0.1', port: (echo.address() as net.AddressInfo).port };
    const group = (targets: (typeof target)[], over: Partial<TargetGroup['attributes']> = {}): TargetGroup => {
      const d = targetGroupDefaults('TCP');
      return {
        ...d,
        id: 'nlb',
        port: 80,
        targets,
        healthCheck: { ...d.healthCheck, port: hcPort, intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 },
        attributes: { ...d.attributes, deregistrationDelaySeconds: 1, ...over },
      };
    };
    const state = (g: TargetGroup): DesiredState => ({ loadBalancers: [{ id: 'lb21', type: 'network', address: addr(21), listeners: [{ ...forwardListener('l', PORT, 'nlb'), protocol: 'TCP' }] }], targetGroups: [g] });
    const r = await dataPlane();
    /** A connection through the listener, and whether it still echoes. */
    const connect = async () => {
      const s = net.connect(PORT, addr(21));
      let closed = false;
      s.on('close', () => (closed = true)).on('error', () => undefined);
      const alive = async () => {
        if (closed) return false;
        const line = `ping-${Math.random()}\n`;
        const got = new Promise<boolean>((res) => {
          let b = '';
          const onData = (d: Buffer) => ((b += d), b.includes(line) && (s.off('data', onData), res(true)));
          s.on('data', onData);
          s.once('close', () => res(false));
          setTimeout(() => res(false), 2000);
        });
        s.write(line);
        return got;
      };
      cleanups.push(async () => void s.destroy());
      assert.equal(await alive(), true, 'a new connection echoes');
      return { alive, closed: () => closed };
    };
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

    // Deregistered, default (connection termination off): the stream outlives the 1 s delay.
    await r.apply(state(group([target])));
    await waitForStates(r, 'nlb', (s) => s === 'healthy');
    const a = await connect();
    await r.apply(state(group([])));
    await sleep(3000);
    assert.equal(await a.alive(), true, 'connection termination off: the connection lives on after the delay');
    // Connection termination on: closed when the delay ends.
    await r.apply(state(group([target], { tcpCloseOnDeregistration: true })));
    await waitForStates(r, 'nlb', (s) => s === 'healthy');
    const b = await connect();
    await r.apply(state(group([], { tcpCloseOnDeregistration: true })));
    await waitUntil(() => b.closed(), 'the drained connection to be closed', { timeoutMs: 6000 });

    // Unhealthy, default (termination on): its connections are closed when it is marked down.
    await r.apply(state(group([target])));
    await waitForStates(r, 'nlb', (s) => s === 'healthy');
    const c = await connect();
    hc.close();
    await waitForStates(r, 'nlb', (s) => s === 'unhealthy');
    await waitUntil(() => c.closed(), 'the unhealthy target\'s connection to be closed', { timeoutMs: 3000 });
    // Termination off: the connection to the unhealthy target lives on.
    hc = net.createServer((x) => x.end());
    await new Promise<void>((res) => hc.listen(hcPort, '127.0.0.1', res));
    await r.apply(state(group([target], { tcpCloseOnUnhealthy: false })));
    await waitForStates(r, 'nlb', (s) => s === 'healthy');
    const d = await connect();
    hc.close();
    await waitForStates(r, 'nlb', (s) => s === 'unhealthy');
    await sleep(1500);
    assert.equal(await d.alive(), true, 'termination off: the connection to the unhealthy target lives on');
  });

  test('an HTTPS listener terminates TLS with its PEM file; a TCP listener passes the stream through', async () => {
    const [web, raw] = await targets('tls-behind', 'tcp-behind');
    const dir = tempDataDir();
    const pem = path.join(dir, 'lb.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=lb.test', '-days', '1', '-keyout', `${pem}.key`, '-out', `${pem}.crt`], { stdio: 'ignore' });
    fs.writeFileSync(pem, fs.readFileSync(`${pem}.crt`, 'utf8') + fs.readFileSync(`${pem}.key`, 'utf8'));
    const tcp = { ...targetGroupDefaults('TCP'), id: 'raw', port: 80, targets: [{ id: '127.0.0.1', port: raw!.port }] };
    tcp.healthCheck = { ...tcp.healthCheck, intervalSeconds: 1, healthyThreshold: 2 };
    const r = await dataPlane();
    await r.apply({
      loadBalancers: [
        { id: 'lb11', type: 'application', address: addr(11), listeners: [{ ...forwardListener('l443', PORT, 'web'), protocol: 'HTTPS', certificatePemFile: pem }] },
        { id: 'lb12', type: 'network', address: addr(12), listeners: [{ ...forwardListener('l', PORT, 'raw'), protocol: 'TCP' }] },
      ],
      targetGroups: [httpGroup('web', [web!]), tcp],
    });
    await waitForStates(r, 'web', (s) => s === 'healthy');
    await waitForStates(r, 'raw', (s) => s === 'healthy');
    const body = await new Promise<string>((resolve, reject) => {
      https.get(`https://${addr(11)}:${PORT}/`, { rejectUnauthorized: false, agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    assert.equal(body, 'tls-behind');
    assert.equal(web!.lastHeaders['x-forwarded-proto'], 'https');
    const plain = await get(`http://${addr(12)}:${PORT}/`);
    assert.equal(plain.body, 'tcp-behind');
    // TCP passes the stream through: no forwarded headers are added.
    assert.equal(raw!.lastHeaders['x-forwarded-for'], undefined);
  });
});
