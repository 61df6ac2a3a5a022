// Table-driven cases of the pure service planner: rolling-update bounds (the worked examples of
// ECS-REFERENCE 6.4), replacement of lost and unhealthy tasks, the circuit breaker and rollback,
// restart throttling, DAEMON placement, and the deployment / steady-state bookkeeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceDeploymentRecord, ServiceRecord } from '../core/resources';
import { DEFAULT_THROTTLE, circuitBreakerThreshold, deploymentBounds, throttleDelayMs } from '../core/service-math';
import { planService, type ServicePlan } from './service-plan';
import type { InstanceView, PlanOptions, ServiceTaskView } from './service-task-view';

const NOW = 1_700_000_000_000;
let seq = 0;
const opts: PlanOptions = {
  healthyAfterRunningMs: 40_000,
  throttle: DEFAULT_THROTTLE,
  newDeploymentId: () => `ecs-svc/${String(++seq).padStart(19, '9')}`,
  newEventId: () => `ev-${++seq}`,
};

function deployment(id: string, status: 'PRIMARY' | 'ACTIVE', desired: number, extra: Partial<ServiceDeploymentRecord> = {}): ServiceDeploymentRecord {
  return {
    id, status, revisionId: `rev-${id}`, taskDefinition: `td:${id}`, desiredCount: desired, failedTasks: 0, createdAt: 1, updatedAt: 1,
    rolloutState: 'IN_PROGRESS', rolloutStateReason: '', judged: [], startFailures: 0, ...extra,
  };
}

function service(desired: number, min: number, max: number, deps: ServiceDeploymentRecord[], extra: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    serviceArn: 'arn:svc', serviceName: 'web', clusterArn: 'arn:c', status: 'ACTIVE', desiredCount: desired, schedulingStrategy: 'REPLICA',
    taskDefinition: deps[0]!.taskDefinition,
    deploymentConfiguration: { minimumHealthyPercent: min, maximumPercent: max, deploymentCircuitBreaker: { enable: false, rollback: false } },
    events: [], tags: [],
    wharf: {
      cluster: 'c', deployments: deps,
      revisions: deps.map((d) => ({ id: d.revisionId, taskDefinition: d.taskDefinition, loadBalancers: [], serviceRegistries: [], createdAt: 1 })),
      history: deps.map((d) => ({ id: d.id, status: 'IN_PROGRESS' as const, targetRevisionId: d.revisionId, sourceRevisionIds: [], deploymentConfiguration: {}, createdAt: 1, startedAt: 1, updatedAt: 1 })),
      fingerprint: '', steady: false,
    },
    ...extra,
  };
}

let tid = 0;
/** A healthy RUNNING task (started long ago) unless overridden. */
function task(dep: string, extra: Partial<ServiceTaskView> = {}): ServiceTaskView {
  return { id: `t${++tid}`, deploymentId: dep, instanceId: 'i1', lastStatus: 'RUNNING', desiredStatus: 'RUNNING', createdAt: NOW - 600_000 + tid, startedAt: NOW - 500_000, hasHealthCheck: false, ...extra };
}
const tasks = (n: number, dep: string, extra: Partial<ServiceTaskView> = {}) => Array.from({ length: n }, () => task(dep, extra));
const instances: InstanceView[] = [
  { id: 'i1', status: 'ACTIVE', agentConnected: true },
  { id: 'i2', status: 'ACTIVE', agentConnected: true },
];
const plan = (s: ServiceRecord, ts: ServiceTaskView[], inst = instances, now = NOW) => planService({ service: s, tasks: ts, instances: inst, now, options: opts });
const started = (p: ServicePlan) => p.place.reduce((n, x) => n + x.count, 0) + p.placeOn.length;

