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
  assert.equal(rec.versions![0]!.secretString, undefined);
  assert.match(rec.versions![0]!.sealed!, /^v1:/);

  const got = (await sm.GetSecretValue!({ SecretId: 'db' })) as { SecretString: string };
  assert.equal(JSON.parse(got.SecretString).password, PASSWORD);
  const bin = (await sm.GetSecretValue!({ SecretId: 'blob' })) as { SecretBinary: string };
  assert.equal(Buffer.from(bin.SecretBinary, 'base64').toString(), PASSWORD);

  // A new value is sealed again, with a fresh IV (two seals of one value differ).
  await sm.PutSecretValue!({ SecretId: 'db', SecretString: PASSWORD });
  const again = (await ctx.store.get<SecretRecord>(secretKey('db')))!.value;
  assert.notEqual(again.versions![0]!.sealed, rec.versions![0]!.sealed);
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
  const copied = mine.value.versions!.map((v) => ({ ...v, sealed: theirs.versions![0]!.sealed }));
  await ctx.state.waitFor(await ctx.store.update(secretKey('mine'), { ...mine.value, versions: copied }, mine.modRevision));
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

type Sm = ReturnType<typeof secretsHandlers>;
type Got = { VersionId: string; SecretString: string; VersionStages: string[] };
const TOKEN = (n: number) => `0000000${n}-aaaa-bbbb-cccc-dddddddddddd`;
const get = (sm: Sm, input: Record<string, string>) => sm.GetSecretValue!({ SecretId: 'db', ...input }) as Promise<Got>;

/** Secrets Manager's code for a request not valid in the secret's state. */
const INVALID_REQUEST = 'InvalidRequestException';
const rejectsOnWire = rejectsWith;

test('GetSecretValue answers the version a VersionStage or VersionId names; PutSecretValue keeps AWSPREVIOUS', async () => {
  const ctx = await sealedContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'db', SecretString: 'one', ClientRequestToken: TOKEN(1) });
  const put = (await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'two', ClientRequestToken: TOKEN(2) })) as { VersionStages: string[] };
  assert.deepEqual(put.VersionStages, ['AWSCURRENT']);

  assert.deepEqual(await get(sm, {}).then((g) => [g.VersionId, g.SecretString, g.VersionStages]), [TOKEN(2), 'two', ['AWSCURRENT']]);
  assert.deepEqual(await get(sm, { VersionStage: 'AWSPREVIOUS' }).then((g) => [g.VersionId, g.SecretString, g.VersionStages]), [TOKEN(1), 'one', ['AWSPREVIOUS']]);
  assert.equal((await get(sm, { VersionId: TOKEN(1) })).SecretString, 'one');
  assert.equal((await get(sm, { VersionId: TOKEN(2), VersionStage: 'AWSCURRENT' })).SecretString, 'two');
  await rejectsOnWire(get(sm, { VersionStage: 'NOSUCH' }), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret value for staging label: NOSUCH");
  await rejectsOnWire(get(sm, { VersionId: TOKEN(9) }), 'ResourceNotFoundException', `Secrets Manager can't find the specified secret value for VersionId: ${TOKEN(9)}`);
  await rejectsOnWire(get(sm, { VersionId: TOKEN(1), VersionStage: 'AWSCURRENT' }), 'InvalidRequestException', 'You provided a VersionStage that is not associated to the provided VersionId.');
  const described = (await sm.DescribeSecret!({ SecretId: 'db' })) as { VersionIdsToStages: Record<string, string[]> };
  assert.deepEqual(described.VersionIdsToStages, { [TOKEN(2)]: ['AWSCURRENT'], [TOKEN(1)]: ['AWSPREVIOUS'] });
  // Old values are sealed too.
  assert.ok(!(await storedText(ctx)).includes('"one"'));

  // Tasks resolve the same versions.
  const resolve = (valueFrom: string) => resolveTaskCredentials(ctx, [{ name: 'app', secrets: [{ name: 'P', valueFrom }] }]);
  assert.deepEqual(resolve('db::AWSPREVIOUS:'), { secrets: { app: { P: 'one' } } });
  assert.deepEqual(resolve(`db:::${TOKEN(1)}`), { secrets: { app: { P: 'one' } } });
  assert.deepEqual(resolve('db::AWSCURRENT:'), { secrets: { app: { P: 'two' } } });
  assert.match(resolve('db::NOSUCH:').error!, /db::NOSUCH:: ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: NOSUCH$/);
});

