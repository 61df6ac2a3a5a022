import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate } from '../core/iam-policy';
import { createUser, deleteUser, readUsers, resolvePolicy, rotateUser, usersPath, UserTable, writeUsers } from './users';

const dir = () => join(mkdtempSync(join(tmpdir(), 'wharf-users-')), 'data');

test('users.json is 0600 in a 0700 dir and holds no secret, only its derived key', () => {
  const d = dir();
  const k = createUser(d, 'alice', resolvePolicy('readonly'));
  assert.equal(statSync(d).mode & 0o777, 0o700);
  assert.equal(statSync(usersPath(d)).mode & 0o777, 0o600);
  assert.equal(k.secretAccessKey.length, 64);
  const text = JSON.stringify(readUsers(d));
  assert.ok(!text.includes(k.secretAccessKey));
  assert.match(k.user.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  assert.match(k.user.userId, /^AIDA[A-Z2-7]{17}$/);
});

test('names follow IAM rules and are unique whatever their case; policies are validated', () => {
  const d = dir();
  createUser(d, 'ci-bot@team.example', resolvePolicy('admin'));
  assert.throws(() => createUser(d, 'CI-BOT@team.example', resolvePolicy('admin')), /already exists/);
  assert.throws(() => createUser(d, 'a b', resolvePolicy('admin')), /invalid user name/);
  assert.throws(() => createUser(d, 'x'.repeat(65), resolvePolicy('admin')), /invalid user name/);
  assert.throws(() => resolvePolicy('/nonexistent/policy.json'), /neither a built-in policy/);
  const file = join(d, 'p.json');
  writeFileSync(file, '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*"}]}');
  assert.throws(() => resolvePolicy(file), /MalformedPolicyDocument: .*Resource/);
});

test('a policy naming a condition key Wharf never supplies is refused at create, naming the keys it does supply', () => {
  const d = mkdtempSync(join(tmpdir(), 'wharf-policies-'));
  const file = (name: string, Condition: unknown) => {
    const f = join(d, name);
    writeFileSync(f, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ecs:*', Resource: '*', Condition }] }));
    return f;
  };
  assert.throws(() => resolvePolicy(file('tag.json', { StringEquals: { 'aws:ResourceTag/team': 'a' } })),
    /tag\.json: the condition key aws:ResourceTag\/team \(Statement 1, StringEquals\) is never in Wharf's requests.*Wharf supplies: aws:CurrentTime, .*aws:SourceIp, .*ecs:cluster/);
  assert.throws(() => resolvePolicy(file('typo.json', { ArnEquals: { 'ecs:clustr': 'arn:aws:ecs:us-east-1:123456789012:cluster/a' } })), /ecs:clustr \(Statement 1, ArnEquals\) is never/);
  const ok = resolvePolicy(file('ok.json', {
    StringEquals: { 'aws:RequestedRegion': 'us-east-1', 'AWS:username': 'alice' },
    Bool: { 'aws:SecureTransport': 'true' },
    IpAddress: { 'aws:SourceIp': '10.0.0.0/8' },
    DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' },
    ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:us-east-1:123456789012:cluster/a' },
  }));
  assert.equal(ok.policyName, 'custom');
});

test('the built-in policies: readonly reads but cannot run or read secret values; operator runs tasks but not the platform', () => {
  const ro = resolvePolicy('readonly').policy;
  const op = resolvePolicy('operator').policy;
  const admin = resolvePolicy('admin').policy;
  const r = (action: string) => ({ action, resource: '*', context: {} });
  assert.equal(evaluate(ro, r('ecs:DescribeClusters')), 'allow');
  assert.equal(evaluate(ro, r('elasticloadbalancing:DescribeLoadBalancers')), 'allow');
  assert.equal(evaluate(ro, r('ecs:RunTask')), 'implicit-deny');
  assert.equal(evaluate(ro, r('secretsmanager:GetSecretValue')), 'implicit-deny');
  assert.equal(evaluate(op, r('ecs:RunTask')), 'allow');
  assert.equal(evaluate(op, r('ecs:CreateService')), 'allow');
  assert.equal(evaluate(op, r('ecs:DescribeCapacityProviders')), 'allow');
  assert.equal(evaluate(op, r('ecs:DeleteCluster')), 'explicit-deny');
  assert.equal(evaluate(op, r('ecs:RegisterContainerInstance')), 'explicit-deny');
  assert.equal(evaluate(op, r('ecs:CreateCapacityProvider')), 'explicit-deny');
  assert.equal(evaluate(op, r('secretsmanager:GetSecretValue')), 'explicit-deny');
  assert.equal(evaluate(admin, r('secretsmanager:GetSecretValue')), 'allow');
});

test("the built-in readonly and operator read tasks' logs (the console's log panel, aws logs tail); only operator writes them", () => {
  const ro = resolvePolicy('readonly').policy;
  const op = resolvePolicy('operator').policy;
  const r = (action: string) => ({ action, resource: 'arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web', context: {} });
  for (const read of ['logs:DescribeLogGroups', 'logs:DescribeLogStreams', 'logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:StartLiveTail', 'logs:ListTagsForResource']) {
    assert.equal(evaluate(ro, r(read)), 'allow', `readonly ${read}`);
    assert.equal(evaluate(op, r(read)), 'allow', `operator ${read}`);
  }
  for (const write of ['logs:CreateLogGroup', 'logs:PutRetentionPolicy', 'logs:DeleteLogGroup', 'logs:PutLogEvents']) {
    assert.equal(evaluate(ro, r(write)), 'implicit-deny', `readonly ${write}`);
    assert.equal(evaluate(op, r(write)), 'allow', `operator ${write}`);
  }
});

test('a user made with a built-in policy gets the built-in as this version defines it', () => {
  const d = dir();
  const a = createUser(d, 'auditor', resolvePolicy('readonly'));
  // As written before readonly read logs.
  const file = readUsers(d);
  file.users[0]!.policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ecs:Describe*'], Resource: ['*'] }] };
  writeUsers(d, file);
  const found = new UserTable(d).lookup(a.user.accessKeyId);
  const policy = found?.principal.kind === 'user' ? found.principal.policy : undefined;
  assert.equal(evaluate(policy!, { action: 'logs:FilterLogEvents', resource: '*', context: {} }), 'allow');
});

test('the server table sees create, rotate and delete once the file changed, at most once per interval', () => {
  const d = dir();
  let now = 0;
  const table = new UserTable(d, undefined, () => now, 1000);
  const a = createUser(d, 'alice', resolvePolicy('readonly'));
  assert.equal(table.lookup(a.user.accessKeyId), undefined, 'not re-read before the interval');
  now = 1000;
  const found = table.lookup(a.user.accessKeyId);
  assert.equal(found?.principal.kind === 'user' && found.principal.iamResource, 'user/alice');
  assert.equal(found?.userId, a.user.userId);

  const b = rotateUser(d, 'alice');
  now = 2000;
  assert.equal(table.lookup(a.user.accessKeyId), undefined, 'the old key is gone');
  assert.ok(table.lookup(b.user.accessKeyId));

  // A broken file keeps the last good table.
  writeFileSync(usersPath(d), '{ not json');
  now = 3000;
  assert.ok(table.lookup(b.user.accessKeyId));

  writeFileSync(usersPath(d), JSON.stringify({ users: [] }));
  now = 4000;
  assert.equal(table.lookup(b.user.accessKeyId), undefined, 'an emptied file removes the users');
});

test('delete removes the user; deleting or rotating an unknown one says so', () => {
  const d = dir();
  createUser(d, 'alice', resolvePolicy('readonly'));
  deleteUser(d, 'alice');
  assert.deepEqual(readUsers(d).users, []);
  assert.throws(() => deleteUser(d, 'alice'), /no user alice/);
  assert.throws(() => rotateUser(d, 'bob'), /no user bob/);
});

test('an edit waits for the lock another command holds, then keeps both changes', async () => {
  const { spawn } = await import('node:child_process');
  const d = dir();
  createUser(d, 'first', resolvePolicy('readonly'));
  // Another command holds the lock (as createUser does between its read and its write).
  writeFileSync(`${usersPath(d)}.lock`, '');
  const started = join(d, '..', 'started');
  const script = `const u = require(${JSON.stringify(join(__dirname, 'users.ts'))}); const p = u.resolvePolicy('readonly'); require('node:fs').writeFileSync(${JSON.stringify(started)}, ''); u.createUser(process.argv[1], 'second', p);`;
  let exited = false;
  const child = new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '-e', script, d], { stdio: 'inherit' });
    c.on('close', (code) => {
      exited = true;
      resolve(code);
    });
  });
  // Once the child is about to edit, give it ample time: without the lock it would be done.
  while (!existsSync(started) && !exited) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(exited, false, 'it waits while the lock is held');
  assert.deepEqual(readUsers(d).users.map((u) => u.name), ['first']);
  // The holder writes its change and lets go; the waiting command then adds its own on top.
  createUserUnlocked(d, 'held');
  unlinkSync(`${usersPath(d)}.lock`);
  assert.equal(await child, 0);
  assert.deepEqual(readUsers(d).users.map((u) => u.name), ['first', 'held', 'second']);
  assert.equal(existsSync(`${usersPath(d)}.lock`), false, 'the lock is released');
});

/** What the lock holder writes: a user added without taking the lock (it holds it). */
function createUserUnlocked(d: string, name: string): void {
  const file = readUsers(d);
  const { user } = createUser(join(d, '..', `scratch-${name}`), name, resolvePolicy('readonly'));
  writeUsers(d, { users: [...file.users, user] });
}