test('bounds: the worked examples of ECS-REFERENCE 6.4', () => {
  const cases: [number, number, number, number, number][] = [
    [4, 100, 200, 4, 8], [4, 50, 100, 2, 4], [4, 50, 150, 2, 6], [3, 50, 150, 2, 4], [2, 75, 125, 2, 2],
    [1, 100, 200, 1, 2], [1, 0, 100, 0, 1], [10, 100, 110, 10, 11], [4, 50, 200, 2, 8], [10, 100, 200, 10, 20], [3, 0, 100, 0, 3],
  ];
  for (const [d, min, max, L, U] of cases) assert.deepEqual(deploymentBounds(d, min, max), { minHealthy: L, maxRunning: U }, `${d} ${min}/${max}`);
});

test('circuit breaker threshold min(200, max(3, ceil(desired/2)))', () => {
  for (const [d, t] of [[1, 3], [4, 3], [7, 4], [25, 13], [400, 200], [800, 200]]) assert.equal(circuitBreakerThreshold(d!), t);
});

test('throttle delay grows and is capped at 15 minutes', () => {
  assert.equal(throttleDelayMs(2), 0);
  assert.equal(throttleDelayMs(3), 10_000);
  assert.equal(throttleDelayMs(4), 20_000);
  assert.equal(throttleDelayMs(30), 15 * 60_000);
});

/**
 * Rolling deployments step by step: each step applies the plan (started tasks appear PENDING,
 * stopped ones vanish), then optionally lets every PENDING task become healthy. At every step
 * the bounds hold: healthy >= L after the stops, live <= U after the starts.
 */
function rollout(desired: number, min: number, max: number) {
  seq = 0;
  const oldD = deployment('old', 'ACTIVE', desired, { rolloutState: 'COMPLETED' });
  const newD = deployment('new', 'PRIMARY', desired);
  let s = service(desired, min, max, [newD, oldD]);
  let ts = tasks(desired, 'old');
  const { minHealthy: L, maxRunning: U } = deploymentBounds(desired, min, max);
  const trace: string[] = [];
  for (let step = 0; step < 20; step++) {
    const p = plan(s, ts);
    const stops = new Set(p.stop.map((x) => x.taskId));
    ts = ts.filter((t) => !stops.has(t.id));
    for (let i = 0; i < started(p); i++) ts.push(task('new', { lastStatus: 'PENDING', startedAt: undefined }));
    const healthy = ts.filter((t) => t.lastStatus === 'RUNNING').length;
    assert.ok(healthy >= Math.min(L, desired) || stops.size === 0, `step ${step}: healthy ${healthy} < L ${L}`);
    assert.ok(ts.length <= U, `step ${step}: live ${ts.length} > U ${U}`);
    trace.push(`+${started(p)} -${stops.size}`);
    s = p.service;
    if (started(p) === 0 && stops.size === 0) {
      if (ts.some((t) => t.lastStatus === 'PENDING')) ts = ts.map((t) => (t.lastStatus === 'PENDING' ? { ...t, lastStatus: 'RUNNING', startedAt: NOW - 100_000 } : t));
      else return { trace, s, ts, p };
    }
  }
  throw new Error(`no convergence: ${trace.join(', ')}`);
}

test('rolling deployment, 4 tasks at 50/200: 4 new start beside the old, 2 old stop at once', () => {
  const r = rollout(4, 50, 200);
  assert.equal(r.trace[0], '+4 -2');
  assert.equal(r.ts.length, 4);
  assert.ok(r.ts.every((t) => t.deploymentId === 'new'));
  assert.equal(r.s.wharf.deployments.length, 1);
  assert.equal(r.s.wharf.deployments[0]!.rolloutState, 'COMPLETED');
  assert.ok(r.s.events.some((e) => e.message === '(service web) has reached a steady state.'));
  assert.ok(r.s.events.some((e) => e.message === '(service web) (deployment new) deployment completed.'));
});

test('rolling deployment, 10 tasks at 100/200: all new first, old only once new are healthy', () => {
  const r = rollout(10, 100, 200);
  // '+0 -0' is the pause while the new tasks become healthy.
  assert.deepEqual(r.trace.slice(0, 3), ['+10 -0', '+0 -0', '+0 -10']);
  assert.equal(r.ts.filter((t) => t.deploymentId === 'new').length, 10);
});

