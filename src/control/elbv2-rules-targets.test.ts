import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCluster } from './clusters';
import { registerContainerInstance } from './container-instances';
import { controlTestContext, rejectsWith } from './control-test-context';
import { elbv2Handlers } from './elbv2-api';
import { elbIdOf, healthKey, type TargetHealthRecord } from './elbv2-records';
import { ensureDefaultNetwork } from './vpc';

async function setup() {
  const ctx = await controlTestContext();
  const net = await ensureDefaultNetwork(ctx);
  const elb = elbv2Handlers(ctx) as Record<string, (i: any) => Promise<any>>;
  const lb = (await elb.CreateLoadBalancer!({ Name: 'web', Subnets: net.subnets.slice(0, 2).map((s) => s.SubnetId) })).LoadBalancers[0];
  const tg = (await elb.CreateTargetGroup!({ Name: 'tg', Protocol: 'HTTP', Port: 80, VpcId: net.vpc.VpcId, TargetType: 'ip' })).TargetGroups[0];
  const forward = [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn }];
  return { ctx, net, elb, lb, tg, forward };
}

type Setup = Awaited<ReturnType<typeof setup>>;

async function listener(s: Setup) {
  return (await s.elb.CreateListener!({ LoadBalancerArn: s.lb.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: s.forward })).Listeners[0];
}

/** An address in the VPC's first subnet. */
const ip = (s: Setup, n: number) => s.net.subnets[0]!.CidrBlock.replace(/\.0\/20$/, `.${n}`);

