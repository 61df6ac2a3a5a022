import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MalformedPolicyDocument, accessDeniedMessage, evaluate, evaluateAll, parsePolicy, wildcardMatch, type AuthorizationRequest } from './iam-policy';

const A = 'arn:aws:ecs:us-east-1:123456789012:cluster/a';
const B = 'arn:aws:ecs:us-east-1:123456789012:cluster/b';
const TD = 'arn:aws:ecs:us-east-1:123456789012:task-definition/web:3';

const req = (action: string, resource = '*', context: Record<string, string> = {}): AuthorizationRequest => ({ action, resource, context });
const allow = (rest: Record<string, unknown>) => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', ...rest }] });

test('wildcards: * is any run (across / and :), ? one character', () => {
  const cases: [string, string, boolean, boolean][] = [
    ['ecs:DescribeClusters', 'ecs:Describe*', true, true],
    ['ecs:describeclusters', 'ECS:Describe*', true, true],
    ['ecs:describeclusters', 'ECS:Describe*', false, false],
    ['ecs:ListTasks', 'ecs:Describe*', true, false],
    ['ecs:RunTask', 'ecs:?unTask', true, true],
    ['ecs:RunTask', 'ecs:??unTask', true, false],
    [TD, 'arn:aws:ecs:*:*:task-definition/web:*', false, true],
    ['arn:aws:ecs:us-east-1:1:task/a/abc', 'arn:aws:ecs:*:task/*', false, true],
    ['', '*', false, true],
    ['a', '', false, false],
    ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab', '*a*a*a*a*a*a*a*a*a*a*c', false, false],
  ];
  for (const [value, pattern, ignoreCase, want] of cases) assert.equal(wildcardMatch(value, pattern, ignoreCase), want, `${value} ~ ${pattern}`);
});

test('evaluation: explicit Deny wins, otherwise an Allow is needed', () => {
  const cases: { name: string; policy: unknown; request: AuthorizationRequest; want: string }[] = [
    { name: 'no statement matches: implicit deny', policy: allow({ Action: 'ecs:Describe*', Resource: '*' }), request: req('ecs:RunTask', TD), want: 'implicit-deny' },
    { name: 'Allow with action wildcard', policy: allow({ Action: ['ecs:Describe*', 'ecs:List*'], Resource: '*' }), request: req('ecs:DescribeClusters', A), want: 'allow' },
    { name: 'action names are case-insensitive', policy: allow({ Action: 'ECS:runtask', Resource: '*' }), request: req('ecs:RunTask', TD), want: 'allow' },
    { name: 'resource ARNs are case-sensitive', policy: allow({ Action: '*', Resource: 'arn:aws:ecs:us-east-1:123456789012:cluster/A' }), request: req('ecs:DescribeClusters', A), want: 'implicit-deny' },
    { name: 'Resource names the cluster', policy: allow({ Action: 'ecs:*', Resource: A }), request: req('ecs:DescribeClusters', A), want: 'allow' },
    { name: 'Resource on another cluster', policy: allow({ Action: 'ecs:*', Resource: A }), request: req('ecs:DescribeClusters', B), want: 'implicit-deny' },
    { name: 'Deny beats Allow', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }, { Effect: 'Deny', Action: 'ecs:RunTask', Resource: '*' }] }, request: req('ecs:RunTask', TD), want: 'explicit-deny' },
    { name: 'a Deny alone is an explicit deny', policy: { Statement: { Effect: 'Deny', Action: 'ecs:*', Resource: '*' } }, request: req('ecs:ListClusters'), want: 'explicit-deny' },
    { name: 'a Deny that does not match leaves the Allow', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }, { Effect: 'Deny', Action: 'ecs:RunTask', Resource: '*' }] }, request: req('ecs:StopTask', '*'), want: 'allow' },
    { name: 'NotAction allows everything else', policy: allow({ NotAction: 'secretsmanager:GetSecretValue', Resource: '*' }), request: req('ecs:RunTask', TD), want: 'allow' },
    { name: 'NotAction excludes the named action', policy: allow({ NotAction: ['secretsmanager:Get*'], Resource: '*' }), request: req('secretsmanager:GetSecretValue'), want: 'implicit-deny' },
    { name: 'NotResource excludes the named resource', policy: allow({ Action: '*', NotResource: B }), request: req('ecs:DeleteCluster', B), want: 'implicit-deny' },
    { name: 'NotResource allows other resources', policy: allow({ Action: '*', NotResource: B }), request: req('ecs:DeleteCluster', A), want: 'allow' },
    { name: 'Deny with NotResource denies outside the list', policy: { Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }, { Effect: 'Deny', Action: 'ecs:*', NotResource: `${A}*` }] }, request: req('ecs:DeleteCluster', B), want: 'explicit-deny' },
  ];
  for (const c of cases) assert.equal(evaluate(parsePolicy(c.policy), c.request), c.want, c.name);
});

