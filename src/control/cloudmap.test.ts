import { test } from 'node:test';
import { ensureDefaultNetwork } from './vpc';
import assert from 'node:assert/strict';
import { cloudMapHandlers } from './cloudmap';
import { controlTestContext, rejectsWith } from './control-test-context';
import { ecsHandlers } from './ecs-api';

async function setup() {
  const ctx = await controlTestContext();
  return { ctx, cm: cloudMapHandlers(ctx) };
}

async function namespaceId(cm: Awaited<ReturnType<typeof setup>>['cm'], name: string): Promise<string> {
  const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: name, Vpc: 'vpc-0123' })) as { OperationId: string };
  const op = (await cm.GetOperation!({ OperationId })) as any;
  assert.equal(op.Operation.Status, 'SUCCESS');
  assert.equal(op.Operation.Type, 'CREATE_NAMESPACE');
  return op.Operation.Targets.NAMESPACE;
}

test('a private DNS namespace is created at once: its operation is SUCCESS and names it, with Cloud Map ids and ARNs', async () => {
  const { ctx, cm } = await setup();
  const id = await namespaceId(cm, 'corp.local');
  assert.match(id, /^ns-[a-z0-9]{16}$/);
  const ns = ((await cm.GetNamespace!({ Id: id })) as any).Namespace;
  assert.equal(ns.Name, 'corp.local');
  assert.equal(ns.Type, 'DNS_PRIVATE');
  assert.equal(ns.Arn, `arn:aws:servicediscovery:eu-west-3:123456789012:namespace/${id}`);
  assert.equal(ns.Properties.DnsProperties.SOA.TTL, 15);
  assert.equal(ns.ServiceCount, 0);
  assert.deepEqual(((await cm.GetNamespace!({ Id: ns.Arn })) as any).Namespace.Id, id, 'an ARN names it too');
  assert.equal(ctx.partition.region, 'eu-west-3');
});

test('namespace names are unique, filters pick by TYPE and NAME, unknown ids are NamespaceNotFound', async () => {
  const { cm } = await setup();
  const id = await namespaceId(cm, 'a.local');
  await assert.rejects(cm.CreatePrivateDnsNamespace!({ Name: 'A.local', Vpc: 'vpc-1' }), (e: any) => e.code === 'NamespaceAlreadyExists' && e.extra.NamespaceId === id);
  await cm.CreateHttpNamespace!({ Name: 'web' });
  const all = ((await cm.ListNamespaces!({})) as any).Namespaces.map((n: any) => n.Name);
  assert.deepEqual(all, ['a.local', 'web']);
  const http = ((await cm.ListNamespaces!({ Filters: [{ Name: 'TYPE', Values: ['HTTP'], Condition: 'EQ' }] })) as any).Namespaces;
  assert.deepEqual(http.map((n: any) => n.Name), ['web']);
  const named = ((await cm.ListNamespaces!({ Filters: [{ Name: 'NAME', Values: ['a.'], Condition: 'BEGINS_WITH' }] })) as any).Namespaces;
  assert.deepEqual(named.map((n: any) => n.Id), [id]);
  await rejectsWith(cm.GetNamespace!({ Id: 'ns-aaaaaaaaaaaaaaaa' }), 'NamespaceNotFound', 'Namespace not found: ns-aaaaaaaaaaaaaaaa');
  await rejectsWith(cm.CreatePrivateDnsNamespace!({ Name: 'bad name!', Vpc: 'vpc-1' }), 'InvalidInput', 'Namespace name bad name! is not a valid DNS name.');
});