test('rolling deployment, 3 tasks at 0/100: stop all old first, then start 3 new', () => {
  const r = rollout(3, 0, 100);
  assert.deepEqual(r.trace.slice(0, 2), ['+0 -3', '+3 -0']);
});

test('rolling deployment, 4 tasks at 50/100: two at a time', () => {
  const r = rollout(4, 50, 100);
  assert.deepEqual(r.trace.slice(0, 5), ['+0 -2', '+2 -0', '+0 -0', '+0 -2', '+2 -0']);
});

test('2 tasks at 75/125 can neither start nor stop: the stall event', () => {
  const s = service(2, 75, 125, [deployment('new', 'PRIMARY', 2), deployment('old', 'ACTIVE', 2)]);
  const p = plan(s, tasks(2, 'old'));
  assert.equal(started(p) + p.stop.length, 0);
  assert.match(p.service.events[0]!.message!, /unable to stop or start tasks during a deployment because of the service deployment configuration/);
});

test('a stopped task is replaced; a task on a lost instance is replaced and given up', () => {
  const s = service(2, 100, 200, [deployment('d', 'PRIMARY', 2, { rolloutState: 'COMPLETED' })]);
  const gone = task('d', { lastStatus: 'STOPPED', desiredStatus: 'STOPPED', stopCode: 'EssentialContainerExited', stoppedAt: NOW - 1000 });
  const p1 = plan(s, [task('d'), gone]);
  assert.equal(started(p1), 1);
  const lost = task('d', { instanceId: 'i2' });
  const p2 = plan(s, [task('d'), lost], [instances[0]!, { id: 'i2', status: 'ACTIVE', agentConnected: false }]);
  assert.equal(started(p2), 1, 'replacement started first');
  assert.deepEqual(p2.stop.map((x) => x.taskId), [lost.id], 'the lost task is not healthy, so it can go at once');
  // Its stop says why: not a scaling activity, which is what a user saw before.
  assert.equal(p2.stop[0]!.reason, 'Task replaced by the service scheduler: its container instance i2 is lost (deregistered, or its agent disconnected for longer than the agent timeout)');
});

test('draining: replacement first, the draining task stops once the replacement is healthy (100/200)', () => {
  const s = service(2, 100, 200, [deployment('d', 'PRIMARY', 2, { rolloutState: 'COMPLETED' })]);
  const onDraining = task('d', { instanceId: 'i2' });
  const inst: InstanceView[] = [instances[0]!, { id: 'i2', status: 'DRAINING', agentConnected: true }];
  const p1 = plan(s, [task('d'), onDraining], inst);
  assert.equal(started(p1), 1);
  assert.equal(p1.stop.length, 0, 'L = 2 and the draining task still counts as healthy');
  const p2 = plan(s, [task('d'), onDraining, task('d')], inst);
  assert.deepEqual(p2.stop.map((x) => x.taskId), [onDraining.id]);
  const p3 = plan(service(2, 100, 100, s.wharf.deployments), [task('d'), onDraining], inst);
  assert.equal(started(p3) + p3.stop.length, 0, 'with 100/100 draining cannot progress');
});

test('draining with tasks still settling (RUNNING under 40 s) at 100/200: replacements start, nothing stops until they count', () => {
  const s = service(4, 100, 200, [deployment('d', 'PRIMARY', 4, { rolloutState: 'COMPLETED' })]);
  const inst: InstanceView[] = [instances[0]!, { id: 'i2', status: 'DRAINING', agentConnected: true }];
  const young = tasks(2, 'd', { instanceId: 'i2', startedAt: NOW - 24_000 });
  const p1 = plan(s, [...tasks(2, 'd'), ...young], inst);
  assert.equal(started(p1), 2);
  assert.equal(p1.stop.length, 0, 'the draining tasks keep running while the replacements start');
  // Once everything has settled the draining ones go within the budget.
  const p2 = plan(s, [...tasks(2, 'd'), ...young, ...tasks(2, 'd')], inst, NOW + 20_000);
  assert.deepEqual(p2.stop.map((x) => x.taskId).sort(), young.map((t) => t.id).sort());
});