test('rules: both condition forms, the default rule last, PriorityInUse, SetRulePriorities swaps, the default rule cannot be changed', async () => {
  const s = await setup();
  const l = await listener(s);
  const legacy = (await s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 10, Conditions: [{ Field: 'path-pattern', Values: ['/api/*'] }], Actions: s.forward })).Rules[0];
  assert.deepEqual(legacy.Conditions, [{ Field: 'path-pattern', Values: ['/api/*'], PathPatternConfig: { Values: ['/api/*'] } }]);
  const config = (
    await s.elb.CreateRule!({
      ListenerArn: l.ListenerArn,
      Priority: 5,
      Conditions: [
        { Field: 'host-header', HostHeaderConfig: { Values: ['*.example.com'] } },
        { Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-Env', Values: ['blue'] } },
      ],
      Actions: [{ Type: 'redirect', RedirectConfig: { StatusCode: 'HTTP_301', Protocol: 'HTTPS', Port: '443' } }],
    })
  ).Rules[0];
  assert.deepEqual(config.Actions[0].RedirectConfig, { StatusCode: 'HTTP_301', Protocol: 'HTTPS', Host: '#{host}', Port: '443', Path: '/#{path}', Query: '#{query}' });
  await rejectsWith(s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 5, Conditions: [{ Field: 'path-pattern', Values: ['/x'] }], Actions: s.forward }), 'PriorityInUse', "Priority '5' is currently in use");
  await rejectsWith(
    s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 7, Conditions: [{ Field: 'query-string', QueryStringConfig: { Values: [{ Key: 'a', Value: 'b' }] } }], Actions: s.forward }),
    'ValidationError',
    "Wharf does not support the condition setting 'QueryStringConfig': use path-pattern, host-header or http-header",
  );

  const rules = (await s.elb.DescribeRules!({ ListenerArn: l.ListenerArn })).Rules;
  assert.deepEqual(rules.map((r: any) => [r.Priority, r.IsDefault]), [['5', false], ['10', false], ['default', true]]);
  const dflt = rules[2];
  assert.deepEqual([dflt.Conditions, dflt.Actions], [[], l.DefaultActions]);
  assert.deepEqual((await s.elb.DescribeRules!({ RuleArns: [dflt.RuleArn] })).Rules[0].Priority, 'default', 'the default rule is found by its ARN');
  await rejectsWith(s.elb.DeleteRule!({ RuleArn: dflt.RuleArn }), 'OperationNotPermitted', 'Default rule cannot be deleted');

  const swapped = await s.elb.SetRulePriorities!({ RulePriorities: [{ RuleArn: legacy.RuleArn, Priority: 5 }, { RuleArn: config.RuleArn, Priority: 10 }] });
  assert.deepEqual(swapped.Rules.map((r: any) => r.Priority), ['5', '10']);
  await rejectsWith(s.elb.SetRulePriorities!({ RulePriorities: [{ RuleArn: legacy.RuleArn, Priority: 10 }] }), 'PriorityInUse', "Priority '10' is currently in use");
  const modified = (await s.elb.ModifyRule!({ RuleArn: legacy.RuleArn, Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/v2/*', '/v3/*'] } }] })).Rules[0];
  assert.deepEqual(modified.Conditions[0].Values, ['/v2/*', '/v3/*']);
  await s.elb.DeleteRule!({ RuleArn: legacy.RuleArn });
  await rejectsWith(s.elb.DescribeRules!({ RuleArns: [legacy.RuleArn] }), 'RuleNotFound', 'One or more rules not found');

  // Deleting the load balancer deletes its listeners and their rules.
  await s.elb.DeleteLoadBalancer!({ LoadBalancerArn: s.lb.LoadBalancerArn });
  await rejectsWith(s.elb.DescribeRules!({ RuleArns: [config.RuleArn] }), 'RuleNotFound', 'One or more rules not found');
  await rejectsWith(s.elb.DescribeListeners!({ ListenerArns: [l.ListenerArn] }), 'ListenerNotFound', 'One or more listeners not found');
  assert.equal(s.ctx.state.elbRules.size + s.ctx.state.elbListeners.size, 0);
});

test('rules are only for HTTP and HTTPS listeners', async () => {
  const s = await setup();
  const nlb = (await s.elb.CreateLoadBalancer!({ Name: 'net', Type: 'network', Subnets: [s.net.subnets[0]!.SubnetId] })).LoadBalancers[0];
  const tcp = (await s.elb.CreateTargetGroup!({ Name: 'tcp', Protocol: 'TCP', Port: 5432, VpcId: s.net.vpc.VpcId, TargetType: 'ip' })).TargetGroups[0];
  await rejectsWith(
    s.elb.CreateListener!({ LoadBalancerArn: nlb.LoadBalancerArn, Protocol: 'TCP', Port: 5432, DefaultActions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '200' } }] }),
    'InvalidLoadBalancerAction',
    "The action type 'fixed-response' is not supported by network load balancers",
  );
  const l = (await s.elb.CreateListener!({ LoadBalancerArn: nlb.LoadBalancerArn, Protocol: 'TCP', Port: 5432, DefaultActions: [{ Type: 'forward', TargetGroupArn: tcp.TargetGroupArn }] })).Listeners[0];
  await rejectsWith(
    s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 1, Conditions: [{ Field: 'path-pattern', Values: ['/'] }], Actions: [{ Type: 'forward', TargetGroupArn: tcp.TargetGroupArn }] }),
    'InvalidConfigurationRequest',
    `Listener '${l.ListenerArn}' is a TCP listener: rules can be added only to HTTP and HTTPS listeners`,
  );
});

test('RegisterTargets: ip targets must be in the VPC, instance targets must be container instances; the port defaults to the group port', async () => {
  const s = await setup();
  await rejectsWith(s.elb.RegisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: '192.0.2.1' }] }), 'InvalidTarget', `The IP address '192.0.2.1' is not within the CIDR block of the target group's VPC '${s.net.vpc.VpcId}' (${s.net.vpc.CidrBlock})`);
  await rejectsWith(s.elb.RegisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: 'web.local' }] }), 'ValidationError', "The IP address 'web.local' is not a valid IPv4 address");
  await s.elb.RegisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: ip(s, 5) }, { Id: ip(s, 6), Port: 8080 }] });
  const health = (await s.elb.DescribeTargetHealth!({ TargetGroupArn: s.tg.TargetGroupArn })).TargetHealthDescriptions;
  assert.deepEqual(
    health.map((h: any) => [h.Target.Id, h.Target.Port, h.Target.AvailabilityZone, h.HealthCheckPort]),
    [
      [ip(s, 5), 80, s.net.subnets[0]!.AvailabilityZone, '80'],
      [ip(s, 6), 8080, s.net.subnets[0]!.AvailabilityZone, '8080'],
    ],
  );

  const byInstance = (await s.elb.CreateTargetGroup!({ Name: 'inst', Protocol: 'HTTP', Port: 80, VpcId: s.net.vpc.VpcId })).TargetGroups[0];
  await rejectsWith(s.elb.RegisterTargets!({ TargetGroupArn: byInstance.TargetGroupArn, Targets: [{ Id: 'i-0123456789abcdef0' }] }), 'InvalidTarget', "The following targets are not valid instances in this region: 'i-0123456789abcdef0'");
  await createCluster(s.ctx, { clusterName: 'c1' });
  await registerContainerInstance(s.ctx, { cluster: 'c1', instanceIdentityDocument: JSON.stringify({ instanceId: 'i-0123456789abcdef0', availabilityZone: 'eu-west-3a' }) });
  await s.elb.RegisterTargets!({ TargetGroupArn: byInstance.TargetGroupArn, Targets: [{ Id: 'i-0123456789abcdef0', Port: 32768 }] });
  // A Wharf host has no EC2 instance: its container instance id names it.
  const wharfHost = (await registerContainerInstance(s.ctx, { cluster: 'c1' })).containerInstance!.containerInstanceArn!.split('/').pop()!;
  await s.elb.RegisterTargets!({ TargetGroupArn: byInstance.TargetGroupArn, Targets: [{ Id: wharfHost, Port: 32769 }] });
  assert.deepEqual((await s.elb.DescribeTargetHealth!({ TargetGroupArn: byInstance.TargetGroupArn })).TargetHealthDescriptions.map((d: any) => d.Target.Id), ['i-0123456789abcdef0', wharfHost]);
  await s.elb.DeregisterTargets!({ TargetGroupArn: byInstance.TargetGroupArn, Targets: [{ Id: wharfHost, Port: 32769 }] });
  assert.deepEqual((await s.elb.DescribeTargetHealth!({ TargetGroupArn: byInstance.TargetGroupArn })).TargetHealthDescriptions[0].Target, { Id: 'i-0123456789abcdef0', Port: 32768 });

  await s.elb.DeregisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: ip(s, 5) }] });
  await rejectsWith(
    s.elb.DeregisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: ip(s, 6) }] }),
    'InvalidTarget',
    `The target '${ip(s, 6)}' on port 80 is not registered in target group '${s.tg.TargetGroupArn}'`,
  );
});

test('DescribeTargetHealth: unused while no load balancer uses the group, then initial, then the health record; draining after deregistration; NotRegistered when asked by name', async () => {
  const s = await setup();
  const a = ip(s, 10);
  await s.elb.RegisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: a }] });
  const stateOf = async (targets?: unknown[]) => (await s.elb.DescribeTargetHealth!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: targets })).TargetHealthDescriptions.map((d: any) => [d.Target.Id, d.TargetHealth]);
  assert.deepEqual(await stateOf(), [[a, { State: 'unused', Reason: 'Target.NotInUse', Description: 'Target group is not configured to receive traffic from the load balancer' }]]);

  await listener(s);
  assert.deepEqual(await stateOf(), [[a, { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' }]]);

  // The load balancer controller writes what HAProxy sees.
  const tgId = elbIdOf(s.tg.TargetGroupArn);
  const write = async (h: Omit<TargetHealthRecord, 'Id' | 'Port' | 'updatedAt'>) => {
    s.ctx.clock.advance(1000);
    const rec: TargetHealthRecord = { Id: a, Port: 80, updatedAt: s.ctx.clock.now(), ...h };
    await s.ctx.state.waitFor(await s.ctx.store.txn([{ op: 'put', key: healthKey(tgId, a, 80), value: rec }]));
  };
  await write({ State: 'healthy' });
  assert.deepEqual(await stateOf(), [[a, { State: 'healthy' }]]);
  await write({ State: 'unhealthy', Reason: 'Target.ResponseCodeMismatch', Description: 'Health checks failed with these codes: [500]' });
  assert.deepEqual(await stateOf(), [[a, { State: 'unhealthy', Reason: 'Target.ResponseCodeMismatch', Description: 'Health checks failed with these codes: [500]' }]]);

  await s.elb.DeregisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: a }] });
  await write({ State: 'draining', Reason: 'Target.DeregistrationInProgress', Description: 'Target deregistration is in progress' });
  const draining = [[a, { State: 'draining', Reason: 'Target.DeregistrationInProgress', Description: 'Target deregistration is in progress' }]];
  assert.deepEqual(await stateOf(), draining);
  assert.deepEqual(await stateOf([{ Id: a }]), draining);
  assert.deepEqual(await stateOf([{ Id: ip(s, 11) }]), [[ip(s, 11), { State: 'unused', Reason: 'Target.NotRegistered', Description: 'Target is not registered to the target group' }]]);

  await s.elb.ModifyTargetGroup!({ TargetGroupArn: s.tg.TargetGroupArn, HealthCheckEnabled: false });
  await s.elb.RegisterTargets!({ TargetGroupArn: s.tg.TargetGroupArn, Targets: [{ Id: ip(s, 12) }] });
  assert.deepEqual((await stateOf([{ Id: ip(s, 12) }]))[0][1], { State: 'unavailable', Reason: 'Target.HealthCheckDisabled', Description: 'Health checks disabled' });
});

test('tags on load balancers, target groups, listeners and rules; TooManyTags at 50; DuplicateTagKeys', async () => {
  const s = await setup();
  const l = await listener(s);
  const rule = (await s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 1, Conditions: [{ Field: 'path-pattern', Values: ['/a'] }], Actions: s.forward, Tags: [{ Key: 'r', Value: '1' }] })).Rules[0];
  const arns = [s.lb.LoadBalancerArn, s.tg.TargetGroupArn, l.ListenerArn, rule.RuleArn];
  await s.elb.AddTags!({ ResourceArns: arns, Tags: [{ Key: 'team', Value: 'blue' }] });
  const described = (await s.elb.DescribeTags!({ ResourceArns: arns })).TagDescriptions;
  assert.deepEqual(
    described.map((d: any) => d.Tags.map((t: any) => t.Key)),
    [['team'], ['team'], ['team'], ['r', 'team']],
  );
  await s.elb.RemoveTags!({ ResourceArns: [rule.RuleArn], TagKeys: ['r'] });
  assert.deepEqual((await s.elb.DescribeTags!({ ResourceArns: [rule.RuleArn] })).TagDescriptions[0].Tags, [{ Key: 'team', Value: 'blue' }]);
  const many = Array.from({ length: 49 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
  await s.elb.AddTags!({ ResourceArns: [s.lb.LoadBalancerArn], Tags: many });
  await rejectsWith(s.elb.AddTags!({ ResourceArns: [s.lb.LoadBalancerArn], Tags: [{ Key: 'one-more' }] }), 'TooManyTags', 'The quota for the number of tags that can be assigned to a resource has been reached (50)');
  await rejectsWith(s.elb.AddTags!({ ResourceArns: [s.tg.TargetGroupArn], Tags: [{ Key: 'a' }, { Key: 'a' }] }), 'DuplicateTagKeys', "Tag key 'a' is duplicated");
  await rejectsWith(s.elb.AddTags!({ ResourceArns: [s.tg.TargetGroupArn, s.lb.LoadBalancerArn.replace(/[0-9a-f]{16}$/, '0000000000000000')], Tags: [{ Key: 'x' }] }), 'LoadBalancerNotFound', 'One or more load balancers not found');
  assert.deepEqual((await s.elb.DescribeTags!({ ResourceArns: [s.tg.TargetGroupArn] })).TagDescriptions[0].Tags.map((t: any) => t.Key), ['team'], 'all or nothing');
});

test('a multi-line fixed-response body is accepted as given; a control character where no request can carry one is a ValidationError', async () => {
  const s = await setup();
  const l = await listener(s);
  const body = '{\n  "ok": true\r\n\t"a": "b\\c %s"\n}';
  const rule = (
    await s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 1, Conditions: [{ Field: 'path-pattern', Values: ['/x'] }], Actions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '200', ContentType: 'application/json', MessageBody: body } }] })
  ).Rules[0];
  assert.equal(rule.Actions[0].FixedResponseConfig.MessageBody, body);
  const path = [{ Field: 'path-pattern', Values: ['/y'] }];
  await rejectsWith(
    s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 2, Conditions: [{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-A', Values: ['a\nb'] } }], Actions: s.forward }),
    'ValidationError',
    "HTTP header value 'a\nb' contains characters that are not allowed",
  );
  await rejectsWith(
    s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 2, Conditions: path, Actions: [{ Type: 'redirect', RedirectConfig: { StatusCode: 'HTTP_302', Host: 'a\u0000.example.com' } }] }),
    'ValidationError',
    "Redirect host 'a\u0000.example.com' contains characters that are not allowed",
  );
  await rejectsWith(s.elb.ModifyTargetGroup!({ TargetGroupArn: s.tg.TargetGroupArn, HealthCheckPath: '/a\r\nb' }), 'ValidationError', "Health check path '/a\r\nb' contains characters that are not allowed");
});

test('a redirect that changes none of protocol, host, port and path is InvalidLoadBalancerAction (a loop) in CreateRule, ModifyRule, CreateListener and ModifyListener', async () => {
  const s = await setup();
  const l = await listener(s);
  const loop = 'The redirect configuration is not valid because it creates a loop.';
  const redirect = (c: Record<string, string>) => [{ Type: 'redirect', RedirectConfig: { StatusCode: 'HTTP_301', ...c } }];
  const path = [{ Field: 'path-pattern', Values: ['/a'] }];
  await rejectsWith(s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 1, Conditions: path, Actions: redirect({}) }), 'InvalidLoadBalancerAction', loop);
  // The listener's own protocol and port written out change nothing either; a new query alone does not count.
  await rejectsWith(s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 1, Conditions: path, Actions: redirect({ Protocol: 'HTTP', Port: '80', Query: 'x=1' }) }), 'InvalidLoadBalancerAction', loop);
  const rule = (await s.elb.CreateRule!({ ListenerArn: l.ListenerArn, Priority: 1, Conditions: path, Actions: redirect({ Path: '/b' }) })).Rules[0];
  await rejectsWith(s.elb.ModifyRule!({ RuleArn: rule.RuleArn, Actions: redirect({ Host: '#{host}' }) }), 'InvalidLoadBalancerAction', loop);
  await s.elb.ModifyRule!({ RuleArn: rule.RuleArn, Actions: redirect({ Protocol: 'HTTPS' }) });
  await s.elb.ModifyRule!({ RuleArn: rule.RuleArn, Actions: redirect({ Host: 'www.#{host}' }) });
  await rejectsWith(s.elb.CreateListener!({ LoadBalancerArn: s.lb.LoadBalancerArn, Protocol: 'HTTP', Port: 8080, DefaultActions: redirect({ Port: '8080' }) }), 'InvalidLoadBalancerAction', loop);
  const other = (await s.elb.CreateListener!({ LoadBalancerArn: s.lb.LoadBalancerArn, Protocol: 'HTTP', Port: 8080, DefaultActions: redirect({ Port: '80' }) })).Listeners[0];
  await rejectsWith(s.elb.ModifyListener!({ ListenerArn: l.ListenerArn, DefaultActions: redirect({ Path: '/#{path}' }) }), 'InvalidLoadBalancerAction', loop);
  // Moving the listener to the port its redirect names makes that redirect a loop.
  await s.elb.DeleteListener!({ ListenerArn: l.ListenerArn });
  await rejectsWith(s.elb.ModifyListener!({ ListenerArn: other.ListenerArn, Port: 80 }), 'InvalidLoadBalancerAction', loop);
});

test('a string that is not an ARN of the kind a parameter takes is a ValidationError in every operation; a well-formed unknown ARN is still *NotFound', async () => {
  const s = await setup();
  const l = await listener(s);
  const cases: [string, Record<string, unknown>, string][] = [
    ['DescribeTargetGroups', { TargetGroupArns: ['notanarn'] }, "'notanarn' is not a valid target group ARN"],
    ['DescribeTargetGroups', { LoadBalancerArn: 'garbage' }, "'garbage' is not a valid load balancer ARN"],
    ['DeleteListener', { ListenerArn: 'garbage' }, "'garbage' is not a valid listener ARN"],
    ['DescribeLoadBalancers', { LoadBalancerArns: [s.lb.LoadBalancerArn, 'x'] }, "'x' is not a valid load balancer ARN"],
    // An ARN of another kind is not one of this kind.
    ['DescribeTargetHealth', { TargetGroupArn: l.ListenerArn }, `'${l.ListenerArn}' is not a valid target group ARN`],
    ['DescribeRules', { ListenerArn: s.lb.LoadBalancerArn }, `'${s.lb.LoadBalancerArn}' is not a valid listener ARN`],
    ['ModifyRule', { RuleArn: 'r', Actions: s.forward }, "'r' is not a valid listener rule ARN"],
    ['SetRulePriorities', { RulePriorities: [{ RuleArn: 'r', Priority: 3 }] }, "'r' is not a valid listener rule ARN"],
    ['CreateListener', { LoadBalancerArn: s.lb.LoadBalancerArn, Protocol: 'HTTP', Port: 81, DefaultActions: [{ Type: 'forward', TargetGroupArn: 'tg' }] }, "'tg' is not a valid target group ARN"],
    ['ModifyListener', { ListenerArn: l.ListenerArn, DefaultActions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: 'tg2' }] } }] }, "'tg2' is not a valid target group ARN"],
    ['RegisterTargets', { TargetGroupArn: 'tg', Targets: [{ Id: ip(s, 10) }] }, "'tg' is not a valid target group ARN"],
    ['ModifyLoadBalancerAttributes', { LoadBalancerArn: 'lb', Attributes: [] }, "'lb' is not a valid load balancer ARN"],
    ['AddTags', { ResourceArns: ['what'], Tags: [{ Key: 'a', Value: 'b' }] }, "'what' is not a valid load balancer, target group, listener or rule ARN"],
  ];
  for (const [op, input, message] of cases) await rejectsWith(s.elb[op]!(input), 'ValidationError', message);
  const unknown = s.tg.TargetGroupArn.replace(/\/[0-9a-f]+$/, '/0000000000000000');
  await rejectsWith(s.elb.DescribeTargetGroups!({ TargetGroupArns: [unknown] }), 'TargetGroupNotFound', 'One or more target groups not found');
  await rejectsWith(s.elb.DeleteListener!({ ListenerArn: `${l.ListenerArn.slice(0, -4)}0000` }), 'ListenerNotFound', 'One or more listeners not found');
});