test('services live in a namespace; a namespace with services cannot be deleted (ResourceInUse)', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const svc = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }, { Type: 'SRV', TTL: 20 }] }, HealthCheckCustomConfig: {} })) as any).Service;
  assert.match(svc.Id, /^srv-[a-z0-9]{16}$/);
  assert.equal(svc.Arn, `arn:aws:servicediscovery:eu-west-3:123456789012:service/${svc.Id}`);
  assert.equal(svc.DnsConfig.RoutingPolicy, 'MULTIVALUE');
  assert.equal(svc.Type, 'DNS_HTTP');
  await assert.rejects(cm.CreateService!({ Name: 'api', NamespaceId: nsId }), (e: any) => e.code === 'ServiceAlreadyExists' && e.extra.ServiceId === svc.Id);
  await rejectsWith(cm.DeleteNamespace!({ Id: nsId }), 'ResourceInUse', `Namespace ${nsId} has associated services and cannot be deleted. Delete the services first.`);
  assert.equal(((await cm.GetNamespace!({ Id: nsId })) as any).Namespace.ServiceCount, 1);
  const listed = ((await cm.ListServices!({ Filters: [{ Name: 'NAMESPACE_ID', Values: [nsId] }] })) as any).Services;
  assert.deepEqual(listed.map((s: any) => s.Name), ['api']);
  await cm.DeleteService!({ Id: svc.Id });
  await rejectsWith(cm.GetService!({ Id: svc.Id }), 'ServiceNotFound', `Service not found: ${svc.Id}`);
  const del = (await cm.DeleteNamespace!({ Id: nsId })) as any;
  assert.equal(((await cm.GetOperation!({ OperationId: del.OperationId })) as any).Operation.Type, 'DELETE_NAMESPACE');
  await rejectsWith(cm.GetNamespace!({ Id: nsId }), 'NamespaceNotFound', `Namespace not found: ${nsId}`);
  await rejectsWith(cm.GetOperation!({ OperationId: 'nope' }), 'OperationNotFound', 'Operation not found: nope');
});

test('DnsConfig rules: none in an HTTP namespace, CNAME only alone and WEIGHTED', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  await cm.CreateHttpNamespace!({ Name: 'web' });
  const webId = ((await cm.ListNamespaces!({ Filters: [{ Name: 'TYPE', Values: ['HTTP'] }] })) as any).Namespaces[0].Id;
  await rejectsWith(cm.CreateService!({ Name: 's', NamespaceId: webId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 1 }] } }), 'InvalidInput', 'DnsConfig is not allowed for a service in an HTTP namespace.');
  await rejectsWith(cm.CreateService!({ Name: 's', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'CNAME', TTL: 1 }] } }), 'InvalidInput', 'A CNAME record requires the WEIGHTED routing policy.');
  await rejectsWith(cm.CreateService!({ Name: 's', NamespaceId: 'ns-zzzzzzzzzzzzzzzz' }), 'NamespaceNotFound', 'Namespace not found: ns-zzzzzzzzzzzzzzzz');
});