test('unhealthy after the grace period is replaced; within it, it is left alone', () => {
  const s = service(1, 100, 200, [deployment('d', 'PRIMARY', 1, { rolloutState: 'COMPLETED' })], { healthCheckGracePeriodSeconds: 60 });
  const young = task('d', { hasHealthCheck: true, healthStatus: 'UNHEALTHY', startedAt: NOW - 30_000 });
  const p1 = plan(s, [young]);
  assert.equal(started(p1) + p1.stop.length, 0);
  assert.equal(p1.wakeAt, NOW + 30_000);
  const old = task('d', { hasHealthCheck: true, healthStatus: 'UNHEALTHY', startedAt: NOW - 90_000 });
  // maximumPercent 200 leaves room: the replacement starts first, the failing task stays for now.
  const p2 = plan(s, [old]);
  assert.equal(started(p2), 1);
  assert.deepEqual(p2.stop, []);
  // Once the replacement is healthy, the failing task goes.
  const replacement = task('d', { hasHealthCheck: true, healthStatus: 'HEALTHY' });
  const p3 = plan(s, [old, replacement]);
  assert.equal(started(p3), 0);
  assert.deepEqual(p3.stop, [{ taskId: old.id, reason: 'Task failed container health checks' }]);
});

test('failing tasks without room for a replacement (maximumPercent 100) go one at a time', () => {
  const s = service(2, 100, 100, [deployment('d', 'PRIMARY', 2, { rolloutState: 'COMPLETED' })]);
  const failing = tasks(2, 'd', { hasHealthCheck: true, healthStatus: 'UNHEALTHY' });
  const p1 = plan(s, failing);
  assert.equal(started(p1), 0);
  assert.equal(p1.stop.length, 1, 'one failing task goes to make room');
  // Its replacement is starting: the other failing task waits for it.
  const p2 = plan(s, [failing[1]!, task('d', { hasHealthCheck: true, healthStatus: 'UNKNOWN', startedAt: NOW - 1000 })]);
  assert.equal(started(p2) + p2.stop.length, 0);
  // Healthy now: the next failing task goes.
  const p3 = plan(s, [failing[1]!, task('d', { hasHealthCheck: true, healthStatus: 'HEALTHY' })]);
  assert.deepEqual(p3.stop.map((x) => x.taskId), [failing[1]!.id]);
  // With minimumHealthyPercent 0 there is a budget: both go at once, replacements follow.
  const p4 = plan(service(2, 0, 100, s.wharf.deployments), failing);
  assert.equal(p4.stop.length, 2);
});

test('without a health check a task is healthy 40 s after RUNNING', () => {
  const s = service(1, 100, 200, [deployment('new', 'PRIMARY', 1), deployment('old', 'ACTIVE', 1)]);
  const fresh = task('new', { startedAt: NOW - 10_000 });
  const oldT = task('old');
  const p1 = plan(s, [fresh, oldT]);
  assert.equal(p1.stop.length, 0);
  assert.equal(p1.wakeAt, NOW + 30_000);
  const p2 = plan(s, [fresh, oldT], instances, NOW + 30_000);
  assert.deepEqual(p2.stop.map((x) => x.taskId), [oldT.id]);
});

