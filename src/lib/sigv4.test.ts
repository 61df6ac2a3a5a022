import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash as NodeHash, type Hmac } from 'node:crypto';

/** The SDK signer takes a hash constructor (secret => keyed HMAC); this one wraps node:crypto. */
class Sha256 {
  private h: NodeHash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key = secret === undefined || typeof secret === 'string' ? secret : (secret instanceof ArrayBuffer ? Buffer.from(secret) : Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength));
    this.h = key ? createHmac('sha256', key) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(typeof data === 'string' ? data : (data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }
  reset(): void {
    throw new Error("not needed by the signer");
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
}
import { DerivedKeyCache, signRequest, verifySigV4 } from './sigv4';

const creds = { accessKeyId: 'AKIDWHARFTEST', secretAccessKey: 'secret/with+chars' };
const lookup = (id: string) => (id === creds.accessKeyId ? creds.secretAccessKey : undefined);
const body = Buffer.from('{"clusterName":"a"}');

test('a request signed by the AWS SDK signer verifies', async () => {
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 'ecs', sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 4566,
    path: '/',
    headers: {
      host: '127.0.0.1:4566',
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'AmazonEC2ContainerServiceV20141113.CreateCluster',
    },
    body: body.toString(),
  });
  const r = verifySigV4({ method: 'POST', path: '/', headers: signed.headers, body }, lookup, { service: 'ecs' });
  assert.equal(r.ok, true);
});

test('our signer and verifier agree, and any change to the body breaks the signature', () => {
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'X.Y' };
  const added = signRequest({ method: 'POST', url: 'http://127.0.0.1:4566/', headers, body }, { ...creds, region: 'us-east-1', service: 'ecs' });
  const all = { ...headers, ...added };
  assert.equal(verifySigV4({ method: 'POST', path: '/', headers: all, body }, lookup).ok, true);
  const tampered = verifySigV4({ method: 'POST', path: '/', headers: all, body: Buffer.from('{"clusterName":"b"}') }, lookup);
  assert.equal(tampered.ok, false);
  assert.equal(!tampered.ok && tampered.failure.code, 'InvalidSignatureException');
});

test('missing, malformed, unknown-key and expired signatures are told apart', () => {
  const headers = { 'content-type': 'application/x-amz-json-1.1' };
  const v = (h: Record<string, string>, now?: number) => {
    const r = verifySigV4({ method: 'POST', path: '/', headers: h, body }, lookup, { now });
    return r.ok ? 'ok' : r.failure.code;
  };
  assert.equal(v(headers), 'MissingAuthenticationTokenException');
  assert.equal(v({ ...headers, authorization: 'Bearer x' }), 'IncompleteSignatureException');
  const other = signRequest({ method: 'POST', url: 'http://h/', headers, body }, { accessKeyId: 'NOPE', secretAccessKey: 'x', region: 'us-east-1', service: 'ecs' });
  assert.equal(v({ ...headers, ...other }), 'UnrecognizedClientException');
  const old = signRequest({ method: 'POST', url: 'http://h/', headers, body }, { ...creds, region: 'us-east-1', service: 'ecs', date: new Date(Date.now() - 3_600_000) });
  assert.equal(v({ ...headers, ...old }), 'InvalidSignatureException');
  const wrongSecret = signRequest({ method: 'POST', url: 'http://h/', headers, body }, { ...creds, secretAccessKey: 'bad', region: 'us-east-1', service: 'ecs' });
  assert.equal(v({ ...headers, ...wrongSecret }), 'InvalidSignatureException');
  // A signature that is there but not 64 hex digits is named as the malformed part; a valid
  // signature with more after it does not pass on its hex prefix.
  const good = signRequest({ method: 'POST', url: 'http://h/', headers, body }, { ...creds, region: 'us-east-1', service: 'ecs' });
  assert.equal(v({ ...headers, ...good }), 'ok');
  for (const sig of ['abc', `${good.authorization!.slice(-64)}zz`, `${good.authorization!.slice(-64)}00`]) {
    const r = verifySigV4({ method: 'POST', path: '/', headers: { ...headers, ...good, authorization: good.authorization!.replace(/Signature=.*$/, `Signature=${sig}`) }, body }, lookup);
    assert.equal(!r.ok && r.failure.code, 'IncompleteSignatureException', sig);
    assert.equal(!r.ok && r.failure.message, `The Signature of the Authorization header must be 64 lowercase hexadecimal digits, not '${sig}'.`);
  }
});

