import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, type Hash as NodeHash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { MIN_DERIVABLE_SECRET_LENGTH, deriveSecret, signRequest, verifySigV4 } from './sigv4';

/** The SDK signer's hash constructor over node:crypto (as in sigv4.test.ts). */
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
    throw new Error('not needed by the signer');
  }
  async digest(): Promise<Uint8Array> {
    return this.h.digest();
  }
}

const secret = randomBytes(48).toString('base64url');
const body = Buffer.from('{"clusterName":"a"}');

test('a long secret kept only as SHA-256("AWS4"+secret) verifies what the AWS SDK signer signed', async () => {
  assert.equal(secret.length, 64);
  const signer = new SignatureV4({ credentials: { accessKeyId: 'AKIAUSER', secretAccessKey: secret }, region: 'us-east-1', service: 'ecs', sha256: Sha256 });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port: 4566, path: '/', headers: { host: '127.0.0.1:4566', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.ListClusters' }, body: body.toString() });
  const derived = deriveSecret(secret);
  assert.equal(derived.aws4Key.length, 32);
  assert.equal(verifySigV4({ method: 'POST', path: '/', headers: signed.headers, body }, () => derived, { service: 'ecs' }).ok, true);
  // Another secret's derived key does not verify it.
  const other = deriveSecret(randomBytes(48).toString('base64url'));
  const r = verifySigV4({ method: 'POST', path: '/', headers: signed.headers, body }, () => other, { service: 'ecs' });
  assert.equal(!r.ok && r.failure.code, 'InvalidSignatureException');
});

test("Wharf's own signer and the derived key agree; short secrets cannot be derived", () => {
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'X.Y' };
  const added = signRequest({ method: 'POST', url: 'http://127.0.0.1:4566/', headers, body }, { accessKeyId: 'AKIAUSER', secretAccessKey: secret, region: 'eu-west-1', service: 'ecs' });
  assert.equal(verifySigV4({ method: 'POST', path: '/', headers: { ...headers, ...added }, body }, () => deriveSecret(secret)).ok, true);
  assert.throws(() => deriveSecret('x'.repeat(MIN_DERIVABLE_SECRET_LENGTH - 1)), /at least 61/);
});
