import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { controlTestContext, rejectsWith } from './control-test-context';
import { elbv2Handlers } from './elbv2-api';
import { ensureDefaultNetwork } from './vpc';

async function elbSetup(region = 'eu-west-3') {
  const ctx = await controlTestContext({ region, accountId: '123456789012' });
  const net = await ensureDefaultNetwork(ctx);
  const elb = elbv2Handlers(ctx) as Record<string, (i: any) => Promise<any>>;
  const subnets = net.subnets.map((s) => s.SubnetId);
  return { ctx, net, elb, subnets, vpcId: net.vpc.VpcId };
}

type Setup = Awaited<ReturnType<typeof elbSetup>>;

async function alb(s: Setup, name = 'web') {
  return (await s.elb.CreateLoadBalancer!({ Name: name, Subnets: s.subnets.slice(0, 2) })).LoadBalancers[0];
}

async function httpGroup(s: Setup, name = 'tg', extra: Record<string, unknown> = {}) {
  return (await s.elb.CreateTargetGroup!({ Name: name, Protocol: 'HTTP', Port: 80, VpcId: s.vpcId, TargetType: 'ip', ...extra })).TargetGroups[0];
}

test('CreateLoadBalancer: ELB defaults, DNS name, hosted zone, an address of its own; repeated with the same settings it answers the same load balancer', async () => {
  const s = await elbSetup();
  const lb = await alb(s);
  assert.match(lb.LoadBalancerArn, /^arn:aws:elasticloadbalancing:eu-west-3:123456789012:loadbalancer\/app\/web\/[0-9a-f]{16}$/);
  assert.match(lb.DNSName, /^web-\d{1,10}\.eu-west-3\.elb\.amazonaws\.com$/);
  assert.equal(lb.CanonicalHostedZoneId, 'Z3Q77PNBQS71R4');
  assert.deepEqual(lb.State, { Code: 'active' });
  assert.equal(lb.Scheme, 'internet-facing');
  assert.equal(lb.Type, 'application');
  assert.equal(lb.IpAddressType, 'ipv4');
  assert.deepEqual(lb.SecurityGroups, [s.net.defaultGroup.GroupId], 'an application load balancer gets the default group');
  assert.deepEqual(lb.AvailabilityZones.map((z: any) => z.ZoneName), ['eu-west-3a', 'eu-west-3b']);
  // Every zone shows the one address on this host the listeners answer on.
  const addresses = lb.AvailabilityZones.map((z: any) => z.LoadBalancerAddresses?.[0]?.IpAddress);
  assert.match(addresses[0], /^10\.99\.\d+\.\d+$/);
  assert.deepEqual(addresses, [addresses[0], addresses[0]]);
  assert.match(lb.address, /^10\.99\.\d+\.1$/);
  assert.equal((await alb(s)).LoadBalancerArn, lb.LoadBalancerArn, 'idempotent');
  const other = await alb(s, 'api');
  assert.notEqual(other.address, lb.address);
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'web', Subnets: s.subnets }), 'DuplicateLoadBalancerName', "A load balancer with the same name 'web' exists, but with different settings");

  const internal = (await s.elb.CreateLoadBalancer!({ Name: 'inner', Type: 'network', Scheme: 'internal', Subnets: [s.subnets[0]] })).LoadBalancers[0];
  assert.match(internal.DNSName, /^internal-inner-[0-9a-f]{16}\.elb\.eu-west-3\.amazonaws\.com$/);
  assert.equal(internal.SecurityGroups, undefined, 'a network load balancer has no groups unless given');
  assert.equal(internal.CanonicalHostedZoneId, 'Z1CMS0P5QUZ6D5');
});

test('CreateLoadBalancer refuses bad names, too few zones, unknown subnets and groups with ELB codes', async () => {
  const s = await elbSetup();
  const two = s.subnets.slice(0, 2);
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: '-web', Subnets: two }), 'ValidationError', "The load balancer name '-web' cannot begin or end with a hyphen");
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'a'.repeat(33), Subnets: two }), 'ValidationError', `The load balancer name '${'a'.repeat(33)}' must be between 1 and 32 characters long`);
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'we_b', Subnets: two }), 'ValidationError', "The load balancer name 'we_b' can contain only alphanumeric characters and hyphens");
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'internal-x', Subnets: two }), 'ValidationError', "The load balancer name 'internal-x' cannot begin with 'internal-'");
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'one', Subnets: [s.subnets[0]] }), 'ValidationError', 'At least two subnets in two different Availability Zones must be specified');
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'x', Subnets: [s.subnets[0], 'subnet-0123456789abcdef0'] }), 'SubnetNotFound', "The subnet ID 'subnet-0123456789abcdef0' is not valid");
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'x', Subnets: two, SecurityGroups: ['sg-0000000000000000a'] }), 'InvalidSecurityGroup', "Security group 'sg-0000000000000000a' does not exist");
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'x', Subnets: two, Type: 'gateway' }), 'ValidationError', "Wharf supports load balancers of type 'application' and 'network', not 'gateway'");
  assert.deepEqual((await s.elb.DescribeLoadBalancers!({})).LoadBalancers, [], 'nothing was stored');
});