test('conditions: ecs:cluster with ArnEquals, StringEquals, StringLike and the negated and IfExists forms', () => {
  const withCond = (Condition: unknown) => parsePolicy(allow({ Action: 'ecs:*', Resource: '*', Condition }));
  const cases: { name: string; cond: unknown; context: Record<string, string>; want: string }[] = [
    { name: 'ArnEquals on the cluster', cond: { ArnEquals: { 'ecs:cluster': A } }, context: { 'ecs:cluster': A }, want: 'allow' },
    { name: 'ArnEquals on another cluster', cond: { ArnEquals: { 'ecs:cluster': A } }, context: { 'ecs:cluster': B }, want: 'implicit-deny' },
    { name: 'ArnLike with a wildcard in the resource part', cond: { ArnLike: { 'ecs:cluster': 'arn:aws:ecs:*:123456789012:cluster/a*' } }, context: { 'ecs:cluster': A }, want: 'allow' },
    { name: 'ArnLike: wildcards stay within their ARN part', cond: { ArnLike: { 'ecs:cluster': 'arn:aws:ecs:*:cluster/a' } }, context: { 'ecs:cluster': A }, want: 'implicit-deny' },
    { name: 'StringEquals is exact', cond: { StringEquals: { 'ecs:cluster': A } }, context: { 'ecs:cluster': A }, want: 'allow' },
    { name: 'StringEquals is case-sensitive', cond: { StringEquals: { 'ecs:cluster': A.toUpperCase() } }, context: { 'ecs:cluster': A }, want: 'implicit-deny' },
    { name: 'StringLike wildcard', cond: { StringLike: { 'ecs:cluster': '*:cluster/a' } }, context: { 'ecs:cluster': A }, want: 'allow' },
    { name: 'several values are ORed', cond: { StringEquals: { 'ecs:cluster': [B, A] } }, context: { 'ecs:cluster': A }, want: 'allow' },
    { name: 'condition keys are case-insensitive', cond: { StringEquals: { 'ECS:Cluster': A } }, context: { 'ecs:cluster': A }, want: 'allow' },
    { name: 'several operators are ANDed', cond: { StringEquals: { 'ecs:cluster': A }, StringLike: { 'ecs:task-definition': '*:task-definition/db:*' } }, context: { 'ecs:cluster': A, 'ecs:task-definition': TD }, want: 'implicit-deny' },
    { name: 'several keys are ANDed', cond: { StringEquals: { 'ecs:cluster': A, 'ecs:task-definition': TD } }, context: { 'ecs:cluster': A, 'ecs:task-definition': TD }, want: 'allow' },
    { name: 'an absent key does not match', cond: { ArnEquals: { 'ecs:cluster': A } }, context: {}, want: 'implicit-deny' },
    { name: 'IfExists matches an absent key', cond: { ArnEqualsIfExists: { 'ecs:cluster': A } }, context: {}, want: 'allow' },
    { name: 'IfExists still checks a present key', cond: { ArnEqualsIfExists: { 'ecs:cluster': A } }, context: { 'ecs:cluster': B }, want: 'implicit-deny' },
    { name: 'StringNotEquals refuses the listed value', cond: { StringNotEquals: { 'ecs:cluster': [A, B] } }, context: { 'ecs:cluster': B }, want: 'implicit-deny' },
    { name: 'StringNotEquals admits another value', cond: { StringNotEquals: { 'ecs:cluster': A } }, context: { 'ecs:cluster': B }, want: 'allow' },
    { name: 'a negated operator on an absent key matches', cond: { ArnNotLike: { 'ecs:cluster': A } }, context: {}, want: 'allow' },
  ];
  for (const c of cases) assert.equal(evaluate(withCond(c.cond), req('ecs:RunTask', TD, c.context)), c.want, c.name);
});

