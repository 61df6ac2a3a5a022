// The service scheduler end to end inside one process: the ECS service operations, the
// ServiceController, the scheduler and a fake agent reporting through SubmitTaskStateChange.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { updateContainerInstancesState } from '../control/container-instances';
import { createService, deleteService, describeServices, listServices, updateService } from '../control/services';
import { describeServiceDeployments, listServiceDeployments } from '../control/service-deployments';
import { runTask } from '../control/tasks';
import { submitTaskStateChange } from '../control/task-state-changes';
import { isWharfError } from '../core/errors';
import type { Service } from '../core/shapes/ecs';
import { CALLER, harness, type Harness } from './service-test-harness';

async function describe(h: Harness, name = 'web'): Promise<Service> {
  const r = await describeServices(h.ctx, { cluster: 'c', services: [name], include: ['TAGS'] });
  assert.equal(r.failures!.length, 0);
  return r.services![0]!;
}

/** The AWS CLI's services-stable acceptor: length(deployments) == 1 && runningCount == desiredCount. */
const stable = (s: Service) => Array.isArray(s.deployments) && s.deployments.length === 1 && s.runningCount === s.desiredCount;
const live = (h: Harness) => h.tasks((t) => t.desiredStatus === 'RUNNING' && t.lastStatus !== 'STOPPED');

/** Lets RUNNING tasks become healthy (1 s in the harness) and settles again. */
async function warm(h: Harness, opts?: Parameters<Harness['settle']>[0]) {
  for (let i = 0; i < 30; i++) {
    await h.settle(opts);
    h.clock.advance(1000);
    await h.settle(opts);
    if (stable(await describe(h)) && (await describe(h)).deployments![0]!.rolloutState !== 'IN_PROGRESS') return;
  }
}

test('a REPLICA service places desiredCount tasks, reaches a steady state and replaces a stopped task', async () => {
  const h = await harness();
  try {
    await h.addInstance();
    await h.addInstance({ az: 'us-east-1b' });
    const td = await h.registerTd('web');
    const created = await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 3, tags: [{ key: 'team', value: 'a' }], propagateTags: 'SERVICE', enableECSManagedTags: true }, CALLER);
    assert.equal(created.service!.serviceArn, 'arn:aws:ecs:us-east-1:123456789012:service/c/web');
    assert.equal(created.service!.deployments!.length, 1);
    assert.match(created.service!.deployments![0]!.id!, /^ecs-svc\/\d{19}$/);
    await h.settle();
    const tasks = live(h);
    assert.equal(tasks.length, 3);
    const depId = created.service!.deployments![0]!.id;
    for (const t of tasks) {
      assert.equal(t.group, 'service:web');
      assert.equal(t.startedBy, depId);
      assert.equal(t.taskDefinitionArn, td);
      assert.deepEqual(t.tags!.find((x) => x.key === 'team'), { key: 'team', value: 'a' });
      assert.ok(t.tags!.some((x) => x.key === 'aws:ecs:serviceName' && x.value === 'web'));
    }
    // The default strategy spreads across the two AZs.
    assert.equal(new Set(tasks.map((t) => t.availabilityZone)).size, 2);
    await warm(h);
    let s = await describe(h);
    assert.ok(stable(s));
    assert.equal(s.runningCount, 3);
    assert.equal(s.pendingCount, 0);
    assert.equal(s.deployments![0]!.rolloutState, 'COMPLETED');
    assert.equal(s.events![0]!.message, '(service web) has reached a steady state.');
    assert.ok(s.events!.some((e) => /^\(service web\) has started 3 tasks: \(task [0-9a-f]{32}\) \(task [0-9a-f]{32}\) \(task [0-9a-f]{32}\)\.$/.test(e.message!)));
    assert.deepEqual(s.tags, [{ key: 'team', value: 'a' }]);

    // An essential container exits: the task is replaced.
    const victim = tasks[0]!;
    await submitTaskStateChange(h.ctx, { cluster: 'c', task: victim.taskArn, status: 'STOPPED', containers: [{ containerName: 'app', status: 'STOPPED', exitCode: 137 }] });
    await h.settle();
    assert.equal(live(h).length, 3);
    assert.ok(!live(h).some((t) => t.taskArn === victim.taskArn));
    await warm(h);
    s = await describe(h);
    assert.ok(stable(s));
    assert.equal(s.events![0]!.message, '(service web) has reached a steady state.');

    // Scaling is not a deployment.
    await updateService(h.ctx, { cluster: 'c', service: 'web', desiredCount: 1 });
    await h.settle();
    s = await describe(h);
    assert.equal(s.deployments!.length, 1);
    assert.equal(s.deployments![0]!.id, depId);
    assert.equal(live(h).length, 1);
    assert.ok(s.events!.some((e) => /has stopped 2 running tasks/.test(e.message!)));
  } finally {
    await h.close();
  }
});