test('the region runs out of load balancer addresses: TooManyLoadBalancers', async () => {
  const s = await elbSetup();
  for (let i = 0; i < 254; i++) await s.elb.CreateLoadBalancer!({ Name: `n${i}`, Type: 'network', Subnets: [s.subnets[0]] });
  await rejectsWith(s.elb.CreateLoadBalancer!({ Name: 'one-more', Type: 'network', Subnets: [s.subnets[0]] }), 'TooManyLoadBalancers', 'The quota for the number of load balancers in this region has been reached');
});

test('DescribeLoadBalancers: by ARN, by name, pages with Marker; DeleteLoadBalancer is idempotent and honours deletion protection', async () => {
  const s = await elbSetup();
  const names = ['a', 'b', 'c'];
  const lbs = [];
  for (const n of names) lbs.push(await alb(s, n));
  const first = await s.elb.DescribeLoadBalancers!({ PageSize: 2 });
  assert.deepEqual(first.LoadBalancers.map((l: any) => l.LoadBalancerName), ['a', 'b']);
  const second = await s.elb.DescribeLoadBalancers!({ PageSize: 2, Marker: first.NextMarker });
  assert.deepEqual(second.LoadBalancers.map((l: any) => l.LoadBalancerName), ['c']);
  assert.equal(second.NextMarker, undefined);
  assert.equal((await s.elb.DescribeLoadBalancers!({ Names: ['b'] })).LoadBalancers[0].LoadBalancerArn, lbs[1].LoadBalancerArn);
  await rejectsWith(s.elb.DescribeLoadBalancers!({ Names: ['zz'] }), 'LoadBalancerNotFound', "Load balancers '[zz]' not found");
  await rejectsWith(s.elb.DescribeLoadBalancers!({ LoadBalancerArns: [lbs[0].LoadBalancerArn.replace(/[0-9a-f]{16}$/, '0000000000000000')] }), 'LoadBalancerNotFound', 'One or more load balancers not found');

  await s.elb.ModifyLoadBalancerAttributes!({ LoadBalancerArn: lbs[0].LoadBalancerArn, Attributes: [{ Key: 'deletion_protection.enabled', Value: 'true' }] });
  await rejectsWith(s.elb.DeleteLoadBalancer!({ LoadBalancerArn: lbs[0].LoadBalancerArn }), 'OperationNotPermitted', `Load balancer '${lbs[0].LoadBalancerArn}' cannot be deleted because deletion protection is enabled`);
  await s.elb.DeleteLoadBalancer!({ LoadBalancerArn: lbs[1].LoadBalancerArn });
  await s.elb.DeleteLoadBalancer!({ LoadBalancerArn: lbs[1].LoadBalancerArn });
  assert.deepEqual((await s.elb.DescribeLoadBalancers!({})).LoadBalancers.map((l: any) => l.LoadBalancerName), ['a', 'c']);
});

test('load balancer attributes: every key ELB shows for the type, with defaults; values and unknown keys are checked', async () => {
  const s = await elbSetup();
  const lb = await alb(s);
  const attrs = Object.fromEntries((await s.elb.DescribeLoadBalancerAttributes!({ LoadBalancerArn: lb.LoadBalancerArn })).Attributes.map((a: any) => [a.Key, a.Value]));
  assert.equal(attrs['idle_timeout.timeout_seconds'], '60');
  assert.equal(attrs['routing.http2.enabled'], 'true');
  assert.equal(attrs['deletion_protection.enabled'], 'false');
  assert.equal(attrs['load_balancing.cross_zone.enabled'], undefined, 'a network-only key');
  const out = await s.elb.ModifyLoadBalancerAttributes!({ LoadBalancerArn: lb.LoadBalancerArn, Attributes: [{ Key: 'idle_timeout.timeout_seconds', Value: '120' }] });
  assert.ok(out.Attributes.some((a: any) => a.Key === 'idle_timeout.timeout_seconds' && a.Value === '120'));
  await rejectsWith(s.elb.ModifyLoadBalancerAttributes!({ LoadBalancerArn: lb.LoadBalancerArn, Attributes: [{ Key: 'colour', Value: 'blue' }] }), 'ValidationError', "Load balancer attribute key 'colour' is not recognized");
  await rejectsWith(
    s.elb.ModifyLoadBalancerAttributes!({ LoadBalancerArn: lb.LoadBalancerArn, Attributes: [{ Key: 'idle_timeout.timeout_seconds', Value: '0' }] }),
    'ValidationError',
    "Load balancer attribute 'idle_timeout.timeout_seconds' must be an integer from 1 to 4000, not '0'",
  );
});