test('instances: attributes each record needs, custom health, DiscoverInstances by health and query, deregister', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const svc = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'SRV', TTL: 20 }] }, HealthCheckCustomConfig: {} })) as any).Service;
  await rejectsWith(cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.1' } }), 'InvalidInput', 'AWS_INSTANCE_PORT is required: the service has an SRV record.');
  await rejectsWith(cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.300', AWS_INSTANCE_PORT: '80' } }), 'InvalidInput', 'AWS_INSTANCE_IPV4 10.0.0.300 is not a valid IPv4 address.');
  const op = (await cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.1', AWS_INSTANCE_PORT: '80', color: 'blue' } })) as any;
  assert.deepEqual(((await cm.GetOperation!({ OperationId: op.OperationId })) as any).Operation.Targets, { INSTANCE: 'i1', SERVICE: svc.Id });
  await cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'i2', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.2', AWS_INSTANCE_PORT: '80', AWS_INIT_HEALTH_STATUS: 'UNHEALTHY', color: 'green' } });
  const discover = async (extra: object) => ((await cm.DiscoverInstances!({ NamespaceName: 'corp.local', ServiceName: 'api', ...extra })) as any).Instances.map((i: any) => i.InstanceId).sort();
  assert.deepEqual(await discover({}), ['i1'], 'HEALTHY by default');
  assert.deepEqual(await discover({ HealthStatus: 'ALL' }), ['i1', 'i2']);
  assert.deepEqual(await discover({ HealthStatus: 'UNHEALTHY' }), ['i2']);
  assert.deepEqual(await discover({ HealthStatus: 'ALL', QueryParameters: { color: 'green' } }), ['i2']);
  await cm.UpdateInstanceCustomHealthStatus!({ ServiceId: svc.Id, InstanceId: 'i1', Status: 'UNHEALTHY' });
  assert.deepEqual(await discover({}), []);
  assert.deepEqual(await discover({ HealthStatus: 'HEALTHY_OR_ELSE_ALL' }), ['i1', 'i2']);
  assert.equal(((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances.length, 2);
  await rejectsWith(cm.DeleteService!({ Id: svc.Id }), 'ResourceInUse', `Service ${svc.Id} has registered instances and cannot be deleted. Deregister the instances first.`);
  await cm.DeregisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1' });
  await rejectsWith(cm.DeregisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1' }), 'InstanceNotFound', `Instance i1 not found in service ${svc.Id}`);
  assert.deepEqual(((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances.map((i: any) => i.Id), ['i2']);
  await rejectsWith(cm.DiscoverInstances!({ NamespaceName: 'other.local', ServiceName: 'api' }), 'NamespaceNotFound', 'Namespace not found: other.local');
});

test('tags on namespaces and services; an unknown ARN is ResourceNotFoundException', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const arn = ((await cm.GetNamespace!({ Id: nsId })) as any).Namespace.Arn;
  await cm.TagResource!({ ResourceARN: arn, Tags: [{ Key: 'team', Value: 'a' }] });
  await cm.TagResource!({ ResourceARN: arn, Tags: [{ Key: 'team', Value: 'b' }, { Key: 'env', Value: 'dev' }] });
  await cm.UntagResource!({ ResourceARN: arn, TagKeys: ['env'] });
  assert.deepEqual(((await cm.ListTagsForResource!({ ResourceARN: arn })) as any).Tags, [{ Key: 'team', Value: 'b' }]);
  await assert.rejects(cm.ListTagsForResource!({ ResourceARN: arn.replace(nsId, 'ns-0000000000000000') }), (e: any) => e.code === 'ResourceNotFoundException');
});

test('ECS ListServicesByNamespace lists the services whose serviceRegistries use the namespace', async () => {
  const { ctx, cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const svc = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }] } })) as any).Service;
  const ecs = ecsHandlers(ctx) as any;
  const caller = { requestId: 'r', accessKeyId: 'AKID', principalArn: 'arn:aws:iam::123456789012:root', isAgent: false, region: 'eu-west-3' };
  await ecs.CreateCluster({ clusterName: 'c' }, caller);
  await ecs.RegisterTaskDefinition({ family: 'web', networkMode: 'awsvpc', containerDefinitions: [{ name: 'web', image: 'busybox', memory: 32 }] }, caller);
  const net = { awsvpcConfiguration: { subnets: (await ensureDefaultNetwork(ctx)).subnets.map((x) => x.SubnetId!) } };
  const withReg = (await ecs.CreateService({ cluster: 'c', serviceName: 'with', taskDefinition: 'web', desiredCount: 0, networkConfiguration: net, serviceRegistries: [{ registryArn: svc.Arn }] }, caller)).service;
  await ecs.CreateService({ cluster: 'c', serviceName: 'without', taskDefinition: 'web', desiredCount: 0, networkConfiguration: net }, caller);
  assert.deepEqual((await ecs.ListServicesByNamespace({ namespace: 'corp.local' }, caller)).serviceArns, [withReg.serviceArn]);
  const nsArn = ((await cm.GetNamespace!({ Id: nsId })) as any).Namespace.Arn;
  assert.deepEqual((await ecs.ListServicesByNamespace({ namespace: nsArn }, caller)).serviceArns, [withReg.serviceArn]);
  await rejectsWith(ecs.ListServicesByNamespace({ namespace: 'nope.local' }, caller), 'NamespaceNotFoundException', 'The specified namespace was not found.');
});

