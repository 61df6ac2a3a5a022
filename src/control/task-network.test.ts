/**
 * An awsvpc task's network configuration against the region's VPC: what ECS refuses (subnets and
 * groups that do not exist, groups of another VPC, a public IP for the EC2 launch type) and what
 * it fills in (the VPC's default group).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { createSecurityGroup, describeSecurityGroups } from './security-groups';
import { registerTaskDefinition } from './task-definitions';
import { resolveNetwork, subnetByZone, zoneConstraint } from './task-network';
import { runTask } from './tasks';
import { describeSubnets, ensureDefaultNetwork } from './vpc';

async function context() {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  await registerTaskDefinition(ctx, { family: 'vpc', networkMode: 'awsvpc', requiresCompatibilities: ['EC2', 'FARGATE'], cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true }] }, TEST_CALLER);
  const net = await ensureDefaultNetwork(ctx);
  const td = ctx.state.taskDefinitions.get('vpc', '0000000001')!.value;
  return { ctx, net, td };
}

test('the default network: one subnet per zone of the region, in order, inside the VPC range', async () => {
  const { ctx, net } = await context();
  assert.deepEqual(net.subnets.map((s) => s.AvailabilityZone), ['eu-west-3a', 'eu-west-3b', 'eu-west-3c']);
  const again = await ensureDefaultNetwork(ctx);
  assert.equal(again.vpc.VpcId, net.vpc.VpcId, 'made once');
  assert.equal((await describeSubnets(ctx, {})).Subnets.length, 3);
});

test('an unknown subnet is refused with EC2 reason in ECS words', async () => {
  const { ctx } = await context();
  await rejects(
    runTask(ctx, { cluster: 'c', taskDefinition: 'vpc', networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-abc'] } } }),
    'InvalidParameterException',
    "Error retrieving subnet information for [subnet-abc]: The subnet ID 'subnet-abc' does not exist (ErrorCode: InvalidSubnetID.NotFound)",
  );
});

test('an unknown security group is refused; no group means the VPC default group', async () => {
  const { ctx, net, td } = await context();
  const subnet = net.subnets[0]!.SubnetId;
  assert.throws(
    () => resolveNetwork(ctx, td, { awsvpcConfiguration: { subnets: [subnet], securityGroups: ['sg-00000000000000000'] } }),
    /Error retrieving security group information for \[sg-00000000000000000\]: The security group 'sg-00000000000000000' does not exist/,
  );
  const chosen = resolveNetwork(ctx, td, { awsvpcConfiguration: { subnets: [subnet] } })!;
  const dflt = (await describeSecurityGroups(ctx, { GroupNames: ['default'] })).SecurityGroups[0]!;
  assert.deepEqual(chosen.securityGroups, [dflt.GroupId]);
  const web = await createSecurityGroup(ctx, { GroupName: 'web', Description: 'w' });
  assert.deepEqual(resolveNetwork(ctx, td, { awsvpcConfiguration: { subnets: [subnet], securityGroups: [web.GroupId, web.GroupId] } })!.securityGroups, [web.GroupId]);
});

test('assignPublicIp ENABLED: refused for the EC2 launch type, kept for FARGATE', async () => {
  const { ctx, net, td } = await context();
  const nc = { awsvpcConfiguration: { subnets: [net.subnets[1]!.SubnetId], assignPublicIp: 'ENABLED' as const } };
  assert.throws(() => resolveNetwork(ctx, td, nc, 'EC2'), /Assign public IP is not supported for this launch type\./);
  assert.equal(resolveNetwork(ctx, td, nc, 'FARGATE')!.assignPublicIp, 'ENABLED');
});

test("the subnets' zones bound placement; each zone's first subnet is the ENI's", async () => {
  const { ctx, net, td } = await context();
  const [a, b] = net.subnets;
  const chosen = resolveNetwork(ctx, td, { awsvpcConfiguration: { subnets: [b!.SubnetId, a!.SubnetId, b!.SubnetId] } })!;
  assert.deepEqual(subnetByZone(ctx, chosen), { 'eu-west-3b': b!.SubnetId, 'eu-west-3a': a!.SubnetId });
  assert.deepEqual(zoneConstraint(['eu-west-3b', 'eu-west-3a']), { type: 'memberOf', expression: 'attribute:ecs.availability-zone in [eu-west-3b, eu-west-3a]' });
});
