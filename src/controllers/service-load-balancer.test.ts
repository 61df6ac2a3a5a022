// Services with loadBalancers: registration, load balancer health in the deployment math, unhealthy
// replacement and DEACTIVATING (drain before stop). The data plane is played by the test: it
// writes health records into the store as the load balancer controller would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { elbIdOf, healthKey, listenerKey, loadBalancerKey, targetGroupKey, targetKeyOf, targetsOf, type ListenerRecord, type LoadBalancerRecord, type TargetGroupRecord, type TargetHealthStateCode, type TargetRecord } from '../control/elbv2-records';
import type { TargetHealthDescription } from '../loadbalancer/reconciler';
import type { TargetHealth } from '../loadbalancer/target-health';
import { LoadBalancerController } from './load-balancer-controller';
import { createService, deleteService, describeServices, updateService } from '../control/services';
import { stopTask } from '../control/tasks';
import { describeTasks, listTasks } from '../control/task-queries';
import { describeSubnets } from '../control/vpc';
import { submitTaskStateChange } from '../control/task-state-changes';
import type { CreateServiceRequest } from '../core/shapes/ecs';
import type { TaskRecord } from '../core/resources';
import { CALLER, harness, type Harness } from './service-test-harness';
import { ServiceLoadBalancerController } from './service-load-balancer-controller';
import { ServiceRegistryController } from './service-registry-controller';
import { cloudMapHandlers } from '../control/cloudmap';

let tgSeq = 0;
async function createTargetGroup(h: Harness, name: string, type: 'ip' | 'instance', delayS = 300): Promise<string> {
  const id = (++tgSeq).toString(16).padStart(16, '0');
  const arn = `arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/${name}/${id}`;
  const tg: TargetGroupRecord = {
    TargetGroupArn: arn, TargetGroupName: name, Protocol: 'HTTP', Port: 80, VpcId: 'vpc-1', TargetType: type, IpAddressType: 'ipv4',
    HealthCheckEnabled: true, HealthCheckProtocol: 'HTTP', HealthCheckPort: 'traffic-port', HealthCheckPath: '/', HealthCheckIntervalSeconds: 5,
    HealthCheckTimeoutSeconds: 2, HealthyThresholdCount: 2, UnhealthyThresholdCount: 2, Attributes: { 'deregistration_delay.timeout_seconds': String(delayS) }, Tags: [], CreatedTime: 0,
  };
  await h.ctx.state.waitFor(await h.ctx.store.create(targetGroupKey(name), tg));
  // ECS takes only a group some load balancer forwards to: a listener of its own does.
  const lbArn = `arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/${name}/${id}`;
  const listener: ListenerRecord = {
    ListenerArn: `arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/${name}/${id}/${id}`, LoadBalancerArn: lbArn, Port: 80, Protocol: 'HTTP',
    DefaultActions: [{ Type: 'forward', TargetGroupArn: arn }], Tags: [],
  };
  await h.ctx.state.waitFor(await h.ctx.store.create(listenerKey(id, id), listener));
  return arn;
}

const targets = (h: Harness, arn: string): TargetRecord[] => targetsOf(h.ctx, elbIdOf(arn));

/**
 * The data plane's view: every registered target gets `state` (or the state `stateOf` picks), and
 * a target no longer registered has drained: its health record is deleted unless `holdDraining`.
 */
async function dataPlane(h: Harness, arn: string, stateOf: TargetHealthStateCode | ((t: TargetRecord) => TargetHealthStateCode), holdDraining = false): Promise<void> {
  const tgId = elbIdOf(arn);
  const registered = new Set(targets(h, arn).map((t) => `${t.Id}:${t.Port}`));
  for (const t of targets(h, arn)) {
    const State = typeof stateOf === 'function' ? stateOf(t) : stateOf;
    const key = healthKey(tgId, t.Id, t.Port);
    // A new registration is seen afresh (ELB checks it from `initial`), whatever the last state was.
    const cur = h.ctx.state.elbHealth.get(tgId, key.split('/')[2]!)?.value as { State: string; updatedAt: number } | undefined;
    if (cur?.State !== State || cur.updatedAt < t.registeredAt) await h.ctx.state.waitFor(await h.ctx.store.txn([{ op: 'put', key, value: { Id: t.Id, Port: t.Port, State, updatedAt: h.clock.now() } }]));
  }
  for (const [child, e] of h.ctx.state.elbHealth.children(tgId)) {
    const v = e.value as { Id: string; Port: number; State: string };
    if (registered.has(`${v.Id}:${v.Port}`)) continue;
    if (holdDraining) {
      if (v.State !== 'draining') await h.ctx.state.waitFor(await h.ctx.store.txn([{ op: 'put', key: `elbhealth/${tgId}/${child}`, value: { ...v, State: 'draining', Reason: 'Target.DeregistrationInProgress' } }]));
    } else await h.ctx.state.waitFor(await h.ctx.store.txn([{ op: 'delete', key: `elbhealth/${tgId}/${child}` }]));
  }
}