test('conditions on the global keys: Numeric*, Date*, Bool, IpAddress and Null', () => {
  const withCond = (Condition: unknown) => parsePolicy(allow({ Action: 'ecs:*', Resource: '*', Condition }));
  const at = { 'aws:CurrentTime': '2024-05-01T12:00:00Z', 'aws:EpochTime': '1714564800' };
  const cases: { name: string; cond: unknown; context: Record<string, string>; want: string }[] = [
    { name: 'DateLessThan an ISO date', cond: { DateLessThan: { 'aws:CurrentTime': '2024-06-01T00:00:00Z' } }, context: at, want: 'allow' },
    { name: 'DateLessThan a past date', cond: { DateLessThan: { 'aws:CurrentTime': '2024-01-01' } }, context: at, want: 'implicit-deny' },
    { name: 'DateGreaterThanEquals the same instant', cond: { DateGreaterThanEquals: { 'aws:CurrentTime': '2024-05-01T12:00:00Z' } }, context: at, want: 'allow' },
    { name: 'Date operators read epoch seconds on either side', cond: { DateGreaterThan: { 'aws:EpochTime': '2024-05-01T11:59:59Z' } }, context: at, want: 'allow' },
    { name: 'DateNotEquals another instant', cond: { DateNotEquals: { 'aws:CurrentTime': '1714564801' } }, context: at, want: 'allow' },
    { name: 'NumericLessThan the epoch time', cond: { NumericLessThan: { 'aws:EpochTime': 1714564801 } }, context: at, want: 'allow' },
    { name: 'NumericGreaterThan fails when smaller', cond: { NumericGreaterThan: { 'aws:EpochTime': '1714564800' } }, context: at, want: 'implicit-deny' },
    { name: 'NumericEquals', cond: { NumericEquals: { 'aws:EpochTime': '1714564800' } }, context: at, want: 'allow' },
    { name: 'Bool false matches false', cond: { Bool: { 'aws:SecureTransport': 'false' } }, context: { 'aws:SecureTransport': 'false' }, want: 'allow' },
    { name: 'Bool true (JSON boolean) does not match false', cond: { Bool: { 'aws:SecureTransport': true } }, context: { 'aws:SecureTransport': 'false' }, want: 'implicit-deny' },
    { name: 'IpAddress in an IPv4 range', cond: { IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '203.0.113.0/24'] } }, context: { 'aws:SourceIp': '203.0.113.9' }, want: 'allow' },
    { name: 'IpAddress outside the range', cond: { IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } }, context: { 'aws:SourceIp': '198.51.100.1' }, want: 'implicit-deny' },
    { name: 'IpAddress of one address', cond: { IpAddress: { 'aws:SourceIp': '127.0.0.1' } }, context: { 'aws:SourceIp': '127.0.0.1' }, want: 'allow' },
    { name: 'IpAddress in an IPv6 range', cond: { IpAddress: { 'aws:SourceIp': '2001:db8::/32' } }, context: { 'aws:SourceIp': '2001:db8:0:1::5' }, want: 'allow' },
    { name: 'NotIpAddress outside the range', cond: { NotIpAddress: { 'aws:SourceIp': '203.0.113.0/24' } }, context: { 'aws:SourceIp': '::1' }, want: 'allow' },
    { name: 'NotIpAddress inside the range', cond: { NotIpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }, context: { 'aws:SourceIp': '127.0.0.1' }, want: 'implicit-deny' },
    { name: 'Null true: the key is absent', cond: { Null: { 'aws:TokenIssueTime': 'true' } }, context: {}, want: 'allow' },
    { name: 'Null true: the key is present', cond: { Null: { 'aws:TokenIssueTime': 'true' } }, context: { 'aws:TokenIssueTime': '2024-05-01T12:00:00Z' }, want: 'implicit-deny' },
    { name: 'Null false: the key is present', cond: { Null: { 'aws:TokenIssueTime': false } }, context: { 'aws:TokenIssueTime': '2024-05-01T12:00:00Z' }, want: 'allow' },
    { name: 'an absent key fails a Date operator', cond: { DateLessThan: { 'aws:CurrentTime': '2030-01-01' } }, context: {}, want: 'implicit-deny' },
    { name: '...IfExists passes an absent key', cond: { NumericLessThanIfExists: { 'aws:EpochTime': '1' } }, context: {}, want: 'allow' },
  ];
  for (const c of cases) assert.equal(evaluate(withCond(c.cond), req('ecs:ListClusters', '*', c.context)), c.want, c.name);
});