test('UpdateService changes TTLs and the description; record types, HTTP namespaces and Route 53 health checks cannot be changed', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const svc = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, Description: 'old', DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }, { Type: 'SRV', TTL: 20 }] }, HealthCheckCustomConfig: {} })) as any).Service;
  const op = (await cm.UpdateService!({ Id: svc.Id, Service: { DnsConfig: { DnsRecords: [{ Type: 'SRV', TTL: 300 }, { Type: 'A', TTL: 60 }] } } })) as any;
  const got = ((await cm.GetOperation!({ OperationId: op.OperationId })) as any).Operation;
  assert.deepEqual([got.Type, got.Status, got.Targets], ['UPDATE_SERVICE', 'SUCCESS', { SERVICE: svc.Id }]);
  let now = ((await cm.GetService!({ Id: svc.Id })) as any).Service;
  assert.deepEqual(now.DnsConfig, { RoutingPolicy: 'MULTIVALUE', DnsRecords: [{ Type: 'A', TTL: 60 }, { Type: 'SRV', TTL: 300 }] });
  assert.equal(now.Description, 'old', 'a description left out is kept');
  assert.deepEqual(now.HealthCheckCustomConfig, { FailureThreshold: 1 }, 'the custom health check stays');
  await cm.UpdateService!({ Id: svc.Arn, Service: { Description: 'new' } });
  now = ((await cm.GetService!({ Id: svc.Id })) as any).Service;
  assert.equal(now.Description, 'new');
  assert.equal(now.DnsConfig.DnsRecords[0].TTL, 60, 'DnsConfig left out is kept');

  await rejectsWith(cm.UpdateService!({ Id: svc.Id, Service: { DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 5 }] } } }), 'InvalidInput', 'The record types in the request must be the same as those present in the existing service. Records in the existing service are [A, SRV], but the records in the request are [A]. The record types of a service cannot be changed.');
  await assert.rejects(cm.UpdateService!({ Id: svc.Id, Service: { DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 5 }, { Type: 'AAAA', TTL: 5 }] } } }), (e: any) => e.code === 'InvalidInput' && e.message.includes('existing service are [A, SRV], but the records in the request are [A, AAAA]'));
  await rejectsWith(cm.UpdateService!({ Id: svc.Id, Service: { HealthCheckConfig: { Type: 'HTTP' } } }), 'InvalidInput', 'HealthCheckConfig is not supported in a private DNS namespace; use HealthCheckCustomConfig.');
  await rejectsWith(cm.UpdateService!({ Id: 'srv-zzzzzzzzzzzzzzzz', Service: {} }), 'ServiceNotFound', 'Service not found: srv-zzzzzzzzzzzzzzzz');
  await cm.CreateHttpNamespace!({ Name: 'web' });
  const webId = ((await cm.ListNamespaces!({ Filters: [{ Name: 'TYPE', Values: ['HTTP'] }] })) as any).Namespaces[0].Id;
  const httpSvc = ((await cm.CreateService!({ Name: 'h', NamespaceId: webId })) as any).Service;
  await rejectsWith(cm.UpdateService!({ Id: httpSvc.Id, Service: { Description: 'x' } }), 'InvalidInput', `Service ${httpSvc.Id} belongs to the HTTP namespace ${webId}: the settings of a service in an HTTP namespace cannot be updated.`);
});

