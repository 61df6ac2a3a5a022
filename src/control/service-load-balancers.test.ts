import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { elbv2Handlers } from './elbv2-api';
import { createService, describeServices, updateService } from './services';
import { registerTaskDefinition } from './task-definitions';
import { ensureDefaultNetwork } from './vpc';

const app = { name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 80 }] };

/**
 * A cluster, bridge/host/awsvpc task definitions, and an application load balancer whose listener
 * forwards to an ip group (default action) and to an instance group (a rule); a third group is
 * used by no load balancer.
 */
async function context() {
  const ctx = await controlTestContext();
  const net = await ensureDefaultNetwork(ctx);
  await createCluster(ctx, { clusterName: 'c' });
  await registerTaskDefinition(ctx, { family: 'bridge', containerDefinitions: [app] }, TEST_CALLER);
  await registerTaskDefinition(ctx, { family: 'host', networkMode: 'host', containerDefinitions: [app] }, TEST_CALLER);
  await registerTaskDefinition(ctx, { family: 'vpc', networkMode: 'awsvpc', containerDefinitions: [app] }, TEST_CALLER);
  const elb = elbv2Handlers(ctx) as Record<string, (i: any) => Promise<any>>;
  const lb = (await elb.CreateLoadBalancer!({ Name: 'web', Subnets: net.subnets.slice(0, 2).map((s) => s.SubnetId) })).LoadBalancers[0];
  const group = async (Name: string, TargetType: 'ip' | 'instance') =>
    (await elb.CreateTargetGroup!({ Name, Protocol: 'HTTP', Port: 80, VpcId: net.vpc.VpcId, TargetType })).TargetGroups[0].TargetGroupArn as string;
  const ip = await group('ip', 'ip');
  const instance = await group('instance', 'instance');
  const unused = await group('unused', 'ip');
  const listener = (await elb.CreateListener!({ LoadBalancerArn: lb.LoadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'forward', TargetGroupArn: ip }] })).Listeners[0];
  await elb.CreateRule!({ ListenerArn: listener.ListenerArn, Priority: 10, Conditions: [{ Field: 'path-pattern', Values: ['/i/*'] }], Actions: [{ Type: 'forward', TargetGroupArn: instance }] });
  const awsvpc = { networkConfiguration: { awsvpcConfiguration: { subnets: [net.subnets[0]!.SubnetId] } } };
  return { ctx, elb, ip, instance, unused, awsvpc };
}

const lb = (targetGroupArn: string, containerName = 'app', containerPort = 80) => [{ targetGroupArn, containerName, containerPort }];
const incompatible = (arn: string, type: string, mode: string) =>
  `The provided target group ${arn} has target type ${type}, which is incompatible with the ${mode} network mode specified in the task definition.`;
const missing = async (ctx: Awaited<ReturnType<typeof context>>['ctx'], name: string) =>
  assert.deepEqual((await describeServices(ctx, { cluster: 'c', services: [name] })).failures!.map((f) => f.reason), ['MISSING'], 'nothing was created');

test('groups whose target type fits the network mode, forwarded to by a listener or a rule, are accepted', async () => {
  const { ctx, ip, instance, awsvpc } = await context();
  const v = (await createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(ip) }, TEST_CALLER)).service!;
  assert.deepEqual(v.loadBalancers, lb(ip));
  for (const family of ['bridge', 'host']) {
    const s = (await createService(ctx, { cluster: 'c', serviceName: family, taskDefinition: family, loadBalancers: lb(instance) }, TEST_CALLER)).service!;
    assert.deepEqual(s.loadBalancers, lb(instance));
  }
  const u = (await updateService(ctx, { cluster: 'c', service: 'bridge', loadBalancers: [] })).service!;
  assert.deepEqual(u.loadBalancers, []);
});

test('an instance group is refused for awsvpc tasks, an ip group for bridge and host tasks', async () => {
  const { ctx, ip, instance, awsvpc } = await context();
  await rejects(createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(instance) }, TEST_CALLER), 'InvalidParameterException', incompatible(instance, 'instance', 'awsvpc'));
  await missing(ctx, 'v');
  for (const family of ['bridge', 'host']) {
    await rejects(createService(ctx, { cluster: 'c', serviceName: family, taskDefinition: family, loadBalancers: lb(ip) }, TEST_CALLER), 'InvalidParameterException', incompatible(ip, 'ip', family));
    await missing(ctx, family);
  }
  // UpdateService: new load balancers, and a new task definition the old ones do not fit.
  await createService(ctx, { cluster: 'c', serviceName: 'b', taskDefinition: 'bridge', loadBalancers: lb(instance) }, TEST_CALLER);
  await rejects(updateService(ctx, { cluster: 'c', service: 'b', loadBalancers: lb(ip) }), 'InvalidParameterException', incompatible(ip, 'ip', 'bridge'));
  await rejects(updateService(ctx, { cluster: 'c', service: 'b', taskDefinition: 'vpc', ...awsvpc }), 'InvalidParameterException', incompatible(instance, 'instance', 'awsvpc'));
  const after = (await describeServices(ctx, { cluster: 'c', services: ['b'] })).services![0]!;
  assert.deepEqual([after.loadBalancers, after.taskDefinition?.split('/').pop()], [lb(instance), 'bridge:1'], 'a refused update changes nothing');
});