test('a request on several resources needs every one allowed; the first refused is named', () => {
  const p = parsePolicy(allow({ Action: 'ecs:DescribeClusters', Resource: A }));
  assert.deepEqual(evaluateAll(p, 'ecs:DescribeClusters', [A], {}), { decision: 'allow' });
  assert.deepEqual(evaluateAll(p, 'ecs:DescribeClusters', [A, B], {}), { decision: 'implicit-deny', resource: B });
  assert.deepEqual(evaluateAll(p, 'ecs:DescribeClusters', [], {}), { decision: 'implicit-deny', resource: '*' });
});

test('malformed documents are refused with IAM-style messages', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '{', /Syntax errors in policy/],
    ['an array', '[]', /Syntax errors in policy/],
    ['unknown top-level element', { Version: '2012-10-17', Statement: [], Foo: 1 }, /unknown element Foo/],
    ['bad version', { Version: '2020-01-01', Statement: [] }, /valid version string/],
    ['no statement', { Version: '2012-10-17' }, /must contain a Statement/],
    ['empty statement list', { Version: '2012-10-17', Statement: [] }, /at least one statement/],
    ['bad effect', allow({ Effect: 'Maybe', Action: '*', Resource: '*' }), /Effect must be Allow or Deny/],
    ['both Action and NotAction', allow({ Action: '*', NotAction: 'ecs:*', Resource: '*' }), /exactly one of Action or NotAction/],
    ['no Action', allow({ Resource: '*' }), /exactly one of Action or NotAction/],
    ['no Resource', allow({ Action: '*' }), /exactly one of Resource or NotResource/],
    ['action without vendor', allow({ Action: 'RunTask', Resource: '*' }), /prefaced by a vendor/],
    ['resource not an ARN', allow({ Action: '*', Resource: 'cluster/a' }), /must be in ARN format/],
    ['a Principal', allow({ Action: '*', Resource: '*', Principal: '*' }), /should not specify a principal/],
    ['unknown statement element', allow({ Action: '*', Resource: '*', Effects: 'Allow' }), /unknown element Effects/],
    ['unknown condition operator', allow({ Action: '*', Resource: '*', Condition: { NumericMaybe: { 'ecs:cluster': 'a' } } }), /Invalid Condition type : NumericMaybe/],
    ['condition value not a string', allow({ Action: '*', Resource: '*', Condition: { StringEquals: { 'ecs:cluster': { a: 1 } } } }), /takes strings/],
    ['empty action list', allow({ Action: [], Resource: '*' }), /non-empty list of strings/],
    ['non-alphanumeric Sid', allow({ Sid: 'a b', Action: '*', Resource: '*' }), /alpha-numeric/],
    ['a number operator given a word', allow({ Action: '*', Resource: '*', Condition: { NumericLessThan: { 'aws:EpochTime': 'soon' } } }), /NumericLessThan aws:EpochTime takes a number, not 'soon'/],
    ['a date operator given no date', allow({ Action: '*', Resource: '*', Condition: { DateLessThan: { 'aws:CurrentTime': 'tomorrow' } } }), /takes a date/],
    ['IpAddress given no address', allow({ Action: '*', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/33' } } }), /takes an IP address or CIDR range/],
    ['Bool given neither true nor false', allow({ Action: '*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'yes' } } }), /takes true or false/],
    ['NullIfExists is no operator', allow({ Action: '*', Resource: '*', Condition: { NullIfExists: { 'aws:SourceIp': 'true' } } }), /Invalid Condition type : NullIfExists/],
  ];
  for (const [name, doc, re] of cases) {
    assert.throws(() => parsePolicy(typeof doc === 'string' ? doc : JSON.stringify(doc)), (e: unknown) => e instanceof MalformedPolicyDocument && re.test(e.message), name);
  }
});

test('the AccessDenied message has IAM shape for both kinds of deny', () => {
  const user = 'arn:aws:iam::123456789012:user/alice';
  assert.equal(accessDeniedMessage(user, 'ecs:RunTask', TD, 'implicit-deny'),
    `User: ${user} is not authorized to perform: ecs:RunTask on resource: ${TD} because no identity-based policy allows the ecs:RunTask action`);
  assert.equal(accessDeniedMessage(user, 'ecs:RunTask', TD, 'explicit-deny'),
    `User: ${user} is not authorized to perform: ecs:RunTask on resource: ${TD} with an explicit deny in an identity-based policy`);
});
