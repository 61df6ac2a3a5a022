/**
 * The ELBv2 API through the AWS CLI v2 (`aws elbv2 --endpoint-url`), as a user drives it: load
 * balancers, attributes, target groups, listeners (HTTPS with a PEM file), rules, targets and
 * their health (reading a health record the load balancer controller would write), tags; ELB's
 * XML errors as the CLI prints them; regions apart; operations Wharf does not serve refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { elbIdOf, healthKey, type TargetHealthRecord } from '../../src/control/elbv2-records';
import { AWS_CLI, boto3, defaultSubnets, rawCall, run, startTestServer, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
let subnets: Record<string, { id: string; cidr: string }>;
let vpcId: string;
before(async () => {
  // This file writes the health records itself, in place of the load balancer controller, which
  // is therefore off (test/e2e/load-balancer-controller*.test.ts test it).
  srv = await startTestServer({ regions: ['us-east-1', 'eu-west-1'], loadBalancers: { enabled: false } });
  subnets = await defaultSubnets(srv);
  vpcId = JSON.parse((await run(AWS_CLI, ['ec2', 'describe-vpcs', '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env())).stdout).Vpcs[0].VpcId;
});
after(() => srv.close());

async function elb(args: string[], region = srv.region) {
  const r = await run(AWS_CLI, ['elbv2', ...args, '--endpoint-url', srv.endpoint, '--output', 'json', '--region', region], srv.env());
  return { ...r, json: r.code === 0 && r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

async function ok(args: string[], region?: string) {
  const r = await elb(args, region);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.json;
}

/** An address in the us-east-1a default subnet. */
const ipIn = (zone: string, n: number) => subnets[zone]!.cidr.replace(/\.0\/20$/, `.${n}`);

test('load balancers: create (idempotent), describe by name and page, attributes, delete; ELB errors as the CLI prints them', async () => {
  const zones = [subnets['us-east-1a']!.id, subnets['us-east-1b']!.id];
  const created = (await ok(['create-load-balancer', '--name', 'front', '--subnets', ...zones, '--tags', 'Key=team,Value=web'])).LoadBalancers[0];
  assert.match(created.LoadBalancerArn, /^arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer\/app\/front\/[0-9a-f]{16}$/);
  assert.match(created.DNSName, /^front-\d+\.us-east-1\.elb\.amazonaws\.com$/);
  assert.equal(created.State.Code, 'active');
  assert.equal(created.CanonicalHostedZoneId, 'Z35SXDOTRQ7X7K');
  assert.equal(created.address, undefined, "Wharf's own fields are not sent");
  assert.equal((await ok(['create-load-balancer', '--name', 'front', '--subnets', ...zones])).LoadBalancers[0].LoadBalancerArn, created.LoadBalancerArn);

  const dup = await elb(['create-load-balancer', '--name', 'front', '--subnets', ...zones, '--scheme', 'internal']);
  assert.equal(dup.code, 254);
  assert.match(dup.stderr, /An error occurred \(DuplicateLoadBalancerName\) when calling the CreateLoadBalancer operation.*: A load balancer with the same name 'front' exists, but with different settings/);
  const one = await elb(['create-load-balancer', '--name', 'solo', '--subnets', zones[0]!]);
  assert.match(one.stderr, /\(ValidationError\).*At least two subnets in two different Availability Zones must be specified/);
  const badName = await elb(['create-load-balancer', '--name', 'internal-x', '--subnets', ...zones]);
  assert.match(badName.stderr, /\(ValidationError\).*cannot begin with 'internal-'/);

  await ok(['create-load-balancer', '--name', 'back', '--type', 'network', '--scheme', 'internal', '--subnets', zones[0]!]);
  // ELBv2's PageSize is a manual pagination argument to the CLI: one page, then --marker.
  const page1 = await ok(['describe-load-balancers', '--page-size', '1']);
  assert.deepEqual(page1.LoadBalancers.map((l: any) => l.LoadBalancerName), ['front']);
  const page2 = await ok(['describe-load-balancers', '--page-size', '1', '--marker', page1.NextMarker]);
  assert.deepEqual([page2.LoadBalancers.map((l: any) => l.LoadBalancerName), page2.NextMarker], [['back'], undefined]);
  const back = (await ok(['describe-load-balancers', '--names', 'back'])).LoadBalancers[0];
  assert.match(back.DNSName, /^internal-back-[0-9a-f]{16}\.elb\.us-east-1\.amazonaws\.com$/);
  const missing = await elb(['describe-load-balancers', '--names', 'nope']);
  assert.match(missing.stderr, /\(LoadBalancerNotFound\).*Load balancers '\[nope\]' not found/);

  const attrs = await ok(['modify-load-balancer-attributes', '--load-balancer-arn', created.LoadBalancerArn, '--attributes', 'Key=idle_timeout.timeout_seconds,Value=120']);
  assert.ok(attrs.Attributes.some((a: any) => a.Key === 'idle_timeout.timeout_seconds' && a.Value === '120'));
  const described = await ok(['describe-load-balancer-attributes', '--load-balancer-arn', back.LoadBalancerArn]);
  assert.ok(described.Attributes.some((a: any) => a.Key === 'load_balancing.cross_zone.enabled' && a.Value === 'false'));
  const badKey = await elb(['modify-load-balancer-attributes', '--load-balancer-arn', created.LoadBalancerArn, '--attributes', 'Key=colour,Value=blue']);
  assert.match(badKey.stderr, /\(ValidationError\).*Load balancer attribute key 'colour' is not recognized/);

  await ok(['delete-load-balancer', '--load-balancer-arn', back.LoadBalancerArn]);
  await ok(['delete-load-balancer', '--load-balancer-arn', back.LoadBalancerArn]);
  assert.deepEqual((await ok(['describe-load-balancers'])).LoadBalancers.map((l: any) => l.LoadBalancerName), ['front']);
});

