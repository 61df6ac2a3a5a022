import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cloudMapHandlers } from '../control/cloudmap';
import { createService, updateService } from '../control/services';
import { submitTaskStateChange } from '../control/task-state-changes';
import { CALLER, harness } from './service-test-harness';
import { describeSubnets } from '../control/vpc';
import { stopTask } from '../control/tasks';
import { ServiceRegistryController } from './service-registry-controller';
import { HOST_NETWORK_ATTRIBUTE } from '../core/host-policy-attributes';
import { findTaskDefinition } from '../control/task-definitions';

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
    await h.addInstance({ forTaskDefinition: tdArn });
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

/** A private DNS namespace and a Cloud Map service in it with these record types. */
async function registryOf(h: Awaited<ReturnType<typeof harness>>, types: string[]) {
  const cm = cloudMapHandlers(h.ctx);
  const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: 'corp.local', Vpc: 'vpc-1' })) as { OperationId: string };
  const nsId = ((await cm.GetOperation!({ OperationId })) as any).Operation.Targets.NAMESPACE;
  const svc = ((await cm.CreateService!({ Name: 'web', NamespaceId: nsId, DnsConfig: { DnsRecords: types.map((Type) => ({ Type, TTL: 10 })) } })) as any).Service as { Id: string; Arn: string };
  const instances = async () => ((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances as { Id: string; Attributes: Record<string, string> }[];
  return { svc, instances };
}

const HOST = '172.17.0.1';

test('bridge tasks register the host address and the host port Docker mapped for containerName/containerPort, and leave when stopped', async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx, { instanceHostAddress: HOST });
  registry.start();
  try {
    const { svc, instances } = await registryOf(h, ['SRV']);
    await h.addInstance();
    // Two containers, each with dynamic host ports; the registry names the second one's 8080/tcp.
    let port = 32768;
    h.runningReport = () => {
      const [side, app, udp] = [port++, port++, port++];
      return {
        containers: [
          { containerName: 'side', status: 'RUNNING', networkBindings: [{ containerPort: 8080, hostPort: side, protocol: 'tcp' }] },
          { containerName: 'app', status: 'RUNNING', networkBindings: [{ containerPort: 8080, hostPort: udp, protocol: 'udp' }, { containerPort: 8080, hostPort: app, protocol: 'tcp' }] },
        ],
      };
    };
    await h.registerTd('web', {
      containerDefinitions: [
        { name: 'side', image: 'busybox', memory: 64, essential: false, portMappings: [{ containerPort: 8080, hostPort: 0 }] },
        { name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080, hostPort: 0 }, { containerPort: 8080, hostPort: 0, protocol: 'udp' }] },
      ],
    });
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2, serviceRegistries: [{ registryArn: svc.Arn, containerName: 'app', containerPort: 8080 }] }, CALLER);
    await h.settle();
    await registry.idle();
    const tasks = h.tasks((t) => t.lastStatus === 'RUNNING');
    assert.equal(tasks.length, 2);
    const want = tasks.map((t) => [t.wharf.id, HOST, String(t.containers!.find((c) => c.name === 'app')!.networkBindings!.find((b) => b.protocol === 'tcp')!.hostPort)]).sort();
    const got = (await instances()).map((i) => [i.Id, i.Attributes.AWS_INSTANCE_IPV4, i.Attributes.AWS_INSTANCE_PORT]).sort();
    assert.deepEqual(got, want);
    assert.notEqual(got[0]![2], got[1]![2], 'each task has its own host port');
    const others = new Set(tasks.flatMap((t) => t.containers!.flatMap((c) => (c.networkBindings ?? []).filter((b) => c.name !== 'app' || b.protocol === 'udp').map((b) => String(b.hostPort)))));
    assert.equal(others.size, 4);
    assert.ok(!got.some((g) => others.has(g[2]!)), "never the sidecar's 8080 nor the udp binding");

    // StopTask: the task leaves the registry as soon as it is told to stop, before it is STOPPED.
    const [first, second] = tasks;
    await stopTask(h.ctx, { cluster: 'c', task: first!.taskArn });
    await registry.idle();
    assert.equal(h.ctx.state.tasks.get('c', first!.wharf.id)!.value.lastStatus, 'RUNNING');
    assert.ok(!(await instances()).some((i) => i.Id === first!.wharf.id), 'deregistered once told to stop');
    await updateService(h.ctx, { cluster: 'c', service: 'web', desiredCount: 0 });
    await h.settle();
    await registry.idle();
    assert.ok(!(await instances()).some((i) => i.Id === second!.wharf.id));
    assert.deepEqual(await instances(), [], 'a scaled-in service leaves nothing behind');
  } finally {
    registry.stop();
    await h.close();
  }
});

