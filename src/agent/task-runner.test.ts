import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerDefinition, TaskDefinition } from '../core/shapes/ecs';
import type { AgentTask, WharfSubmitContainerStateChange, WharfTaskStateChange } from '../api/agent/protocol';
import { SimulatedRuntime, type SimulatedRuntimeOptions } from './runtime/simulated-runtime';
import { TaskRunner } from './task-runner';
import { TASK_STATUS_ORDER, OOM_REASON } from './task-status';
import type { Clock } from '../lib/clock';

// The system clock's timers are unref'd (a daemon never waits on them); tests await them.
const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
const CLUSTER = 'arn:aws:ecs:us-east-1:123456789012:cluster/default';
let n = 0;

function makeTask(containers: ContainerDefinition[], extra: Partial<TaskDefinition> = {}): AgentTask {
  const id = (++n).toString(16).padStart(32, '0');
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${id}`,
    clusterArn: CLUSTER,
    desiredStatus: 'RUNNING',
    version: 1,
    taskDefinition: { family: 'web', revision: 1, containerDefinitions: containers, ...extra },
  };
}

function run(task: AgentTask, rtOpts: SimulatedRuntimeOptions = {}, runnerOpts: Partial<ConstructorParameters<typeof TaskRunner>[1]> = {}) {
  const rt = new SimulatedRuntime({ clock, ...rtOpts });
  const tasks: WharfTaskStateChange[] = [];
  const containers: WharfSubmitContainerStateChange[] = [];
  const runner = new TaskRunner(task, {
    runtime: rt,
    containerInstanceArn: 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc',
    onTaskStateChange: (c) => tasks.push(c),
    onContainerStateChange: (c) => containers.push(c),
    pollIntervalMs: 20,
    clock,
    ...runnerOpts,
  });
  runner.start();
  return { rt, runner, tasks, containers, statuses: () => tasks.map((t) => t.status) };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function assertForwardOnly(statuses: (string | undefined)[]): void {
  const ranks = statuses.map((s) => TASK_STATUS_ORDER.indexOf(s as (typeof TASK_STATUS_ORDER)[number]));
  for (let i = 1; i < ranks.length; i++) assert.ok(ranks[i]! > ranks[i - 1]!, `status went backwards or repeated: ${statuses.join(' -> ')}`);
}

test('an essential container exiting stops the task, the others are stopped and every exit code reported', async () => {
  const t = makeTask([
    { name: 'app', image: 'app', essential: true },
    { name: 'sidecar', image: 'side', essential: false },
  ]);
  const { rt, runner, tasks, statuses } = run(t);
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  rt.exitContainer(runner.snapshot().containers[0]!.dockerId!, 3);
  await runner.whenStopped();
  assert.deepEqual(statuses(), ['PENDING', 'RUNNING', 'STOPPING', 'STOPPED']);
  const last = tasks.at(-1)!;
  assert.equal(last.stopCode, 'EssentialContainerExited');
  assert.equal(last.reason, 'Essential container in task exited');
  assert.ok(last.executionStoppedAt! >= last.startedAt!, JSON.stringify(last));
  const byName = Object.fromEntries(last.containers!.map((c) => [c.containerName, c]));
  assert.equal(byName.app!.exitCode, 3);
  assert.equal(byName.sidecar!.status, 'STOPPED');
  assert.equal(byName.sidecar!.exitCode, 143, 'sidecar got the stop signal');
  assert.ok(tasks[0]!.pullStartedAt !== undefined && tasks.at(-1)!.pullStoppedAt !== undefined);
});

test('a non-essential container exiting is reported as a container change and the task keeps running', async () => {
  const t = makeTask([
    { name: 'app', image: 'app' },
    { name: 'job', image: 'job', essential: false },
  ]);
  const { rt, runner, containers } = run(t, { behaviour: (s) => (s.image === 'job' ? { exitAfterMs: 30, exitCode: 0 } : {}) });
  await until(() => containers.some((c) => c.containerName === 'job' && c.status === 'STOPPED'), 'job stopped report');
  assert.equal(runner.knownStatus, 'RUNNING');
  assert.equal(containers.find((c) => c.containerName === 'job')!.exitCode, 0);
  runner.stop();
  await runner.whenStopped();
  rt.close();
});

test('dependsOn SUCCESS: the app starts only after the init container exits 0', async () => {
  const t = makeTask([
    { name: 'init', image: 'init', essential: false },
    { name: 'app', image: 'app', dependsOn: [{ containerName: 'init', condition: 'SUCCESS' }] },
  ]);
  const { rt, runner, statuses } = run(t, { behaviour: (s) => (s.image === 'init' ? { exitAfterMs: 40, exitCode: 0 } : {}) });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const starts = rt.calls.filter((c) => c.op === 'start').map((c) => c.name!.split('-')[3]);
  assert.deepEqual(starts, ['init', 'app']);
  const initStop = rt.calls.find((c) => c.op === 'start' && c.name!.includes('-init-'))!.at;
  const appStart = rt.calls.find((c) => c.op === 'start' && c.name!.includes('-app-'))!.at;
  assert.ok(appStart >= initStop + 40 - 5, 'app started after init finished');
  assert.deepEqual(statuses(), ['PENDING', 'RUNNING']);
  runner.stop();
  await runner.whenStopped();
});

test('dependsOn SUCCESS with a failing init container fails the task to start', async () => {
  const t = makeTask([
    { name: 'init', image: 'init', essential: false },
    { name: 'app', image: 'app', dependsOn: [{ containerName: 'init', condition: 'SUCCESS' }] },
  ]);
  const { rt, runner, tasks, statuses } = run(t, { behaviour: (s) => (s.image === 'init' ? { exitAfterMs: 10, exitCode: 2 } : {}) });
  await runner.whenStopped();
  assert.deepEqual(statuses(), ['PENDING', 'STOPPED']);
  assert.equal(tasks.at(-1)!.stopCode, 'TaskFailedToStart');
  assert.match(tasks.at(-1)!.reason!, /init exited with code 2/);
  assert.equal(rt.calls.filter((c) => c.op === 'start' && c.name!.includes('-app-')).length, 0, 'app never started');
});

test('dependsOn HEALTHY waits for the health check; task health follows essential containers only', async () => {
  const hc = { command: ['CMD-SHELL', 'true'], interval: 5 };
  const t = makeTask([
    { name: 'db', image: 'db', healthCheck: hc },
    { name: 'app', image: 'app', dependsOn: [{ containerName: 'db', condition: 'HEALTHY' }] },
    { name: 'extra', image: 'extra', essential: false, healthCheck: hc },
  ]);
  const { rt, runner, tasks, containers } = run(t, { behaviour: (s) => (s.image === 'db' ? { healthyAfterMs: 100000 } : s.image === 'extra' ? { healthyAfterMs: -1 } : {}) });
  await until(() => rt.calls.some((c) => c.op === 'start' && c.name!.includes('-db-')), 'db started');
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(rt.calls.filter((c) => c.op === 'start' && c.name!.includes('-app-')).length, 0, 'app waits for db health');
  assert.equal(runner.knownStatus, 'PENDING');
  rt.setHealth(runner.snapshot().containers[0]!.dockerId!, 'healthy');
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const snap = runner.snapshot();
  assert.equal(snap.containers.find((c) => c.name === 'extra')!.health, 'UNHEALTHY');
  assert.equal(snap.healthStatus, 'HEALTHY', 'a non-essential unhealthy container does not count');
  assert.equal(tasks.at(-1)!.healthStatus, 'HEALTHY');
  rt.setHealth(snap.containers[0]!.dockerId!, 'unhealthy');
  await until(() => containers.some((c) => c.containerName === 'db' && c.healthStatus === 'UNHEALTHY'), 'unhealthy report');
  assert.equal(containers.find((c) => c.healthStatus === 'UNHEALTHY' && c.containerName === 'db')!.taskHealthStatus, 'UNHEALTHY');
  assert.equal(runner.knownStatus, 'RUNNING', 'a standalone task keeps running when unhealthy');
  runner.stop();
  await runner.whenStopped();
});

test('a dependency that never becomes healthy stops the task after startTimeout', async () => {
  const t = makeTask([
    { name: 'db', image: 'db', healthCheck: { command: ['CMD', 'false'] } },
    { name: 'app', image: 'app', startTimeout: 1, dependsOn: [{ containerName: 'db', condition: 'HEALTHY' }] },
  ]);
  const started = Date.now();
  const { runner, tasks, statuses } = run(t, { behaviour: () => ({ healthyAfterMs: 100000 }) });
  await runner.whenStopped();
  assert.ok(Date.now() - started >= 1000, 'waited for the start timeout');
  assert.deepEqual(statuses(), ['PENDING', 'STOPPING', 'STOPPED']);
  assert.equal(tasks.at(-1)!.stopCode, 'TaskFailedToStart');
  assert.match(tasks.at(-1)!.reason!, /timed out after 1s waiting for db to reach HEALTHY/);
});

test('stopping honours stopTimeout and reverse dependency order', async () => {
  const t = makeTask([
    { name: 'db', image: 'db', stopTimeout: 1 },
    { name: 'app', image: 'app', stopTimeout: 1, dependsOn: [{ containerName: 'db', condition: 'START' }] },
  ]);
  const { rt, runner, tasks } = run(t, { behaviour: (s) => (s.image === 'app' ? { ignoresStopSignal: true } : {}) });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const t0 = Date.now();
  runner.update({ ...t, desiredStatus: 'STOPPED', version: 2 });
  await runner.whenStopped();
  assert.ok(Date.now() - t0 >= 1000, 'app got its stopTimeout before SIGKILL');
  const stops = rt.calls.filter((c) => c.op === 'stop').map((c) => c.name!.split('-')[3]);
  assert.deepEqual(stops, ['app', 'db'], 'dependent stops first');
  const byName = Object.fromEntries(tasks.at(-1)!.containers!.map((c) => [c.containerName, c]));
  assert.equal(byName.app!.exitCode, 137);
  assert.equal(byName.db!.exitCode, 143);
  assert.equal(tasks.at(-1)!.stopCode, undefined, 'a control-plane stop keeps the control plane reason');
});

test('a failed pull stops the task with TaskFailedToStart and CannotPullContainerError', async () => {
  const t = makeTask([{ name: 'app', image: 'nope/missing' }]);
  const { runner, tasks, statuses } = run(t, { failPull: (i) => i.startsWith('nope/') });
  await runner.whenStopped();
  assert.deepEqual(statuses(), ['PENDING', 'STOPPED']);
  const last = tasks.at(-1)!;
  assert.equal(last.stopCode, 'TaskFailedToStart');
  assert.match(last.reason!, /^CannotPullContainerError: /);
  assert.match(last.containers![0]!.reason!, /^CannotPullContainerError: /);
  assert.ok(last.pullStartedAt !== undefined && last.pullStoppedAt !== undefined);
});

test('an OOM-killed essential container is reported as OutOfMemoryError', async () => {
  const t = makeTask([{ name: 'hog', image: 'hog', memory: 64 }]);
  const { runner, tasks } = run(t, { behaviour: () => ({ exitAfterMs: 20, oom: true }) });
  await runner.whenStopped();
  const c = tasks.at(-1)!.containers![0]!;
  assert.equal(c.reason, OOM_REASON);
  assert.equal(c.exitCode, 137);
  assertForwardOnly(tasks.map((x) => x.status));
});

test('awsvpc: PROVISIONING first, containers join the pause container, the pause IP is reported and stops last', async () => {
  const t = makeTask([{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }], { networkMode: 'awsvpc' });
  const rt = new SimulatedRuntime({ clock });
  const specs: string[] = [];
  const origCreate = rt.createContainer.bind(rt);
  rt.createContainer = async (spec) => {
    specs.push(spec.host.networkMode);
    return origCreate(spec);
  };
  const tasks: WharfTaskStateChange[] = [];
  const runner = new TaskRunner(t, { runtime: rt, containerInstanceArn: 'ci', onTaskStateChange: (c) => tasks.push(c), onContainerStateChange: () => {}, pollIntervalMs: 20, clock });
  runner.start();
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const pauseId = rt.idOf(rt.calls.find((c) => c.op === 'create')!.name!)!;
  assert.deepEqual(specs, ['wharf-awsvpc', `container:${pauseId}`, `container:${pauseId}`]);
  assert.match(tasks.at(-1)!.privateIpv4Address!, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(tasks.at(-1)!.containers!.length, 2, 'the pause container is internal');
  runner.stop();
  await runner.whenStopped();
  const stops = rt.calls.filter((c) => c.op === 'stop').map((c) => c.id);
  assert.equal(stops.at(-1), pauseId);
  assert.deepEqual(tasks.map((x) => x.status), ['PROVISIONING', 'PENDING', 'RUNNING', 'STOPPING', 'DEPROVISIONING', 'STOPPED']);
});

test('adopting a task whose containers exited meanwhile reports it STOPPED with their exit codes, creating nothing', async () => {
  const t = makeTask([{ name: 'app', image: 'app' }]);
  const first = run(t);
  await until(() => first.runner.knownStatus === 'RUNNING', 'RUNNING');
  first.runner.close(); // the agent dies
  const rt = first.rt;
  rt.exitContainer(first.runner.snapshot().containers[0]!.dockerId!, 7);
  const before = rt.calls.filter((c) => c.op === 'create').length;
  const tasks: WharfTaskStateChange[] = [];
  const again = new TaskRunner(t, { runtime: rt, containerInstanceArn: 'ci', onTaskStateChange: (c) => tasks.push(c), onContainerStateChange: () => {}, pollIntervalMs: 20, clock });
  again.adopt(await rt.listContainers({}));
  again.start();
  await again.whenStopped();
  assert.equal(rt.calls.filter((c) => c.op === 'create').length, before, 'no duplicate container');
  assert.equal(tasks.at(-1)!.stopCode, 'EssentialContainerExited');
  assert.equal(tasks.at(-1)!.containers![0]!.exitCode, 7);
  assert.ok(!tasks.some((x) => x.status === 'PENDING'), 'no replay of early statuses');
});

// ---- secrets and environment files ------------------------------------------------------------

/** The runtime, recording every container's environment as it is created. */
function envRecordingRuntime(rtOpts: SimulatedRuntimeOptions = {}) {
  const rt = new SimulatedRuntime({ clock, ...rtOpts });
  const env: Record<string, string[]> = {};
  const create = rt.createContainer.bind(rt);
  rt.createContainer = async (spec) => {
    env[spec.labels['com.amazonaws.ecs.container-name']!] = spec.env ?? [];
    return create(spec);
  };
  return { rt, env };
}

function runOn(rt: SimulatedRuntime, task: AgentTask) {
  const tasks: WharfTaskStateChange[] = [];
  const runner = new TaskRunner(task, { runtime: rt, containerInstanceArn: 'ci', onTaskStateChange: (c) => tasks.push(c), onContainerStateChange: () => {}, pollIntervalMs: 20, clock });
  return { runner, tasks };
}

test('secret values become environment variables of their container and win over environment entries', async () => {
  const t: AgentTask = {
    ...makeTask([
      { name: 'app', image: 'app', environment: [{ name: 'DB_PASSWORD', value: 'from-environment' }, { name: 'MODE', value: 'prod' }], secrets: [{ name: 'DB_PASSWORD', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db:password::' }, { name: 'AWS_REGION', valueFrom: 'region' }] },
      { name: 'side', image: 'side' },
    ]),
    secrets: { app: { DB_PASSWORD: 's3cr3t', AWS_REGION: 'from-secret' } },
  };
  const { rt, env } = envRecordingRuntime();
  const { runner } = runOn(rt, t);
  runner.start();
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  assert.ok(env.app!.includes('DB_PASSWORD=s3cr3t'), env.app!.join(' '));
  assert.ok(!env.app!.includes('DB_PASSWORD=from-environment'), 'one entry per name');
  assert.ok(env.app!.includes('MODE=prod'));
  assert.ok(env.app!.includes('AWS_REGION=from-secret') && !env.app!.includes('AWS_REGION=us-east-1'), 'a secret named like a default replaces it');
  assert.ok(!env.side!.some((e) => e.includes('s3cr3t')), 'only the container that asked gets it');
  runner.stop();
  await runner.whenStopped();
});

test('secretsError fails the task to start with ResourceInitializationError, before any pull or create', async () => {
  const t: AgentTask = {
    ...makeTask([{ name: 'app', image: 'app', secrets: [{ name: 'X', valueFrom: 'gone' }] }]),
    secretsError: "secret X of container app: gone: ResourceNotFoundException: Secrets Manager can't find the specified secret.",
  };
  const { runner, tasks, rt } = run(t);
  await runner.whenStopped();
  const last = tasks.at(-1)!;
  assert.equal(last.status, 'STOPPED');
  assert.equal(last.stopCode, 'TaskFailedToStart');
  assert.equal(last.reason, `ResourceInitializationError: unable to pull secrets or registry auth: ${t.secretsError}`);
  assert.equal(last.containers![0]!.status, 'STOPPED');
  assert.deepEqual(rt.calls.filter((c) => c.op === 'pull' || c.op === 'create'), [], 'nothing pulled or created');
});

test('a container whose secret has no value fails the task rather than start without it', async () => {
  const t = makeTask([{ name: 'app', image: 'app', secrets: [{ name: 'X', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x' }] }]);
  const { runner, tasks, rt } = run(t);
  await runner.whenStopped();
  assert.equal(tasks.at(-1)!.stopCode, 'TaskFailedToStart');
  assert.match(tasks.at(-1)!.reason!, /^ResourceInitializationError: unable to pull secrets or registry auth: .*no value for secret X of container app/);
  assert.equal(rt.calls.filter((c) => c.op === 'create').length, 0);
});

test('environment files (S3) fail the task to start saying Wharf does not support them, from the definition or an override', async () => {
  const file = { value: 'arn:aws:s3:::bucket/app.env', type: 's3' as const };
  const fromDef = run(makeTask([{ name: 'app', image: 'app', environmentFiles: [file] }]));
  const plain = makeTask([{ name: 'app', image: 'app' }]);
  const fromOverride = run({ ...plain, overrides: { containerOverrides: [{ name: 'app', environmentFiles: [file] }] } });
  for (const { runner, tasks, rt } of [fromDef, fromOverride]) {
    await runner.whenStopped();
    assert.equal(tasks.at(-1)!.stopCode, 'TaskFailedToStart');
    assert.match(tasks.at(-1)!.reason!, /^ResourceInitializationError: failed to download env files: environment files from S3 are not supported by Wharf \(container app: arn:aws:s3:::bucket\/app\.env\)/);
    assert.equal(rt.calls.filter((c) => c.op === 'create').length, 0);
  }
});

test('a task read back without its credentials starts nothing until the control plane sends them', async () => {
  const base = makeTask([{ name: 'app', image: 'app', secrets: [{ name: 'TOKEN', valueFrom: 'token' }] }]);
  const withheld = { ...base, credentialsWithheld: true as const };
  const { rt, env } = envRecordingRuntime();
  const { runner, tasks } = runOn(rt, withheld);
  runner.start();
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(rt.calls, [], 'no pull, no create while waiting');
  assert.deepEqual(tasks, [], 'and no status invented');
  runner.update({ ...base, secrets: { app: { TOKEN: 'tok' } } });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING after the control plane sent the task');
  assert.ok(env.app!.includes('TOKEN=tok'));
  runner.stop();
  await runner.whenStopped();
});

test('an adopted task whose containers exist is not failed by a secret that went away meanwhile', async () => {
  const t: AgentTask = { ...makeTask([{ name: 'app', image: 'app', secrets: [{ name: 'TOKEN', valueFrom: 'token' }] }]), secrets: { app: { TOKEN: 'tok' } } };
  const first = run(t);
  await until(() => first.runner.knownStatus === 'RUNNING', 'RUNNING');
  first.runner.close(); // the agent dies; the secret is deleted meanwhile
  const { secrets: _s, ...rest } = t;
  const again = runOn(first.rt, { ...rest, secretsError: 'secret TOKEN of container app: token: gone' });
  again.runner.adopt(await first.rt.listContainers({}));
  again.runner.start();
  await until(() => again.runner.knownStatus === 'RUNNING', 'adopted RUNNING');
  assert.equal(again.tasks.at(-1)!.status, 'RUNNING');
  again.runner.stop();
  await again.runner.whenStopped();
});

test('a container created after its dependencies gets the values the task started with, even if the secret went away since', async () => {
  const def = { name: 'app', image: 'app', secrets: [{ name: 'TOKEN', valueFrom: 'token' }], dependsOn: [{ containerName: 'init', condition: 'SUCCESS' as const }] };
  const t: AgentTask = { ...makeTask([{ name: 'init', image: 'init', essential: false }, def]), secrets: { app: { TOKEN: 'tok' } } };
  const { rt, env } = envRecordingRuntime({ behaviour: (s) => (s.image === 'init' ? { exitAfterMs: 80, exitCode: 0 } : {}) });
  const { runner } = runOn(rt, t);
  runner.start();
  await until(() => rt.calls.some((c) => c.op === 'start'), 'init started');
  const { secrets: _s, ...rest } = t;
  runner.update({ ...rest, secretsError: 'secret TOKEN of container app: token: gone', version: 2 });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  assert.ok(env.app!.includes('TOKEN=tok'), env.app!.join(' '));
  runner.stop();
  await runner.whenStopped();
});

// ---- container restart policy ----------------------------------------------------------------

/** The real clock, plus a jump forward on demand: a container can "have run" 61 s in a test. */
function skewedClock() {
  let offset = 0;
  const skewed: Clock = { now: () => Date.now() + offset, setTimeout: clock.setTimeout };
  return { clock: skewed, advance: (ms: number) => void (offset += ms) };
}

const startsOf = (rt: SimulatedRuntime, id: string) => rt.calls.filter((c) => c.op === 'start' && c.id === id).length;

test('restart policy: an essential container that ran the attempt period is started again, the task stays RUNNING', async () => {
  const time = skewedClock();
  const t = makeTask([{ name: 'app', image: 'app', essential: true, restartPolicy: { enabled: true, restartAttemptPeriod: 60 } }]);
  const { rt, runner, tasks, containers, statuses } = run(t, { clock: time.clock }, { clock: time.clock });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const id = runner.snapshot().containers[0]!.dockerId!;
  time.advance(61_000);
  rt.exitContainer(id, 1);
  await until(() => runner.snapshot().containers[0]!.restartCount === 1, 'restarted');
  await new Promise((r) => setTimeout(r, 100)); // a few more passes
  const snap = runner.snapshot();
  assert.equal(snap.knownStatus, 'RUNNING');
  assert.equal(snap.desiredStatus, 'RUNNING');
  assert.equal(snap.containers[0]!.dockerId, id, 'the same container, not a new one');
  assert.equal(snap.containers[0]!.status, 'RUNNING');
  assert.equal(startsOf(rt, id), 2);
  assert.equal(rt.calls.filter((c) => c.op === 'create').length, 1);
  assert.deepEqual(statuses(), ['PENDING', 'RUNNING'], 'no STOPPING/STOPPED for the task');
  assert.ok(!containers.some((c) => c.status === 'STOPPED'), 'the container was never reported STOPPED');
  assert.ok(!tasks.some((c) => c.stopCode !== undefined));

  // Only once per attempt period: exiting again straight away is an ordinary essential exit.
  rt.exitContainer(id, 2);
  await runner.whenStopped();
  const last = tasks.at(-1)!;
  assert.equal(last.stopCode, 'EssentialContainerExited');
  assert.equal(last.containers![0]!.exitCode, 2);
  assert.equal(startsOf(rt, id), 2);
});

test('restart policy: a container that exits before the attempt period is not restarted and the task stops as without a policy', async () => {
  const time = skewedClock();
  const t = makeTask([{ name: 'app', image: 'app', restartPolicy: { enabled: true, restartAttemptPeriod: 60 } }]);
  const { rt, runner, tasks, statuses } = run(t, { clock: time.clock }, { clock: time.clock });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const id = runner.snapshot().containers[0]!.dockerId!;
  time.advance(30_000);
  rt.exitContainer(id, 1);
  await runner.whenStopped();
  assert.deepEqual(statuses(), ['PENDING', 'RUNNING', 'STOPPED']);
  assert.equal(tasks.at(-1)!.stopCode, 'EssentialContainerExited');
  assert.equal(tasks.at(-1)!.containers![0]!.exitCode, 1);
  assert.equal(startsOf(rt, id), 1);
  assert.equal(runner.snapshot().containers[0]!.restartCount, 0);
});

test('restart policy: the default attempt period is 300 s', async () => {
  const time = skewedClock();
  const t = makeTask([{ name: 'app', image: 'app', restartPolicy: { enabled: true } }]);
  const { rt, runner } = run(t, { clock: time.clock }, { clock: time.clock });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const id = runner.snapshot().containers[0]!.dockerId!;
  time.advance(301_000);
  rt.exitContainer(id, 1);
  await until(() => runner.snapshot().containers[0]!.restartCount === 1, 'restarted after 301 s');
  time.advance(299_000);
  rt.exitContainer(id, 1);
  await runner.whenStopped();
  assert.equal(startsOf(rt, id), 2, '299 s is too short');
});

test('restart policy: ignored exit codes are handled as ordinary exits; others restart a non-essential container', async () => {
  const time = skewedClock();
  const policy = { enabled: true, restartAttemptPeriod: 60, ignoredExitCodes: [0, 42] };
  const t = makeTask([
    { name: 'app', image: 'app', essential: true },
    { name: 'side', image: 'side', essential: false, restartPolicy: policy },
    { name: 'worker', image: 'worker', essential: true, restartPolicy: policy },
  ]);
  const { rt, runner, tasks, containers } = run(t, { clock: time.clock }, { clock: time.clock });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const idOf = (name: string) => runner.snapshot().containers.find((c) => c.name === name)!.dockerId!;
  time.advance(61_000);
  rt.exitContainer(idOf('side'), 7);
  await until(() => runner.snapshot().containers.find((c) => c.name === 'side')!.restartCount === 1, 'side restarted on 7');
  time.advance(61_000);
  rt.exitContainer(idOf('side'), 0);
  await until(() => containers.some((c) => c.containerName === 'side' && c.status === 'STOPPED'), 'side stopped on 0');
  assert.equal(containers.find((c) => c.containerName === 'side' && c.status === 'STOPPED')!.exitCode, 0);
  assert.equal(startsOf(rt, idOf('side')), 2);
  assert.equal(runner.knownStatus, 'RUNNING', 'a non-essential container stopping leaves the task running');
  rt.exitContainer(idOf('worker'), 42);
  await runner.whenStopped();
  assert.equal(tasks.at(-1)!.stopCode, 'EssentialContainerExited');
  assert.equal(tasks.at(-1)!.containers!.find((c) => c.containerName === 'worker')!.exitCode, 42);
  assert.equal(startsOf(rt, idOf('worker')), 1);
});

test('restart policy: the containers of a task desired STOPPED are not restarted', async () => {
  const time = skewedClock();
  const t = makeTask([{ name: 'app', image: 'app', restartPolicy: { enabled: true, restartAttemptPeriod: 60 } }]);
  const { rt, runner, tasks } = run(t, { clock: time.clock }, { clock: time.clock });
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const id = runner.snapshot().containers[0]!.dockerId!;
  time.advance(61_000);
  runner.update({ ...t, desiredStatus: 'STOPPED', version: 2 });
  await runner.whenStopped();
  assert.equal(tasks.at(-1)!.containers![0]!.exitCode, 143);
  assert.equal(startsOf(rt, id), 1);
  assert.equal(runner.snapshot().containers[0]!.restartCount, 0);
});
