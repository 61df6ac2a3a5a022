import { test } from 'node:test';
import assert from 'node:assert/strict';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { secretKey, type SecretRecord } from './secrets';
import { parseSecretReference, resolveSecretReference, resolveTaskCredentials } from './task-secrets';

const PREFIX = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:';

function secret(name: string, v: Partial<SecretRecord>): SecretRecord {
  return { name, arn: `${PREFIX}${name}-AbCdEf`, versionId: 'v-current', createdDate: 1, lastChangedDate: 1, tags: [], ...v };
}

async function stateWith(...secrets: SecretRecord[]): Promise<{ state: State }> {
  const store = new MemoryStore();
  for (const s of secrets) await store.create(secretKey(s.name), s);
  const state = new State(store);
  await state.start();
  return { state };
}

const DB = secret('prod/db', { secretString: JSON.stringify({ username: 'admin', password: 'hunter2', port: 5432, tls: true, opts: { a: 1 } }) });
const TOKEN = secret('token', { secretString: 'tok-123' });
const BINARY = secret('blob', { secretBinary: 'AAEC' });
const EMPTY = secret('empty', {});

test('valueFrom forms: full ARN, partial ARN, name, each with or without the json-key:stage:id tail', () => {
  const cases: [string, ReturnType<typeof parseSecretReference>][] = [
    [`${PREFIX}db-AbCdEf`, { kind: 'secretsmanager', secretId: `${PREFIX}db-AbCdEf`, jsonKey: undefined, versionStage: undefined, versionId: undefined }],
    [`${PREFIX}db-AbCdEf:password::`, { kind: 'secretsmanager', secretId: `${PREFIX}db-AbCdEf`, jsonKey: 'password', versionStage: undefined, versionId: undefined }],
    [`${PREFIX}db:password:AWSCURRENT:`, { kind: 'secretsmanager', secretId: `${PREFIX}db`, jsonKey: 'password', versionStage: 'AWSCURRENT', versionId: undefined }],
    [`${PREFIX}db:::v1`, { kind: 'secretsmanager', secretId: `${PREFIX}db`, jsonKey: undefined, versionStage: undefined, versionId: 'v1' }],
    ['db', { kind: 'secretsmanager', secretId: 'db', jsonKey: undefined, versionStage: undefined, versionId: undefined }],
    ['prod/db:password::', { kind: 'secretsmanager', secretId: 'prod/db', jsonKey: 'password', versionStage: undefined, versionId: undefined }],
    ['arn:aws:ssm:us-east-1:123456789012:parameter/db', { kind: 'ssm' }],
  ];
  for (const [valueFrom, want] of cases) assert.deepEqual(parseSecretReference(valueFrom), want, valueFrom);
  for (const bad of [`${PREFIX}db:password`, 'db:password', ':x::', 'arn:aws:s3:::bucket/key', 'arn:aws:secretsmanager:us-east-1:123456789012:other:db']) {
    assert.equal(parseSecretReference(bad).kind, 'invalid', bad);
  }
});

test('resolution: whole secret, JSON keys of every type, by ARN, partial ARN and name', async () => {
  const { state } = await stateWith(DB, TOKEN);
  const ok = (valueFrom: string) => {
    const r = resolveSecretReference({ state }, valueFrom);
    assert.ok('value' in r, `${valueFrom}: ${JSON.stringify(r)}`);
    return r.value;
  };
  assert.equal(ok(TOKEN.arn), 'tok-123');
  assert.equal(ok(`${PREFIX}token`), 'tok-123', 'partial ARN (no random suffix)');
  assert.equal(ok('token'), 'tok-123', 'name');
  assert.equal(ok(`${DB.arn}:password::`), 'hunter2');
  assert.equal(ok('prod/db:username::'), 'admin');
  assert.equal(ok(`${DB.arn}:port::`), '5432', 'a number as its JSON text');
  assert.equal(ok(`${DB.arn}:tls::`), 'true');
  assert.equal(ok(`${DB.arn}:opts::`), '{"a":1}');
  assert.equal(ok(DB.arn), DB.secretString, 'no json-key: the whole string');
  assert.equal(ok(`${DB.arn}:password:AWSCURRENT:`), 'hunter2', 'AWSCURRENT is the one version Wharf keeps');
  assert.equal(ok(`${DB.arn}:password::v-current`), 'hunter2', 'the current version id');
  assert.equal(ok(`${DB.arn}:password:AWSCURRENT:v-current`), 'hunter2');
  state.stop();
});