test('host tasks register the host address and the containerPort itself', async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx, { instanceHostAddress: HOST });
  registry.start();
  try {
    const { svc, instances } = await registryOf(h, ['A', 'SRV']);
    // The agent reports no bindings for this one: in host mode the container answers on its own port.
    h.runningReport = () => ({ containers: [{ containerName: 'app', status: 'RUNNING' }] });
    const web = await h.registerTd('web', { networkMode: 'host', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 9000 }] }] });
    // A Wharf agent advertises that it allows host networking (unless --disallow-host-network).
    await h.addInstance({ forTaskDefinition: web });
    assert.ok(findTaskDefinition(h.ctx, web)?.requiresAttributes?.some((a) => a.name === HOST_NETWORK_ATTRIBUTE));
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1, serviceRegistries: [{ registryArn: svc.Arn, containerName: 'app', containerPort: 9000 }] }, CALLER);
    await h.settle();
    await registry.idle();
    const [t] = h.tasks((x) => x.lastStatus === 'RUNNING');
    assert.deepEqual((await instances()).map((i) => [i.Id, i.Attributes.AWS_INSTANCE_IPV4, i.Attributes.AWS_INSTANCE_PORT, i.Attributes.ECS_SERVICE_NAME]), [[t!.wharf.id, HOST, '9000', 'web']]);
    await stopTask(h.ctx, { cluster: 'c', task: t!.taskArn });
    await h.settle();
    await registry.idle();
    assert.ok(!(await instances()).some((i) => i.Id === t!.wharf.id), 'the stopped task left the registry');
  } finally {
    registry.stop();
    await h.close();
  }
});

test('without a host address (none configured) bridge tasks are not registered, and nothing is half-registered', async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx);
  registry.start();
  try {
    const { svc, instances } = await registryOf(h, ['SRV']);
    await h.addInstance();
    h.runningReport = () => ({ containers: [{ containerName: 'app', status: 'RUNNING', networkBindings: [{ containerPort: 80, hostPort: 32768, protocol: 'tcp' }] }] });
    await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 80, hostPort: 0 }] }] });
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1, serviceRegistries: [{ registryArn: svc.Arn, containerName: 'app', containerPort: 80 }] }, CALLER);
    await h.settle();
    await registry.idle();
    assert.equal(h.tasks((x) => x.lastStatus === 'RUNNING').length, 1);
    assert.deepEqual(await instances(), []);
  } finally {
    registry.stop();
    await h.close();
  }
});

test("a service whose registry names no Cloud Map service (deleted under it, or never made) is told so once in its events", async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx);
  registry.start();
  try {
    const cm = cloudMapHandlers(h.ctx);
    const { svc } = await registryOf(h, ['A']);
    const tdArn = await h.registerTd('api', { networkMode: 'awsvpc', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080 }] }] });
    await h.addInstance({ forTaskDefinition: tdArn });
    const subnets = (await describeSubnets(h.ctx, {})).Subnets.map((x) => x.SubnetId!);
    const ghost = svc.Arn.replace(/srv-[a-z0-9]+$/, 'srv-doesnotexist0000');
    await createService(h.ctx, { cluster: 'c', serviceName: 'ghost', taskDefinition: 'api', desiredCount: 1, networkConfiguration: { awsvpcConfiguration: { subnets } }, serviceRegistries: [{ registryArn: ghost }] }, CALLER);
    await h.settle();
    await registry.idle();
    const events = () => (h.ctx.state.services.get('c', 'ghost')!.value.events ?? []).map((e) => e.message!);
    const expected = `(service ghost) failed to register tasks in (service-registry ${ghost}) with (error Service 'srv-doesnotexist0000' not found): the Cloud Map service does not exist`;
    assert.deepEqual(events().filter((m) => m.includes('service-registry')), [expected]);
    // More task changes do not repeat it.
    await updateService(h.ctx, { cluster: 'c', service: 'ghost', desiredCount: 2 });
    await h.settle();
    await registry.idle();
    assert.equal(events().filter((m) => m.includes('service-registry')).length, 1);
    // A registry deleted under a running service: that service is told too.
    await createService(h.ctx, { cluster: 'c', serviceName: 'real', taskDefinition: 'api', desiredCount: 0, networkConfiguration: { awsvpcConfiguration: { subnets } }, serviceRegistries: [{ registryArn: svc.Arn }] }, CALLER);
    await registry.idle();
    await cm.DeleteService!({ Id: svc.Id });
    await registry.idle();
    assert.deepEqual((h.ctx.state.services.get('c', 'real')!.value.events ?? []).map((e) => e.message).filter((m) => m!.includes('service-registry')), [
      `(service real) failed to register tasks in (service-registry ${svc.Arn}) with (error Service '${svc.Id}' not found): the Cloud Map service does not exist`,
    ]);
  } finally {
    registry.stop();
    await h.close();
  }
});