test('CreateTargetGroup: per-protocol health check defaults, limits, duplicates; DeleteTargetGroup while in use is ResourceInUse', async () => {
  const s = await elbSetup();
  const tg = await httpGroup(s);
  assert.match(tg.TargetGroupArn, /^arn:aws:elasticloadbalancing:eu-west-3:123456789012:targetgroup\/tg\/[0-9a-f]{16}$/);
  assert.deepEqual(
    [tg.HealthCheckProtocol, tg.HealthCheckPort, tg.HealthCheckPath, tg.HealthCheckIntervalSeconds, tg.HealthCheckTimeoutSeconds, tg.HealthyThresholdCount, tg.UnhealthyThresholdCount, tg.Matcher.HttpCode],
    ['HTTP', 'traffic-port', '/', 30, 5, 5, 2, '200'],
  );
  const tcp = (await s.elb.CreateTargetGroup!({ Name: 'tcp', Protocol: 'TCP', Port: 6379, VpcId: s.vpcId })).TargetGroups[0];
  assert.deepEqual([tcp.TargetType, tcp.HealthCheckProtocol, tcp.HealthCheckTimeoutSeconds, tcp.HealthCheckPath, tcp.Matcher], ['instance', 'TCP', 10, undefined, undefined]);
  assert.equal((await httpGroup(s)).TargetGroupArn, tg.TargetGroupArn, 'same settings: the same group');
  await rejectsWith(httpGroup(s, 'tg', { Port: 81 }), 'DuplicateTargetGroupName', "A target group with the same name 'tg' exists, but with different settings");
  await rejectsWith(httpGroup(s, 'x', { HealthCheckIntervalSeconds: 5, HealthCheckTimeoutSeconds: 5 }), 'ValidationError', 'Health check interval must be greater than the timeout.');
  // A network (TCP) group's timeout may equal its interval: interval 10 with TCP's default timeout 10.
  const tcp10 = (await s.elb.CreateTargetGroup!({ Name: 'tcp10', Protocol: 'TCP', Port: 80, VpcId: s.vpcId, HealthCheckIntervalSeconds: 10 })).TargetGroups[0];
  assert.deepEqual([tcp10.HealthCheckIntervalSeconds, tcp10.HealthCheckTimeoutSeconds], [10, 10]);
  const tcp5 = (await s.elb.ModifyTargetGroup!({ TargetGroupArn: tcp10.TargetGroupArn, HealthCheckIntervalSeconds: 5, HealthCheckTimeoutSeconds: 5 })).TargetGroups[0];
  assert.deepEqual([tcp5.HealthCheckIntervalSeconds, tcp5.HealthCheckTimeoutSeconds], [5, 5]);
  await rejectsWith(
    s.elb.ModifyTargetGroup!({ TargetGroupArn: tcp10.TargetGroupArn, HealthCheckTimeoutSeconds: 6 }),
    'ValidationError',
    "Health check timeout '6' must be smaller than or equal to the interval '5'",
  );
  await rejectsWith(s.elb.ModifyTargetGroup!({ TargetGroupArn: tg.TargetGroupArn, HealthCheckIntervalSeconds: 5 }), 'ValidationError', 'Health check interval must be greater than the timeout.');
  await rejectsWith(httpGroup(s, 'x', { Matcher: { HttpCode: '200-600' } }), 'ValidationError', "Health check matcher HTTP code '200-600' must be values or ranges between 200 and 499");
  await rejectsWith(httpGroup(s, 'x', { VpcId: 'vpc-0000000000000000a' }), 'ValidationError', "The VPC ID 'vpc-0000000000000000a' is not found");
  await rejectsWith(httpGroup(s, 'x', { Protocol: 'UDP' }), 'ValidationError', "Wharf supports target groups with the HTTP, HTTPS or TCP protocol, not 'UDP'");
  await rejectsWith(httpGroup(s, 'x', { TargetType: 'lambda' }), 'ValidationError', "Wharf supports target types 'ip' and 'instance', not 'lambda'");

  const modified = (await s.elb.ModifyTargetGroup!({ TargetGroupArn: tg.TargetGroupArn, HealthCheckPath: '/health', Matcher: { HttpCode: '200-299' } })).TargetGroups[0];
  assert.deepEqual([modified.HealthCheckPath, modified.Matcher.HttpCode, modified.HealthCheckIntervalSeconds], ['/health', '200-299', 30]);

  const lb = await alb(s);
  await s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn }] });
  const described = (await s.elb.DescribeTargetGroups!({ LoadBalancerArn: lb.LoadBalancerArn })).TargetGroups;
  assert.deepEqual(described.map((g: any) => [g.TargetGroupName, g.LoadBalancerArns]), [['tg', [lb.LoadBalancerArn]]]);
  await rejectsWith(s.elb.DeleteTargetGroup!({ TargetGroupArn: tg.TargetGroupArn }), 'ResourceInUse', `Target group '${tg.TargetGroupArn}' is currently in use by a listener or a rule`);
  await s.elb.DeleteTargetGroup!({ TargetGroupArn: tcp.TargetGroupArn });
  await rejectsWith(s.elb.DescribeTargetGroups!({ TargetGroupArns: [tcp.TargetGroupArn] }), 'TargetGroupNotFound', 'One or more target groups not found');
});

