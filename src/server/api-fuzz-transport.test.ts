/**
 * Attacks on the transport: raw bytes over real sockets (node:net) to the real HTTP server with
 * its production timeouts (DEFAULT_REQUEST_TIMEOUTS). Broken framing (conflicting Content-Length,
 * Content-Length with Transfer-Encoding, bad chunks), header blocks over Node's limit, slow-loris
 * clients, bodies announced and never sent, oversize bodies. What a client may see: a 4xx with a
 * well-formed AWS JSON error, or a closed socket; never a 5xx, never a hang. Afterwards the server
 * still answers, logged no error, and the store is exactly as before.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { DEFAULT_REQUEST_TIMEOUTS, MAX_BODY_BYTES } from './http-server';
import { ECS_TARGET_PREFIX, dumpStore, malformed, startFuzzServer, storeDiff, type FuzzServer } from './api-fuzz-harness';

let fz: FuzzServer;
let dumpBefore: Map<string, string>;

before(async () => {
  fz = await startFuzzServer();
  const a = await fz.post({ target: `${ECS_TARGET_PREFIX}.CreateCluster`, body: JSON.stringify({ clusterName: 'transport' }) });
  assert.equal(a.status, 200, a.text);
  dumpBefore = await dumpStore(fz.store);
});

after(() => fz.close());

/** A step of a raw client: bytes to write, or a pause. */
type Step = string | Buffer | { waitMs: number };

interface RawResult {
  /** Everything the server wrote. */
  text: string;
  status?: number;
  /** The body of the first answer. */
  body: string;
  /** When the server closed the connection (ms after connecting), if it did within the limit. */
  closedAtMs?: number;
  reset: boolean;
}

/**
 * Connects, plays the steps (stopping when the server closes), and waits for the server to close
 * the connection, at most `limitMs`: a connection still open then is a hang.
 */
function raw(steps: Step[], limitMs: number): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect(fz.port, '127.0.0.1');
    let text = '';
    let closed = false;
    let reset = false;
    s.on('data', (d) => (text += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true;
    });
    const finish = () => {
      clearTimeout(limit);
      const head = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      const body = text.includes('\r\n\r\n') ? text.slice(text.indexOf('\r\n\r\n') + 4) : '';
      resolve({ text, body, reset, ...(head ? { status: Number(head[1]) } : {}), ...(closed ? { closedAtMs: Date.now() - started } : {}) });
    };
    const limit = setTimeout(() => {
      s.destroy();
      finish();
    }, limitMs);
    s.on('close', () => {
      closed = true;
      finish();
    });
    s.on('connect', async () => {
      for (const step of steps) {
        if (closed || s.destroyed) return;
        if (typeof step === 'object' && !Buffer.isBuffer(step)) await new Promise((r) => setTimeout(r, step.waitMs));
        else if (!s.write(step)) await new Promise((r) => s.once('drain', r).once('close', r));
      }
    });
  });
}

const { headersMs, bodyIdleMs } = DEFAULT_REQUEST_TIMEOUTS;
// Seconds, not minutes: whatever the constants become, an attacker never holds a socket longer.
assert.ok(headersMs <= 15_000 && bodyIdleMs <= 10_000, 'the request timeouts are a few seconds');
/** How late a timeout may strike: Node looks for expired requests once a second, and the machine is shared. */
const SLACK_MS = 3_000;
const HEAD = 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.CreateCluster\r\n';

/** What the client saw is an allowed refusal: one of `statuses` with a well-formed AWS error, or (if `mayReset`) a closed socket without an answer. */
function assertRefused(name: string, r: RawResult, statuses: number[], opts: { type?: string; mayReset?: boolean } = {}): void {
  assert.ok(r.closedAtMs !== undefined, `${name}: the server closed the connection (got ${JSON.stringify(r.text.slice(0, 200))})`);
  if (r.status === undefined) {
    assert.ok(opts.mayReset && r.text === '', `${name}: no answer, only ${JSON.stringify(r.text.slice(0, 200))}`);
    return;
  }
  assert.ok(statuses.includes(r.status), `${name}: status ${r.status}, expected one of ${statuses}: ${r.text.slice(0, 300)}`);
  const bad = malformed({ status: r.status, text: r.body, headers: {} });
  assert.equal(bad, undefined, `${name}: ${bad}: ${r.body.slice(0, 300)}`);
  if (opts.type) assert.equal(JSON.parse(r.body).__type, opts.type, `${name}: ${r.body}`);
}