test('a rolling deployment stays within min/max at every step and ends with one deployment', async () => {
  const h = await harness();
  try {
    await h.addInstance();
    await h.addInstance({ az: 'us-east-1b' });
    await h.registerTd('web');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 4, deploymentConfiguration: { minimumHealthyPercent: 50, maximumPercent: 150 } }, CALLER);
    await warm(h);
    const v2 = await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox:2', memory: 256, essential: true }] });
    const updated = await updateService(h.ctx, { cluster: 'c', service: 'web', taskDefinition: 'web' });
    assert.equal(updated.service!.deployments!.length, 2);
    assert.equal(updated.service!.deployments![0]!.status, 'PRIMARY');
    assert.equal(updated.service!.deployments![1]!.status, 'ACTIVE');
    const check = () => {
      const wanted = live(h);
      assert.ok(wanted.length <= 6, `at most floor(4 x 150%) = 6 RUNNING+PENDING, saw ${wanted.length}`);
      const running = wanted.filter((t) => t.lastStatus === 'RUNNING').length;
      assert.ok(running >= 2, `at least ceil(4 x 50%) = 2 RUNNING, saw ${running}`);
    };
    await warm(h, { onStep: check });
    const s = await describe(h);
    assert.ok(stable(s));
    assert.equal(s.taskDefinition, v2);
    assert.equal(s.deployments![0]!.rolloutState, 'COMPLETED');
    assert.ok(live(h).every((t) => t.taskDefinitionArn === v2));
    const history = await listServiceDeployments(h.ctx, { cluster: 'c', service: 'web' });
    assert.deepEqual(history.serviceDeployments!.map((d) => d.status), ['SUCCESSFUL', 'SUCCESSFUL']);
    const detail = await describeServiceDeployments(h.ctx, { serviceDeploymentArns: [history.serviceDeployments![0]!.serviceDeploymentArn!] });
    assert.equal(detail.serviceDeployments![0]!.targetServiceRevision!.runningTaskCount, 4);
  } finally {
    await h.close();
  }
});

test('circuit breaker: a deployment whose tasks never start fails and rolls back', async () => {
  const h = await harness();
  try {
    await h.addInstance();
    const v1 = await h.registerTd('web');
    await createService(h.ctx, {
      cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2,
      deploymentConfiguration: { deploymentCircuitBreaker: { enable: true, rollback: true } },
    }, CALLER);
    await warm(h);
    const v2 = await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'nope:missing', memory: 256, essential: true }] });
    await updateService(h.ctx, { cluster: 'c', service: 'web', taskDefinition: v2 });
    const failing = (t: { taskDefinitionArn?: string }) => t.taskDefinitionArn === v2;
    await warm(h, { failing });
    const s = await describe(h);
    assert.ok(stable(s), JSON.stringify(s.deployments));
    assert.equal(s.taskDefinition, v1);
    assert.match(s.deployments![0]!.rolloutStateReason!, /^ECS deployment ecs-svc\/\d+ completed\.$/);
    assert.ok(s.events!.some((e) => /deployment failed: tasks failed to start/.test(e.message!)));
    assert.ok(live(h).every((t) => t.taskDefinitionArn === v1));
    const failedTasks = h.tasks((t) => t.taskDefinitionArn === v2);
    assert.ok(failedTasks.length >= 3, 'the threshold for 2 tasks is 3 failures');
    const hist = await listServiceDeployments(h.ctx, { cluster: 'c', service: 'web' });
    assert.ok(hist.serviceDeployments!.some((d) => d.status === 'ROLLBACK_SUCCESSFUL'));
  } finally {
    await h.close();
  }
});

