import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staticFiles } from './static-files';

let dir: string;
let server: Server;
let port: number;

/** A raw request (no URL normalisation by a client library), so `..` reaches the server as sent. */
function get(path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console files', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wharf-console-'));
    const root = join(dir, 'console');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>Wharf console</title>');
    writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(root, 'assets', 'index-abc123.css'), 'body{}');
    writeFileSync(join(dir, 'secret.txt'), 'outside the root');
    const handle = staticFiles(root);
    server = createServer((req, res) => {
      if (handle(req, res)) return;
      res.writeHead(418).end('not the console');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('/ redirects to /console/, and /console to /console/', async () => {
    const root = await get('/');
    assert.equal(root.status, 302);
    assert.equal(root.headers.location, '/console/');
    const bare = await get('/console');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/console/');
  });

  test('index.html is HTML, revalidated every time, under a strict content security policy', async () => {
    const r = await get('/console/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(r.body, /Wharf console/);
  });

  test('hashed assets are cached for good, with their content types', async () => {
    const js = await get('/console/assets/index-abc123.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.body, 'console.log(1)');
    const css = await get('/console/assets/index-abc123.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
  });

  test('HEAD answers the headers without the body', async () => {
    const r = await get('/console/assets/index-abc123.js', 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String('console.log(1)'.length));
    assert.equal(r.body, '');
  });

  test('no path leaves the root', async () => {
    for (const p of ['/console/../secret.txt', '/console/%2e%2e/secret.txt', '/console/assets/..%2f..%2fsecret.txt', '/console/..%5csecret.txt', '/console/index.html%00.js', '/console/%E0%A4%A']) {
      const r = await get(p);
      assert.ok(r.status === 400 || r.status === 404, `${p} answered ${r.status}`);
      assert.doesNotMatch(r.body, /outside the root/, p);
    }
  });

  test('a missing file is 404, and paths outside /console and other methods are left to the API', async () => {
    assert.equal((await get('/console/assets/nope.js')).status, 404);
    assert.equal((await get('/console/assets')).status, 404);
    assert.equal((await get('/healthz')).status, 418);
    assert.equal((await get('/console/', 'POST')).status, 418);
  });
});