test('an update soon after creation keeps the old deployment settling tasks until they are healthy, and stops its pending ones', () => {
  // desired 2 at 100/200 (L 2): the old tasks RUNNING for 10 s are not healthy yet, and the new
  // deployment cannot place its own. They stay (the service keeps running), and go through the
  // minimumHealthyPercent budget once healthy and replaced; a pending old task goes at once.
  const s = service(2, 100, 200, [deployment('new', 'PRIMARY', 2), deployment('old', 'ACTIVE', 2)]);
  const settling = tasks(2, 'old', { startedAt: NOW - 10_000 });
  const pending = task('old', { lastStatus: 'PENDING', startedAt: undefined });
  const p1 = plan(s, [...settling, pending]);
  assert.deepEqual(p1.stop.map((x) => x.taskId), [pending.id]);
  assert.equal(started(p1), 1, 'the new deployment starts what maximumPercent allows (4 - 3 live)');
  // 40 s later the old ones are healthy, no new task runs yet: the budget (2 healthy - L 2) is 0.
  const p2 = plan(s, settling, instances, NOW + 30_000);
  assert.equal(p2.stop.length, 0);
  // An old task failing its health check while settling still goes once its grace is over.
  const failingOld = task('old', { hasHealthCheck: true, healthStatus: 'UNHEALTHY', startedAt: NOW - 90_000 });
  assert.deepEqual(plan(s, [failingOld]).stop.map((x) => x.taskId), [failingOld.id]);
});

test('scale-in stops the surplus; scaling is not a deployment', () => {
  const s = service(1, 100, 200, [deployment('d', 'PRIMARY', 3, { rolloutState: 'COMPLETED' })]);
  const p = plan(s, tasks(3, 'd'));
  assert.equal(p.stop.length, 2);
  assert.equal(p.service.wharf.deployments.length, 1);
  assert.equal(p.service.wharf.deployments[0]!.desiredCount, 1);
});

test('circuit breaker: threshold failures mark FAILED and roll back to the last COMPLETED deployment', () => {
  seq = 0;
  const good = deployment('good', 'ACTIVE', 2, { rolloutState: 'COMPLETED' });
  const bad = deployment('bad', 'PRIMARY', 2);
  const s = service(2, 100, 200, [bad, good], {
    deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200, deploymentCircuitBreaker: { enable: true, rollback: true } },
  });
  s.wharf.lastCompleted = { deploymentId: 'good', revisionId: good.revisionId };
  const failed = (n: number) => tasks(n, 'bad', { lastStatus: 'STOPPED', desiredStatus: 'STOPPED', startedAt: undefined, stopCode: 'TaskFailedToStart', stoppedAt: NOW - 1 });
  const p2 = plan(s, [...tasks(2, 'good'), ...failed(2)]);
  assert.equal(p2.service.wharf.deployments[0]!.id, 'bad');
  assert.equal(p2.service.wharf.deployments[0]!.failedTasks, 2);
  const p3 = plan(p2.service, [...tasks(2, 'good'), ...failed(2), ...failed(1)]);
  const [primary, ...rest] = p3.service.wharf.deployments;
  // The failed deployment has no task left, so it is already gone from deployments[].
  assert.deepEqual(rest.map((d) => d.id), ['good']);
  assert.ok(p3.service.events.some((e) => /\(deployment bad\) deployment failed: tasks failed to start/.test(e.message!)));
  assert.equal(primary!.status, 'PRIMARY');
  assert.notEqual(primary!.id, 'bad');
  assert.equal(primary!.taskDefinition, good.taskDefinition);
  assert.equal(primary!.rolloutStateReason, 'ECS deployment circuit breaker: rolling back to deploymentId good.');
  assert.equal(p3.service.taskDefinition, good.taskDefinition);
  assert.equal(p3.service.wharf.history.find((h) => h.id === 'bad')!.status, 'ROLLBACK_IN_PROGRESS');
  // The failed deployment leaves deployments[]: its history keeps the count its breaker saw.
  assert.equal(p3.service.wharf.history.find((h) => h.id === 'bad')!.failedTasks, 5); // 2 seen by p2, 3 more (new ids) by p3
  // A failed deployment that still has tasks stays, FAILED, and drains.
  const p4 = plan(p2.service, [...tasks(2, 'good'), ...failed(3), task('bad', { lastStatus: 'PENDING', startedAt: undefined })]);
  const kept = p4.service.wharf.deployments.find((d) => d.id === 'bad')!;
  assert.equal(kept.status, 'ACTIVE');
  assert.equal(kept.rolloutState, 'FAILED');
  assert.equal(kept.rolloutStateReason, 'ECS deployment circuit breaker: tasks failed to start.');
});