test('target group attributes: defaults by protocol; the data plane settings are range-checked', async () => {
  const s = await elbSetup();
  const tg = await httpGroup(s);
  const get = async (arn: string) => Object.fromEntries((await s.elb.DescribeTargetGroupAttributes!({ TargetGroupArn: arn })).Attributes.map((a: any) => [a.Key, a.Value]));
  const attrs = await get(tg.TargetGroupArn);
  assert.deepEqual(
    [attrs['deregistration_delay.timeout_seconds'], attrs['slow_start.duration_seconds'], attrs['stickiness.enabled'], attrs['stickiness.type'], attrs['stickiness.lb_cookie.duration_seconds'], attrs['load_balancing.algorithm.type']],
    ['300', '0', 'false', 'lb_cookie', '86400', 'round_robin'],
  );
  const set = (Key: string, Value: string) => s.elb.ModifyTargetGroupAttributes!({ TargetGroupArn: tg.TargetGroupArn, Attributes: [{ Key, Value }] });
  await set('deregistration_delay.timeout_seconds', '0');
  await set('slow_start.duration_seconds', '30');
  await set('load_balancing.algorithm.type', 'least_outstanding_requests');
  const after = await get(tg.TargetGroupArn);
  assert.deepEqual([after['deregistration_delay.timeout_seconds'], after['slow_start.duration_seconds'], after['load_balancing.algorithm.type']], ['0', '30', 'least_outstanding_requests']);
  await rejectsWith(set('deregistration_delay.timeout_seconds', '3601'), 'ValidationError', "Target group attribute 'deregistration_delay.timeout_seconds' must be an integer from 0 to 3600, not '3601'");
  await rejectsWith(set('slow_start.duration_seconds', '10'), 'ValidationError', "Target group attribute 'slow_start.duration_seconds' must be 0 or an integer from 30 to 900, not '10'");
  await rejectsWith(set('stickiness.type', 'source_ip'), 'ValidationError', "Target group attribute 'stickiness.type' must be 'lb_cookie' for a HTTP target group (Wharf has no app_cookie stickiness)");
  await rejectsWith(set('proxy_protocol_v2.enabled', 'true'), 'ValidationError', "Target group attribute key 'proxy_protocol_v2.enabled' is not recognized");
  const tcp = (await s.elb.CreateTargetGroup!({ Name: 'tcp', Protocol: 'TCP', Port: 6379, VpcId: s.vpcId })).TargetGroups[0];
  const tcpAttrs = await get(tcp.TargetGroupArn);
  assert.equal(tcpAttrs['stickiness.type'], 'source_ip');
  // Instance targets included: the data plane does not keep the client's address, and says so.
  assert.equal(tcpAttrs['preserve_client_ip.enabled'], 'false');
  const setTcp = (Key: string, Value: string) => s.elb.ModifyTargetGroupAttributes!({ TargetGroupArn: tcp.TargetGroupArn, Attributes: [{ Key, Value }] });
  await rejectsWith(setTcp('preserve_client_ip.enabled', 'true'), 'ValidationError', "Wharf's load balancers do not preserve client IP addresses (targets see the load balancer's): preserve_client_ip.enabled cannot be true");
  await setTcp('deregistration_delay.connection_termination.enabled', 'true');
  await setTcp('target_health_state.unhealthy.connection_termination.enabled', 'false');
  const after2 = await get(tcp.TargetGroupArn);
  assert.deepEqual([after2['deregistration_delay.connection_termination.enabled'], after2['target_health_state.unhealthy.connection_termination.enabled']], ['true', 'false']);
});