test('PutSecretValue: VersionStages without AWSCURRENT leaves it; a token cannot change its version; AWSPREVIOUS moves on', async () => {
  const ctx = await sealedContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'db', SecretString: 'one', ClientRequestToken: TOKEN(1) });
  await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'two', ClientRequestToken: TOKEN(2) });
  const staged = (await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'three', ClientRequestToken: TOKEN(3), VersionStages: ['MYSTAGE'] })) as { VersionStages: string[] };
  assert.deepEqual(staged.VersionStages, ['MYSTAGE']);
  assert.equal((await get(sm, {})).SecretString, 'two', 'AWSCURRENT stays where it was');
  assert.equal((await get(sm, { VersionStage: 'MYSTAGE' })).SecretString, 'three');
  assert.equal((await get(sm, { VersionStage: 'AWSPREVIOUS' })).SecretString, 'one');

  // The same token and value again: nothing changes.
  const again = (await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'two', ClientRequestToken: TOKEN(2) })) as { VersionId: string; VersionStages: string[] };
  assert.deepEqual([again.VersionId, again.VersionStages], [TOKEN(2), ['AWSCURRENT']]);
  // The same token with another value is refused, and the version keeps its value.
  await rejectsWith(sm.PutSecretValue!({ SecretId: 'db', SecretString: 'changed', ClientRequestToken: TOKEN(2) }), 'ResourceExistsException', "You can't modify an existing version, you can only create a new version.");
  assert.equal((await get(sm, { VersionId: TOKEN(2) })).SecretString, 'two');

  // A new current: the old current becomes AWSPREVIOUS, the old previous keeps no label but can still be read by id.
  await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'four', ClientRequestToken: TOKEN(4) });
  const described = (await sm.DescribeSecret!({ SecretId: 'db' })) as { VersionIdsToStages: Record<string, string[]> };
  assert.deepEqual(described.VersionIdsToStages, { [TOKEN(4)]: ['AWSCURRENT'], [TOKEN(3)]: ['MYSTAGE'], [TOKEN(2)]: ['AWSPREVIOUS'] });
  assert.equal((await get(sm, { VersionId: TOKEN(1) })).SecretString, 'one');
  // A label moves to the version that is given it.
  await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'five', ClientRequestToken: TOKEN(5), VersionStages: ['MYSTAGE', 'AWSCURRENT'] });
  assert.deepEqual(((await sm.DescribeSecret!({ SecretId: 'db' })) as { VersionIdsToStages: Record<string, string[]> }).VersionIdsToStages, { [TOKEN(5)]: ['MYSTAGE', 'AWSCURRENT'], [TOKEN(4)]: ['AWSPREVIOUS'] });
});

test('a record written before versions were kept reads as its one AWSCURRENT version and gains versions on the next put', async () => {
  const ctx = await controlTestContext();
  const old: SecretRecord = { name: 'db', arn: 'arn:aws:secretsmanager:eu-west-3:123456789012:secret:db-AbCdEf', secretString: 'one', versionId: TOKEN(1), createdDate: 1, lastChangedDate: 1, tags: [] };
  await ctx.state.waitFor(await ctx.store.create(secretKey('db'), old));
  const sm = secretsHandlers(ctx);
  assert.deepEqual(await get(sm, {}).then((g) => [g.VersionId, g.SecretString]), [TOKEN(1), 'one']);
  await sm.PutSecretValue!({ SecretId: 'db', SecretString: 'two', ClientRequestToken: TOKEN(2) });
  assert.equal((await get(sm, { VersionStage: 'AWSPREVIOUS' })).SecretString, 'one');
  assert.equal((await get(sm, {})).SecretString, 'two');
});

const DAY_MS = 86_400_000;

test('DeleteSecret validates the recovery window and refuses it together with ForceDeleteWithoutRecovery', async () => {
  const ctx = await controlTestContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'db', SecretString: 'v' });
  for (const days of [3, 6, 31, 0]) {
    await rejectsWith(sm.DeleteSecret!({ SecretId: 'db', RecoveryWindowInDays: days }), 'InvalidParameterException', 'The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).');
  }
  await rejectsWith(sm.DeleteSecret!({ SecretId: 'db', RecoveryWindowInDays: 7, ForceDeleteWithoutRecovery: true }), 'InvalidParameterException', "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
  assert.equal((await get(sm, {})).SecretString, 'v', 'nothing was deleted');
});

