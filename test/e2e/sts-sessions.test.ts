/**
 * Short-lived sessions with the tools users have: `aws sts get-session-token` (AWS CLI v2) and
 * boto3 get session credentials from a long-term key, and every API then takes them with
 * AWS_SESSION_TOKEN set, acting as the key's user with that user's policy. A session cannot mint
 * another; a deleted or rotated key's sessions stop at once; out-of-range durations get STS's
 * ValidationError; a restarted server (same data dir) still accepts the sessions it issued.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ACCOUNT_ID, AWS_CLI, awsCli, boto3, childEnv, run, startTestServer, type Keys, type TestServer } from './helpers/wharf-server';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-sessions-'));
let srv: TestServer;
const userArn = (n: string) => `arn:aws:iam::${ACCOUNT_ID}:user/${n}`;

interface SessionKeys extends Keys {
  sessionToken: string;
  expiration: string;
}

const wharf = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', ...args, '--data-dir', dataDir], srv.env());

async function createUser(name: string, policy: string): Promise<Keys> {
  const r = await wharf(['credentials', 'create', '--name', name, '--policy', policy, '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const k = JSON.parse(r.stdout).AccessKey;
  return { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
}

/** The server re-reads users.json at most once a second. */
const pickedUp = () => sleep(1100);

const env = (keys: Keys | SessionKeys) => childEnv(keys, srv.region, 'sessionToken' in keys ? { AWS_SESSION_TOKEN: keys.sessionToken } : {});
const aws = (keys: Keys | SessionKeys, args: string[]) => run(AWS_CLI, [...args, '--endpoint-url', srv.endpoint, '--output', 'json'], env(keys));

