import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cloudMapHandlers } from './cloudmap';
import { createCluster } from './clusters';
import { controlTestContext, rejectsWith as rejects, TEST_CALLER } from './control-test-context';
import { createService, describeServices, updateService } from './services';
import { registerTaskDefinition } from './task-definitions';
import { describeSubnets } from './vpc';

const app = (extra: object = {}) => ({ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080 }], ...extra });

async function context() {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  // bridge by default (no networkMode), host, and awsvpc.
  await registerTaskDefinition(ctx, { family: 'bridge', containerDefinitions: [app()] }, TEST_CALLER);
  await registerTaskDefinition(ctx, { family: 'host', networkMode: 'host', containerDefinitions: [app()] }, TEST_CALLER);
  const cm = cloudMapHandlers(ctx);
  const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: 'corp.local', Vpc: 'vpc-1' })) as { OperationId: string };
  const nsId = ((await cm.GetOperation!({ OperationId })) as any).Operation.Targets.NAMESPACE;
  const registry = async (name: string, types: string[]) =>
    ((await cm.CreateService!({ Name: name, NamespaceId: nsId, DnsConfig: { DnsRecords: types.map((Type) => ({ Type, TTL: 10 })) } })) as any).Service.Arn as string;
  return { ctx, srv: await registry('srv', ['SRV']), aOnly: await registry('a', ['A']), both: await registry('both', ['A', 'SRV']) };
}

const NEEDS_CONTAINER = (arn: string) => `When specifying 'host' or 'bridge' for networkMode, values for 'containerName' and 'containerPort' must be specified from the task definition. Registry: ${arn}`;
const NEEDS_SRV = (arn: string) => `serviceRegistries value is configured to use a type 'A' DNS record, which is not supported when specifying 'host' or 'bridge' for networkMode. Registry: ${arn}`;

test('bridge and host services need containerName and containerPort in their registry, on CreateService and UpdateService', async () => {
  const { ctx, srv } = await context();
  for (const family of ['bridge', 'host']) {
    await rejects(createService(ctx, { cluster: 'c', serviceName: family, taskDefinition: family, serviceRegistries: [{ registryArn: srv }] }, TEST_CALLER), 'InvalidParameterException', NEEDS_CONTAINER(srv));
    // A port alone names no container, hence no host port.
    await rejects(createService(ctx, { cluster: 'c', serviceName: family, taskDefinition: family, serviceRegistries: [{ registryArn: srv, port: 8080 }] }, TEST_CALLER), 'InvalidParameterException', NEEDS_CONTAINER(srv));
  }
  assert.deepEqual((await describeServices(ctx, { cluster: 'c', services: ['bridge', 'host'] })).failures!.map((f) => f.reason), ['MISSING', 'MISSING'], 'nothing was created');
  const s = (await createService(ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'bridge', serviceRegistries: [{ registryArn: srv, containerName: 'app', containerPort: 8080 }] }, TEST_CALLER)).service!;
  assert.deepEqual(s.serviceRegistries, [{ registryArn: srv, containerName: 'app', containerPort: 8080 }]);
  await rejects(updateService(ctx, { cluster: 'c', service: 'web', serviceRegistries: [{ registryArn: srv }] }), 'InvalidParameterException', NEEDS_CONTAINER(srv));
  await rejects(
    updateService(ctx, { cluster: 'c', service: 'web', serviceRegistries: [{ registryArn: srv, containerName: 'app', containerPort: 9090 }] }),
    'InvalidParameterException',
    'The container app did not have a container port 9090 defined.',
  );
  const after = (await describeServices(ctx, { cluster: 'c', services: ['web'] })).services![0]!;
  assert.deepEqual(after.serviceRegistries, [{ registryArn: srv, containerName: 'app', containerPort: 8080 }], 'a refused update changes nothing');
});

test('a registry with A records only cannot take bridge or host tasks; one with an SRV record (alone or with A) can', async () => {
  const { ctx, aOnly, both, srv } = await context();
  const reg = (registryArn: string) => [{ registryArn, containerName: 'app', containerPort: 8080 }];
  for (const family of ['bridge', 'host']) {
    await rejects(createService(ctx, { cluster: 'c', serviceName: family, taskDefinition: family, serviceRegistries: reg(aOnly) }, TEST_CALLER), 'InvalidParameterException', NEEDS_SRV(aOnly));
    const s = (await createService(ctx, { cluster: 'c', serviceName: family, taskDefinition: family, serviceRegistries: reg(both) }, TEST_CALLER)).service!;
    assert.equal(s.serviceRegistries![0]!.registryArn, both);
    await rejects(updateService(ctx, { cluster: 'c', service: family, serviceRegistries: reg(aOnly) }), 'InvalidParameterException', NEEDS_SRV(aOnly));
    const u = (await updateService(ctx, { cluster: 'c', service: family, serviceRegistries: reg(srv) })).service!;
    assert.equal(u.serviceRegistries![0]!.registryArn, srv);
  }
});