test('DeleteSecret schedules the deletion: the secret is refused, listed only on request, restorable, and gone after the window', async () => {
  const ctx = await controlTestContext();
  const sm = secretsHandlers(ctx);
  const created = (await sm.CreateSecret!({ Name: 'db', SecretString: 'v' })) as { ARN: string };
  await sm.CreateSecret!({ Name: 'other', SecretString: 'o' });
  const t0 = ctx.clock.now() / 1000;
  const del = (await sm.DeleteSecret!({ SecretId: 'db', RecoveryWindowInDays: 7 })) as { DeletionDate: number };
  assert.equal(del.DeletionDate, t0 + 7 * 86_400);
  const marked = "You can't perform this operation on the secret because it was marked for deletion.";
  assert.equal(((await sm.DescribeSecret!({ SecretId: 'db' })) as { DeletedDate?: number }).DeletedDate, t0);
  await rejectsOnWire(get(sm, {}), 'InvalidRequestException', marked);
  await rejectsOnWire(sm.PutSecretValue!({ SecretId: 'db', SecretString: 'w' }), 'InvalidRequestException', marked);
  await rejectsOnWire(sm.CreateSecret!({ Name: 'db', SecretString: 'w' }), 'InvalidRequestException', "You can't create this secret because a secret with this name is already scheduled for deletion.");
  await rejectsOnWire(sm.DeleteSecret!({ SecretId: 'db' }), 'InvalidRequestException', "You tried to perform the operation on a secret that's currently marked deleted.");
  const names = async (input: object) => ((await sm.ListSecrets!(input)) as { SecretList: { Name: string }[] }).SecretList.map((s) => s.Name);
  assert.deepEqual(await names({}), ['other']);
  assert.deepEqual(await names({ IncludePlannedDeletion: true }), ['db', 'other']);
  const task = resolveTaskCredentials(ctx, [{ name: 'app', secrets: [{ name: 'P', valueFrom: 'db' }] }]);
  assert.equal(task.error, `secret P of container app: db: ${INVALID_REQUEST}: ${marked}`);

  // RestoreSecret cancels it.
  assert.deepEqual(await sm.RestoreSecret!({ SecretId: 'db' }), { ARN: created.ARN, Name: 'db' });
  assert.equal((await get(sm, {})).SecretString, 'v');
  assert.equal(((await sm.DescribeSecret!({ SecretId: 'db' })) as { DeletedDate?: number }).DeletedDate, undefined);

  // Scheduled again with the default window (30 days): still there a moment before, gone at its end.
  const again = (await sm.DeleteSecret!({ SecretId: 'db' })) as { DeletionDate: number };
  assert.equal(again.DeletionDate, t0 + 30 * 86_400);
  ctx.clock.advance(30 * DAY_MS - 1000);
  assert.ok(await sm.DescribeSecret!({ SecretId: 'db' }));
  ctx.clock.advance(1000);
  await rejectsWith(sm.DescribeSecret!({ SecretId: 'db' }), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
  await rejectsWith(get(sm, {}), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
  await rejectsWith(sm.RestoreSecret!({ SecretId: 'db' }), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
  assert.deepEqual(await names({ IncludePlannedDeletion: true }), ['other']);
  // The name is free again: a new secret, with a new ARN.
  const recreated = (await sm.CreateSecret!({ Name: 'db', SecretString: 'new' })) as { ARN: string };
  assert.notEqual(recreated.ARN, created.ARN);
  assert.equal((await get(sm, {})).SecretString, 'new');
});

test('an expired secret is removed from the store by the next write; ForceDeleteWithoutRecovery deletes a scheduled secret at once', async () => {
  const ctx = await controlTestContext();
  const sm = secretsHandlers(ctx);
  await sm.CreateSecret!({ Name: 'gone', SecretString: 'v' });
  await sm.CreateSecret!({ Name: 'scheduled', SecretString: 'v' });
  await sm.DeleteSecret!({ SecretId: 'gone', RecoveryWindowInDays: 7 });
  ctx.clock.advance(7 * DAY_MS);
  assert.ok(await ctx.store.get(secretKey('gone')), 'kept until something writes');
  await sm.DeleteSecret!({ SecretId: 'scheduled', RecoveryWindowInDays: 30 });
  assert.equal(await ctx.store.get(secretKey('gone')), undefined);
  const forced = (await sm.DeleteSecret!({ SecretId: 'scheduled', ForceDeleteWithoutRecovery: true })) as { DeletionDate: number };
  assert.equal(forced.DeletionDate, ctx.clock.now() / 1000);
  assert.equal(await ctx.store.get(secretKey('scheduled')), undefined);
  await rejectsWith(sm.DescribeSecret!({ SecretId: 'scheduled' }), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
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
