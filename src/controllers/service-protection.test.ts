// Task scale-in protection as a service sees it: UpdateTaskProtection / GetTaskProtection through
// the control layer, the ServiceController and a fake agent, on a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createService, describeServices, updateService } from '../control/services';
import { getTaskProtection, updateTaskProtection } from '../control/task-protection';
import { runTask } from '../control/tasks';
import { isWharfError } from '../core/errors';
import type { Service } from '../core/shapes/ecs';
import { CALLER, harness, type Harness } from './service-test-harness';

async function describe(h: Harness): Promise<Service> {
  return (await describeServices(h.ctx, { cluster: 'c', services: ['web'] })).services![0]!;
}
const live = (h: Harness) => h.tasks((t) => t.desiredStatus === 'RUNNING' && t.lastStatus !== 'STOPPED');

/** Lets RUNNING tasks become healthy (1 s in the harness) and settles. */
async function warm(h: Harness, rounds = 5) {
  for (let i = 0; i < rounds; i++) {
    await h.settle();
    h.clock.advance(1000);
    await h.settle();
  }
}

async function webService(h: Harness, desiredCount: number, deploymentConfiguration?: { minimumHealthyPercent: number; maximumPercent: number }) {
  await h.addInstance();
  await h.registerTd('web');
  await createService(h.ctx, { cluster: 'c', serviceName: 'web', taskDefinition: 'web', desiredCount, ...(deploymentConfiguration ? { deploymentConfiguration } : {}) }, CALLER);
  await warm(h);
  assert.equal(live(h).length, desiredCount);
}

test('scale-in keeps protected tasks until their protection expires, then stops them', async () => {
  const h = await harness();
  try {
    await webService(h, 3);
    const [a, b] = live(h);
    const r = await updateTaskProtection(h.ctx, { cluster: 'c', tasks: [a!.taskArn, b!.taskArn], protectionEnabled: true, expiresInMinutes: 5 });
    assert.deepEqual(r.failures, []);
    assert.deepEqual(r.protectedTasks!.map((p) => [p.taskArn, p.protectionEnabled, p.expirationDate]), [
      [a!.taskArn, true, (h.clock.now() + 5 * 60_000) / 1000],
      [b!.taskArn, true, (h.clock.now() + 5 * 60_000) / 1000],
    ]);

    await updateService(h.ctx, { cluster: 'c', service: 'web', desiredCount: 1 });
    await warm(h);
    // Only the unprotected task went; the two protected ones keep running above desiredCount.
    assert.deepEqual(live(h).map((t) => t.taskArn).sort(), [a!.taskArn, b!.taskArn].sort());
    let s = await describe(h);
    assert.equal(s.runningCount, 2);
    assert.equal(s.desiredCount, 1);
    assert.ok(!s.events!.some((e) => /deployment configuration/.test(e.message!)), 'waiting for protection is not a configuration stall');

    // Nothing but time passes: the controller wakes when the protection expires.
    h.clock.advance(5 * 60_000);
    await warm(h);
    assert.equal(live(h).length, 1);
    s = await describe(h);
    assert.equal(s.runningCount, 1);
    const g = await getTaskProtection(h.ctx, { cluster: 'c', tasks: [a!.taskArn] });
    assert.deepEqual(g.protectedTasks, [{ taskArn: a!.taskArn, protectionEnabled: false }]);
  } finally {
    await h.close();
  }
});

test('a deployment replaces unprotected tasks and waits for a protected one until protection is removed', async () => {
  const h = await harness();
  try {
    await webService(h, 2, { minimumHealthyPercent: 100, maximumPercent: 200 });
    const [keep] = live(h);
    await updateTaskProtection(h.ctx, { cluster: 'c', tasks: [keep!.wharf.id], protectionEnabled: true });
    const v2 = await h.registerTd('web', { containerDefinitions: [{ name: 'app', image: 'busybox:2', memory: 256, essential: true }] });
    await updateService(h.ctx, { cluster: 'c', service: 'web', taskDefinition: 'web' });
    await warm(h, 10);
    const running = live(h);
    assert.equal(running.filter((t) => t.taskDefinitionArn === v2).length, 2);
    assert.deepEqual(running.filter((t) => t.taskDefinitionArn !== v2).map((t) => t.taskArn), [keep!.taskArn]);
    let s = await describe(h);
    assert.equal(s.deployments!.length, 2);
    assert.equal(s.deployments![0]!.rolloutState, 'IN_PROGRESS');

    await updateTaskProtection(h.ctx, { cluster: 'c', tasks: [keep!.taskArn], protectionEnabled: false });
    await warm(h);
    assert.ok(live(h).every((t) => t.taskDefinitionArn === v2));
    s = await describe(h);
    assert.equal(s.deployments!.length, 1);
    assert.equal(s.deployments![0]!.rolloutState, 'COMPLETED');
  } finally {
    await h.close();
  }
});