test('draining moves service tasks (replacements first), leaves standalone tasks alone', async () => {
  const h = await harness();
  try {
    const a = await h.addInstance();
    await h.registerTd('web');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2 }, CALLER);
    await warm(h);
    const standalone = (await runTask(h.ctx, { cluster: 'c', taskDefinition: 'web' })).tasks![0]!;
    await h.settle();
    const b = await h.addInstance();
    await updateContainerInstancesState(h.ctx, { cluster: 'c', containerInstances: [a], status: 'DRAINING' });
    await warm(h, {
      onStep: () => assert.ok(live(h).filter((t) => t.wharf.serviceName === 'web' && t.lastStatus === 'RUNNING').length >= 2, 'min 100%: never fewer than 2 running'),
    });
    const svcTasks = live(h).filter((t) => t.wharf.serviceName === 'web');
    assert.equal(svcTasks.length, 2);
    assert.ok(svcTasks.every((t) => t.wharf.instanceId === b));
    const st = h.tasks((t) => t.taskArn === standalone.taskArn)[0]!;
    assert.equal(st.desiredStatus, 'RUNNING');
    assert.equal(st.wharf.instanceId, a);
  } finally {
    await h.close();
  }
});

test('an agent gone past the timeout: its tasks are replaced; when it returns the surplus stops', async () => {
  const h = await harness();
  try {
    const a = await h.addInstance();
    await h.addInstance();
    await h.registerTd('web');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2, placementConstraints: [{ type: 'distinctInstance' }] }, CALLER);
    await warm(h);
    // With distinctInstance there is one task per instance, so the replacement needs a third.
    await h.setConnected(a, false);
    const c = await h.addInstance();
    await warm(h);
    const s = await describe(h);
    assert.equal(s.runningCount, 2);
    assert.ok(stable(s));
    assert.ok(!live(h).some((t) => t.wharf.instanceId === a));
    await h.setConnected(a, true);
    await warm(h);
    const after = await describe(h);
    assert.equal(after.runningCount, 2);
    assert.equal(live(h).length, 2);
    assert.ok(live(h).some((t) => t.wharf.instanceId === c));
  } finally {
    await h.close();
  }
});

test('unable to place: the event names the closest instance and what it lacks', async () => {
  const h = await harness();
  try {
    const id = await h.addInstance({ memory: 300 });
    await h.registerTd('web');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2 }, CALLER);
    await h.settle();
    const s = await describe(h);
    assert.equal(live(h).length, 1);
    assert.ok(s.events!.some((e) => e.message === `(service web) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance ${id}) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.`));
  } finally {
    await h.close();
  }
});

test('no capacity: the service is created, places nothing and its events say why; an instance that joins gets the tasks', async () => {
  const h = await harness();
  try {
    await h.registerTd('web');
    const created = (await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2 }, CALLER)).service!;
    assert.equal(created.status, 'ACTIVE');
    await h.settle();
    const s = await describe(h);
    assert.equal(s.desiredCount, 2);
    assert.equal(s.pendingCount, 0);
    assert.equal(s.runningCount, 0);
    assert.equal(h.tasks().length, 0);
    const noInstances =
      '(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.';
    assert.deepEqual(s.events!.map((e) => e.message), [noInstances], 'said once, not repeated on every retry');
    h.clock.advance(10_000);
    await h.settle();
    assert.equal((await describe(h)).events!.length, 1);

    await h.addInstance();
    h.clock.advance(10_000);
    await warm(h);
    const after = await describe(h);
    assert.equal(after.runningCount, 2);
    assert.match(after.events!.find((e) => e.message!.includes('has started'))!.message!, /^\(service web\) has started 2 tasks: /);
  } finally {
    await h.close();
  }
});