/** Settles the control plane and the data plane together. */
async function run(h: Harness, arn: string, state: TargetHealthStateCode | ((t: TargetRecord) => TargetHealthStateCode), holdDraining = false) {
  for (let i = 0; i < 20; i++) {
    await h.settle();
    await dataPlane(h, arn, state, holdDraining);
    await h.settle();
  }
}

const events = (h: Harness, name = 'web') => (h.ctx.state.services.get('c', name)!.value.events ?? []).map((e) => e.message!);
const service = async (h: Harness, name = 'web') => (await describeServices(h.ctx, { cluster: 'c', services: [name] })).services![0]!;
const live = (h: Harness) => h.tasks((t) => t.desiredStatus === 'RUNNING' && t.lastStatus === 'RUNNING');

/** A bridge service (dynamic host ports) on an EC2 instance, behind an instance target group. */
async function bridgeService(h: Harness, extra: Partial<CreateServiceRequest> = {}, delayS = 300) {
  await h.addInstance({ ec2InstanceId: 'i-0123456789abcdef0' });
  let port = 32768;
  h.runningReport = () => ({ containers: [{ containerName: 'app', status: 'RUNNING', networkBindings: [{ containerPort: 80, hostPort: port++, protocol: 'tcp' }] }] });
  await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 80, hostPort: 0 }] }] });
  const arn = await createTargetGroup(h, 'web-tg', 'instance', delayS);
  await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1, loadBalancers: [{ targetGroupArn: arn, containerName: 'app', containerPort: 80 }], ...extra }, CALLER);
  return arn;
}

test('awsvpc tasks are registered as ip targets (ENI address, containerPort) once RUNNING, with ECS events', async () => {
  const h = await harness();
  try {
    const tdArn = await h.registerTd('web', { networkMode: 'awsvpc', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080 }] }] });
    await h.addInstance({ forTaskDefinition: tdArn });
    const arn = await createTargetGroup(h, 'api-tg', 'ip');
    let n = 10;
    h.runningReport = () => ({ privateIpv4Address: `10.0.0.${n++}` });
    const subnets = (await describeSubnets(h.ctx, {})).Subnets.map((x) => x.SubnetId!);
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2, networkConfiguration: { awsvpcConfiguration: { subnets } }, loadBalancers: [{ targetGroupArn: arn, containerName: 'app', containerPort: 8080 }] }, CALLER);
    await h.settle();
    const got = targets(h, arn);
    assert.deepEqual(got.map((t) => `${t.Id}:${t.Port}`).sort(), ['10.0.0.10:8080', '10.0.0.11:8080']);
    const tasks = live(h);
    assert.deepEqual(got.map((t) => t.ecsTaskArn).sort(), tasks.map((t) => t.taskArn).sort());
    assert.ok(events(h).some((m) => m === `(service web) registered 2 targets in (target-group ${arn})` || m === `(service web) registered 1 targets in (target-group ${arn})`), events(h).join('\n'));
    // Not healthy before the load balancer says so, whatever the time: no steady state.
    h.clock.advance(120_000);
    await h.settle();
    assert.ok(!events(h).includes('(service web) has reached a steady state.'));
    await run(h, arn, 'healthy');
    assert.equal(events(h)[0], '(service web) has reached a steady state.');
    assert.equal((await service(h)).deployments![0]!.rolloutState, 'COMPLETED');
  } finally {
    await h.close();
  }
});

test('bridge tasks are registered as instance targets (ec2InstanceId, the mapped host port)', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h);
    await h.settle();
    const [t] = live(h);
    const hostPort = t!.containers![0]!.networkBindings![0]!.hostPort!;
    assert.deepEqual(targets(h, arn).map((x) => [x.Id, x.Port, x.ecsTaskArn]), [['i-0123456789abcdef0', hostPort, t!.taskArn]]);
    assert.ok(events(h).includes(`(service web) registered 1 targets in (target-group ${arn})`));
  } finally {
    await h.close();
  }
});