test('broken HTTP framing and header blocks over the limit get a 4xx and a closed connection', async () => {
  const body = JSON.stringify({ clusterName: 'framing-should-not-exist' });
  const cases: [string, Step[], number[], string?][] = [
    ['conflicting Content-Length', [`${HEAD}Content-Length: ${body.length}\r\nContent-Length: ${body.length + 1}\r\n\r\n${body}`], [400], 'SerializationException'],
    ['Content-Length with Transfer-Encoding: chunked', [`${HEAD}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`], [400], 'SerializationException'],
    ['a chunk size that is not hex', [`${HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n`], [400], 'SerializationException'],
    ['a chunk size past 2^64', [`${HEAD}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n${body}\r\n0\r\n\r\n`], [400], 'SerializationException'],
    ['a chunk longer than its size', [`${HEAD}Transfer-Encoding: chunked\r\n\r\n2\r\n${body}\r\n0\r\n\r\n`], [400], 'SerializationException'],
    ['a chunk without its CRLF', [`${HEAD}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}0\r\n\r\n`], [400], 'SerializationException'],
    ['Transfer-Encoding other than chunked last', [`${HEAD}Transfer-Encoding: chunked, gzip\r\n\r\n${body}`], [400], 'SerializationException'],
    ['a negative Content-Length', [`${HEAD}Content-Length: -1\r\n\r\n${body}`], [400], 'SerializationException'],
    ['a Content-Length past 2^64', [`${HEAD}Content-Length: 99999999999999999999999\r\n\r\n${body}`], [400, 413]],
    ['a header with a bare LF and a NUL', [`${HEAD}X-Bad: a\0b\nX-Other: c\r\nContent-Length: 2\r\n\r\n{}`], [400], 'SerializationException'],
    ['a space before the colon', [`${HEAD}Content-Length : 2\r\n\r\n{}`], [400], 'SerializationException'],
    ['a request line of garbage', ['\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n'], [400], 'SerializationException'],
    ['one header of 64 KiB', [`${HEAD}X-Big: ${'a'.repeat(64 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`], [431], 'RequestEntityTooLargeException'],
    ['4,000 small headers', [`${HEAD}${Array.from({ length: 4000 }, (_, i) => `X-H${i}: v\r\n`).join('')}Content-Length: 2\r\n\r\n{}`], [431], 'RequestEntityTooLargeException'],
    ['a URL of 64 KiB', [`POST /${'a'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}`], [431, 400]],
  ];
  const results = await Promise.all(cases.map(([, steps]) => raw(steps, 5_000)));
  cases.forEach(([name, , statuses, type], i) => assertRefused(name, results[i]!, statuses, type ? { type } : {}));
});