test('circuit breaker without rollback: FAILED launches nothing', () => {
  const s = service(2, 100, 200, [deployment('bad', 'PRIMARY', 2, { rolloutState: 'FAILED' })]);
  const p = plan(s, []);
  assert.equal(started(p), 0);
});

test('restart throttling: the third start failure delays launches and says so', () => {
  const s = service(1, 100, 200, [deployment('d', 'PRIMARY', 1)]);
  const failed = tasks(3, 'd', { lastStatus: 'STOPPED', desiredStatus: 'STOPPED', startedAt: undefined, stopCode: 'TaskFailedToStart', stoppedAt: NOW - 1 });
  const p = plan(s, failed);
  assert.equal(started(p), 0);
  assert.equal(p.service.wharf.deployments[0]!.throttledUntil, NOW + 10_000);
  assert.equal(p.wakeAt, NOW + 10_000);
  assert.ok(p.service.events.some((e) => e.message === '(service web) is unable to consistently start tasks successfully.'));
  const later = plan(p.service, failed, instances, NOW + 10_000);
  assert.equal(started(later), 1);
});

test('tasks orphaned by a forced deregistration are replaced, and are no failures of the deployment', () => {
  // DeregisterContainerInstance --force records the instance's tasks STOPPED with no stop code
  // (control/container-instances.ts orphanedTask): they did not fail, the instance left. Young
  // ones (RUNNING for less than the healthy delay, or still PENDING) must not trip the circuit
  // breaker nor throttle the service's launches.
  const s = service(4, 100, 200, [deployment('d', 'PRIMARY', 4)], {
    deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200, deploymentCircuitBreaker: { enable: true, rollback: false } },
  });
  const orphan = (extra: Partial<ServiceTaskView>) =>
    task('d', { instanceId: 'i2', lastStatus: 'STOPPED', desiredStatus: 'STOPPED', stoppedReason: 'Container instance deregistered', stoppedAt: NOW - 1, ...extra });
  const orphans = [orphan({ startedAt: NOW - 5_000 }), orphan({ startedAt: NOW - 5_000 }), orphan({ startedAt: undefined }), orphan({ startedAt: undefined })];
  const gone: InstanceView[] = [instances[0]!, { id: 'i2', status: 'INACTIVE', agentConnected: false }];
  const p = plan(s, orphans, gone);
  const d = p.service.wharf.deployments[0]!;
  assert.equal(d.failedTasks, 0);
  assert.equal(d.rolloutState, 'IN_PROGRESS');
  assert.equal(d.startFailures, 0);
  assert.equal(d.throttledUntil, undefined);
  assert.equal(started(p), 4, 'all four replaced at once');
  // The same stops on an instance that is still there are the tasks' own failures.
  const crashed = orphans.map((t) => ({ ...t, instanceId: 'i1', stopCode: 'EssentialContainerExited' }));
  const q = plan(s, crashed, gone);
  assert.equal(q.service.wharf.deployments[0]!.rolloutState, 'FAILED');
});

test('an old deployment disappears once it has no tasks; steady state then', () => {
  const s = service(2, 100, 200, [deployment('new', 'PRIMARY', 2), deployment('old', 'ACTIVE', 0)]);
  const p = plan(s, [...tasks(2, 'new'), task('old', { lastStatus: 'STOPPED', desiredStatus: 'STOPPED', stoppedAt: NOW - 5 })]);
  assert.deepEqual(p.service.wharf.deployments.map((d) => d.id), ['new']);
  assert.equal(p.service.wharf.deployments[0]!.rolloutState, 'COMPLETED');
  assert.deepEqual(p.service.events.map((e) => e.message), ['(service web) has reached a steady state.', '(service web) (deployment new) deployment completed.']);
  const again = plan(p.service, [...tasks(2, 'new')]);
  assert.equal(again.changed, false, 'a steady service plans nothing and writes nothing');
});

