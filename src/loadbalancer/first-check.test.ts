import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { checkPort, firstCheck } from './first-check';
import { targetGroupDefaults, type HealthCheck, type TargetGroup } from './model';

const servers: (http.Server | net.Server)[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function listen<S extends http.Server | net.Server>(server: S): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

function group(protocol: 'HTTP' | 'TCP', hc: Partial<HealthCheck> = {}): TargetGroup {
  const d = targetGroupDefaults(protocol);
  return { ...d, id: 'web-tg', port: 80, targets: [], healthCheck: { ...d.healthCheck, timeoutSeconds: 1, ...hc } };
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  servers.splice(servers.indexOf(s), 1);
  return port;
}

describe('a new target first health check', () => {
  test('HTTP: sends what HAProxy sends and passes on a status the matcher allows', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const paths: string[] = [];
    const port = await listen(
      http.createServer((req, res) => {
        seen.push(req.headers);
        paths.push(`${req.method} ${req.url}`);
        res.writeHead(req.url === '/ready' ? 202 : 404).end();
      }),
    );
    const target = { id: '127.0.0.1', port };
    assert.deepEqual(await firstCheck(group('HTTP', { path: '/ready', matcher: '200,202' }), target), { passed: true, detail: 'status 202' });
    assert.deepEqual(paths, ['GET /ready']);
    // The target's address and the check port, as HAProxy's checks send it.
    assert.equal(seen[0]!.host, `127.0.0.1:${port}`);
    assert.equal(seen[0]!['user-agent'], 'ELB-HealthChecker/2.0');
    // The default matcher (200) refuses 202; another path answers 404.
    assert.deepEqual(await firstCheck(group('HTTP', { path: '/ready' }), target), { passed: false, detail: 'status 202' });
    assert.deepEqual(await firstCheck(group('HTTP', { path: '/other', matcher: '200-299' }), target), { passed: false, detail: 'status 404' });
  });

  test('HTTP: a target that does not answer within the timeout fails, and so does a closed port', async () => {
    const port = await listen(http.createServer(() => undefined)); // never answers
    const started = Date.now();
    assert.deepEqual(await firstCheck(group('HTTP', { path: '/', timeoutSeconds: 1 }), { id: '127.0.0.1', port }), { passed: false, detail: 'timeout' });
    assert.ok(Date.now() - started >= 990, 'waited out the timeout');
    assert.deepEqual(await firstCheck(group('HTTP', { path: '/' }), { id: '127.0.0.1', port: await closedPort() }), { passed: false, detail: 'connect ECONNREFUSED' });
  });

  test('TCP: passes when the connection is accepted, fails when refused', async () => {
    const port = await listen(net.createServer((s) => s.end()));
    assert.deepEqual(await firstCheck(group('TCP'), { id: '127.0.0.1', port }), { passed: true, detail: 'connected' });
    assert.deepEqual(await firstCheck(group('TCP'), { id: '127.0.0.1', port: await closedPort() }), { passed: false, detail: 'connect ECONNREFUSED' });
  });

  test('the check goes to the group check port when one is set, else to the target port', async () => {
    const port = await listen(http.createServer((_req, res) => res.writeHead(200).end()));
    const elsewhere = group('HTTP', { path: '/', port });
    assert.equal(checkPort(elsewhere, { id: '127.0.0.1', port: 1 }), port);
    assert.equal(checkPort(group('HTTP'), { id: '127.0.0.1', port: 8080 }), 8080);
    // The target's own port (1) has nothing on it: the check still passes, through the check port.
    assert.deepEqual(await firstCheck(elsewhere, { id: '127.0.0.1', port: 1 }), { passed: true, detail: 'status 200' });
  });
});