async function getSession(keys: Keys, extra: string[] = []): Promise<SessionKeys> {
  const r = await aws(keys, ['sts', 'get-session-token', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout).Credentials;
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
}

const secondsLeft = (s: SessionKeys) => (Date.parse(s.expiration) - Date.now()) / 1000;

let reader: Keys;

before(async () => {
  srv = await startTestServer({ dataDir });
  assert.equal((await awsCli(srv, ['create-cluster', '--cluster-name', 'a'])).code, 0);
  reader = await createUser('reader', 'readonly');
  await pickedUp();
});
after(async () => {
  await srv.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('aws sts get-session-token, then ECS, ELBv2, Cloud Map, Secrets Manager, Logs and STS with AWS_SESSION_TOKEN act as the user', async () => {
  const s = await getSession(reader, ['--duration-seconds', '900']);
  assert.match(s.accessKeyId, /^ASIA[A-Z2-7]{16}$/);
  assert.ok(s.secretAccessKey.length >= 40 && s.sessionToken.length > 100);
  const left = secondsLeft(s);
  assert.ok(left > 880 && left <= 900, `expires in ${left} s`);

  const list = await aws(s, ['ecs', 'list-clusters']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).clusterArns, [`arn:aws:ecs:us-east-1:${ACCOUNT_ID}:cluster/a`]);
  assert.equal((await aws(s, ['elbv2', 'describe-load-balancers'])).code, 0);
  for (const args of [['servicediscovery', 'list-namespaces'], ['secretsmanager', 'list-secrets']]) {
    const r = await aws(s, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  // CloudWatch Logs takes the session too, and applies the read-only policy: it reads, never writes.
  const groups = await aws(s, ['logs', 'describe-log-groups']);
  assert.equal(groups.code, 0, groups.stderr);
  assert.match((await aws(s, ['logs', 'create-log-group', '--log-group-name', 'reader-group'])).stderr, /AccessDeniedException.*user\/reader is not authorized to perform: logs:CreateLogGroup/);
  const me = await aws(s, ['sts', 'get-caller-identity']);
  assert.equal(me.code, 0, me.stderr);
  assert.equal(JSON.parse(me.stdout).Arn, userArn('reader'));
  // Wharf's own commands read AWS_SESSION_TOKEN as the AWS CLI does.
  const subnets = await run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', 'subnets', '--endpoint', srv.endpoint], env(s));
  assert.equal(subnets.code, 0, subnets.stderr);
  assert.match(subnets.stdout, /us-east-1a/);
  // The long-term key's default: 12 hours.
  const long = await getSession(reader);
  assert.ok(Math.abs(secondsLeft(long) - 43_200) < 30, `${secondsLeft(long)} s`);
});

test("a read-only user's session is refused what the user is refused, and writes nothing", async () => {
  const s = await getSession(reader);
  const r = await aws(s, ['ecs', 'create-cluster', '--cluster-name', 'b']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /AccessDeniedException.*User: arn:aws:iam::123456789012:user\/reader is not authorized to perform: ecs:CreateCluster/);
  const tg = await aws(s, ['elbv2', 'create-target-group', '--name', 'tg', '--protocol', 'HTTP', '--port', '80', '--vpc-id', 'vpc-1']);
  assert.match(tg.stderr, /\(AccessDenied\).*user\/reader is not authorized to perform: elasticloadbalancing:CreateTargetGroup/);
  const clusters = await awsCli(srv, ['list-clusters']);
  assert.equal(clusters.json.clusterArns.length, 1);
});

test('a session cannot get a session; durations outside 900-129600 s get STS\'s ValidationError; the root is held to an hour', async () => {
  const s = await getSession(reader);
  const again = await aws(s, ['sts', 'get-session-token']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /\(AccessDenied\) when calling the GetSessionToken operation(?: \(reached max retries: 0\))?: Cannot call GetSessionToken with session credentials/);
  // The CLI checks the model's bounds itself; boto3 without its own check shows the server's answer.
  const refused = await boto3({ ...srv, env: () => env(reader) }, `
import botocore.exceptions as bx
sts = boto3.client("sts", endpoint_url=ecs.meta.endpoint_url, config=Config(parameter_validation=False, retries={"max_attempts": 1}))
res = []
for d in (600, 129601):
    try:
        sts.get_session_token(DurationSeconds=d)
        res.append(None)
    except bx.ClientError as e:
        res.append([e.response["Error"]["Code"], e.response["Error"]["Message"]])
out(res)
`);
  assert.deepEqual(refused, [
    ['ValidationError', "1 validation error detected: Value '600' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"],
    ['ValidationError', "1 validation error detected: Value '129601' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600"],
  ]);
  const root = await getSession(srv.keys, ['--duration-seconds', '7200']);
  assert.ok(Math.abs(secondsLeft(root) - 3_600) < 30, `root session: ${secondsLeft(root)} s`);
  assert.equal(JSON.parse((await aws(root, ['sts', 'get-caller-identity'])).stdout).Arn, `arn:aws:iam::${ACCOUNT_ID}:root`);
});

test('boto3: get_session_token, then a Session with the token lists clusters; a wrong token is refused', async () => {
  const out = await boto3({ ...srv, env: () => env(reader) }, `
import botocore.exceptions as bx
sts = boto3.client("sts", endpoint_url=ecs.meta.endpoint_url)
c = sts.get_session_token(DurationSeconds=1800)["Credentials"]
s = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"], region_name="us-east-1")
arns = s.client("ecs", endpoint_url=ecs.meta.endpoint_url).list_clusters()["clusterArns"]
who = s.client("sts", endpoint_url=ecs.meta.endpoint_url).get_caller_identity()["Arn"]
bad = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"][:-4] + "AAAA", region_name="us-east-1")
try:
    bad.client("ecs", endpoint_url=ecs.meta.endpoint_url, config=Config(retries={"max_attempts": 1})).list_clusters()
    err = None
except bx.ClientError as e:
    err = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
out({"id": c["AccessKeyId"], "left": (c["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds(), "arns": arns, "who": who, "err": err})
`);
  assert.match(out.id, /^ASIA/);
  assert.ok(out.left > 1780 && out.left <= 1800, String(out.left));
  assert.equal(out.arns.length, 1);
  assert.equal(out.who, userArn('reader'));
  assert.deepEqual(out.err, ['UnrecognizedClientException', 'The security token included in the request is invalid.']);
});

test("deleting or rotating a user's key ends its sessions at once", async () => {
  const doomed = await createUser('doomed', 'readonly');
  const rotating = await createUser('rotating', 'readonly');
  await pickedUp();
  const s1 = await getSession(doomed);
  const s2 = await getSession(rotating);
  assert.equal((await aws(s1, ['ecs', 'list-clusters'])).code, 0);
  assert.equal((await wharf(['credentials', 'delete', '--name', 'doomed'])).code, 0);
  assert.equal((await wharf(['credentials', 'rotate', '--name', 'rotating'])).code, 0);
  await pickedUp();
  for (const s of [s1, s2]) {
    const r = await aws(s, ['ecs', 'list-clusters']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(UnrecognizedClientException\) when calling the ListClusters operation(?: \(reached max retries: 0\))?: The security token included in the request is invalid\./);
    assert.match((await aws(s, ['sts', 'get-caller-identity'])).stderr, /\(InvalidClientTokenId\)/);
    assert.match((await aws(s, ['ec2', 'describe-vpcs'])).stderr, /\(AuthFailure\) when calling the DescribeVpcs operation(?: \(reached max retries: \d+\))?: AWS was not able to validate the provided access credentials/);
  }
});

test('a restarted server on the same data dir accepts the sessions issued before; the key file is 0600', async () => {
  const s = await getSession(reader);
  const keyFile = path.join(dataDir, 'session-token.key');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  assert.equal(fs.statSync(keyFile).size, 32);
  await srv.close();
  srv = await startTestServer({ dataDir });
  const r = await aws(s, ['ecs', 'list-clusters']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).clusterArns.length, 1);
});