test('a host that is not an EC2 instance is named by its container instance id in instance targets', async () => {
  const h = await harness();
  try {
    const ci = await h.addInstance();
    h.runningReport = () => ({ containers: [{ containerName: 'app', status: 'RUNNING', networkBindings: [{ containerPort: 80, hostPort: 32800, protocol: 'tcp' }] }] });
    await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 80, hostPort: 0 }] }] });
    const arn = await createTargetGroup(h, 'web-tg', 'instance');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1, loadBalancers: [{ targetGroupArn: arn, containerName: 'app', containerPort: 80 }] }, CALLER);
    await h.settle();
    assert.deepEqual(targets(h, arn).map((x) => [x.Id, x.Port]), [[ci, 32800]]);
  } finally {
    await h.close();
  }
});

test('a task that stops on its own (essential container exit) is deregistered and replaced', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h);
    await run(h, arn, 'healthy');
    const [t] = live(h);
    await submitTaskStateChange(h.ctx, { cluster: 'c', task: t!.taskArn, status: 'STOPPED', stopCode: 'EssentialContainerExited', reason: 'Essential container in task exited' });
    await run(h, arn, 'healthy');
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.stopCode, 'EssentialContainerExited');
    const [next] = live(h);
    assert.notEqual(next!.wharf.id, t!.wharf.id);
    assert.deepEqual(targets(h, arn).map((x) => x.ecsTaskArn), [next!.taskArn], 'only the replacement is a target');
    assert.ok(events(h).includes(`(service web) deregistered 1 targets in (target-group ${arn})`));
  } finally {
    await h.close();
  }
});

test('a health record older than the registration (an earlier target at the same address) does not count', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h);
    // Left over from an earlier target at the host port the new task will get.
    await h.ctx.state.waitFor(await h.ctx.store.txn([{ op: 'put', key: healthKey(elbIdOf(arn), 'i-0123456789abcdef0', 32768), value: { Id: 'i-0123456789abcdef0', Port: 32768, State: 'healthy', updatedAt: h.clock.now() - 1000 } }]));
    await h.settle();
    assert.deepEqual(targets(h, arn).map((x) => x.Port), [32768]);
    h.clock.advance(120_000);
    await h.settle();
    assert.equal((await service(h)).deployments![0]!.rolloutState, 'IN_PROGRESS', 'not healthy on a stale record');
    await run(h, arn, 'healthy');
    assert.equal((await service(h)).deployments![0]!.rolloutState, 'COMPLETED');
  } finally {
    await h.close();
  }
});