test('an awsvpc service may use an A-only registry without a container', async () => {
  const { ctx, aOnly } = await context();
  await registerTaskDefinition(ctx, { family: 'vpc', networkMode: 'awsvpc', containerDefinitions: [app()] }, TEST_CALLER);
  const subnets = (await describeSubnets(ctx, {})).Subnets.map((x) => x.SubnetId!);
  const s = (await createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', networkConfiguration: { awsvpcConfiguration: { subnets } }, serviceRegistries: [{ registryArn: aOnly }] }, TEST_CALLER)).service!;
  assert.deepEqual(s.serviceRegistries, [{ registryArn: aOnly }]);
});

const NEEDS_PORT = (arn: string) =>
  `When specifying 'awsvpc' for networkMode with a type 'SRV' DNS record, a value for either 'port' or 'containerName' and 'containerPort' must be specified. Registry: ${arn}`;
const NOT_BOTH = "Specify a value for either 'port' or the 'containerName' and 'containerPort' combination, but not both. Remove one and retry.";

test('an awsvpc service whose registry has an SRV record needs port, or containerName and containerPort, but not both', async () => {
  const { ctx, srv, both, aOnly } = await context();
  await registerTaskDefinition(ctx, { family: 'vpc', networkMode: 'awsvpc', containerDefinitions: [app()] }, TEST_CALLER);
  const subnets = (await describeSubnets(ctx, {})).Subnets.map((x) => x.SubnetId!);
  const create = (serviceName: string, registry: object) =>
    createService(ctx, { cluster: 'c', serviceName, taskDefinition: 'vpc', networkConfiguration: { awsvpcConfiguration: { subnets } }, serviceRegistries: [registry as never] }, TEST_CALLER);
  for (const arn of [srv, both]) await rejects(create('v', { registryArn: arn }), 'InvalidParameterException', NEEDS_PORT(arn));
  await rejects(create('v', { registryArn: srv, port: 8080, containerName: 'app', containerPort: 8080 }), 'InvalidParameterException', NOT_BOTH);
  assert.deepEqual((await describeServices(ctx, { cluster: 'c', services: ['v'] })).failures!.map((f) => f.reason), ['MISSING'], 'nothing was created');

  assert.deepEqual((await create('p', { registryArn: srv, port: 8080 })).service!.serviceRegistries, [{ registryArn: srv, port: 8080 }]);
  assert.deepEqual((await create('n', { registryArn: both, containerName: 'app', containerPort: 8080 })).service!.serviceRegistries, [{ registryArn: both, containerName: 'app', containerPort: 8080 }]);
  await rejects(updateService(ctx, { cluster: 'c', service: 'p', serviceRegistries: [{ registryArn: both }] }), 'InvalidParameterException', NEEDS_PORT(both));
  // A records alone need no port: the task's own address is the answer.
  assert.deepEqual((await updateService(ctx, { cluster: 'c', service: 'p', serviceRegistries: [{ registryArn: aOnly }] })).service!.serviceRegistries, [{ registryArn: aOnly }]);
});

test('a bridge service cannot give port besides containerName and containerPort', async () => {
  const { ctx, srv } = await context();
  await rejects(
    createService(ctx, { cluster: 'c', serviceName: 'b', taskDefinition: 'bridge', serviceRegistries: [{ registryArn: srv, containerName: 'app', containerPort: 8080, port: 8080 }] }, TEST_CALLER),
    'InvalidParameterException',
    NOT_BOTH,
  );
});

test("an awsvpc service's A-only registry takes no port and no container, in ECS's words", async () => {
  const { ctx, aOnly } = await context();
  await registerTaskDefinition(ctx, { family: 'vpc', networkMode: 'awsvpc', containerDefinitions: [app()] }, TEST_CALLER);
  const subnets = (await describeSubnets(ctx, {})).Subnets.map((x) => x.SubnetId!);
  const create = (registry: object) =>
    createService(ctx, { cluster: 'c', serviceName: 'v', taskDefinition: 'vpc', networkConfiguration: { awsvpcConfiguration: { subnets } }, serviceRegistries: [registry as never] }, TEST_CALLER);
  await rejects(create({ registryArn: aOnly, port: 8080 }), 'InvalidParameterException', `A port was provided but is not required by the specified service registry. Registry: ${aOnly}`);
  await rejects(
    create({ registryArn: aOnly, containerName: 'app', containerPort: 8080 }),
    'InvalidParameterException',
    `The values specified for serviceRegistries do not require a value for 'containerPort'. Remove the value and retry. Registry: ${aOnly}`,
  );
  assert.deepEqual((await describeServices(ctx, { cluster: 'c', services: ['v'] })).failures!.map((f) => f.reason), ['MISSING'], 'nothing was created');
});

test('a registry ARN that names no Cloud Map service is refused with its format error', async () => {
  const { ctx, srv } = await context();
  const namespaceArn = srv.replace(/service\/srv-[a-z0-9]+$/, 'namespace/ns-abcdefghijklmnop');
  for (const registryArn of [namespaceArn, 'srv-abcdefghijklmnop', 'arn:aws:ecs:us-east-1:123456789012:service/c/x']) {
    await rejects(
      createService(ctx, { cluster: 'c', serviceName: 'b', taskDefinition: 'bridge', serviceRegistries: [{ registryArn, containerName: 'app', containerPort: 8080 }] }, TEST_CALLER),
      'InvalidParameterException',
      `The format of the supplied service registry ARN is invalid: ${registryArn}.`,
    );
  }
});
