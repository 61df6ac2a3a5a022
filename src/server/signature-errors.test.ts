/**
 * How each API refuses a request that does not authenticate, in AWS's words for that API (the
 * JSON APIs, STS and ELBv2 in the query protocol, EC2), and presigned requests (SigV4 in the query
 * string): verified like header-signed ones, with X-Amz-Expires, never answered with the console.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { RegionPolicy } from '../core/regions';
import { SessionTokens, createLogger, signRequest, type SigningCredentials } from '../lib';
import { stsHandlers } from '../control/sts-api';
import type { Principal } from '../control/context';
import type { Handler } from './api-registry';
import { createHttpServer, type WharfHttpServer } from './http-server';
import { wharfQueryApis } from './wharf-apis';
import type { KeyHolder } from './session-auth';

const ACCOUNT = '123456789012';
const USER = { accessKeyId: 'AKIAUSERKEY', secretAccessKey: 'user-secret' };
const WRONG = { ...USER, secretAccessKey: 'not-the-secret' };
const PREFIX = 'Test_20240101';
const MINUTE = 60_000;
const MISMATCH = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const tokens = new SessionTokens(randomBytes(32));
const keys = new Map<string, KeyHolder>([[USER.accessKeyId, { secret: USER.secretAccessKey, principal: { kind: 'user', iamResource: 'user/alice' } as Principal, userId: 'AIDAALICE' }]]);
let srv: WharfHttpServer;
let url = '';
let port = 0;

before(async () => {
  const lookup = (id: string) => keys.get(id);
  srv = createHttpServer({
    apis: [{ targetPrefix: PREFIX, signingName: 'ecs', modelOperations: ['ListThings'], handlers: { ListThings: async () => ({}) } }],
    queryApis: wharfQueryApis({
      ec2: { DescribeVpcs: async () => ({ Vpcs: [] }) },
      elbv2: { DescribeLoadBalancers: async () => ({ LoadBalancers: [] }) },
      sts: stsHandlers(ACCOUNT, (id, s) => tokens.issue({ accessKeyId: id, secret: lookup(id)!.secret }, s * 1000, Date.now())) as Record<string, Handler>,
    }),
    credentials: { lookup },
    sessions: tokens,
    accountId: ACCOUNT,
    regions: new RegionPolicy('us-east-1'),
    log: createLogger('test', 'silent'),
    // The console answers every GET it is given, as the real one does for its pages.
    staticFiles: (req, res) => {
      if (req.method !== 'GET') return false;
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>console</html>');
      return true;
    },
  });
  ({ port } = await srv.listen(0, '127.0.0.1'));
  url = `http://127.0.0.1:${port}/`;
});
after(() => srv.close());

const tag = (xml: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1]?.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');

/** A form POST to a query API, signed as given (or not at all); answers status, Code, Message. */
async function query(service: 'sts' | 'ec2' | 'elasticloadbalancing', creds: SigningCredentials | undefined, opts: { date?: Date; tamper?: (h: Record<string, string>) => void } = {}) {
  const form = { sts: 'Action=GetCallerIdentity&Version=2011-06-15', ec2: 'Action=DescribeVpcs&Version=2016-11-15', elasticloadbalancing: 'Action=DescribeLoadBalancers&Version=2015-12-01' }[service];
  const h: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
  if (creds) Object.assign(h, signRequest({ method: 'POST', url, headers: h, body: form }, { ...creds, region: 'us-east-1', service, ...(opts.date ? { date: opts.date } : {}) }));
  opts.tamper?.(h);
  delete h.host;
  const r = await fetch(url, { method: 'POST', headers: h, body: form });
  const text = await r.text();
  return { status: r.status, code: tag(text, 'Code'), message: tag(text, 'Message'), text };
}

async function json(creds: SigningCredentials | undefined, date?: Date) {
  const body = '{}';
  const h: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${PREFIX}.ListThings` };
  if (creds) Object.assign(h, signRequest({ method: 'POST', url, headers: h, body }, { ...creds, region: 'us-east-1', service: 'ecs', ...(date ? { date } : {}) }));
  delete h.host;
  const r = await fetch(url, { method: 'POST', headers: h, body });
  return { status: r.status, body: (await r.json()) as { __type: string; message: string } };
}

test('a wrong secret: InvalidSignatureException on JSON APIs, SignatureDoesNotMatch on STS and ELBv2, AuthFailure on EC2, with AWS\'s full text', async () => {
  assert.deepEqual(await json(WRONG), { status: 403, body: { __type: 'InvalidSignatureException', message: MISMATCH } });
  for (const service of ['sts', 'elasticloadbalancing'] as const) {
    const r = await query(service, WRONG);
    assert.deepEqual([r.status, r.code, r.message], [403, 'SignatureDoesNotMatch', MISMATCH], service);
  }
  const e = await query('ec2', WRONG);
  assert.deepEqual([e.status, e.code, e.message], [401, 'AuthFailure', 'AWS was not able to validate the provided access credentials']);
});

test("a clock off by more than 15 minutes, in AWS's words for each API", async () => {
  const past = await json(USER, new Date(Date.now() - 16 * MINUTE));
  assert.equal(past.body.__type, 'InvalidSignatureException');
  assert.match(past.body.message, /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/);
  const ahead = await query('sts', USER, { date: new Date(Date.now() + 16 * MINUTE) });
  assert.equal(ahead.code, 'SignatureDoesNotMatch');
  assert.match(ahead.message ?? '', /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 15 min\.\)$/);
  // The times are the request's, now - 15 min and now.
  const [signed, bound, now] = /(\d{8}T\d{6}Z).*(\d{8}T\d{6}Z).*(\d{8}T\d{6}Z)/.exec(past.body.message)!.slice(1);
  const ms = (t: string) => Date.parse(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`);
  assert.ok(Math.abs(ms(now!) - Date.now()) < 5000 && ms(now!) - ms(bound!) === 15 * MINUTE && ms(now!) - ms(signed!) >= 16 * MINUTE - 2000, past.body.message);
  const e = await query('ec2', USER, { date: new Date(Date.now() - 16 * MINUTE) });
  assert.deepEqual([e.status, e.code, e.message], [400, 'RequestExpired', 'Request has expired.']);
});