test('resolution failures say why, and never quote a secret value', async () => {
  const notJson = secret('plain', { secretString: 'hunter2-not-json' });
  const array = secret('arr', { secretString: '["hunter2"]' });
  const { state } = await stateWith(DB, BINARY, EMPTY, notJson, array);
  const err = (valueFrom: string) => {
    const r = resolveSecretReference({ state }, valueFrom);
    assert.ok('error' in r, `${valueFrom} resolved: ${JSON.stringify(r)}`);
    assert.doesNotMatch(r.error, /hunter2/, 'no value in the message');
    return r.error;
  };
  assert.match(err(`${PREFIX}missing-AbCdEf`), /ResourceNotFoundException: Secrets Manager can't find the specified secret/);
  assert.match(err('missing'), /can't find the specified secret/);
  assert.match(err('arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf'), /can't find/, 'another region is another secret');
  assert.match(err(`${DB.arn}:nokey::`), /json-key nokey is not in the secret/);
  assert.match(err(`${DB.arn}:password:AWSPREVIOUS:`), /staging label: AWSPREVIOUS/);
  assert.match(err(`${DB.arn}:password::v-old`), /VersionId: v-old/);
  assert.match(err(`${notJson.arn}:k::`), /not valid JSON/);
  assert.match(err(`${array.arn}:0::`), /not a JSON object/);
  assert.match(err(BINARY.arn), /binary value/);
  assert.match(err(EMPTY.arn), /staging label: AWSCURRENT/);
  assert.match(err('arn:aws:ssm:us-east-1:123456789012:parameter/db'), /SSM Parameter Store parameters are not supported by Wharf/);
  assert.match(err(`${DB.arn}:password`), /json-key:version-stage:version-id/);
  state.stop();
});

test('a task gets every value per container, or one error naming each failing reference and nothing else', async () => {
  const creds = secret('registry', { secretString: JSON.stringify({ username: 'u', password: 'p' }) });
  const { state } = await stateWith(DB, TOKEN, creds);
  const good = resolveTaskCredentials({ state }, [
    { name: 'app', secrets: [{ name: 'DB_PASSWORD', valueFrom: `${DB.arn}:password::` }, { name: 'TOKEN', valueFrom: 'token' }], repositoryCredentials: { credentialsParameter: creds.arn } },
    { name: 'side', secrets: [{ name: 'TOKEN', valueFrom: TOKEN.arn }] },
    { name: 'plain' },
  ]);
  assert.deepEqual(good, {
    secrets: { app: { DB_PASSWORD: 'hunter2', TOKEN: 'tok-123' }, side: { TOKEN: 'tok-123' } },
    registryAuth: { app: { username: 'u', password: 'p' } },
  });
  const bad = resolveTaskCredentials({ state }, [
    { name: 'app', secrets: [{ name: 'OK', valueFrom: 'token' }, { name: 'GONE', valueFrom: 'gone' }] },
    { name: 'side', repositoryCredentials: { credentialsParameter: TOKEN.arn } },
  ]);
  assert.deepEqual(Object.keys(bad), ['error'], 'no values travel with an error');
  assert.match(bad.error!, /^secret GONE of container app: gone: .*can't find/);
  assert.match(bad.error!, /; registry credentials of container side: .*must be JSON with string "username" and "password"/);
  assert.doesNotMatch(bad.error!, /tok-123/);
  assert.deepEqual(resolveTaskCredentials({ state }, [{ name: 'plain', environment: [{ name: 'A', value: 'b' }] }]), {}, 'nothing to resolve');
  state.stop();
});
