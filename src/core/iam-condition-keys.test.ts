import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from './iam-policy';
import { GLOBAL_CONDITION_KEYS, globalConditionContext, unsupportedConditionKeys } from './iam-condition-keys';

const base = { region: 'eu-west-1', secureTransport: false, nowMs: Date.UTC(2024, 4, 1, 12, 0, 0, 250), accountId: '123456789012', principalArn: 'arn:aws:iam::123456789012:user/alice', iamResource: 'user/alice', userId: 'AIDAALICE', sourceIp: '192.0.2.7' };

test("a user's long-term key: region, transport, time, principal and source address", () => {
  assert.deepEqual(globalConditionContext(base), {
    'aws:RequestedRegion': 'eu-west-1',
    'aws:SecureTransport': 'false',
    'aws:CurrentTime': '2024-05-01T12:00:00Z',
    'aws:EpochTime': '1714564800',
    'aws:PrincipalArn': 'arn:aws:iam::123456789012:user/alice',
    'aws:PrincipalAccount': '123456789012',
    'aws:PrincipalType': 'User',
    'aws:username': 'alice',
    'aws:userid': 'AIDAALICE',
    'aws:SourceIp': '192.0.2.7',
    'aws:ViaAWSService': 'false',
    'aws:PrincipalIsAWSService': 'false',
  });
});

test('a session adds its issue time and MultiFactorAuthPresent false; the root is an Account', () => {
  const s = globalConditionContext({ ...base, secureTransport: true, session: { issuedAtMs: Date.UTC(2024, 4, 1, 11, 0, 0) } });
  assert.equal(s['aws:TokenIssueTime'], '2024-05-01T11:00:00Z');
  assert.equal(s['aws:MultiFactorAuthPresent'], 'false');
  assert.equal(s['aws:SecureTransport'], 'true');
  const root = globalConditionContext({ ...base, iamResource: 'root', principalArn: 'arn:aws:iam::123456789012:root' });
  assert.equal(root['aws:PrincipalType'], 'Account');
  assert.equal(root['aws:userid'], '123456789012');
  assert.equal(root['aws:username'], undefined);
});

test('every key listed is one the context can carry, and unknown keys in a policy are found', () => {
  const all = globalConditionContext({ ...base, session: { issuedAtMs: 0 } });
  assert.deepEqual([...GLOBAL_CONDITION_KEYS].sort(), Object.keys(all).sort());
  const policy = parsePolicy({ Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Action: 'ecs:*', Resource: '*', Condition: { StringEquals: { 'AWS:RequestedRegion': 'us-east-1', 'aws:ResourceTag/team': 'a' } } },
    { Effect: 'Deny', Action: 'ecs:*', Resource: '*', Condition: { ArnNotEquals: { 'ecs:clustr': 'arn:aws:ecs:us-east-1:123456789012:cluster/a' } } },
  ] });
  assert.deepEqual(unsupportedConditionKeys(policy, [...GLOBAL_CONDITION_KEYS, 'ecs:cluster']), [
    { statement: 1, operator: 'StringEquals', key: 'aws:ResourceTag/team' },
    { statement: 2, operator: 'ArnNotEquals', key: 'ecs:clustr' },
  ]);
});
