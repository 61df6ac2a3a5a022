import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cloudMapHandlers } from '../control/cloudmap';
import { registerContainerInstance } from '../control/container-instances';
import { createService, updateService } from '../control/services';
import { findTaskDefinition } from '../control/task-definitions';
import { submitTaskStateChange } from '../control/task-state-changes';
import { CALLER, harness } from './service-test-harness';
import { describeSubnets } from '../control/vpc';
import { ServiceRegistryController } from './service-registry-controller';

test('a service with serviceRegistries has its RUNNING tasks registered (task id, task IP, port) and scaled-in tasks removed', async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx);
  registry.start();
  try {
    const cm = cloudMapHandlers(h.ctx);
    const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: 'corp.local', Vpc: 'vpc-1' })) as { OperationId: string };
    const nsId = ((await cm.GetOperation!({ OperationId })) as any).Operation.Targets.NAMESPACE;
    const svc = ((await cm.CreateService!({ Name: 'api', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }, { Type: 'SRV', TTL: 10 }] } })) as any).Service;
    // A user's own instance in the same registry, which the controller must leave alone.
    await cm.RegisterInstance!({ ServiceId: svc.Id, InstanceId: 'manual', Attributes: { AWS_INSTANCE_IPV4: '10.9.9.9', AWS_INSTANCE_PORT: '1' } });
    const tdArn = await h.registerTd('api', { networkMode: 'awsvpc', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080 }] }] });
    // An instance that can run awsvpc tasks: it has every attribute the definition requires.
    const td = findTaskDefinition(h.ctx, tdArn)!;
    const r = await registerContainerInstance(h.ctx, {
      cluster: 'c',
      totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 4096 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 4096 }],
      attributes: [{ name: 'ecs.availability-zone', value: 'us-east-1a' }, ...(td.requiresAttributes ?? []).map((a) => ({ name: a.name }))],
    });
    await h.setConnected(r.containerInstance!.containerInstanceArn!.split('/').pop()!, true);
    await createService(h.ctx, { cluster: 'c', serviceName: 'api', taskDefinition: 'api', desiredCount: 2, networkConfiguration: { awsvpcConfiguration: { subnets: (await describeSubnets(h.ctx, {})).Subnets.map((x) => x.SubnetId!) } }, serviceRegistries: [{ registryArn: svc.Arn, containerName: 'app', containerPort: 8080 }] }, CALLER);
    await h.settle();
    await registry.idle();
    const registered = async () => ((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances.filter((i: any) => i.Id !== 'manual');
    assert.deepEqual(await registered(), [], 'RUNNING tasks without an address yet are not registered');

    // The agent reports each task's awsvpc address.
    const tasks = h.tasks((t) => t.lastStatus === 'RUNNING');
    assert.equal(tasks.length, 2, JSON.stringify(h.tasks().map((t) => [t.lastStatus, t.desiredStatus, t.stoppedReason])) + JSON.stringify(h.ctx.state.services.get('c', 'api')?.value.events?.slice(0, 3)));
    for (const [i, t] of tasks.entries()) await submitTaskStateChange(h.ctx, { cluster: 'c', task: t.taskArn, status: 'RUNNING', privateIpv4Address: `10.0.0.${i + 10}` } as any);
    await registry.idle();
    const got = await registered();
    assert.deepEqual(got.map((i: any) => i.Id).sort(), tasks.map((t) => t.wharf.id).sort());
    for (const i of got) {
      assert.match(i.Attributes.AWS_INSTANCE_IPV4, /^10\.0\.0\.1[01]$/);
      assert.equal(i.Attributes.AWS_INSTANCE_PORT, '8080');
      assert.equal(i.Attributes.ECS_SERVICE_NAME, 'api');
      assert.equal(i.Attributes.ECS_CLUSTER_NAME, 'c');
    }

    await updateService(h.ctx, { cluster: 'c', service: 'api', desiredCount: 1 });
    await h.settle();
    await registry.idle();
    const left = await registered();
    const running = h.tasks((t) => t.lastStatus === 'RUNNING' && t.desiredStatus === 'RUNNING');
    assert.deepEqual(left.map((i: any) => i.Id), running.map((t) => t.wharf.id), 'the stopped task left the registry');
    const all = ((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances.map((i: any) => i.Id);
    assert.ok(all.includes('manual'), "the user's own instance is untouched");
  } finally {
    registry.stop();
    await h.close();
  }
});