test('a load balancer made in eu-west-1 is not visible from us-east-1', async () => {
  const eu = await defaultSubnets(srv, 'eu-west-1');
  const lb = (await ok(['create-load-balancer', '--name', 'euro', '--subnets', eu['eu-west-1a']!.id, eu['eu-west-1b']!.id], 'eu-west-1')).LoadBalancers[0];
  assert.match(lb.LoadBalancerArn, /:eu-west-1:/);
  assert.match(lb.DNSName, /\.eu-west-1\.elb\.amazonaws\.com$/);
  const home = await ok(['describe-load-balancers']);
  assert.ok(!home.LoadBalancers.some((l: any) => l.LoadBalancerName === 'euro'));
  const byArn = await elb(['describe-load-balancers', '--load-balancer-arns', lb.LoadBalancerArn]);
  assert.match(byArn.stderr, /\(LoadBalancerNotFound\).*One or more load balancers not found/);
  assert.deepEqual((await ok(['describe-load-balancers'], 'eu-west-1')).LoadBalancers.map((l: any) => l.LoadBalancerName), ['euro']);
  // Subnets of another region are not this region's.
  const foreign = await elb(['create-load-balancer', '--name', 'cross', '--subnets', eu['eu-west-1a']!.id, eu['eu-west-1b']!.id]);
  assert.match(foreign.stderr, /\(SubnetNotFound\)/);
});

