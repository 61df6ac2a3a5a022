/**
 * For the load balancer data plane tests: small HTTP targets on 127.0.0.1, a skip/fail decision
 * when haproxy is absent, and desired-state builders with short health-check settings.
 */
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { skipUnlessCI } from '../../images/docker-test-env';
import { TEST_DEPENDENCIES } from '../../preflight/test-deps';
import { targetGroupDefaults, type Listener, type TargetGroup } from '../../../src/loadbalancer/model';
import { LoadBalancerReconciler } from '../../../src/loadbalancer/reconciler';

/** A skip message, or false when haproxy is there; in CI a missing haproxy fails the file. */
export function haproxySkipReason(): string | false {
  const dep = TEST_DEPENDENCIES.find((d) => d.aptPackage === 'haproxy')!;
  return dep.present() ? false : skipUnlessCI(`${dep.what} is not installed (apt-get install -y haproxy)`);
}

export interface TestTarget {
  name: string;
  port: number;
  /** Requests answered, by path. */
  hits: number;
  /** Last request's headers. */
  lastHeaders: http.IncomingHttpHeaders;
  /** Last request's header lines as sent (name, value, name, value, ...): node joins repeated ones in `lastHeaders`. */
  lastRawHeaders: string[];
  /** The last health check's headers. */
  lastHealthHeaders: http.IncomingHttpHeaders;
  /** When true the health path answers 500. */
  failHealth: boolean;
  server: http.Server;
  close(): Promise<void>;
}

/** A target that answers its name; `/slow?ms=N` answers after N ms; `/health` is the check path. */
export async function startTarget(name: string, port = 0): Promise<TestTarget> {
  const t = { name, hits: 0, lastHeaders: {}, lastRawHeaders: [], lastHealthHeaders: {}, failHealth: false } as unknown as TestTarget;
  const sockets = new Set<import('node:net').Socket>();
  t.server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/health') {
      t.lastHealthHeaders = req.headers;
      res.writeHead(t.failHealth ? 500 : 200).end('ok');
      return;
    }
    t.hits++;
    t.lastHeaders = req.headers;
    t.lastRawHeaders = req.rawHeaders;
    const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
    const ms = url.pathname === '/slow' ? Number(url.searchParams.get('ms') ?? 0) : 0;
    if (ms > 0) setTimeout(answer, ms);
    else answer();
  });
  t.server.keepAliveTimeout = 65_000;
  t.server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => t.server.listen(port, '127.0.0.1', r));
  t.port = (t.server.address() as { port: number }).port;
  t.close = () =>
    new Promise<void>((r) => {
      t.server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  return t;
}

/** An HTTP target group with 1-second checks on /health: healthy after 2, unhealthy after 2. */
export function httpGroup(id: string, targets: TestTarget[], over: Partial<TargetGroup['attributes']> = {}): TargetGroup {
  const d = targetGroupDefaults('HTTP');
  return {
    ...d,
    id,
    port: 80,
    healthCheck: { ...d.healthCheck, path: '/health', intervalSeconds: 1, timeoutSeconds: 1, healthyThreshold: 2, unhealthyThreshold: 2 },
    attributes: { ...d.attributes, deregistrationDelaySeconds: 5, ...over },
    targets: targets.map((t) => ({ id: '127.0.0.1', port: t.port })),
  };
}

export function forwardListener(id: string, port: number, targetGroupId: string): Listener {
  return { id, port, protocol: 'HTTP', defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId, weight: 1 }] }], rules: [] };
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-lb-'));
}

/** A started reconciler on a fresh data dir. */
export async function startDataPlane(dataDir = tempDataDir()): Promise<LoadBalancerReconciler> {
  const r = new LoadBalancerReconciler(dataDir);
  await r.start(500);
  return r;
}

/** Waits until every target of the group is in `state`. */
export async function waitForStates(r: LoadBalancerReconciler, groupId: string, want: (state: string, key: string) => boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const list = (await r.health()).get(groupId) ?? [];
    last = JSON.stringify(list);
    if (list.length > 0 && list.every((d) => want(d.health.state, `${d.target.id}:${d.target.port}`))) return;
    if (Date.now() > until) throw new Error(`target group ${groupId} did not reach the wanted states; last: ${last}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** GET through the load balancer on a fresh connection (node:http: fetch may not set Host). */
export function get(url: string, headers: Record<string, string | string[]> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}
