import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { aesGcmSecretCipher } from '../lib';
import { controlTestContext, rejectsWith } from './control-test-context';
import { sealPlaintextSecrets, secretKey, secretsHandlers, type SecretRecord } from './secrets';
import { resolveTaskCredentials } from './task-secrets';

const PASSWORD = 'hunter2-plaintext-marker';

async function sealedContext() {
  const ctx = await controlTestContext();
  ctx.secretCipher = aesGcmSecretCipher(randomBytes(32));
  return ctx;
}

/** Everything the store holds under secrets/, as its JSON text. */
async function storedText(ctx: Awaited<ReturnType<typeof controlTestContext>>): Promise<string> {
  return JSON.stringify(await ctx.store.list('secrets/'));
}

test('values are sealed in the store and read back in the clear by GetSecretValue and task resolution', async () => {
  const ctx = await sealedContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'db', SecretString: JSON.stringify({ username: 'u', password: PASSWORD }) });
  await sm.CreateSecret!({ Name: 'blob', SecretBinary: Buffer.from(PASSWORD).toString('base64') });
  const text = await storedText(ctx);
  assert.ok(!text.includes(PASSWORD), 'no plaintext in the store');
  assert.ok(!text.includes(Buffer.from(PASSWORD).toString('base64')), 'nor the binary value as sent');
  const rec = (await ctx.store.get<SecretRecord>(secretKey('db')))!.value;
  assert.equal(rec.secretString, undefined);
  assert.match(rec.sealed!, /^v1:/);

  const got = (await sm.GetSecretValue!({ SecretId: 'db' })) as { SecretString: string };
  assert.equal(JSON.parse(got.SecretString).password, PASSWORD);
  const bin = (await sm.GetSecretValue!({ SecretId: 'blob' })) as { SecretBinary: string };
  assert.equal(Buffer.from(bin.SecretBinary, 'base64').toString(), PASSWORD);

  // A new value is sealed again, with a fresh IV (two seals of one value differ).
  await sm.PutSecretValue!({ SecretId: 'db', SecretString: PASSWORD });
  const again = (await ctx.store.get<SecretRecord>(secretKey('db')))!.value;
  assert.notEqual(again.sealed, rec.sealed);
  assert.ok(!(await storedText(ctx)).includes(PASSWORD));
  assert.equal(((await sm.GetSecretValue!({ SecretId: 'db' })) as { SecretString: string }).SecretString, PASSWORD);

  const creds = resolveTaskCredentials(ctx, [{ name: 'app', secrets: [{ name: 'P', valueFrom: 'db' }] }]);
  assert.deepEqual(creds, { secrets: { app: { P: PASSWORD } } });
});

test('a wrong key gives DecryptionFailure with a clear message, never garbage', async () => {
  const ctx = await sealedContext();
  await secretsHandlers(ctx).CreateSecret!({ Name: 'db', SecretString: PASSWORD });
  ctx.secretCipher = aesGcmSecretCipher(randomBytes(32));
  const sm = secretsHandlers(ctx);
  await assert.rejects(sm.GetSecretValue!({ SecretId: 'db' }), (e: { code?: string; message?: string }) => {
    assert.equal(e.code, 'DecryptionFailure');
    assert.match(e.message!, /^Secrets Manager can't decrypt the protected secret text using the provided KMS key \(secret db: .*secrets\.key/);
    assert.ok(!e.message!.includes(PASSWORD));
    return true;
  });
  // A task needing it is told why it cannot start; nothing is thrown at the gateway.
  const creds = resolveTaskCredentials(ctx, [{ name: 'app', secrets: [{ name: 'P', valueFrom: 'db' }] }]);
  assert.match(creds.error!, /secret P of container app: db: DecryptionFailure: /);
  assert.equal(creds.secrets, undefined);
  // Metadata needs no key.
  assert.equal(((await sm.DescribeSecret!({ SecretId: 'db' })) as { Name: string }).Name, 'db');
});

test('a sealed value copied into another secret does not open there', async () => {
  const ctx = await sealedContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'theirs', SecretString: PASSWORD });
  await sm.CreateSecret!({ Name: 'mine', SecretString: 'mine' });
  const theirs = (await ctx.store.get<SecretRecord>(secretKey('theirs')))!.value;
  const mine = (await ctx.store.get<SecretRecord>(secretKey('mine')))!;
  await ctx.state.waitFor(await ctx.store.update(secretKey('mine'), { ...mine.value, sealed: theirs.sealed }, mine.modRevision));
  await assert.rejects(sm.GetSecretValue!({ SecretId: 'mine' }), (e: { code?: string }) => e.code === 'DecryptionFailure');
});