test("a task registered at an address whose earlier target was failing is not replaced: one task started, none stopped (two target groups)", async () => {
  // As a tester saw: tgA had a target registered by hand at 10.0.0.10:8080 that failed its
  // checks; the service's task got that IP. HAProxy judges addresses, so the load balancer
  // controller's first pass after the registration reported the address's failing state, and the
  // record, written after the registration, made the scheduler (grace period 0) start a second
  // task, stopped ("Scaling activity") as soon as the first one's target was seen healthy.
  const h = await harness();
  try {
    const tdArn = await h.registerTd('web', { networkMode: 'awsvpc', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080 }] }] });
    await h.addInstance({ forTaskDefinition: tdArn });
    const tgA = await createTargetGroup(h, 'a-tg', 'ip');
    const tgB = await createTargetGroup(h, 'b-tg', 'ip');
    let n = 1;
    for (const arn of [tgA, tgB]) {
      const name = arn.split('/')[1]!;
      const lb = { LoadBalancerArn: `arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/${name}/${elbIdOf(arn)}`, LoadBalancerName: name, DNSName: `${name}.elb`, Type: 'application', address: `10.99.0.${n++}`, Attributes: {}, Tags: [] };
      await h.ctx.state.waitFor(await h.ctx.store.create(loadBalancerKey(name), lb as unknown as LoadBalancerRecord));
    }
    const failing: TargetHealth = { state: 'unhealthy', reason: 'Target.FailedHealthChecks', description: 'Health checks failed' };
    const a = elbIdOf(tgA);
    await h.ctx.state.waitFor(await h.ctx.store.create(targetKeyOf(a, '10.0.0.10', 8080), { Id: '10.0.0.10', Port: 8080, registeredAt: h.clock.now() - 600_000 }));
    await h.ctx.state.waitFor(await h.ctx.store.create(healthKey(a, '10.0.0.10', 8080), { Id: '10.0.0.10', Port: 8080, State: 'unhealthy', Reason: failing.reason, Description: failing.description, updatedAt: h.clock.now() - 1000 }));
    h.clock.advance(1000);

    // The data plane's view, per target group and address.
    const seen = new Map<string, TargetHealthDescription[]>([[a, [{ target: { id: '10.0.0.10', port: 8080 }, health: failing }]]]);
    const lbc = new LoadBalancerController({
      dataPlane: { apply: async () => ({ reloaded: false, added: [], draining: [], freed: [] }), health: async () => seen },
      addresses: { add: async () => undefined, retain: async () => undefined },
      clock: h.clock,
      log: h.ctx.log,
      instanceHostAddress: '172.17.0.1',
    });
    lbc.addRegion(h.ctx);
    h.runningReport = () => ({ privateIpv4Address: '10.0.0.10' });
    const subnets = (await describeSubnets(h.ctx, {})).Subnets.map((x) => x.SubnetId!);
    await createService(h.ctx, {
      cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1, networkConfiguration: { awsvpcConfiguration: { subnets } },
      loadBalancers: [{ targetGroupArn: tgA, containerName: 'app', containerPort: 8080 }, { targetGroupArn: tgB, containerName: 'app', containerPort: 8080 }],
    }, CALLER);
    await h.settle();
    assert.equal(targets(h, tgA)[0]?.ecsTaskArn, h.tasks()[0]!.taskArn);

    // First pass after the registration: HAProxy still has the address failing in tgA.
    seen.set(elbIdOf(tgB), [{ target: { id: '10.0.0.10', port: 8080 }, health: { state: 'initial', reason: 'Elb.InitialHealthChecking', description: 'Initial health checks in progress' } }]);
    await lbc.runPass();
    await h.settle();
    // The next: the task answers its checks.
    for (const id of [a, elbIdOf(tgB)]) seen.set(id, [{ target: { id: '10.0.0.10', port: 8080 }, health: { state: 'healthy' } }]);
    await lbc.runPass();
    await h.settle();

    assert.equal(h.tasks().length, 1, events(h).join('\n'));
    assert.equal(live(h).length, 1);
    assert.equal(events(h).filter((m) => m.includes('has started')).length, 1, events(h).join('\n'));
    assert.ok(!events(h).some((m) => m.includes('has stopped')), events(h).join('\n'));
    assert.equal((await service(h)).deployments![0]!.rolloutState, 'COMPLETED');
  } finally {
    await h.close();
  }
});

