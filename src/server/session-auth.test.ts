/**
 * Session credentials through the HTTP server: issued by STS GetSessionToken, accepted on a JSON
 * API and on STS acting as the parent key's holder with its current policy, refused in each API's
 * words when the token is missing, altered, expired or its parent key is gone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RegionPolicy } from '../core/regions';
import { parsePolicy } from '../core/iam-policy';
import { SessionTokens, createLogger, deriveSecret, signRequest, type SigningCredentials } from '../lib';
import { SESSION_DURATION, sessionDuration, stsHandlers } from '../control/sts-api';
import type { Principal } from '../control/context';
import type { Handler, RequestContext } from './api-registry';
import { createHttpServer, type WharfHttpServer } from './http-server';
import { wharfQueryApis } from './wharf-apis';
import { resolveSession, type KeyHolder } from './session-auth';

const ACCOUNT = '123456789012';
const ROOT = { accessKeyId: 'AKIAROOTKEY', secretAccessKey: 'root-secret' };
const USER = { accessKeyId: 'AKIAUSERKEY', secretAccessKey: 'u'.repeat(64) };
const AGENT = { accessKeyId: 'AKIAAGENTKEY', secretAccessKey: 'agent-secret' };
const PREFIX = 'Test_20240101';
const tokens = new SessionTokens(randomBytes(32));
const keys = new Map<string, KeyHolder>();
let srv: WharfHttpServer;
let url = '';

const readOnly = parsePolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:Describe*', Resource: '*' }] });

before(async () => {
  keys.set(ROOT.accessKeyId, { secret: ROOT.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } });
  keys.set(USER.accessKeyId, { secret: deriveSecret(USER.secretAccessKey), principal: { kind: 'user', iamResource: 'user/alice', policy: readOnly }, userId: 'AIDAALICE' });
  keys.set(AGENT.accessKeyId, { secret: AGENT.secretAccessKey, principal: { kind: 'agent-token', iamResource: 'role/wharf-agent' } as Principal });
  const lookup = (id: string) => keys.get(id);
  srv = createHttpServer({
    apis: [{ targetPrefix: PREFIX, signingName: 'ecs', modelOperations: ['DescribeThings', 'DeleteThing'], handlers: { DescribeThings: async (_i, c: RequestContext) => ({ ...c }), DeleteThing: async () => ({}) } }],
    queryApis: wharfQueryApis({ ec2: {}, elbv2: {}, sts: stsHandlers(ACCOUNT, (id, s) => tokens.issue({ accessKeyId: id, secret: lookup(id)!.secret }, s * 1000, Date.now())) as Record<string, Handler> }),
    credentials: { lookup },
    sessions: tokens,
    accountId: ACCOUNT,
    regions: new RegionPolicy('us-east-1'),
    log: createLogger('test', 'silent'),
  });
  const { port } = await srv.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${port}/`;
});
after(() => srv.close());

async function call(creds: SigningCredentials, op: string, tamper: (h: Record<string, string>) => void = () => {}): Promise<{ status: number; body: any }> {
  const body = '{}';
  const h: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${PREFIX}.${op}` };
  Object.assign(h, signRequest({ method: 'POST', url, headers: h, body }, { ...creds, region: 'us-east-1', service: 'ecs' }));
  tamper(h);
  delete h.host;
  const r = await fetch(url, { method: 'POST', headers: h, body });
  return { status: r.status, body: await r.json() };
}

async function sts(creds: SigningCredentials, action: string, params: Record<string, string> = {}, service: 'sts' | 'ec2' = 'sts'): Promise<{ status: number; text: string }> {
  const version = service === 'sts' ? '2011-06-15' : '2016-11-15';
  const body = new URLSearchParams({ Action: action, Version: version, ...params }).toString();
  const h: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
  Object.assign(h, signRequest({ method: 'POST', url, headers: h, body }, { ...creds, region: 'us-east-1', service }));
  delete h.host;
  const r = await fetch(url, { method: 'POST', headers: h, body });
  return { status: r.status, text: await r.text() };
}

const unescapeXml = (s: string) => s.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const tag = (xml: string, name: string) => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  return m === undefined ? undefined : unescapeXml(m);
};

async function session(creds: SigningCredentials, params: Record<string, string> = {}): Promise<SigningCredentials & { expiration: string }> {
  const r = await sts(creds, 'GetSessionToken', params);
  assert.equal(r.status, 200, r.text);
  return { accessKeyId: tag(r.text, 'AccessKeyId')!, secretAccessKey: tag(r.text, 'SecretAccessKey')!, sessionToken: tag(r.text, 'SessionToken')!, expiration: tag(r.text, 'Expiration')! };
}

test("a user's session acts as the user, with the user's policy, on a JSON API and STS", async () => {
  const s = await session(USER, { DurationSeconds: '1800' });
  assert.match(s.accessKeyId, /^ASIA/);
  const seconds = (Date.parse(s.expiration) - Date.now()) / 1000;
  assert.ok(seconds > 1790 && seconds <= 1800, `expires in ${seconds} s`);
  const ok = await call(s, 'DescribeThings');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.principalArn, `arn:aws:iam::${ACCOUNT}:user/alice`);
  assert.equal(ok.body.accessKeyId, s.accessKeyId);
  assert.equal(ok.body.session.parentAccessKeyId, USER.accessKeyId);
  const denied = await call(s, 'DeleteThing');
  assert.equal(denied.status, 400);
  assert.equal(denied.body.__type, 'AccessDeniedException');
  assert.match(denied.body.message, /user\/alice is not authorized to perform: ecs:DeleteThing/);
  const who = await sts(s, 'GetCallerIdentity');
  assert.equal(tag(who.text, 'Arn'), `arn:aws:iam::${ACCOUNT}:user/alice`);
  assert.equal(tag(who.text, 'UserId'), 'AIDAALICE');
});

test('the policy is read live: a session follows a change to its user', async () => {
  const s = await session(USER);
  const before = keys.get(USER.accessKeyId)!;
  keys.set(USER.accessKeyId, { ...before, principal: { kind: 'user', iamResource: 'user/alice', policy: parsePolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }) } });
  try {
    assert.equal((await call(s, 'DeleteThing')).status, 200);
  } finally {
    keys.set(USER.accessKeyId, before);
  }
  assert.equal((await call(s, 'DeleteThing')).body.__type, 'AccessDeniedException');
});

test('no policy governs GetSessionToken: a user whose policy denies sts:* still gets a session (IAM: policies cannot control authentication)', async () => {
  const before = keys.get(USER.accessKeyId)!;
  keys.set(USER.accessKeyId, { ...before, principal: { kind: 'user', iamResource: 'user/alice', policy: parsePolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:*', Resource: '*' }, { Effect: 'Deny', Action: ['sts:*', 'sts:GetSessionToken'], Resource: '*' }] }) } });
  try {
    const s = await session(USER);
    assert.equal((await call(s, 'DeleteThing')).status, 200, "the session has the user's ecs:* allow");
  } finally {
    keys.set(USER.accessKeyId, before);
  }
});

test('a session cannot mint a session: AccessDenied, as STS says', async () => {
  const s = await session(ROOT);
  const r = await sts(s, 'GetSessionToken');
  assert.equal(r.status, 403);
  assert.equal(tag(r.text, 'Code'), 'AccessDenied');
  assert.equal(tag(r.text, 'Message'), 'Cannot call GetSessionToken with session credentials');
});

test("durations: users 900-129600 s (12 h by default), the root's cut to one hour, out of range a ValidationError", async () => {
  const within = (s: { expiration: string }, want: number) => {
    const got = (Date.parse(s.expiration) - Date.now()) / 1000;
    assert.ok(got > want - 10 && got <= want, `${got} s, want ${want}`);
  };
  within(await session(USER), 43_200);
  within(await session(USER, { DurationSeconds: '129600' }), 129_600);
  within(await session(ROOT), 3_600);
  within(await session(ROOT, { DurationSeconds: '7200' }), 3_600);
  within(await session(ROOT, { DurationSeconds: '900' }), 900);
  for (const [d, rule] of [['899', 'greater than or equal to 900'], ['129601', 'less than or equal to 129600']] as const) {
    const r = await sts(USER, 'GetSessionToken', { DurationSeconds: d });
    assert.equal(r.status, 400);
    assert.equal(tag(r.text, 'Code'), 'ValidationError');
    assert.equal(tag(r.text, 'Message'), `1 validation error detected: Value '${d}' at 'durationSeconds' failed to satisfy constraint: Member must have value ${rule}`);
  }
  assert.equal(sessionDuration(undefined, false), SESSION_DURATION.userDefault);
  assert.equal(sessionDuration(129_600, true), 3_600);
  // No MFA device exists to check a code against: refused, not ignored.
  assert.equal(tag((await sts(USER, 'GetSessionToken', { SerialNumber: 'GAHT12345678', TokenCode: '123456' })).text, 'Code'), 'AccessDenied');
});

test("an agent's key cannot get a session: AccessDenied, STS's code, in STS's XML", async () => {
  const r = await sts(AGENT, 'GetSessionToken');
  assert.equal(r.status, 403);
  assert.equal(tag(r.text, 'Code'), 'AccessDenied');
  assert.match(tag(r.text, 'Message') ?? '', /role\/wharf-agent is not authorized to perform: sts:GetSessionToken/);
});

test('a missing, altered or misplaced token is refused in each API\'s words', async () => {
  const s = await session(USER);
  const invalid = { __type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' };
  // The session key without its token; the token with the long-term key; an altered token.
  const noToken = await call({ accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey }, 'DescribeThings');
  assert.deepEqual([noToken.status, noToken.body], [400, invalid]);
  const withLongTerm = await call({ ...USER, sessionToken: s.sessionToken }, 'DescribeThings');
  assert.deepEqual(withLongTerm.body, invalid);
  const altered = await call({ ...s, sessionToken: s.sessionToken!.slice(0, -3) + 'AAA' }, 'DescribeThings');
  assert.deepEqual(altered.body, invalid);
  // Another session's token with this session's key id.
  const other = await session(USER);
  assert.deepEqual((await call({ ...s, sessionToken: other.sessionToken }, 'DescribeThings')).body, invalid);
  // STS (query protocol) names it InvalidClientTokenId.
  const q = await sts({ accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, sessionToken: 'WST1.bogus.bogus' }, 'GetCallerIdentity');
  assert.equal(q.status, 403);
  assert.equal(tag(q.text, 'Code'), 'InvalidClientTokenId');
  assert.equal(tag(q.text, 'Message'), 'The security token included in the request is invalid');
});

test('the token may travel as the X-Amz-Security-Token query parameter of a signed request', async () => {
  const s = await session(USER);
  const target = `${url}?X-Amz-Security-Token=${encodeURIComponent(s.sessionToken!)}`;
  const body = '{}';
  const h: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${PREFIX}.DescribeThings` };
  Object.assign(h, signRequest({ method: 'POST', url: target, headers: h, body }, { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, region: 'us-east-1', service: 'ecs' }));
  delete h.host;
  const r = await fetch(target, { method: 'POST', headers: h, body });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { principalArn: string }).principalArn, `arn:aws:iam::${ACCOUNT}:user/alice`);
});

test('a session ends when its parent key is deleted, and works again only if that same key returns', async () => {
  const s = await session(USER);
  const user = keys.get(USER.accessKeyId)!;
  keys.delete(USER.accessKeyId);
  try {
    assert.equal((await call(s, 'DescribeThings')).body.__type, 'UnrecognizedClientException');
    assert.equal(tag((await sts(s, 'GetCallerIdentity')).text, 'Code'), 'InvalidClientTokenId');
    // EC2 spells it its own way.
    const e = await sts(s, 'DescribeVpcs', {}, 'ec2');
    assert.deepEqual([e.status, tag(e.text, 'Code'), tag(e.text, 'Message')], [401, 'AuthFailure', 'AWS was not able to validate the provided access credentials']);
    // The same key id with another secret (the root key set anew from the environment) is not its parent.
    keys.set(USER.accessKeyId, { ...user, secret: deriveSecret('v'.repeat(64)) });
    assert.equal((await call(s, 'DescribeThings')).body.__type, 'UnrecognizedClientException');
  } finally {
    keys.set(USER.accessKeyId, user);
  }
  assert.equal((await call(s, 'DescribeThings')).status, 200);
});

test('an expired session is refused with ExpiredToken(Exception), judged by the clock given', async () => {
  const s = tokens.issue({ accessKeyId: USER.accessKeyId, secret: keys.get(USER.accessKeyId)!.secret }, 900_000, Date.now() - 901_000);
  const creds = { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, sessionToken: s.sessionToken };
  const r = await call(creds, 'DescribeThings');
  assert.deepEqual([r.status, r.body], [400, { __type: 'ExpiredTokenException', message: 'The security token included in the request is expired' }]);
  const q = await sts(creds, 'GetCallerIdentity');
  assert.equal(tag(q.text, 'Code'), 'ExpiredToken');
  const e = await sts(creds, 'DescribeVpcs', {}, 'ec2');
  assert.deepEqual([e.status, tag(e.text, 'Code'), tag(e.text, 'Message')], [400, 'RequestExpired', 'Request has expired.']);
  // With an injected clock: the same token is good a second before its end, and not at it.
  const lookup = (id: string) => keys.get(id);
  const fresh = tokens.issue({ accessKeyId: USER.accessKeyId, secret: USER.secretAccessKey }, 900_000, 1_000_000_000_000);
  assert.equal(resolveSession(tokens, lookup, fresh.accessKeyId, fresh.sessionToken, 1_000_000_899_000).ok, true);
  assert.deepEqual(resolveSession(tokens, lookup, fresh.accessKeyId, fresh.sessionToken, 1_000_000_900_000), { ok: false, failure: 'expired' });
  assert.deepEqual(resolveSession(tokens, lookup, 'ASIAOTHER', fresh.sessionToken, 1_000_000_000_000), { ok: false, failure: 'invalid' });
});