test('DAEMON: one task per eligible connected ACTIVE instance; draining and ineligible ones lose it', () => {
  const s = service(0, 0, 100, [deployment('d', 'PRIMARY', 0)], { schedulingStrategy: 'DAEMON' });
  const inst: InstanceView[] = [
    { id: 'a', status: 'ACTIVE', agentConnected: true, eligible: true },
    { id: 'b', status: 'ACTIVE', agentConnected: true, eligible: true },
    { id: 'c', status: 'DRAINING', agentConnected: true, eligible: true },
    { id: 'x', status: 'ACTIVE', agentConnected: true, eligible: false },
    { id: 'off', status: 'ACTIVE', agentConnected: false, eligible: true },
  ];
  const onA = task('d', { instanceId: 'a' });
  const onC = task('d', { instanceId: 'c' });
  const onX = task('d', { instanceId: 'x' });
  const onOff = task('d', { instanceId: 'off' });
  const p = plan(s, [onA, onC, onX, onOff], inst);
  assert.deepEqual(p.placeOn.map((x) => x.instanceId), ['b']);
  assert.deepEqual(p.stop.map((x) => x.taskId).sort(), [onC.id, onX.id].sort());
  assert.equal(p.service.desiredCount, 2);
});

test('DAEMON deployment at min 0: the old task stops first, the new one starts when the instance is free', () => {
  const s = service(1, 0, 100, [deployment('new', 'PRIMARY', 1), deployment('old', 'ACTIVE', 1)], { schedulingStrategy: 'DAEMON' });
  const inst: InstanceView[] = [{ id: 'a', status: 'ACTIVE', agentConnected: true, eligible: true }];
  const oldT = task('old', { instanceId: 'a' });
  const p1 = plan(s, [oldT], inst);
  assert.deepEqual(p1.stop.map((x) => x.taskId), [oldT.id]);
  assert.equal(p1.placeOn.length, 0, 'the old task still holds the instance');
  const p2 = plan(p1.service, [{ ...oldT, lastStatus: 'STOPPED', desiredStatus: 'STOPPED' }], inst);
  assert.deepEqual(p2.placeOn.map((x) => x.instanceId), ['a']);
});

test('a DRAINING (deleted) service stops everything, then becomes INACTIVE', () => {
  const s = service(0, 100, 200, [deployment('d', 'PRIMARY', 0)], { status: 'DRAINING' });
  const ts = tasks(2, 'd');
  const p = plan(s, ts);
  assert.equal(p.stop.length, 2);
  assert.equal(p.service.status, 'DRAINING');
  const p2 = plan(p.service, ts.map((t) => ({ ...t, desiredStatus: 'STOPPED' })));
  assert.equal(p2.service.status, 'INACTIVE');
});

test('a REPLICA plan needs only a lookup of its tasks’ instances, and judges lost tasks through it', () => {
  const asked: string[] = [];
  const lookup = {
    get: (id: string) => {
      asked.push(id);
      return id === 'i1' ? { id, status: 'ACTIVE' as const, agentConnected: true } : undefined;
    },
  };
  const ts = [task('d1', { instanceId: 'i1' }), task('d1', { instanceId: 'gone' })];
  const p = planService({ service: service(2, 100, 200, [deployment('d1', 'PRIMARY', 2)]), tasks: ts, instances: lookup, now: NOW, options: opts });
  // The task on an instance the cache no longer has is lost: replaced and stopped.
  assert.equal(started(p), 1);
  assert.deepEqual(p.stop.map((s) => s.taskId), [ts[1]!.id]);
  assert.deepEqual([...new Set(asked)].sort(), ['gone', 'i1'], 'only the instances its tasks are on were looked up');
  const daemon = service(0, 0, 100, [deployment('d1', 'PRIMARY', 0)], { schedulingStrategy: 'DAEMON' });
  assert.throws(() => planService({ service: daemon, tasks: [], instances: lookup, now: NOW, options: opts }), /DAEMON plan needs the list/);
});