test('a deployment with minimumHealthyPercent 100 keeps the old task until the new target is healthy, then drains it before stopping it', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h, { deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 } });
    await run(h, arn, 'healthy');
    const [old] = live(h);
    await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox:2', memory: 64, essential: true, portMappings: [{ containerPort: 80, hostPort: 0 }] }] });
    await updateService(h.ctx, { cluster: 'c', service: 'web', taskDefinition: 'web' });
    // The new task runs and is registered, but its target is still `initial`: the old one stays.
    await run(h, arn, (t) => (t.ecsTaskArn === old!.taskArn ? 'healthy' : 'initial'));
    assert.equal(h.ctx.state.tasks.get('c', old!.wharf.id)!.value.lastStatus, 'RUNNING');
    assert.equal(targets(h, arn).length, 2);
    // Healthy now: the old task is deregistered and DEACTIVATING; the stop waits for the drain.
    await run(h, arn, 'healthy', true);
    let o = h.ctx.state.tasks.get('c', old!.wharf.id)!.value;
    assert.equal(o.lastStatus, 'DEACTIVATING');
    assert.equal(o.desiredStatus, 'RUNNING', 'the agent is not told to stop it yet');
    assert.equal(o.stopCode, 'ServiceSchedulerInitiated');
    assert.match(o.stoppedReason!, /^Scaling activity initiated by \(deployment ecs-svc\/\d+\)$/);
    assert.deepEqual(targets(h, arn).map((x) => x.ecsTaskArn), [live(h)[0]!.taskArn]);
    // As ECS words and orders them (newest first): draining (per task set), deregistered, stopped.
    const ev = events(h);
    const draining = ev.indexOf(`(service web, taskSet ${old!.startedBy}) has begun draining connections on 1 tasks.`);
    const deregistered = ev.indexOf(`(service web) deregistered 1 targets in (target-group ${arn})`);
    const stoppedEv = ev.indexOf(`(service web) has stopped 1 running tasks: (task ${old!.wharf.id}).`);
    assert.ok(draining >= 0 && deregistered > draining && stoppedEv > deregistered, ev.join('\n'));
    const described = (await describeTasks(h.ctx, { cluster: 'c', tasks: [old!.taskArn] })).tasks![0]!;
    assert.equal(described.lastStatus, 'DEACTIVATING');
    assert.equal(described.desiredStatus, 'STOPPED', 'ECS shows the stop as asked for');
    const listed = await listTasks(h.ctx, { cluster: 'c', serviceName: 'web' });
    assert.ok(!listed.taskArns!.includes(old!.taskArn), 'ListTasks (desiredStatus RUNNING) leaves it out');
    assert.ok((await listTasks(h.ctx, { cluster: 'c', desiredStatus: 'STOPPED' })).taskArns!.includes(old!.taskArn));
    let s = await service(h);
    assert.equal(s.deployments!.length, 2, 'the deployment is not over while the old task drains');
    assert.equal(s.runningCount, 1, 'a DEACTIVATING task is not counted as running');
    // The data plane finishes draining (its health record goes): the task is told to stop.
    await run(h, arn, 'healthy');
    o = h.ctx.state.tasks.get('c', old!.wharf.id)!.value;
    assert.equal(o.lastStatus, 'STOPPED');
    assert.equal(o.stopCode, 'ServiceSchedulerInitiated');
    s = await service(h);
    assert.equal(s.deployments!.length, 1);
    assert.equal(s.deployments![0]!.rolloutState, 'COMPLETED');
  } finally {
    await h.close();
  }
});

test('the drain ends when the deregistration delay is over, also across a restart of the controller', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h, {}, 30);
    await run(h, arn, 'healthy');
    const [t] = live(h);
    await stopTask(h.ctx, { cluster: 'c', task: t!.taskArn });
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'DEACTIVATING', "a user's StopTask of a service task drains it too");
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.stoppedReason, 'Task stopped by user');
    assert.ok(events(h).includes(`(service web, taskSet ${t!.startedBy}) has begun draining connections on 1 tasks.`));
    // The data plane keeps the target draining (long-lived connections).
    await dataPlane(h, arn, 'healthy', true);
    h.clock.advance(20_000);
    await h.settle();
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'DEACTIVATING');
    // The control plane restarts: a new controller finds the drain in the store.
    h.targets.stop();
    const again = new ServiceLoadBalancerController(h.ctx);
    again.start();
    try {
      await again.idle();
      assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'DEACTIVATING');
      h.clock.advance(10_000);
      await again.idle();
      const after = h.ctx.state.tasks.get('c', t!.wharf.id)!.value;
      assert.equal(after.desiredStatus, 'STOPPED');
      assert.equal(after.lastStatus, 'STOPPING');
      assert.equal(after.stopCode, 'UserInitiated');
    } finally {
      again.stop();
    }
  } finally {
    await h.close();
  }
});

test('a target unhealthy after the grace period is replaced with the ELB stop reason and event; not during the grace period', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h, { desiredCount: 2, healthCheckGracePeriodSeconds: 60 });
    await run(h, arn, 'healthy');
    const [bad, good] = live(h);
    const badTarget = targets(h, arn).find((x) => x.ecsTaskArn === bad!.taskArn)!;
    const stateOf = (x: TargetRecord) => (x.ecsTaskArn === bad!.taskArn ? 'unhealthy' : 'healthy');
    // The tasks started under 60 s ago (harness clock): the failure is ignored.
    await run(h, arn, stateOf);
    assert.equal(h.ctx.state.tasks.get('c', bad!.wharf.id)!.value.lastStatus, 'RUNNING');
    h.clock.advance(61_000);
    await run(h, arn, stateOf, true);
    const b = h.ctx.state.tasks.get('c', bad!.wharf.id)!.value;
    assert.equal(b.lastStatus, 'DEACTIVATING');
    assert.equal(b.stopCode, 'ServiceSchedulerInitiated');
    assert.equal(b.stoppedReason, `Task failed ELB health checks in (target-group ${arn})`);
    assert.ok(events(h).includes(`(service web) (instance i-0123456789abcdef0) (port ${badTarget.Port}) is unhealthy in (target-group ${arn}) due to (reason Health checks failed).`), events(h).join('\n'));
    assert.equal(h.ctx.state.tasks.get('c', good!.wharf.id)!.value.lastStatus, 'RUNNING');
    assert.equal(live(h).length, 2, 'a replacement runs beside the healthy task');
  } finally {
    await h.close();
  }
});

