import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SessionTokens } from './session-token';
import { deriveSecret } from './sigv4';

const KEY = randomBytes(32);
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0, 250);
const parent = { accessKeyId: 'AKIAPARENT', secret: 'a'.repeat(64) };

test('an issued session opens with its secret until its expiration, then is expired', () => {
  const tokens = new SessionTokens(KEY);
  const s = tokens.issue(parent, 900_000, T0);
  assert.match(s.accessKeyId, /^ASIA[A-Z2-7]{16}$/);
  // Whole seconds, as the wire's Expiration carries them.
  assert.equal(s.expiration.toISOString(), '2026-12-06T12:15:00.000Z');
  const opened = tokens.open(s.sessionToken, T0 + 899_000);
  assert.ok(opened.ok);
  assert.equal(opened.secretAccessKey, s.secretAccessKey);
  assert.equal(opened.claims.accessKeyId, s.accessKeyId);
  assert.equal(opened.claims.parentAccessKeyId, 'AKIAPARENT');
  assert.deepEqual(tokens.open(s.sessionToken, s.expiration.getTime()), { ok: false, failure: 'expired' });
  assert.deepEqual(tokens.open(s.sessionToken, T0 + 86_400_000), { ok: false, failure: 'expired' });
});

test('the token does not carry the secret, and two sessions of one key differ', () => {
  const tokens = new SessionTokens(KEY);
  const a = tokens.issue(parent, 900_000, T0);
  const b = tokens.issue(parent, 900_000, T0);
  assert.notEqual(a.accessKeyId, b.accessKeyId);
  assert.notEqual(a.secretAccessKey, b.secretAccessKey);
  const decoded = Buffer.from(a.sessionToken.split('.')[1]!, 'base64url').toString();
  assert.ok(!decoded.includes(a.secretAccessKey) && !a.sessionToken.includes(a.secretAccessKey));
  assert.ok(!decoded.includes(parent.secret), 'the parent secret is not in the token');
});

test('a token altered anywhere, or made under another server key, is invalid (even when past its end)', () => {
  const tokens = new SessionTokens(KEY);
  const s = tokens.issue(parent, 3_600_000, T0);
  const [prefix, payload, tag] = s.sessionToken.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  // A longer life or another parent, re-encoded with the old tag.
  for (const forged of [{ ...claims, expiresAt: claims.expiresAt + 86_400_000 }, { ...claims, parentAccessKeyId: 'AKIAROOT' }]) {
    const token = `${prefix}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${tag}`;
    assert.deepEqual(tokens.open(token, T0), { ok: false, failure: 'invalid' });
  }
  const flipped = tag.slice(0, -2) + (tag.at(-2) === 'A' ? 'B' : 'A') + tag.at(-1);
  for (const token of [`${prefix}.${payload}.${flipped}`, `${prefix}.${payload}`, `WST0.${payload}.${tag}`, '', 'x.y.z', `${prefix}.${payload}.${tag}.extra`]) {
    assert.deepEqual(tokens.open(token, T0), { ok: false, failure: 'invalid' }, token);
  }
  const other = new SessionTokens(randomBytes(32));
  assert.deepEqual(other.open(s.sessionToken, T0), { ok: false, failure: 'invalid' });
  assert.deepEqual(other.open(s.sessionToken, T0 + 7_200_000), { ok: false, failure: 'invalid' }, 'expiry is told only for an authentic token');
  // Another instance with the same key (a restart, another replica) accepts it.
  assert.ok(new SessionTokens(Buffer.from(KEY)).open(s.sessionToken, T0).ok);
});

test("a session is bound to its parent's secret: a new secret under the same key id unbinds it", () => {
  const tokens = new SessionTokens(KEY);
  const s = tokens.issue(parent, 900_000, T0);
  const opened = tokens.open(s.sessionToken, T0);
  assert.ok(opened.ok);
  assert.equal(tokens.boundTo(opened.claims, parent.secret), true);
  // A user's key is kept only as its derived key: it binds the same as the secret it came from.
  assert.equal(tokens.boundTo(opened.claims, deriveSecret(parent.secret)), true);
  assert.equal(tokens.boundTo(opened.claims, 'b'.repeat(64)), false);
});

test('a server key shorter than 32 bytes is refused', () => {
  assert.throws(() => new SessionTokens(randomBytes(16)), /at least 32 bytes/);
});
