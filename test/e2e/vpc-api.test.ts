/**
 * The EC2 view of a region's network, through the AWS CLI and boto3 as a Fargate user reaches it:
 * the default VPC and its subnets (one per availability zone, each a /20 of the VPC), security
 * groups made, authorized, revoked, described and deleted, and EC2's errors for what does not
 * exist. Regions are apart: another region has its own VPC and range.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AWS_CLI, boto3, run, startTestServer, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
before(async () => {
  srv = await startTestServer({ regions: ['us-east-1', 'eu-west-1'] });
});
after(() => srv.close());

async function ec2(args: string[], region = srv.region) {
  const r = await run(AWS_CLI, ['ec2', ...args, '--endpoint-url', srv.endpoint, '--output', 'json', '--region', region], srv.env());
  return { ...r, json: r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

function inCidr(cidr: string, ip: string): boolean {
  const n = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return n(ip) >= n(base!) && n(ip) < n(base!) + size;
}

test('describe-vpcs and describe-subnets show the default VPC and one /20 subnet per zone', async () => {
  const vpcs = await ec2(['describe-vpcs']);
  assert.equal(vpcs.code, 0, vpcs.stderr);
  assert.equal(vpcs.json.Vpcs.length, 1);
  const vpc = vpcs.json.Vpcs[0];
  assert.match(vpc.VpcId, /^vpc-[0-9a-f]{17}$/);
  assert.equal(vpc.IsDefault, true);
  assert.equal(vpc.State, 'available');
  assert.match(vpc.CidrBlock, /^\d+\.\d+\.0\.0\/16$/);

  const subnets = await ec2(['describe-subnets']);
  assert.equal(subnets.code, 0, subnets.stderr);
  const list = subnets.json.Subnets;
  assert.deepEqual(list.map((s: any) => s.AvailabilityZone), ['us-east-1a', 'us-east-1b', 'us-east-1c']);
  const [a, b] = vpc.CidrBlock.split('.');
  assert.deepEqual(list.map((s: any) => s.CidrBlock), [`${a}.${b}.0.0/20`, `${a}.${b}.16.0/20`, `${a}.${b}.32.0/20`]);
  for (const s of list) {
    assert.match(s.SubnetId, /^subnet-[0-9a-f]{17}$/);
    assert.equal(s.VpcId, vpc.VpcId);
    assert.equal(s.DefaultForAz, true);
    assert.equal(s.MapPublicIpOnLaunch, true);
    assert.equal(s.AvailableIpAddressCount, 4091);
    assert.ok(inCidr(vpc.CidrBlock, s.CidrBlock.split('/')[0]));
  }

  const filtered = await ec2(['describe-subnets', '--filters', `Name=vpc-id,Values=${vpc.VpcId}`, 'Name=availability-zone,Values=us-east-1b']);
  assert.deepEqual(filtered.json.Subnets.map((s: any) => s.SubnetId), [list[1].SubnetId]);
  const byId = await ec2(['describe-subnets', '--subnet-ids', list[2].SubnetId]);
  assert.deepEqual(byId.json.Subnets.map((s: any) => s.AvailabilityZone), ['us-east-1c']);
  const defaults = await ec2(['describe-subnets', '--filters', 'Name=default-for-az,Values=true']);
  assert.equal(defaults.json.Subnets.length, 3);

  const missing = await ec2(['describe-subnets', '--subnet-ids', 'subnet-0123456789abcdef0']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /InvalidSubnetID\.NotFound.*The subnet ID 'subnet-0123456789abcdef0' does not exist/);
  const badFilter = await ec2(['describe-subnets', '--filters', 'Name=colour,Values=blue']);
  assert.match(badFilter.stderr, /InvalidParameterValue.*The filter 'colour' is invalid/);
});

test('another region has its own default VPC, range and zones', async () => {
  const home = (await ec2(['describe-vpcs'])).json.Vpcs[0];
  const eu = await ec2(['describe-subnets'], 'eu-west-1');
  assert.equal(eu.code, 0, eu.stderr);
  assert.deepEqual(eu.json.Subnets.map((s: any) => s.AvailabilityZone), ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
  assert.ok(eu.json.Subnets.every((s: any) => s.VpcId !== home.VpcId));
  assert.ok(eu.json.Subnets.every((s: any) => !inCidr(home.CidrBlock, s.CidrBlock.split('/')[0])), 'the ranges do not overlap');
});

test('security groups: create, authorize (CIDR and group sources), describe, revoke, delete', async () => {
  const vpcId = (await ec2(['describe-vpcs'])).json.Vpcs[0].VpcId;
  const groups = await ec2(['describe-security-groups']);
  const dflt = groups.json.SecurityGroups.find((g: any) => g.GroupName === 'default');
  assert.ok(dflt, 'the VPC has its default group');
  assert.equal(dflt.VpcId, vpcId);
  assert.deepEqual(dflt.IpPermissions[0].UserIdGroupPairs.map((p: any) => p.GroupId), [dflt.GroupId], 'the default group admits its own members');

  const web = await ec2(['create-security-group', '--group-name', 'web', '--description', 'web servers']);
  assert.equal(web.code, 0, web.stderr);
  assert.match(web.json.GroupId, /^sg-[0-9a-f]{17}$/);
  const client = await ec2(['create-security-group', '--group-name', 'client', '--description', 'clients', '--vpc-id', vpcId]);
  const dup = await ec2(['create-security-group', '--group-name', 'web', '--description', 'again']);
  assert.match(dup.stderr, new RegExp(`InvalidGroup\\.Duplicate.*The security group 'web' already exists for VPC '${vpcId}'`));

  const auth = await ec2(['authorize-security-group-ingress', '--group-id', web.json.GroupId, '--ip-permissions',
    `IpProtocol=tcp,FromPort=8080,ToPort=8080,UserIdGroupPairs=[{GroupId=${client.json.GroupId}}],IpRanges=[{CidrIp=127.0.0.1/32}]`]);
  assert.equal(auth.code, 0, auth.stderr);
  assert.equal(auth.json.Return, true);
  const short = await ec2(['authorize-security-group-ingress', '--group-id', web.json.GroupId, '--protocol', 'udp', '--port', '53', '--cidr', '10.0.0.0/8']);
  assert.equal(short.code, 0, short.stderr);
  const again = await ec2(['authorize-security-group-ingress', '--group-id', web.json.GroupId, '--protocol', 'udp', '--port', '53', '--cidr', '10.0.0.0/8']);
  assert.match(again.stderr, /InvalidPermission\.Duplicate/);
  const bad = await ec2(['authorize-security-group-ingress', '--group-id', web.json.GroupId, '--protocol', 'tcp', '--port', '80', '--cidr', '10.0.0.1/8']);
  assert.match(bad.stderr, /InvalidParameterValue.*CIDR block 10\.0\.0\.1\/8 is malformed/);
  const noGroup = await ec2(['authorize-security-group-ingress', '--group-id', 'sg-0123456789abcdef0', '--protocol', 'tcp', '--port', '80', '--cidr', '10.0.0.0/8']);
  assert.match(noGroup.stderr, /InvalidGroup\.NotFound.*The security group 'sg-0123456789abcdef0' does not exist/);

  const described = await ec2(['describe-security-groups', '--group-ids', web.json.GroupId]);
  const g = described.json.SecurityGroups[0];
  assert.equal(g.GroupName, 'web');
  assert.equal(g.Description, 'web servers');
  const tcp = g.IpPermissions.find((p: any) => p.IpProtocol === 'tcp');
  assert.equal(tcp.FromPort, 8080);
  assert.deepEqual(tcp.UserIdGroupPairs.map((p: any) => p.GroupId), [client.json.GroupId]);
  assert.deepEqual(tcp.IpRanges.map((r: any) => r.CidrIp), ['127.0.0.1/32']);
  assert.deepEqual(g.IpPermissionsEgress[0].IpRanges, [{ CidrIp: '0.0.0.0/0' }]);
  const byName = await ec2(['describe-security-groups', '--filters', 'Name=group-name,Values=client', `Name=vpc-id,Values=${vpcId}`]);
  assert.deepEqual(byName.json.SecurityGroups.map((x: any) => x.GroupId), [client.json.GroupId]);

  const inUse = await ec2(['delete-security-group', '--group-id', client.json.GroupId]);
  assert.match(inUse.stderr, /DependencyViolation/, 'a group another group names is in use');
  const revoke = await ec2(['revoke-security-group-ingress', '--group-id', web.json.GroupId, '--ip-permissions', `IpProtocol=tcp,FromPort=8080,ToPort=8080,UserIdGroupPairs=[{GroupId=${client.json.GroupId}}]`]);
  assert.equal(revoke.code, 0, revoke.stderr);
  const after1 = (await ec2(['describe-security-groups', '--group-ids', web.json.GroupId])).json.SecurityGroups[0];
  assert.deepEqual(after1.IpPermissions.find((p: any) => p.IpProtocol === 'tcp').UserIdGroupPairs, [], 'the group source is gone, the CIDR stays');
  assert.equal((await ec2(['delete-security-group', '--group-id', client.json.GroupId])).code, 0);
  const gone = await ec2(['describe-security-groups', '--group-ids', client.json.GroupId]);
  assert.match(gone.stderr, /InvalidGroup\.NotFound/);
  const dfltDelete = await ec2(['delete-security-group', '--group-id', dflt.GroupId]);
  assert.match(dfltDelete.stderr, /CannotDelete/);
});

test('boto3 reads the same objects, and EC2 errors parse as ClientError codes', async () => {
  const out = await boto3(srv, [
    'subs = ec2.describe_subnets()["Subnets"]',
    'vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]',
    'try:',
    '    ec2.describe_security_groups(GroupIds=["sg-00000000000000000"])',
    '    err = None',
    'except botocore.exceptions.ClientError as e:',
    '    err = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]',
    'try:',
    '    ec2.describe_vpcs(DryRun=True)',
    '    dry = None',
    'except botocore.exceptions.ClientError as e:',
    '    dry = e.response["Error"]["Code"]',
    'out({"zones": [s["AvailabilityZone"] for s in subs], "vpc": [v["IsDefault"] for v in vpcs], "err": err, "dry": dry})',
  ].join('\n'));
  assert.deepEqual(out.zones, ['us-east-1a', 'us-east-1b', 'us-east-1c']);
  assert.deepEqual(out.vpc, [true]);
  assert.deepEqual(out.err, ['InvalidGroup.NotFound', 400]);
  assert.equal(out.dry, 'DryRunOperation');
});

test('wharf subnets prints the region\'s VPC and subnets (zone, range, default), --region picks the region', async () => {
  const wharf = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', ...args], srv.env());
  const subnets = (await ec2(['describe-subnets'], 'eu-west-1')).json.Subnets;
  const vpc = (await ec2(['describe-vpcs'], 'eu-west-1')).json.Vpcs[0];
  const r = await wharf(['subnets', '--endpoint', srv.endpoint, '--region', 'eu-west-1']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], 'Region eu-west-1');
  assert.ok(lines.some((l) => l.split(/\s+/).join(' ') === `${vpc.VpcId} ${vpc.CidrBlock} yes`), r.stdout);
  for (const s of subnets) {
    assert.ok(lines.some((l) => l.split(/\s+/).join(' ') === `${s.SubnetId} ${s.AvailabilityZone} ${s.CidrBlock} yes ${vpc.VpcId}`), `${s.SubnetId} listed: ${r.stdout}`);
  }
  const wrongKey = await run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', 'subnets', '--endpoint', srv.endpoint], srv.env({ AWS_SECRET_ACCESS_KEY: 'wrong' }));
  assert.equal(wrongKey.code, 1);
  // EC2 names a wrong secret AuthFailure, as it names an unknown key.
  assert.match(wrongKey.stderr, /AuthFailure/);
});