test('UpdateService adds and removes a load balancer: new tasks join the new groups, old ones drain', async () => {
  const h = await harness();
  try {
    await h.addInstance({ ec2InstanceId: 'i-0123456789abcdef0' });
    let port = 40000;
    h.runningReport = () => ({ containers: [{ containerName: 'app', status: 'RUNNING', networkBindings: [{ containerPort: 80, hostPort: port++, protocol: 'tcp' }] }] });
    await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 80, hostPort: 0 }] }] });
    const arn = await createTargetGroup(h, 'web-tg', 'instance');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1 }, CALLER);
    await h.settle();
    h.clock.advance(2000);
    await h.settle();
    const [first] = live(h);
    await updateService(h.ctx, { cluster: 'c', service: 'web', loadBalancers: [{ targetGroupArn: arn, containerName: 'app', containerPort: 80 }] });
    await run(h, arn, 'healthy');
    const [second] = live(h);
    assert.notEqual(second!.wharf.id, first!.wharf.id);
    assert.equal(h.ctx.state.tasks.get('c', first!.wharf.id)!.value.lastStatus, 'STOPPED', 'a task without targets stops at once');
    assert.deepEqual(targets(h, arn).map((x) => x.ecsTaskArn), [second!.taskArn]);

    await updateService(h.ctx, { cluster: 'c', service: 'web', loadBalancers: [] });
    await h.settle();
    h.clock.advance(2000);
    await run(h, arn, 'healthy', true);
    assert.equal(h.ctx.state.tasks.get('c', second!.wharf.id)!.value.lastStatus, 'DEACTIVATING', 'the old task keeps draining from its group');
    assert.deepEqual(targets(h, arn), [], 'the new task is in no group');
    await run(h, arn, 'healthy');
    assert.equal(h.ctx.state.tasks.get('c', second!.wharf.id)!.value.lastStatus, 'STOPPED');
    assert.equal((await service(h)).deployments!.length, 1);
  } finally {
    await h.close();
  }
});

test('the circuit breaker counts tasks stopped for failing ELB health checks', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h, { deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: false }, minimumHealthyPercent: 100, maximumPercent: 200 } }, 0);
    for (let i = 0; i < 10 && (await service(h)).deployments![0]!.rolloutState !== 'FAILED'; i++) await run(h, arn, 'unhealthy');
    const s = await service(h);
    assert.equal(s.deployments![0]!.rolloutState, 'FAILED');
    assert.ok(s.deployments![0]!.failedTasks! >= 3);
    const stopped = h.tasks((t) => t.lastStatus === 'STOPPED');
    assert.ok(stopped.length >= 3);
    for (const t of stopped) assert.equal(t.stoppedReason, `Task failed ELB health checks in (target-group ${arn})`);
  } finally {
    await h.close();
  }
});

test('a deleted target group does not wedge the service; DeleteService drains the tasks', async () => {
  const h = await harness();
  try {
    const arn = await bridgeService(h);
    const gone = await createTargetGroup(h, 'gone', 'instance');
    await updateService(h.ctx, { cluster: 'c', service: 'web', loadBalancers: [{ targetGroupArn: arn, containerName: 'app', containerPort: 80 }, { targetGroupArn: gone, containerName: 'app', containerPort: 80 }] });
    // Deleted once the service uses it (UpdateService refuses a group that does not exist).
    const goneId = elbIdOf(gone);
    await h.ctx.state.waitFor(await h.ctx.store.txn([{ op: 'delete', key: listenerKey(goneId, goneId) }, { op: 'delete', key: targetGroupKey('gone') }]));
    await run(h, arn, 'healthy');
    assert.ok(events(h).includes(`(service web) failed to register targets in (target-group ${gone}) with (error Target groups '${gone}' not found)`));
    const s = await service(h);
    assert.equal(s.deployments!.length, 1);
    assert.equal(s.deployments![0]!.rolloutState, 'COMPLETED');
    const [t] = live(h);
    await deleteService(h.ctx, { cluster: 'c', service: 'web', force: true });
    await run(h, arn, 'healthy', true);
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'DEACTIVATING');
    assert.equal((await service(h)).status, 'DRAINING');
    await run(h, arn, 'healthy');
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'STOPPED');
    assert.equal((await service(h)).status, 'INACTIVE');
  } finally {
    await h.close();
  }
});