test('no signature: MissingAuthenticationToken in the query APIs\' XML, MissingAuthenticationTokenException on JSON APIs', async () => {
  assert.deepEqual(await json(undefined), { status: 403, body: { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' } });
  for (const service of ['sts', 'ec2', 'elasticloadbalancing'] as const) {
    const r = await query(service, undefined);
    assert.deepEqual([r.status, r.code, r.message], [403, 'MissingAuthenticationToken', 'Request is missing Authentication Token'], `${service}: ${r.text}`);
  }
  const broken = await query('sts', USER, { tamper: (h) => (h.authorization = h.authorization!.replace(/Signature=.*/, 'Signature=xyz')) });
  assert.deepEqual([broken.status, broken.code], [400, 'IncompleteSignature']);
});

/** A presigned STS GetCallerIdentity URL, made by the AWS SDK for JavaScript's signer. */
async function presignedCallerIdentity(creds: SigningCredentials, opts: { expiresIn?: number; signingDate?: Date } = {}): Promise<string> {
  const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 'sts', sha256: Sha256 });
  const r = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port, path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' }, headers: { host: `127.0.0.1:${port}` } },
    { expiresIn: opts.expiresIn ?? 60, ...(opts.signingDate ? { signingDate: opts.signingDate } : {}) },
  );
  const q = new URLSearchParams(r.query as Record<string, string>).toString();
  return `${url}?${q}`;
}

test('a presigned STS GetCallerIdentity GET is answered as STS answers it', async () => {
  const r = await fetch(await presignedCallerIdentity(USER));
  const text = await r.text();
  assert.equal(r.status, 200, text);
  assert.equal(tag(text, 'Arn'), `arn:aws:iam::${ACCOUNT}:user/alice`);
  assert.equal(tag(text, 'UserId'), 'AIDAALICE');
  // Signed for POST with its parameters in the query (as boto3's generate_presigned_url signs
  // STS calls) and posted with an empty body.
  const signer = new SignatureV4({ credentials: USER, region: 'us-east-1', service: 'sts', sha256: Sha256 });
  const p = await signer.presign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', port, path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' }, headers: { host: `127.0.0.1:${port}` } }, { expiresIn: 60 });
  const posted = await fetch(`${url}?${new URLSearchParams(p.query as Record<string, string>).toString()}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  assert.equal(tag(await posted.text(), 'Arn'), `arn:aws:iam::${ACCOUNT}:user/alice`);
  // With session credentials, the token travels in the query too (X-Amz-Security-Token).
  const s = tokens.issue({ accessKeyId: USER.accessKeyId, secret: USER.secretAccessKey }, 900_000, Date.now());
  const viaSession = await fetch(await presignedCallerIdentity({ accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, sessionToken: s.sessionToken }));
  const t = await viaSession.text();
  assert.equal(viaSession.status, 200, t);
  assert.equal(tag(t, 'Arn'), `arn:aws:iam::${ACCOUNT}:user/alice`);
});

test('a presigned request past X-Amz-Expires, altered, wrongly signed or malformed gets an STS error, never the console', async () => {
  const expired = await fetch(await presignedCallerIdentity(USER, { expiresIn: 60, signingDate: new Date(Date.now() - 2 * MINUTE) }));
  const t1 = await expired.text();
  assert.deepEqual([expired.status, tag(t1, 'Code')], [403, 'SignatureDoesNotMatch'], t1);
  assert.match(tag(t1, 'Message') ?? '', /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(X-Amz-Date \d{8}T\d{6}Z \+ X-Amz-Expires 60 sec\.\)$/);
  // A longer X-Amz-Expires is held to 15 minutes, as STS holds it.
  const long = await fetch(await presignedCallerIdentity(USER, { expiresIn: 3600, signingDate: new Date(Date.now() - 16 * MINUTE) }));
  assert.match(tag(await long.text(), 'Message') ?? '', /^Signature expired: .* - 15 min\.\)$/);
  const good = await presignedCallerIdentity(USER);
  const altered = await fetch(good.replace('GetCallerIdentity', 'GetSessionToken'));
  assert.deepEqual([altered.status, tag(await altered.text(), 'Code')], [403, 'SignatureDoesNotMatch']);
  const wrong = await fetch(await presignedCallerIdentity(WRONG));
  const t2 = await wrong.text();
  assert.deepEqual([wrong.status, tag(t2, 'Code'), tag(t2, 'Message')], [403, 'SignatureDoesNotMatch', MISMATCH]);
  const garbage = await fetch(`${url}?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc`);
  const t3 = await garbage.text();
  assert.deepEqual([garbage.status, tag(t3, 'Code')], [400, 'IncompleteSignature'], t3);
  assert.match(tag(t3, 'Message') ?? '', /^AWS query-string parameters must include 'X-Amz-Credential'\. .*Re-examine the query-string parameters\.$/);
});