test(`a body announced and never sent is cut after ${bodyIdleMs / 1000} s of silence; a slow-loris client after ${headersMs / 1000} s; the server answers others meanwhile`, async () => {
  // Headers complete, then the body never comes: the idle timer ends it, before any signature check.
  const announced = raw([`${HEAD}Content-Length: 1000\r\n\r\n{"clusterName":`, { waitMs: bodyIdleMs + SLACK_MS + 2_000 }], bodyIdleMs + SLACK_MS + 5_000);
  // Headers one byte a second, from 20 clients at once.
  const loris = Array.from({ length: 20 }, () => raw([...`${HEAD}X-Slow: ${'a'.repeat(40)}\r\n`].flatMap((c) => [c, { waitMs: 1_000 }]), headersMs + SLACK_MS + 2_000));
  // Half a body, then the rest a byte every 6 s: still under the whole-request bound, but each
  // silence is longer than the idle bound.
  const trickle = raw([`${HEAD}Content-Length: 40\r\n\r\n{"clusterName":"tr`, { waitMs: 6_000 }, 'i', { waitMs: 6_000 }, 'c'], bodyIdleMs + SLACK_MS + 5_000);
  // The server keeps answering during the attack, and quickly.
  const during: number[] = [];
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    const t0 = Date.now();
    const a = await fz.post({ target: `${ECS_TARGET_PREFIX}.ListClusters`, body: '{}' });
    assert.equal(a.status, 200, a.text);
    during.push(Date.now() - t0);
  }
  assert.ok(Math.max(...during) < 1_000, `answers during the attack took ${during.join(', ')} ms`);

  const a = await announced;
  assertRefused('a body announced and never sent', a, [408], { type: 'RequestTimeoutException' });
  assert.ok(a.closedAtMs! >= bodyIdleMs - 100 && a.closedAtMs! <= bodyIdleMs + SLACK_MS, `closed after ${a.closedAtMs} ms`);
  const t = await trickle;
  assertRefused('a body trickled with long silences', t, [408], { type: 'RequestTimeoutException' });
  assert.ok(t.closedAtMs! <= bodyIdleMs + SLACK_MS, `closed after ${t.closedAtMs} ms`);
  for (const [i, l] of (await Promise.all(loris)).entries()) {
    assertRefused(`slow-loris client ${i}`, l, [408], { type: 'RequestTimeoutException' });
    assert.ok(l.closedAtMs! >= headersMs - 100 && l.closedAtMs! <= headersMs + SLACK_MS, `slow-loris ${i} closed after ${l.closedAtMs} ms`);
  }
});

test('oversize bodies get a 413 (or a closed socket) without being read to their end', async () => {
  const big = Buffer.alloc(2 * MAX_BODY_BYTES, 'a');
  const chunked = (n: number) => Array.from({ length: n }, () => `${(64 * 1024).toString(16)}\r\n${'a'.repeat(64 * 1024)}\r\n`);
  const cases: [string, Step[]][] = [
    ['a Content-Length of 2 MiB, all sent', [`${HEAD}Content-Length: ${big.length}\r\n\r\n`, big]],
    // A terabyte announced and streamed without end: refused at once, never drained.
    ['a Content-Length of 1 TB, streamed', [`${HEAD}Content-Length: ${1e12}\r\n\r\n`, ...Array.from({ length: 200 }, () => big.subarray(0, 256 * 1024))]],
    ['2 MiB of chunks', [`${HEAD}Transfer-Encoding: chunked\r\n\r\n`, ...chunked(32), '0\r\n\r\n']],
    ['chunks without end', [`${HEAD}Transfer-Encoding: chunked\r\n\r\n`, ...chunked(1_000)]],
  ];
  const results = await Promise.all(cases.map(([, steps]) => raw(steps, 10_000)));
  cases.forEach(([name], i) => assertRefused(name, results[i]!, [413], { type: 'RequestEntityTooLargeException', mayReset: true }));
  assert.ok(results.some((r) => r.status === 413), 'at least one client read its 413');
});

test('after the attacks: the server answers, logged no error, and the store is as it was', async () => {
  const a = await fz.post({ target: `${ECS_TARGET_PREFIX}.DescribeClusters`, body: JSON.stringify({ clusters: ['transport'] }) });
  assert.equal(a.status, 200, a.text);
  assert.equal(JSON.parse(a.text).clusters[0].clusterName, 'transport');
  assert.deepEqual(fz.serverErrors(), []);
  assert.deepEqual(storeDiff(dumpBefore, await dumpStore(fz.store)), []);
  const metrics = await fz.server.metrics.metrics();
  assert.match(metrics, /wharf_api_requests_total\{service="unknown",operation="unknown",code="RequestTimeoutException"\} \d+/);
  assert.doesNotMatch(metrics, /code="ServerException"/);
});