test('DeleteService: refused while scaled up; force drains to INACTIVE; the name is reusable', async () => {
  const h = await harness();
  try {
    await h.addInstance();
    await h.registerTd('web');
    await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2, clientToken: 'tok' }, CALLER);
    // Idempotent create with the same token and parameters; an error with others.
    const again = await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 2, clientToken: 'tok' }, CALLER);
    assert.equal(again.service!.serviceArn, 'arn:aws:ecs:us-east-1:123456789012:service/c/web');
    await assert.rejects(createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 3, clientToken: 'tok' }, CALLER), (e) => isWharfError(e, 'InvalidParameterException') && /not idempotent/.test(e.message));
    await warm(h);
    await assert.rejects(deleteService(h.ctx, { cluster: 'c', service: 'web' }), (e) => isWharfError(e, 'InvalidParameterException') && e.message === 'The service cannot be stopped while it is scaled above 0.');
    const d = await deleteService(h.ctx, { cluster: 'c', service: 'web', force: true });
    assert.equal(d.service!.status, 'DRAINING');
    await assert.rejects(updateService(h.ctx, { cluster: 'c', service: 'web', desiredCount: 1 }), (e) => isWharfError(e, 'ServiceNotActiveException'));
    // Re-created while its tasks drain: ECS's own words, which delete-then-create tools retry on.
    await assert.rejects(createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1 }, CALLER), (e) => isWharfError(e, 'InvalidParameterException') && e.message === 'Unable to Start a service that is still Draining.');
    await h.settle();
    const s = await describe(h);
    assert.equal(s.status, 'INACTIVE');
    assert.equal(live(h).length, 0);
    assert.deepEqual((await listServices(h.ctx, { cluster: 'c' })).serviceArns, []);
    const re = await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount: 1 }, CALLER);
    assert.equal(re.service!.status, 'ACTIVE');
    const missing = await describeServices(h.ctx, { cluster: 'c', services: ['nope'] });
    assert.deepEqual(missing.failures, [{ arn: 'arn:aws:ecs:us-east-1:123456789012:service/nope', reason: 'MISSING' }]);
  } finally {
    await h.close();
  }
});

test('DAEMON: one task per instance, a new instance gets one, a draining one loses it', async () => {
  const h = await harness();
  try {
    const a = await h.addInstance();
    await h.addInstance();
    await h.registerTd('agent');
    await createService(h.ctx, { cluster: 'c', serviceName: 'agent', taskDefinition: 'agent', schedulingStrategy: 'DAEMON' }, CALLER);
    await h.settle();
    assert.equal(live(h).length, 2);
    const c = await h.addInstance();
    await h.settle();
    assert.equal(live(h).filter((t) => t.wharf.instanceId === c).length, 1);
    await updateContainerInstancesState(h.ctx, { cluster: 'c', containerInstances: [a], status: 'DRAINING' });
    await h.settle();
    h.clock.advance(1000);
    await h.settle();
    assert.equal(live(h).length, 2);
    assert.equal(live(h).filter((t) => t.wharf.instanceId === a).length, 0);
    const s = await describe(h, 'agent');
    assert.equal(s.desiredCount, 2);
    assert.equal(s.runningCount, 2);
    assert.ok(stable(s));
  } finally {
    await h.close();
  }
});

test('unsupported deployment controllers answer UnsupportedFeatureException', async () => {
  const h = await harness();
  try {
    await h.registerTd('web');
    for (const type of ['CODE_DEPLOY', 'EXTERNAL'] as const) {
      await assert.rejects(createService(h.ctx, { cluster: 'c', serviceName: 'x', taskDefinition: 'web', deploymentController: { type } }, CALLER), (e) => isWharfError(e, 'UnsupportedFeatureException'));
    }
  } finally {
    await h.close();
  }
});