/** A self-signed certificate and its key in one PEM file. */
function certificateFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-cert-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=lb.test', '-days', '1', '-keyout', `${dir}/k`, '-out', `${dir}/c`], { stdio: 'ignore' });
  fs.writeFileSync(`${dir}/lb.pem`, fs.readFileSync(`${dir}/c`, 'utf8') + fs.readFileSync(`${dir}/k`, 'utf8'));
  return `${dir}/lb.pem`;
}

test('listeners: protocols by load balancer type, DuplicateListener, HTTPS certificates from PEM files, one load balancer per target group', async () => {
  const s = await elbSetup();
  const lb = await alb(s);
  const tg = await httpGroup(s);
  const forward = [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn }];
  const l = (await s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: forward })).Listeners[0];
  assert.match(l.ListenerArn, /:listener\/app\/web\/[0-9a-f]{16}\/[0-9a-f]{16}$/);
  assert.deepEqual(l.DefaultActions[0].ForwardConfig.TargetGroups, [{ TargetGroupArn: tg.TargetGroupArn, Weight: 1 }]);
  await rejectsWith(
    s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '200' } }] }),
    'DuplicateListener',
    'A listener already exists on this port for this load balancer',
  );
  await rejectsWith(s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'TCP', Port: 81, DefaultActions: forward }), 'IncompatibleProtocols', "Listener protocol 'TCP' is not supported with a load balancer of type 'application'");
  const missing = '/nonexistent/cert.pem';
  await rejectsWith(
    s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTPS', Port: 443, Certificates: [{ CertificateArn: missing }], DefaultActions: forward }),
    'CertificateNotFound',
    `Certificate '${missing}' not found: Wharf reads certificates from a PEM file (chain and private key) named by absolute path or file:// URL`,
  );
  const pem = certificateFile();
  const https = (await s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTPS', Port: 443, Certificates: [{ CertificateArn: `file://${pem}` }], DefaultActions: forward })).Listeners[0];
  assert.deepEqual([https.SslPolicy, https.Certificates], ['ELBSecurityPolicy-2016-08', [{ CertificateArn: `file://${pem}` }]]);
  fs.rmSync(path.dirname(pem), { recursive: true, force: true });

  const tcpGroup = (await s.elb.CreateTargetGroup!({ Name: 'tcp', Protocol: 'TCP', Port: 6379, VpcId: s.vpcId })).TargetGroups[0];
  await rejectsWith(
    s.elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTP', Port: 82, DefaultActions: [{ Type: 'forward', TargetGroupArn: tcpGroup.TargetGroupArn }] }),
    'InvalidConfigurationRequest',
    `The target group '${tcpGroup.TargetGroupArn}' has protocol TCP, which application load balancers cannot forward to`,
  );
  const other = await alb(s, 'other');
  await rejectsWith(
    s.elb.CreateListener!({ LoadBalancerArn: other.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: forward }),
    'TargetGroupAssociationLimit',
    `The following target groups cannot be associated with more than one load balancer: ${tg.TargetGroupArn}`,
  );
  await rejectsWith(
    s.elb.CreateListener!({ LoadBalancerArn: other.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: tg.TargetGroupArn, Weight: 1000 }] } }] }),
    'ValidationError',
    "Target group weight '1000' must be from 0 to 999",
  );

  const moved = (await s.elb.ModifyListener!({ ListenerArn: l.ListenerArn, Port: 8080 })).Listeners[0];
  assert.equal(moved.Port, 8080);
  await rejectsWith(s.elb.ModifyListener!({ ListenerArn: l.ListenerArn, Port: 443 }), 'DuplicateListener', 'A listener already exists on this port for this load balancer');
  assert.deepEqual((await s.elb.DescribeListeners!({ LoadBalancerArn: lb.LoadBalancerArn })).Listeners.map((x: any) => x.Port), [8080, 443]);
  await s.elb.DeleteListener!({ ListenerArn: l.ListenerArn });
  await rejectsWith(s.elb.DescribeListeners!({ ListenerArns: [l.ListenerArn] }), 'ListenerNotFound', 'One or more listeners not found');
});