test('records stored in the clear by an earlier version are read, and sealed at start', async () => {
  const ctx = await controlTestContext();
  // Written without a cipher: as an earlier version stored them.
  await secretsHandlers(ctx).CreateSecret!({ Name: 'old', SecretString: PASSWORD });
  assert.ok((await storedText(ctx)).includes(PASSWORD));
  ctx.secretCipher = aesGcmSecretCipher(randomBytes(32));
  const sm = secretsHandlers(ctx);
  assert.equal(((await sm.GetSecretValue!({ SecretId: 'old' })) as { SecretString: string }).SecretString, PASSWORD, 'readable before sealing');
  assert.equal(await sealPlaintextSecrets(ctx), 1);
  assert.ok(!(await storedText(ctx)).includes(PASSWORD));
  assert.equal(((await sm.GetSecretValue!({ SecretId: 'old' })) as { SecretString: string }).SecretString, PASSWORD);
  assert.equal(await sealPlaintextSecrets(ctx), 0, 'nothing left to seal');
});

test('without a cipher (unit tests) an encrypted record is refused, not returned sealed', async () => {
  const ctx = await sealedContext();
  await secretsHandlers(ctx).CreateSecret!({ Name: 'db', SecretString: PASSWORD });
  delete ctx.secretCipher;
  await rejectsWith(secretsHandlers(ctx).GetSecretValue!({ SecretId: 'db' }), 'DecryptionFailure', 'The value of secret db is encrypted and this server has no secrets key to decrypt it.');
});

test('ListSecrets applies its Filters: prefixes, case, negation, values OR-ed, filters AND-ed', async () => {
  const ctx = await controlTestContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'app/web', Description: 'Web frontend creds', SecretString: 'x', Tags: [{ Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'a' }] });
  await sm.CreateSecret!({ Name: 'app/db', SecretString: 'x', Tags: [{ Key: 'env', Value: 'dev' }] });
  await sm.CreateSecret!({ Name: 'other', Description: 'Database password', SecretString: 'x' });
  const names = async (...Filters: { Key: string; Values: string[] }[]) => ((await sm.ListSecrets!({ Filters })) as { SecretList: { Name: string }[] }).SecretList.map((s) => s.Name);
  assert.deepEqual(await names({ Key: 'name', Values: ['app'] }), ['app/db', 'app/web']);
  assert.deepEqual(await names({ Key: 'name', Values: ['App'] }), [], 'name is case-sensitive');
  assert.deepEqual(await names({ Key: 'name', Values: ['web'] }), [], 'a prefix, not a substring');
  assert.deepEqual(await names({ Key: 'name', Values: ['!app'] }), ['other']);
  assert.deepEqual(await names({ Key: 'name', Values: ['app/w', 'oth'] }), ['app/web', 'other']);
  assert.deepEqual(await names({ Key: 'tag-key', Values: ['k'] }), []);
  assert.deepEqual(await names({ Key: 'tag-key', Values: ['te'] }), ['app/web']);
  assert.deepEqual(await names({ Key: 'tag-key', Values: ['!env'] }), ['other']);
  assert.deepEqual(await names({ Key: 'tag-value', Values: ['prod'] }), ['app/web']);
  assert.deepEqual(await names({ Key: 'description', Values: ['web'] }), ['app/web'], 'description is not case-sensitive');
  assert.deepEqual(await names({ Key: 'name', Values: ['app'] }, { Key: 'tag-value', Values: ['dev'] }), ['app/db']);
  assert.deepEqual(await names({ Key: 'all', Values: ['database'] }), ['other']);
  assert.deepEqual(await names({ Key: 'all', Values: ['PROD'] }), ['app/web']);
  assert.deepEqual(await names({ Key: 'all', Values: ['credsDatabase#892'] }), ['app/web', 'other']);
  assert.deepEqual(await names({ Key: 'primary-region', Values: ['eu'] }), []);
  assert.deepEqual(await names({ Key: 'owning-service', Values: ['!x'] }), ['app/db', 'app/web', 'other']);
  // ListSecrets names the version map as its shape does.
  const entry = ((await sm.ListSecrets!({ Filters: [{ Key: 'name', Values: ['other'] }] })) as { SecretList: Record<string, unknown>[] }).SecretList[0]!;
  assert.ok(entry.SecretVersionsToStages && !('VersionIdsToStages' in entry));
});