test('GetInstancesHealthStatus: a custom health check\'s status per instance, paged; UNKNOWN without one; an unknown id is InstanceNotFound', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const custom = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }] }, HealthCheckCustomConfig: {} })) as any).Service;
  for (const [id, ip] of [['i1', '10.0.0.1'], ['i2', '10.0.0.2'], ['i3', '10.0.0.3']]) await cm.RegisterInstance!({ ServiceId: custom.Id, InstanceId: id, Attributes: { AWS_INSTANCE_IPV4: ip } });
  await cm.UpdateInstanceCustomHealthStatus!({ ServiceId: custom.Id, InstanceId: 'i2', Status: 'UNHEALTHY' });
  assert.deepEqual(((await cm.GetInstancesHealthStatus!({ ServiceId: custom.Id })) as any).Status, { i1: 'HEALTHY', i2: 'UNHEALTHY', i3: 'HEALTHY' });
  assert.deepEqual(((await cm.GetInstancesHealthStatus!({ ServiceId: custom.Id, Instances: ['i2'] })) as any).Status, { i2: 'UNHEALTHY' });
  const first = (await cm.GetInstancesHealthStatus!({ ServiceId: custom.Id, MaxResults: 2 })) as any;
  assert.deepEqual(Object.keys(first.Status), ['i1', 'i2']);
  assert.deepEqual((await cm.GetInstancesHealthStatus!({ ServiceId: custom.Id, MaxResults: 2, NextToken: first.NextToken }) as any).Status, { i3: 'HEALTHY' });
  await rejectsWith(cm.GetInstancesHealthStatus!({ ServiceId: custom.Id, Instances: ['i1', 'nope'] }), 'InstanceNotFound', `Instance nope not found in service ${custom.Id}`);
  await rejectsWith(cm.GetInstancesHealthStatus!({ ServiceId: 'srv-zzzzzzzzzzzzzzzz' }), 'ServiceNotFound', 'Service not found: srv-zzzzzzzzzzzzzzzz');
  const plain = ((await cm.CreateService!({ Name: 'plain', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }] } })) as any).Service;
  await cm.RegisterInstance!({ ServiceId: plain.Id, InstanceId: 'p1', Attributes: { AWS_INSTANCE_IPV4: '10.0.1.1' } });
  assert.deepEqual(((await cm.GetInstancesHealthStatus!({ ServiceId: plain.Id })) as any).Status, { p1: 'UNKNOWN' });
});

test('DiscoverInstancesRevision moves on with every registration and deregistration, not with health, and matches DiscoverInstances', async () => {
  const { cm } = await setup();
  const nsId = await namespaceId(cm, 'corp.local');
  const svc = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }] }, HealthCheckCustomConfig: {} })) as any).Service;
  const revision = async () => ((await cm.DiscoverInstancesRevision!({ NamespaceName: 'corp.local', ServiceName: 'api' })) as any).InstancesRevision as number;
  const r0 = await revision();
  await cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.1' } });
  await cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'i2', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.2' } });
  const r2 = await revision();
  assert.ok(r2 > r0);
  await cm.UpdateInstanceCustomHealthStatus!({ ServiceId: svc.Id, InstanceId: 'i1', Status: 'UNHEALTHY' });
  assert.equal(await revision(), r2, 'a health change leaves it');
  assert.equal(((await cm.DiscoverInstances!({ NamespaceName: 'corp.local', ServiceName: 'api' })) as any).InstancesRevision, r2);
  // Deregistering the first instance (not the latest one) still moves it on.
  await cm.DeregisterInstance!({ ServiceId: svc.Id, InstanceId: 'i1' });
  assert.ok((await revision()) > r2);
  await rejectsWith(cm.DiscoverInstancesRevision!({ NamespaceName: 'corp.local', ServiceName: 'nope' }), 'ServiceNotFound', 'Service not found: nope');
  await rejectsWith(cm.DiscoverInstancesRevision!({ NamespaceName: 'other.local', ServiceName: 'api' }), 'NamespaceNotFound', 'Namespace not found: other.local');
});