test('paths a URL parser reads as a host (`//`, `//a/b`) are checked as paths, not thrown on', () => {
  for (const path of ['//', '//a/b', '///x']) {
    const headers = { 'content-type': 'application/x-amz-json-1.1' };
    const signed = signRequest({ method: 'POST', url: `http://127.0.0.1:4566${path}`, headers, body }, { ...creds, region: 'us-east-1', service: 'ecs' });
    const all = { ...headers, ...signed };
    assert.equal(verifySigV4({ method: 'POST', path, headers: all, body }, lookup).ok, true, `${path} signed with the right secret`);
    const wrong = verifySigV4({ method: 'POST', path, headers: all, body }, () => 'not-the-secret');
    assert.equal(wrong.ok, false);
    assert.equal(!wrong.ok && wrong.failure.code, 'InvalidSignatureException', path);
    const moved = verifySigV4({ method: 'POST', path: '/', headers: all, body }, lookup);
    assert.equal(moved.ok, false, `a signature for ${path} does not cover /`);
  }
});

/**
 * Requests signed correctly by the AWS SDK's signer but with one required header left out of
 * SignedHeaders: every one verifies once the header is signed, so only the rule refuses them.
 */
test('host, x-amz-date and (when present) x-amz-target must be signed headers', async () => {
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 'ecs', sha256: Sha256 });
  const sign = async (headers: Record<string, string>, unsignable: string[]) => {
    const signed = await signer.sign(
      { method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 4566, path: '/', headers, body: body.toString() },
      { unsignableHeaders: new Set(unsignable) },
    );
    return verifySigV4({ method: 'POST', path: '/', headers: signed.headers, body }, lookup, { service: 'ecs' });
  };
  const base = { host: '127.0.0.1:4566', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.DeleteCluster' };
  assert.equal((await sign(base, [])).ok, true, 'the control: everything signed');
  const cases: [string, Record<string, string>, string[]][] = [
    ['X-Amz-Target', base, ['x-amz-target']],
    ['X-Amz-Date', base, ['x-amz-date']],
    ['Host', base, ['host']],
  ];
  for (const [name, headers, unsignable] of cases) {
    const r = await sign(headers, unsignable);
    assert.equal(r.ok, false, `${name} unsigned`);
    assert.equal(!r.ok && r.failure.code, 'IncompleteSignatureException');
    assert.equal(!r.ok && r.failure.message, `'${name}' must be a 'SignedHeader' in the AWS Authorization.`);
  }
  // A request with no X-Amz-Target (the agent channel's upgrade, a Query API) needs none signed.
  const { 'x-amz-target': _, ...noTarget } = base;
  assert.equal((await sign(noTarget, [])).ok, true);
});

test("a signed body cannot be replayed against another operation by swapping the unsigned target", () => {
  // Signed as a read (no target in the signature), then sent as a delete.
  const headers = { 'content-type': 'application/x-amz-json-1.1' };
  const added = signRequest({ method: 'POST', url: 'http://127.0.0.1:4566/', headers, body }, { ...creds, region: 'us-east-1', service: 'ecs' });
  const replayed = { ...headers, ...added, 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.DeleteCluster' };
  const r = verifySigV4({ method: 'POST', path: '/', headers: replayed, body }, lookup, { service: 'ecs' });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.failure.code, 'IncompleteSignatureException');
  assert.match(!r.ok ? r.failure.message : '', /X-Amz-Target/);
});

