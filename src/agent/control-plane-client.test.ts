import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { WebSocketServer } from 'ws';
import { verifySigV4 } from '../lib/sigv4';
import { AGENT_CONNECT_PATH, type ServerToAgentMessage } from '../api/agent/protocol';
import { ControlPlaneError, HttpControlPlaneClient, controlPlaneHttpAgent, reconnectDelayMs } from './control-plane-client';

const creds = { accessKeyId: 'AKIDWHARFTEST', secretAccessKey: 'wharf-test-secret' };

/** A stand-in for the Wharf server: records signed requests, answers from a script. */
async function fakeServer(answer: (target: string, body: unknown) => { status: number; body: unknown }) {
  const calls: { target: string; body: unknown; verified: boolean }[] = [];
  const upgrades: { url: string; verified: boolean }[] = [];
  const verify = (req: IncomingMessage, body: Buffer) =>
    verifySigV4({ method: req.method!, path: req.url!, headers: req.headers, body }, (k) => (k === creds.accessKeyId ? creds.secretAccessKey : undefined), { service: 'ecs' }).ok;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target']);
      const body = JSON.parse(raw.toString());
      calls.push({ target, body, verified: verify(req, raw) && req.headers['content-type'] === 'application/x-amz-json-1.1' });
      const a = answer(target, body);
      res.writeHead(a.status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(a.body));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    upgrades.push({ url: req.url!, verified: verify(req, Buffer.alloc(0)) });
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws));
  });
  const tcp = { connections: 0 };
  server.on('connection', () => tcp.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    upgrades,
    wss,
    tcp,
    close: () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('API calls are SigV4-signed JSON 1.1 with the ECS target; error answers become ControlPlaneError', async () => {
  const srv = await fakeServer((target) =>
    target.endsWith('RegisterContainerInstance')
      ? { status: 200, body: { containerInstance: { containerInstanceArn: 'arn:aws:ecs:us-east-1:1:container-instance/default/abc' } } }
      : { status: 400, body: { __type: 'InvalidParameterException', message: 'bad task' } },
  );
  const client = new HttpControlPlaneClient({ endpoint: srv.endpoint, region: 'us-east-1', credentials: creds });
  const out = await client.registerContainerInstance({ cluster: 'default', totalResources: [] });
  assert.equal(out.containerInstanceArn, 'arn:aws:ecs:us-east-1:1:container-instance/default/abc');
  assert.equal(srv.calls[0]!.target, 'AmazonEC2ContainerServiceV20141113.RegisterContainerInstance');
  assert.equal(srv.calls[0]!.verified, true);
  await assert.rejects(client.submitTaskStateChange({ task: 'x', status: 'RUNNING' }), (err: unknown) => {
    assert.ok(err instanceof ControlPlaneError);
    assert.equal(err.code, 'InvalidParameterException');
    assert.equal(err.permanent, true);
    return true;
  });
  assert.deepEqual(srv.calls[1]!.body, { task: 'x', status: 'RUNNING' });
  await srv.close();
  await assert.rejects(client.submitTaskStateChange({ task: 'x' }), (err: unknown) => err instanceof ControlPlaneError && err.code === 'NetworkError' && !err.permanent);
});

test('the agent channel is a signed WebSocket that delivers messages and reconnects after a drop', async () => {
  const srv = await fakeServer(() => ({ status: 200, body: {} }));
  let n = 0;
  srv.wss.on('connection', (ws) => {
    const msg: ServerToAgentMessage = { type: 'desiredState', seq: ++n, containerInstanceArn: 'ci', tasks: [] };
    ws.send(JSON.stringify(msg));
  });
  const client = new HttpControlPlaneClient({ endpoint: srv.endpoint, region: 'us-east-1', credentials: creds });
  const got: ServerToAgentMessage[] = [];
  let connects = 0;
  const ch = client.connect({ cluster: 'default', containerInstanceArn: 'arn:aws:ecs:us-east-1:1:container-instance/default/abc' }, { onMessage: (m) => got.push(m), onConnected: () => connects++ });
  const until = async (c: () => boolean) => {
    for (let i = 0; i < 200 && !c(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(c());
  };
  await until(() => got.length === 1);
  assert.equal(ch.connected, true);
  const u = new URL(srv.upgrades[0]!.url, 'http://x');
  assert.equal(u.pathname, AGENT_CONNECT_PATH);
  assert.equal(u.searchParams.get('containerInstance'), 'arn:aws:ecs:us-east-1:1:container-instance/default/abc');
  assert.equal(srv.upgrades[0]!.verified, true);
  for (const c of srv.wss.clients) c.terminate();
  await until(() => got.length === 2);
  assert.equal(connects, 2);
  assert.equal((got[1] as { seq: number }).seq, 2);
  ch.close();
  await srv.close();
});

test('API calls reuse kept-alive connections, and clients can share one pool', async () => {
  const srv = await fakeServer(() => ({ status: 200, body: {} }));
  const pool = controlPlaneHttpAgent(srv.endpoint, 4);
  const clients = [0, 1, 2].map(() => new HttpControlPlaneClient({ endpoint: srv.endpoint, region: 'us-east-1', credentials: creds, httpAgent: pool }));
  for (let i = 0; i < 30; i++) await clients[i % 3]!.submitTaskStateChange({ task: `t${i}`, status: 'RUNNING' });
  assert.equal(srv.calls.length, 30);
  assert.ok(srv.calls.every((c) => c.verified));
  assert.equal(srv.tcp.connections, 1, 'thirty calls one after another over one kept-alive connection');
  await Promise.all(Array.from({ length: 12 }, (_, i) => clients[i % 3]!.submitTaskStateChange({ task: `p${i}`, status: 'RUNNING' })));
  assert.equal(srv.calls.length, 42);
  assert.ok(srv.tcp.connections <= 4, `concurrent calls never open more than the pool's 4 connections (${srv.tcp.connections})`);
  pool.destroy();
  await srv.close();
});

test('a deregistered instance: close code 4001 or a refused upgrade ends the channel for good', async () => {
  // Close code 4001 (the gateway's CLOSE_INACTIVE) on an open channel.
  const srv = await fakeServer(() => ({ status: 200, body: {} }));
  srv.wss.on('connection', (ws) => ws.close(4001, 'container instance deregistered'));
  const client = new HttpControlPlaneClient({ endpoint: srv.endpoint, region: 'us-east-1', credentials: creds });
  const reasons: string[] = [];
  const ch = client.connect({ cluster: 'default', containerInstanceArn: 'arn:aws:ecs:us-east-1:1:container-instance/default/abc' }, { onMessage: () => undefined, onDeregistered: (r) => reasons.push(r) });
  for (let i = 0; i < 200 && reasons.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(reasons.length, 1);
  assert.match(reasons[0]!, /deregistered/);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(srv.upgrades.length, 1, 'no reconnect after the instance was deregistered');
  assert.equal(ch.connected, false);
  ch.close();
  await srv.close();

  // The upgrade refused with InactiveInstanceException (the agent was away when it happened).
  const refusing = createServer((_req, res) => res.writeHead(404).end());
  let upgrades = 0;
  refusing.on('upgrade', (_req, socket) => {
    upgrades++;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nx-amzn-ErrorType: InactiveInstanceException\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(refusing.address() as { port: number }).port}`;
  const c2 = new HttpControlPlaneClient({ endpoint, region: 'us-east-1', credentials: creds });
  const reasons2: string[] = [];
  const ch2 = c2.connect({ cluster: 'default', containerInstanceArn: 'arn:aws:ecs:us-east-1:1:container-instance/default/abc' }, { onMessage: () => undefined, onDeregistered: (r) => reasons2.push(r) });
  for (let i = 0; i < 200 && reasons2.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(reasons2[0] ?? '', /InactiveInstanceException/);
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(upgrades, 1, 'no retry after InactiveInstanceException');
  ch2.close();
  await new Promise<void>((r) => refusing.close(() => r()));
});

test('registration hands the client an instance credential: it signs everything after, is kept 0600, and proves a restart is the same agent', async () => {
  const { mkdtempSync, readFileSync, rmSync, statSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const arn = 'arn:aws:ecs:us-east-1:1:container-instance/default/abc';
  const instanceKey = { accessKeyId: 'AKIAWINSTTEST0000000', secretAccessKey: 'instance-secret' };
  const signers: string[] = [];
  const keyIdOf = (req: IncomingMessage) => /Credential=([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? '';
  const server: Server = createServer((req, res) => {
    signers.push(`${String(req.headers['x-amz-target']).split('.').pop()}:${keyIdOf(req)}`);
    req.resume();
    req.on('end', () => {
      const body = String(req.headers['x-amz-target']).endsWith('RegisterContainerInstance') && keyIdOf(req) === creds.accessKeyId
        ? { containerInstance: { containerInstanceArn: arn }, wharfInstanceCredential: instanceKey }
        : String(req.headers['x-amz-target']).endsWith('RegisterContainerInstance') ? { containerInstance: { containerInstanceArn: arn } } : {};
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(body));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    signers.push(`channel:${keyIdOf(req)}`);
    wss.handleUpgrade(req, socket, head, (ws) => ws.send(JSON.stringify({ type: 'desiredState', seq: 1, containerInstanceArn: arn, tasks: [] })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'wharf-cpc-'));
  const file = join(dir, 'agent', 'instance-credential.json');
  try {
    const first = new HttpControlPlaneClient({ endpoint, region: 'us-east-1', credentials: creds, instanceCredentialFile: file });
    await first.registerContainerInstance({ cluster: 'default' });
    await first.submitTaskStateChange({ task: 't', status: 'RUNNING' });
    await new Promise<void>((resolve) => {
      const ch = first.connect({ cluster: 'default', containerInstanceArn: arn }, { onMessage: () => (ch.close(), resolve()) });
    });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { ...instanceKey, containerInstanceArn: arn });
    // A restarted agent (a new client on the same file) re-registers its instance with its own
    // credential; registering as a new instance goes back to the join token.
    const restarted = new HttpControlPlaneClient({ endpoint, region: 'us-east-1', credentials: creds, instanceCredentialFile: file });
    await restarted.registerContainerInstance({ cluster: 'default', containerInstanceArn: arn });
    await restarted.registerContainerInstance({ cluster: 'default' });
    assert.deepEqual(signers, [
      `RegisterContainerInstance:${creds.accessKeyId}`,
      `SubmitTaskStateChange:${instanceKey.accessKeyId}`,
      `channel:${instanceKey.accessKeyId}`,
      `RegisterContainerInstance:${instanceKey.accessKeyId}`,
      `RegisterContainerInstance:${creds.accessKeyId}`,
    ]);
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('after a control plane outage the agent tries again at least every 10 s, well within the default 30 s agent timeout', () => {
  // Worst case (the jitter's top): 250 ms doubling, never past 10 s however long the outage.
  const delays = Array.from({ length: 30 }, (_, i) => reconnectDelayMs(i, () => 1));
  assert.equal(delays[0], 250);
  assert.equal(delays[3], 2000);
  assert.ok(delays.every((d) => d <= 10_000), `longest wait ${Math.max(...delays)} ms`);
  // A server back after 40 s down: the next attempt comes within 10 s, so its instances are
  // reconnected long before `--agent-timeout` (30 s from the server's start) takes them for lost.
  let t = 0;
  let attempt = 0;
  while (t < 40_000) t += reconnectDelayMs(attempt++, () => 1);
  assert.ok(t - 40_000 <= 10_000);
});