test('protection with default expiry lasts 120 minutes; failures are MISSING and TASK_NOT_VALID', async () => {
  const h = await harness();
  try {
    await webService(h, 1);
    const [t] = live(h);
    const standalone = await runTask(h.ctx, { cluster: 'c', taskDefinition: 'web' });
    const lone = standalone.tasks![0]!.taskArn!;
    const missing = 'arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef';
    const r = await updateTaskProtection(h.ctx, { cluster: 'c', tasks: [t!.taskArn, lone, '0123456789abcdef0123456789abcdef'], protectionEnabled: true });
    assert.deepEqual(r.protectedTasks, [{ taskArn: t!.taskArn, protectionEnabled: true, expirationDate: (h.clock.now() + 120 * 60_000) / 1000 }]);
    assert.deepEqual(r.failures, [
      { arn: lone, reason: 'TASK_NOT_VALID', detail: 'The task is not part of a service.' },
      { arn: missing, reason: 'MISSING' },
    ]);
    // Without a list: the cluster's protected tasks.
    const all = await getTaskProtection(h.ctx, { cluster: 'c' });
    assert.deepEqual(all.protectedTasks!.map((p) => p.taskArn), [t!.taskArn]);
    h.clock.advance(120 * 60_000 - 1);
    assert.equal((await getTaskProtection(h.ctx, { cluster: 'c', tasks: [t!.taskArn] })).protectedTasks![0]!.protectionEnabled, true);
    h.clock.advance(1);
    assert.equal((await getTaskProtection(h.ctx, { cluster: 'c', tasks: [t!.taskArn] })).protectedTasks![0]!.protectionEnabled, false);
  } finally {
    await h.close();
  }
});

test('bad input is refused as ECS refuses it', async () => {
  const h = await harness();
  try {
    await webService(h, 1);
    const arn = live(h)[0]!.taskArn;
    const refused = async (p: Promise<unknown>, code: string, message: RegExp) =>
      assert.rejects(p, (e: unknown) => isWharfError(e) && e.code === code && message.test(e.message));
    for (const m of [0, -5, 2881, 1.5]) {
      await refused(updateTaskProtection(h.ctx, { cluster: 'c', tasks: [arn], protectionEnabled: true, expiresInMinutes: m }), 'InvalidParameterException', /expiresInMinutes must be between 1 and 2880/);
    }
    await refused(updateTaskProtection(h.ctx, { cluster: 'c', tasks: Array(11).fill(arn), protectionEnabled: true }), 'InvalidParameterException', /At most 10/);
    await refused(updateTaskProtection(h.ctx, { cluster: 'c', tasks: [], protectionEnabled: true }), 'InvalidParameterException', /empty/);
    await refused(getTaskProtection(h.ctx, { cluster: 'c', tasks: Array(101).fill(arn) }), 'InvalidParameterException', /At most 100/);
    await refused(updateTaskProtection(h.ctx, { cluster: 'nope', tasks: [arn], protectionEnabled: true }), 'ClusterNotFoundException', /Cluster not found/);
    // The maximum is allowed, and nothing was written by the refused calls.
    assert.equal((await getTaskProtection(h.ctx, { cluster: 'c', tasks: [arn] })).protectedTasks![0]!.protectionEnabled, false);
    const r = await updateTaskProtection(h.ctx, { cluster: 'c', tasks: [arn], protectionEnabled: true, expiresInMinutes: 2880 });
    assert.equal(r.protectedTasks![0]!.expirationDate, (h.clock.now() + 2880 * 60_000) / 1000);
  } finally {
    await h.close();
  }
});

test('an agent key may protect only the tasks of the container instance it speaks for', async () => {
  const h = await harness();
  try {
    await webService(h, 1);
    const other = await h.addInstance({ az: 'us-east-1b' });
    const t = live(h)[0]!;
    const own = `arn:aws:ecs:us-east-1:123456789012:container-instance/c/${t.wharf.instanceId}`;
    const agent = (containerInstanceArn?: string) => ({ ...CALLER, isAgent: true, principalArn: 'arn:aws:iam::123456789012:role/wharf-agent', ...(containerInstanceArn ? { containerInstanceArn } : {}) });
    const denied = (e: unknown) => isWharfError(e, 'AccessDeniedException') && e.message.includes(`on resource: ${t.taskArn}`);
    await assert.rejects(updateTaskProtection(h.ctx, { cluster: 'c', tasks: [t.taskArn], protectionEnabled: true }, agent()), denied);
    await assert.rejects(updateTaskProtection(h.ctx, { cluster: 'c', tasks: [t.taskArn], protectionEnabled: true }, agent(other)), denied);
    await assert.rejects(getTaskProtection(h.ctx, { cluster: 'c', tasks: [t.taskArn] }, agent(other)), denied);
    const ok = await updateTaskProtection(h.ctx, { cluster: 'c', tasks: [t.taskArn], protectionEnabled: true, expiresInMinutes: 60 }, agent(own));
    assert.equal(ok.protectedTasks![0]!.protectionEnabled, true);
    const got = await getTaskProtection(h.ctx, { cluster: 'c', tasks: [t.wharf.id] }, agent(t.wharf.instanceId));
    assert.equal(got.protectedTasks![0]!.expirationDate, (h.clock.now() + 60 * 60_000) / 1000);
  } finally {
    await h.close();
  }
});
