import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { createService, describeServices, updateService } from './services';
import { registerTaskDefinition } from './task-definitions';
import { ensureDefaultNetwork } from './vpc';

async function context() {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  await registerTaskDefinition(ctx, { family: 'web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }] }, TEST_CALLER);
  return ctx;
}

test('DescribeServices names an unknown service by its short ARN, and echoes a given ARN', async () => {
  const ctx = await context();
  const given = 'arn:aws:ecs:eu-west-3:123456789012:service/c/nope';
  const r = await describeServices(ctx, { cluster: 'c', services: ['missing', given] });
  assert.deepEqual(r.services, []);
  assert.deepEqual(r.failures, [
    { arn: 'arn:aws:ecs:eu-west-3:123456789012:service/missing', reason: 'MISSING' },
    { arn: given, reason: 'MISSING' },
  ]);
});

const DAEMON_COUNT = 'The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again';

test('a DAEMON service refuses desiredCount on CreateService and UpdateService', async () => {
  const ctx = await context();
  for (const desiredCount of [0, 2]) {
    await rejects(
      createService(ctx, { cluster: 'c', serviceName: 'd', taskDefinition: 'web', schedulingStrategy: 'DAEMON', desiredCount }, TEST_CALLER),
      'InvalidParameterException',
      DAEMON_COUNT,
    );
  }
  assert.deepEqual((await describeServices(ctx, { cluster: 'c', services: ['d'] })).failures!.map((f) => f.reason), ['MISSING'], 'nothing was created');
  const s = (await createService(ctx, { cluster: 'c', serviceName: 'd', taskDefinition: 'web', schedulingStrategy: 'DAEMON' }, TEST_CALLER)).service!;
  assert.equal(s.schedulingStrategy, 'DAEMON');
  await rejects(updateService(ctx, { cluster: 'c', service: 'd', desiredCount: 3 }), 'InvalidParameterException', DAEMON_COUNT);
  // A REPLICA service still takes one.
  await createService(ctx, { cluster: 'c', serviceName: 'r', taskDefinition: 'web', desiredCount: 1 }, TEST_CALLER);
  assert.equal((await updateService(ctx, { cluster: 'c', service: 'r', desiredCount: 2 })).service!.desiredCount, 2);
});

test('a Fargate service given a new platformVersion starts a new deployment that names it', async () => {
  const ctx = await context();
  const subnets = (await ensureDefaultNetwork(ctx)).subnets.map((x) => x.SubnetId!);
  await registerTaskDefinition(ctx, { family: 'fg', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: 'busybox', essential: true }] }, TEST_CALLER);
  const networkConfiguration = { awsvpcConfiguration: { subnets } };
  await createService(ctx, { cluster: 'c', serviceName: 'f', taskDefinition: 'fg', launchType: 'FARGATE', desiredCount: 0, networkConfiguration }, TEST_CALLER);
  const s = (await updateService(ctx, { cluster: 'c', service: 'f', platformVersion: '1.4.0' })).service!;
  assert.equal(s.platformVersion, '1.4.0');
  assert.deepEqual(s.deployments!.map((d) => [d.status, d.platformVersion]), [['PRIMARY', '1.4.0'], ['ACTIVE', 'LATEST']]);
  // The same version again changes nothing.
  const again = (await updateService(ctx, { cluster: 'c', service: 'f', platformVersion: '1.4.0' })).service!;
  assert.equal(again.deployments!.length, 2);
});

test("DescribeServices with more than 10 services answers ECS's own words", async () => {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  const names = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);
  await rejects(describeServices(ctx, { cluster: 'c', services: names(11) }), 'InvalidParameterException', 'service names can have at most 10 items.');
  assert.equal((await describeServices(ctx, { cluster: 'c', services: names(10) })).failures!.length, 10);
});