test('a DEACTIVATING task leaves its Cloud Map registry while its targets drain', async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx);
  registry.start();
  try {
    const cm = cloudMapHandlers(h.ctx);
    const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: 'corp.local', Vpc: 'vpc-1' })) as { OperationId: string };
    const nsId = ((await cm.GetOperation!({ OperationId })) as any).Operation.Targets.NAMESPACE;
    const svc = ((await cm.CreateService!({ Name: 'web', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'A', TTL: 10 }] } })) as any).Service;
    const tdArn = await h.registerTd('web', { networkMode: 'awsvpc', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 64, essential: true, portMappings: [{ containerPort: 8080 }] }] });
    await h.addInstance({ forTaskDefinition: tdArn });
    const arn = await createTargetGroup(h, 'web-ip', 'ip');
    h.runningReport = () => ({ privateIpv4Address: '10.0.0.20' });
    const subnets = (await describeSubnets(h.ctx, {})).Subnets.map((x) => x.SubnetId!);
    await createService(h.ctx, {
      cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1, networkConfiguration: { awsvpcConfiguration: { subnets } },
      loadBalancers: [{ targetGroupArn: arn, containerName: 'app', containerPort: 8080 }], serviceRegistries: [{ registryArn: svc.Arn }],
    }, CALLER);
    await run(h, arn, 'healthy');
    await registry.idle();
    const [t] = live(h);
    const ids = async () => ((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances.map((i: any) => i.Id);
    assert.deepEqual(await ids(), [t!.wharf.id]);
    await stopTask(h.ctx, { cluster: 'c', task: t!.taskArn });
    await dataPlane(h, arn, 'healthy', true);
    await registry.idle();
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'DEACTIVATING');
    assert.deepEqual(await ids(), [], 'deregistered from Cloud Map during DEACTIVATING');
  } finally {
    registry.stop();
    await h.close();
  }
});

test('a DEACTIVATING bridge task leaves its Cloud Map registry (SRV: host address, mapped host port) while its instance target drains', async () => {
  const h = await harness();
  const registry = new ServiceRegistryController(h.ctx, { instanceHostAddress: '172.17.0.1' });
  registry.start();
  try {
    const cm = cloudMapHandlers(h.ctx);
    const { OperationId } = (await cm.CreatePrivateDnsNamespace!({ Name: 'corp.local', Vpc: 'vpc-1' })) as { OperationId: string };
    const nsId = ((await cm.GetOperation!({ OperationId })) as any).Operation.Targets.NAMESPACE;
    const svc = ((await cm.CreateService!({ Name: 'web', NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: 'SRV', TTL: 10 }] } })) as any).Service;
    const arn = await bridgeService(h, { serviceRegistries: [{ registryArn: svc.Arn, containerName: 'app', containerPort: 80 }] });
    await run(h, arn, 'healthy');
    await registry.idle();
    const [t] = live(h);
    const hostPort = t!.containers![0]!.networkBindings![0]!.hostPort!;
    const registered = async () => ((await cm.ListInstances!({ ServiceId: svc.Id })) as any).Instances.map((i: any) => [i.Id, i.Attributes.AWS_INSTANCE_IPV4, i.Attributes.AWS_INSTANCE_PORT]);
    assert.deepEqual(await registered(), [[t!.wharf.id, '172.17.0.1', String(hostPort)]], 'the same host port as its instance target');
    assert.deepEqual(targets(h, arn).map((x) => x.Port), [hostPort]);
    await stopTask(h.ctx, { cluster: 'c', task: t!.taskArn });
    await dataPlane(h, arn, 'healthy', true);
    await registry.idle();
    assert.equal(h.ctx.state.tasks.get('c', t!.wharf.id)!.value.lastStatus, 'DEACTIVATING');
    assert.deepEqual(await registered(), [], 'deregistered from Cloud Map during DEACTIVATING');
  } finally {
    registry.stop();
    await h.close();
  }
});