test('a group no load balancer forwards to is refused on CreateService and UpdateService', async () => {
  const { ctx, ip, unused, awsvpc } = await context();
  const message = `The target group with targetGroupArn ${unused} does not have an associated load balancer.`;
  await rejects(createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(unused) }, TEST_CALLER), 'InvalidParameterException', message);
  await missing(ctx, 'v');
  // One good group does not let a bad one through.
  await rejects(createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: [...lb(ip), ...lb(unused)] }, TEST_CALLER), 'InvalidParameterException', message);
  await createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(ip) }, TEST_CALLER);
  await rejects(updateService(ctx, { cluster: 'c', service: 'v', loadBalancers: lb(unused) }), 'InvalidParameterException', message);
});

test('a group that does not exist, here or only in another region, is refused', async () => {
  const { ctx, ip, awsvpc } = await context();
  const nowhere = ip.replace(/\/[0-9a-f]+$/, '/00000000000000ff');
  const elsewhere = ip.replace(`:${ctx.partition.region}:`, ':ap-south-1:');
  for (const arn of [nowhere, elsewhere]) {
    await rejects(
      createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(arn) }, TEST_CALLER),
      'InvalidParameterException',
      `The target group with targetGroupArn ${arn} does not exist.`,
    );
  }
  await missing(ctx, 'v');
  await createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(ip) }, TEST_CALLER);
  await rejects(updateService(ctx, { cluster: 'c', service: 'v', loadBalancers: lb(nowhere) }), 'InvalidParameterException', `The target group with targetGroupArn ${nowhere} does not exist.`);
});

test('a group deleted after CreateService does not block an UpdateService that leaves the load balancers alone', async () => {
  const { ctx, elb, instance } = await context();
  await createService(ctx, { cluster: 'c', serviceName: 'b', taskDefinition: 'bridge', desiredCount: 1, loadBalancers: lb(instance) }, TEST_CALLER);
  const rule = (await elb.DescribeRules!({ ListenerArn: (await elb.DescribeListeners!({ LoadBalancerArn: (await elb.DescribeLoadBalancers!({})).LoadBalancers[0].LoadBalancerArn })).Listeners[0].ListenerArn })).Rules[0];
  await elb.DeleteRule!({ RuleArn: rule.RuleArn });
  await elb.DeleteTargetGroup!({ TargetGroupArn: instance });
  assert.equal((await updateService(ctx, { cluster: 'c', service: 'b', desiredCount: 2 })).service!.desiredCount, 2);
});

test('the container and port must be one of the task definition\'s port mappings', async () => {
  const { ctx, ip, awsvpc } = await context();
  for (const [name, port] of [['app', 8080], ['nope', 80]] as const) {
    await rejects(
      createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(ip, name, port) }, TEST_CALLER),
      'InvalidParameterException',
      `The container ${name} did not have a container port ${port} defined.`,
    );
  }
});

test('the same target group, container and port given twice is refused on CreateService and UpdateService', async () => {
  const { ctx, ip, unused, awsvpc } = await context();
  const twice = [...lb(ip), ...lb(ip)];
  const says = `The load balancer with targetGroupArn ${ip}, containerName app and containerPort 80 is specified more than once.`;
  await rejects(createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: twice }, TEST_CALLER), 'InvalidParameterException', says);
  await missing(ctx, 'v');
  await createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', ...awsvpc, loadBalancers: lb(ip) }, TEST_CALLER);
  await rejects(updateService(ctx, { cluster: 'c', service: 'v', loadBalancers: twice }), 'InvalidParameterException', says);
  // Another group for the same container and port is a second load balancer, not a duplicate.
  await rejects(updateService(ctx, { cluster: 'c', service: 'v', loadBalancers: [...lb(ip), ...lb(unused)] }), 'InvalidParameterException', `The target group with targetGroupArn ${unused} does not have an associated load balancer.`);
});