test('the derived-key cache holds a fleet and, when full, drops the key used least recently', () => {
  const cache = new DerivedKeyCache(3);
  const key = (n: number) => Buffer.from([n]);
  cache.set('a', key(1));
  cache.set('b', key(2));
  cache.set('c', key(3));
  assert.deepEqual(cache.get('a'), key(1)); // a is now the most recent
  cache.set('d', key(4)); // full: b, the least recent, goes
  assert.equal(cache.size, 3);
  assert.equal(cache.get('b'), undefined);
  assert.deepEqual([cache.get('a'), cache.get('c'), cache.get('d')], [key(1), key(3), key(4)]);
  cache.set('d', key(5)); // replacing an entry evicts nothing
  assert.equal(cache.size, 3);
  assert.deepEqual(cache.get('a'), key(1));
});

test('a thousand instances, each with its own secret, sign and verify in turn', () => {
  const fleet = Array.from({ length: 1000 }, (_, i) => ({ accessKeyId: `AKIDFLEET${i}`, secretAccessKey: `fleet-secret-${i}` }));
  const secrets = new Map(fleet.map((c) => [c.accessKeyId, c.secretAccessKey]));
  for (let round = 0; round < 2; round++) {
    for (const c of fleet) {
      const req = { method: 'POST', url: 'http://127.0.0.1:4000/', headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.ListClusters' }, body };
      const signed = signRequest(req, { ...c, region: 'eu-west-1', service: 'ecs' });
      const r = verifySigV4({ method: 'POST', path: '/', headers: { ...req.headers, ...signed }, body }, (id) => secrets.get(id));
      assert.equal(r.ok, true, `${c.accessKeyId} round ${round}`);
    }
  }
});

test('presigned requests: the SDK presigner verifies; expiry, host and X-Amz-Expires are checked', async () => {
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 'sts', sha256: Sha256 });
  const at = new Date(Date.UTC(2024, 4, 1, 12, 0, 0));
  const presign = async (expiresIn: number, headers: Record<string, string> = { host: '127.0.0.1:4566' }) => {
    const r = await signer.presign({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 4566, path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' }, headers }, { expiresIn, signingDate: at });
    return `/?${new URLSearchParams(r.query as Record<string, string>).toString()}`;
  };
  const verify = (path: string, now: number) => verifySigV4({ method: 'GET', path, headers: { host: '127.0.0.1:4566' }, body: Buffer.alloc(0) }, lookup, { now, service: 'sts' });
  const url = await presign(300);
  const ok = verify(url, at.getTime() + 299_000);
  assert.equal(ok.ok && ok.identity.presigned, true);
  const late = verify(url, at.getTime() + 301_000);
  assert.deepEqual(!late.ok && [late.failure.kind, late.failure.message], ['expired', 'Signature expired: 20240501T120500Z is now earlier than 20240501T120501Z (X-Amz-Date 20240501T120000Z + X-Amz-Expires 300 sec.)']);
  // Whatever X-Amz-Expires says, 15 minutes after X-Amz-Date is the end.
  const week = await presign(604_800);
  const stale = verify(week, at.getTime() + 16 * 60_000);
  assert.deepEqual(!stale.ok && stale.failure.message, 'Signature expired: 20240501T120000Z is now earlier than 20240501T120100Z (20240501T121600Z - 15 min.)');
  const altered = verify(url.replace('GetCallerIdentity', 'GetSessionToken'), at.getTime());
  assert.equal(!altered.ok && altered.failure.kind, 'mismatch');
  const noHost = verify(url.replace(/X-Amz-SignedHeaders=host/, 'X-Amz-SignedHeaders=x-amz-date'), at.getTime());
  assert.deepEqual(!noHost.ok && [noHost.failure.kind, noHost.failure.message], ['incomplete', "'Host' must be a 'SignedHeader' in the AWS Authorization."]);
  const tooLong = verify(url.replace('X-Amz-Expires=300', 'X-Amz-Expires=604801'), at.getTime());
  assert.deepEqual(!tooLong.ok && tooLong.failure.message, 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
  const partial = verify('/?Action=GetCallerIdentity&X-Amz-Signature=' + 'a'.repeat(64), at.getTime());
  assert.equal(!partial.ok && partial.failure.kind, 'incomplete');
});