test('target groups, listeners (HTTP and HTTPS from a PEM file), rules, targets and health, tags', async () => {
  const zones = [subnets['us-east-1a']!.id, subnets['us-east-1c']!.id];
  const lb = (await ok(['create-load-balancer', '--name', 'shop', '--subnets', ...zones])).LoadBalancers[0];
  const tg = (await ok(['create-target-group', '--name', 'shop-web', '--protocol', 'HTTP', '--port', '8080', '--vpc-id', vpcId, '--target-type', 'ip', '--health-check-path', '/health'])).TargetGroups[0];
  assert.deepEqual([tg.HealthCheckPath, tg.HealthCheckTimeoutSeconds, tg.Matcher.HttpCode, tg.LoadBalancerArns], ['/health', 5, '200', []]);
  const dupGroup = await elb(['create-target-group', '--name', 'shop-web', '--protocol', 'HTTP', '--port', '9090', '--vpc-id', vpcId, '--target-type', 'ip']);
  assert.match(dupGroup.stderr, /\(DuplicateTargetGroupName\).*A target group with the same name 'shop-web' exists, but with different settings/);
  await ok(['modify-target-group-attributes', '--target-group-arn', tg.TargetGroupArn, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=5']);
  const tgAttrs = await ok(['describe-target-group-attributes', '--target-group-arn', tg.TargetGroupArn]);
  assert.ok(tgAttrs.Attributes.some((a: any) => a.Key === 'deregistration_delay.timeout_seconds' && a.Value === '5'));

  // Registered before any load balancer uses the group: unused.
  const a = ipIn('us-east-1a', 20);
  await ok(['register-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=${a}`]);
  let health = (await ok(['describe-target-health', '--target-group-arn', tg.TargetGroupArn])).TargetHealthDescriptions;
  assert.deepEqual(health.map((h: any) => [h.Target.Id, h.Target.Port, h.TargetHealth.State, h.TargetHealth.Reason]), [[a, 8080, 'unused', 'Target.NotInUse']]);

  const forward = `Type=forward,TargetGroupArn=${tg.TargetGroupArn}`;
  const listener = (await ok(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', '80', '--default-actions', forward])).Listeners[0];
  const dupListener = await elb(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', '80', '--default-actions', 'Type=fixed-response,FixedResponseConfig={StatusCode=503}']);
  assert.match(dupListener.stderr, /\(DuplicateListener\).*A listener already exists on this port for this load balancer/);
  const tcp = await elb(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'TCP', '--port', '81', '--default-actions', forward]);
  assert.match(tcp.stderr, /\(IncompatibleProtocols\)/);
  const noCert = await elb(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTPS', '--port', '443', '--certificates', 'CertificateArn=arn:aws:acm:us-east-1:123456789012:certificate/abc', '--default-actions', forward]);
  assert.match(noCert.stderr, /\(CertificateNotFound\).*Wharf reads certificates from a PEM file/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-elb-cert-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=shop.test', '-days', '1', '-keyout', `${dir}/k`, '-out', `${dir}/c`], { stdio: 'ignore' });
  fs.writeFileSync(`${dir}/shop.pem`, fs.readFileSync(`${dir}/c`, 'utf8') + fs.readFileSync(`${dir}/k`, 'utf8'));
  const https = (await ok(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTPS', '--port', '443', '--certificates', `CertificateArn=file://${dir}/shop.pem`, '--default-actions', 'Type=redirect,RedirectConfig={StatusCode=HTTP_302,Path=/moved}'])).Listeners[0];
  assert.equal(https.SslPolicy, 'ELBSecurityPolicy-2016-08');
  await ok(['modify-listener', '--listener-arn', https.ListenerArn, '--port', '8443']);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual((await ok(['describe-listeners', '--load-balancer-arn', lb.LoadBalancerArn])).Listeners.map((l: any) => [l.Protocol, l.Port]), [['HTTP', 80], ['HTTPS', 8443]]);

  // In use now: initial until the controller has seen it; then what the health record says.
  health = (await ok(['describe-target-health', '--target-group-arn', tg.TargetGroupArn])).TargetHealthDescriptions;
  assert.deepEqual(health[0].TargetHealth, { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' });
  assert.equal(health[0].HealthCheckPort, '8080');
  const { ctx } = await srv.server.regions.get('us-east-1');
  const rec: TargetHealthRecord = { Id: a, Port: 8080, State: 'unhealthy', Reason: 'Target.ResponseCodeMismatch', Description: 'Health checks failed with these codes: [502]', updatedAt: Date.now() + 1 };
  await ctx.state.waitFor(await ctx.store.txn([{ op: 'put', key: healthKey(elbIdOf(tg.TargetGroupArn), a, 8080), value: rec }]));
  health = (await ok(['describe-target-health', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=${a},Port=8080`, `Id=${ipIn('us-east-1a', 21)}`])).TargetHealthDescriptions;
  assert.deepEqual(
    health.map((h: any) => [h.Target.Id, h.TargetHealth.State, h.TargetHealth.Reason, h.TargetHealth.Description]),
    [
      [a, 'unhealthy', 'Target.ResponseCodeMismatch', 'Health checks failed with these codes: [502]'],
      [ipIn('us-east-1a', 21), 'unused', 'Target.NotRegistered', 'Target is not registered to the target group'],
    ],
  );
  const outside = await elb(['register-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', 'Id=192.0.2.7']);
  assert.match(outside.stderr, /\(InvalidTarget\).*The IP address '192\.0\.2\.7' is not within the CIDR block/);

  // Rules: both condition forms, the default rule, priorities.
  const r1 = (await ok(['create-rule', '--listener-arn', listener.ListenerArn, '--priority', '10', '--conditions', 'Field=path-pattern,Values=/api/*', '--actions', forward])).Rules[0];
  const r2 = (
    await ok(['create-rule', '--listener-arn', listener.ListenerArn, '--priority', '20', '--conditions', 'Field=http-header,HttpHeaderConfig={HttpHeaderName=X-Env,Values=[blue]}', '--actions', 'Type=fixed-response,FixedResponseConfig={StatusCode=418,ContentType=text/plain,MessageBody=teapot}'])
  ).Rules[0];
  const inUse = await elb(['create-rule', '--listener-arn', listener.ListenerArn, '--priority', '10', '--conditions', 'Field=host-header,Values=a.example.com', '--actions', forward]);
  assert.match(inUse.stderr, /\(PriorityInUse\).*Priority '10' is currently in use/);
  await ok(['set-rule-priorities', '--rule-priorities', `RuleArn=${r1.RuleArn},Priority=20`, `RuleArn=${r2.RuleArn},Priority=10`]);
  await ok(['modify-rule', '--rule-arn', r1.RuleArn, '--conditions', 'Field=host-header,HostHeaderConfig={Values=[shop.example.com]}']);
  const rules = (await ok(['describe-rules', '--listener-arn', listener.ListenerArn])).Rules;
  assert.deepEqual(
    rules.map((r: any) => [r.Priority, r.IsDefault, r.Conditions.map((c: any) => c.Field)]),
    [['10', false, ['http-header']], ['20', false, ['host-header']], ['default', true, []]],
  );
  await ok(['delete-rule', '--rule-arn', r2.RuleArn]);
  const gone = await elb(['describe-rules', '--rule-arns', r2.RuleArn]);
  assert.match(gone.stderr, /\(RuleNotFound\)/);

  // The group is in use: it cannot go, and it names its load balancer.
  assert.deepEqual((await ok(['describe-target-groups', '--load-balancer-arn', lb.LoadBalancerArn])).TargetGroups.map((g: any) => g.LoadBalancerArns), [[lb.LoadBalancerArn]]);
  const busy = await elb(['delete-target-group', '--target-group-arn', tg.TargetGroupArn]);
  assert.match(busy.stderr, /\(ResourceInUse\).*is currently in use by a listener or a rule/);

  // Tags on every kind of resource.
  const arns = [lb.LoadBalancerArn, tg.TargetGroupArn, listener.ListenerArn, r1.RuleArn];
  await ok(['add-tags', '--resource-arns', ...arns, '--tags', 'Key=env,Value=prod']);
  await ok(['remove-tags', '--resource-arns', tg.TargetGroupArn, '--tag-keys', 'env']);
  const tags = (await ok(['describe-tags', '--resource-arns', ...arns])).TagDescriptions;
  assert.deepEqual(tags.map((t: any) => t.Tags.map((x: any) => `${x.Key}=${x.Value}`)), [['env=prod'], [], ['env=prod'], ['env=prod']]);
  const tooMany = await elb(['add-tags', '--resource-arns', lb.LoadBalancerArn, '--tags', ...Array.from({ length: 50 }, (_, i) => `Key=k${i},Value=v`)]);
  assert.match(tooMany.stderr, /\(TooManyTags\)/);

  // Deregistered with the controller still draining it.
  await ok(['deregister-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=${a},Port=8080`]);
  await ctx.state.waitFor(await ctx.store.txn([{ op: 'put', key: healthKey(elbIdOf(tg.TargetGroupArn), a, 8080), value: { ...rec, State: 'draining', Reason: 'Target.DeregistrationInProgress', Description: 'Target deregistration is in progress' } }]));
  health = (await ok(['describe-target-health', '--target-group-arn', tg.TargetGroupArn])).TargetHealthDescriptions;
  assert.deepEqual(health.map((h: any) => [h.Target.Id, h.TargetHealth.State, h.TargetHealth.Reason]), [[a, 'draining', 'Target.DeregistrationInProgress']]);

  // Deleting the load balancer takes its listeners and rules with it; the group is free again.
  await ok(['delete-load-balancer', '--load-balancer-arn', lb.LoadBalancerArn]);
  assert.match((await elb(['describe-listeners', '--listener-arns', listener.ListenerArn])).stderr, /\(ListenerNotFound\)/);
  await ok(['delete-target-group', '--target-group-arn', tg.TargetGroupArn]);
});

test('XML errors on the wire (HTTP 400, ErrorResponse), operations Wharf does not serve, and boto3', async () => {
  const body = 'Action=DescribeTargetGroups&Version=2015-12-01&TargetGroupArns.member.1=arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A123456789012%3Atargetgroup%2Fx%2F0000000000000000';
  const r = await rawCall(srv.endpoint, srv.keys, undefined, body, { service: 'elasticloadbalancing', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' } });
  assert.equal(r.status, 400);
  assert.match(r.text, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<ErrorResponse xmlns="http:\/\/elasticloadbalancing\.amazonaws\.com\/doc\/2015-12-01\/"><Error><Type>Sender<\/Type><Code>TargetGroupNotFound<\/Code><Message>One or more target groups not found<\/Message><\/Error><RequestId>[0-9a-f-]+<\/RequestId><\/ErrorResponse>$/);
  const constraint = await rawCall(srv.endpoint, srv.keys, undefined, 'Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=0', { service: 'elasticloadbalancing', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(constraint.status, 400);
  assert.match(constraint.text, /<Code>ValidationError<\/Code><Message>1 validation error detected: Value &apos;0&apos; at &apos;PageSize&apos; failed to satisfy constraint: Member must have value greater than or equal to 1<\/Message>/);

  const notServed = await elb(['describe-ssl-policies']);
  assert.match(notServed.stderr, /\(UnsupportedFeatureException\).*Wharf does not implement DescribeSSLPolicies yet\./);

  const out = await boto3(
    srv,
    [
      'elb = boto3.client("elbv2", endpoint_url=ecs.meta.endpoint_url, config=Config(retries={"max_attempts": 1}))',
      'subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]',
      'lb = elb.create_load_balancer(Name="boto", Subnets=subnets)["LoadBalancers"][0]',
      'try:',
      '    elb.describe_listeners(ListenerArns=[lb["LoadBalancerArn"].replace(":loadbalancer/", ":listener/") + "/0000000000000000"])',
      '    err = None',
      'except elb.exceptions.ListenerNotFoundException as e:',
      '    err = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]',
      'page = elb.describe_load_balancers(PageSize=1)',
      'rest = elb.describe_load_balancers(PageSize=100, Marker=page["NextMarker"])',
      'names = [l["LoadBalancerName"] for l in page["LoadBalancers"] + rest["LoadBalancers"]]',
      'out({"name": lb["LoadBalancerName"], "zones": len(lb["AvailabilityZones"]), "err": err, "pages": [len(page["LoadBalancers"]), "NextMarker" in rest], "paged": "boto" in names and len(names) == len(set(names))})',
    ].join('\n'),
  );
  assert.deepEqual(out, { name: 'boto', zones: 2, err: ['ListenerNotFound', 400], pages: [1, false], paged: true });
});
