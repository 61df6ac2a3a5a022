/**
 * Tasks end to end through the ECS API (AWS SDK v3 and the AWS CLI v2) on a real Docker Engine:
 * RunTask / StartTask / StopTask / DescribeTasks / ListTasks, the task lifecycle as a user sees
 * it (statuses only move forward, timestamps, versions, stop codes and reasons), and that what
 * the API says is what Docker really runs.
 *
 * Run: npx tsx --test test/e2e/tasks-api.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  DescribeContainerInstancesCommand,
  DescribeTasksCommand,
  ListTasksCommand,
  RunTaskCommand,
  StartTaskCommand,
  StopTaskCommand,
  type Task,
} from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { awsCli } from './helpers/wharf-server';
import { listClusterContainers } from './helpers/processes';
import { runningContainers, startTasksHarness, type TasksHarness } from './helpers/tasks-harness';

const skip = dockerSkipReason();
const STATUS_ORDER = ['PROVISIONING', 'PENDING', 'ACTIVATING', 'RUNNING', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED'];

function inspect(id: string): any {
  return JSON.parse(execFileSync('docker', ['inspect', id], { encoding: 'utf8' }))[0];
}

function remaining(inst: any, name: string): number {
  return inst.remainingResources.find((r: any) => r.name === name).integerValue;
}

describe('tasks through the ECS API', { skip, timeout: 300_000 }, () => {
  let h: TasksHarness;
  let sleeper: string;
  /** Images a test built; removed once the cluster's containers are gone. */
  const builtImages: string[] = [];

  before(async () => {
    h = await startTasksHarness('tasks-api');
    sleeper = await h.register(
      'tasks-sleeper',
      [{ name: 'app', image: 'wharf-test/busybox', memory: 32, cpu: 64, essential: true, stopTimeout: 2, command: ['sleep', '3600'], environment: [{ name: 'FROM_TD', value: 'td' }] }],
      { tags: [{ key: 'team', value: 'blue' }] },
    );
  });
  after(async () => {
    await h?.close();
    for (const i of builtImages) execFileSync('docker', ['rmi', '-f', i], { stdio: 'ignore' });
  });

  test('RunTask of 3 with startedBy, group, overrides and tags runs 3 real containers', async () => {
    const out = await h.ecs.send(
      new RunTaskCommand({
        cluster: h.cluster,
        taskDefinition: sleeper,
        count: 3,
        launchType: 'EC2',
        startedBy: 'e2e-runner',
        group: 'batch:one',
        overrides: { containerOverrides: [{ name: 'app', environment: [{ name: 'FROM_OVERRIDE', value: 'yes' }] }] },
        tags: [{ key: 'owner', value: 'tests' }],
        propagateTags: 'TASK_DEFINITION',
        enableECSManagedTags: true,
      }),
    );
    assert.equal(out.failures?.length ?? 0, 0, JSON.stringify(out.failures));
    assert.equal(out.tasks!.length, 3);
    const arns = out.tasks!.map((t) => t.taskArn!);
    for (const t of out.tasks!) {
      assert.equal(t.desiredStatus, 'RUNNING');
      assert.equal(t.startedBy, 'e2e-runner');
      assert.equal(t.group, 'batch:one');
      assert.equal(t.launchType, 'EC2');
      assert.equal(t.containerInstanceArn, h.instanceArn);
    }
    const running = await Promise.all(arns.map((a) => h.waitTask(a, (t) => t.lastStatus === 'RUNNING', 'RUNNING')));
    const docker = await runningContainers(h.clusterArn);
    for (const t of running) {
      const c = t.containers![0]!;
      assert.equal(c.lastStatus, 'RUNNING');
      assert.ok(c.runtimeId, 'runtimeId is the Docker container id');
      const real = docker.find((d) => d.id === c.runtimeId);
      assert.ok(real, `container ${c.runtimeId} runs in Docker`);
      assert.equal(real.taskArn, t.taskArn);
      const env: string[] = inspect(c.runtimeId!).Config.Env;
      assert.ok(env.includes('FROM_TD=td') && env.includes('FROM_OVERRIDE=yes'), env.join(' '));
      assert.ok(t.startedAt && t.pullStartedAt && t.pullStoppedAt && t.createdAt && t.connectivityAt, 'timestamps are set');
      assert.ok(t.version! > 1, 'the version moved with the reports');
    }
    // Tags only with include TAGS: the request's, the definition's, and the ECS-managed one.
    const plain = await h.describe(arns[0]!);
    assert.equal(plain.tags, undefined);
    const tagged = await h.describe(arns[0]!, true);
    const tags = Object.fromEntries(tagged.tags!.map((x) => [x.key, x.value]));
    assert.deepEqual(tags, { owner: 'tests', team: 'blue', 'aws:ecs:clusterName': h.cluster });

    // The instance accounts for the three tasks.
    const inst = (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [h.instanceArn] }))).containerInstances![0]!;
    assert.ok(inst.runningTasksCount! >= 3);
    const registeredMem = inst.registeredResources!.find((r) => r.name === 'MEMORY')!.integerValue!;
    assert.ok(registeredMem - remaining(inst, 'MEMORY') >= 3 * 32);

    // ListTasks: every filter.
    const list = async (extra: Record<string, unknown>) => (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, ...extra }))).taskArns!.sort();
    assert.deepEqual(await list({ startedBy: 'e2e-runner' }), [...arns].sort());
    // startedBy must be the only filter (desiredStatus aside): ECS refuses it with the others, which work alone.
    for (const other of [{ family: 'tasks-sleeper' }, { containerInstance: h.instanceArn }, { launchType: 'EC2' }]) {
      await assert.rejects(list({ ...other, startedBy: 'e2e-runner' }), /cannot specify startedBy with other arguments/);
      const found = await list(other);
      assert.ok(arns.every((a) => found.includes(a)), JSON.stringify(other));
    }
    assert.deepEqual(await list({ startedBy: 'e2e-runner', desiredStatus: 'STOPPED' }), []);
    assert.deepEqual(await list({ family: 'no-such-family' }), []);
    // Pagination: two pages of at most 2, the AWS CLI follows them on its own.
    const p1 = await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, startedBy: 'e2e-runner', maxResults: 2 }));
    assert.equal(p1.taskArns!.length, 2);
    assert.ok(p1.nextToken);
    const p2 = await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, startedBy: 'e2e-runner', maxResults: 2, nextToken: p1.nextToken }));
    assert.deepEqual([...p1.taskArns!, ...p2.taskArns!].sort(), [...arns].sort());
    assert.equal(p2.nextToken, undefined);
    const cli = await awsCli(h.srv, ['list-tasks', '--cluster', h.cluster, '--started-by', 'e2e-runner', '--page-size', '1']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(cli.json.taskArns.sort(), [...arns].sort());

    for (const a of arns) await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: a }));
    await Promise.all(arns.map((a) => h.waitTask(a, (t) => t.lastStatus === 'STOPPED', 'STOPPED')));
  });

  test('clientToken makes RunTask idempotent: the same answer, no second container', async () => {
    const input = { cluster: h.cluster, taskDefinition: sleeper, clientToken: `tok-${process.pid}`, startedBy: 'idem' };
    const a = await h.ecs.send(new RunTaskCommand(input));
    const b = await h.ecs.send(new RunTaskCommand(input));
    assert.equal(a.tasks!.length, 1);
    assert.deepEqual(b.tasks!.map((t) => t.taskArn), a.tasks!.map((t) => t.taskArn));
    const arn = a.tasks![0]!.taskArn!;
    await h.waitTask(arn, (t) => t.lastStatus === 'RUNNING', 'RUNNING');
    const mine = (await listClusterContainers(h.clusterArn, true)).filter((c) => c.taskArn === arn);
    assert.equal(mine.length, 1);
    // A different request with the same token is a conflict.
    const err = await h.ecs.send(new RunTaskCommand({ ...input, startedBy: 'other' })).then(() => undefined, (e: Error) => e);
    assert.equal(err?.name, 'ConflictException');
    await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
    await h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED');
  });

  test('StartTask runs on the named instance; unknown instances are failures', async () => {
    const out = await h.ecs.send(
      new StartTaskCommand({ cluster: h.cluster, taskDefinition: sleeper, containerInstances: [h.instanceArn, 'ffffffffffffffffffffffffffffffff'], startedBy: 'starter' }),
    );
    assert.equal(out.tasks!.length, 1);
    assert.equal(out.tasks![0]!.containerInstanceArn, h.instanceArn);
    assert.equal(out.failures!.length, 1);
    assert.equal(out.failures![0]!.reason, 'MISSING');
    const arn = out.tasks![0]!.taskArn!;
    await h.waitTask(arn, (t) => t.lastStatus === 'RUNNING', 'RUNNING');
    await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
    await h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED');
  });

  test('StartTask goes through the scheduler\'s filters: one host port is not given to two tasks', async () => {
    const porty = await h.register('tasks-porty', [
      { name: 'app', image: 'wharf-test/busybox', memory: 16, essential: true, stopTimeout: 1, command: ['sleep', '3600'], portMappings: [{ containerPort: 80, hostPort: 18089 }] },
    ]);
    const out = await h.ecs.send(new StartTaskCommand({ cluster: h.cluster, taskDefinition: porty, containerInstances: [h.instanceArn, h.instanceArn] }));
    assert.equal(out.tasks!.length, 1);
    assert.deepEqual(out.failures, [{ arn: h.instanceArn, reason: 'RESOURCE:PORTS' }]);
    const arn = out.tasks![0]!.taskArn!;
    await h.waitTask(arn, (t) => t.lastStatus === 'RUNNING', 'RUNNING');
    await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
    await h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED');
  });

  test('StopTask: a container that ignores SIGTERM is killed after stopTimeout; the lifecycle only moves forward', async () => {
    const before = (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [h.instanceArn] }))).containerInstances![0]!;
    const seen: string[] = [];
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: sleeper }))).tasks![0]!.taskArn!;
    const running = await h.waitTask(arn, (t) => t.lastStatus === 'RUNNING', 'RUNNING', { seen });
    const mid = (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [h.instanceArn] }))).containerInstances![0]!;
    assert.equal(remaining(mid, 'MEMORY'), remaining(before, 'MEMORY') - 32);
    assert.equal(remaining(mid, 'CPU'), remaining(before, 'CPU') - 64);

    const t0 = Date.now();
    const stop = await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn, reason: 'maintenance window' }));
    assert.equal(stop.task!.desiredStatus, 'STOPPED');
    const stopped = await h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED', { seen });
    const took = Date.now() - t0;
    // sleep as PID 1 ignores SIGTERM: Docker sends SIGKILL after stopTimeout (2 s).
    assert.ok(took >= 1900, `stopped after ${took} ms, before the 2 s stopTimeout`);
    assert.equal(stopped.containers![0]!.exitCode, 137);
    assert.equal(stopped.stopCode, 'UserInitiated');
    assert.equal(stopped.stoppedReason, 'maintenance window');
    assert.equal(stopped.desiredStatus, 'STOPPED');
    for (const k of ['createdAt', 'pullStartedAt', 'pullStoppedAt', 'startedAt', 'stoppingAt', 'executionStoppedAt', 'stoppedAt'] as const) {
      assert.ok(stopped[k] instanceof Date, `${k} is set`);
    }
    assert.ok(stopped.stoppedAt! >= stopped.stoppingAt! && stopped.stoppingAt! >= stopped.startedAt!);
    assert.ok(stopped.version! > running.version!);
    const ranks = seen.map((s) => STATUS_ORDER.indexOf(s));
    assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), `statuses moved backwards: ${seen.join(' -> ')}`);
    // Resources come back to the instance.
    const after = (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [h.instanceArn] }))).containerInstances![0]!;
    assert.equal(remaining(after, 'MEMORY'), remaining(before, 'MEMORY'));
    assert.equal(remaining(after, 'CPU'), remaining(before, 'CPU'));
    // Stopped tasks stay describable and listable as STOPPED.
    const listed = (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, desiredStatus: 'STOPPED' }))).taskArns!;
    assert.ok(listed.includes(arn));
    // Stopping again changes nothing.
    const again = await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn, reason: 'other' }));
    assert.equal(again.task!.stoppedReason, 'maintenance window');
  });

  test('StopTask: a container that handles SIGTERM exits with its own code before stopTimeout', async () => {
    const td = await h.register('tasks-trap', [
      { name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 30, command: ['sh', '-c', 'trap "exit 3" TERM; while :; do sleep 0.2; done'] },
    ]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    await h.waitTask(arn, (t) => t.lastStatus === 'RUNNING', 'RUNNING');
    const t0 = Date.now();
    await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
    const stopped = await h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED');
    assert.ok(Date.now() - t0 < 15_000, 'SIGTERM was delivered (no wait for the 30 s stopTimeout)');
    assert.equal(stopped.containers![0]!.exitCode, 3);
    assert.equal(stopped.stoppedReason, 'Task stopped by user');
  });

  test("StopTask sends the image's STOPSIGNAL, not SIGTERM", async () => {
    // An image whose STOPSIGNAL is SIGUSR1, built offline on the busybox test image (the legacy
    // builder needs no registry for a local base; `docker commit --change` refuses STOPSIGNAL).
    const image = `wharf-test/stopsignal:e2e-${process.pid}`;
    execFileSync('docker', ['build', '-q', '-t', image, '-'], { input: 'FROM wharf-test/busybox\nSTOPSIGNAL SIGUSR1\n', env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      const td = await h.register('tasks-stopsignal', [
        { name: 'app', image, memory: 32, essential: true, stopTimeout: 20, command: ['sh', '-c', 'trap "exit 10" USR1; trap "exit 15" TERM; while :; do sleep 0.2; done'] },
      ]);
      const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
      await h.waitTask(arn, (t) => t.lastStatus === 'RUNNING', 'RUNNING');
      await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
      const stopped = await h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED');
      assert.equal(stopped.containers![0]!.exitCode, 10, 'the container got SIGUSR1');
    } finally {
      builtImages.push(image);
    }
  });

  test('an essential container that exits stops the task with its exit code', async () => {
    const td = await h.register('tasks-exit', [
      { name: 'main', image: 'wharf-test/exit', memory: 32, essential: true, environment: [{ name: 'EXIT_CODE', value: '7' }, { name: 'SLEEP_SECONDS', value: '1' }] },
      { name: 'side', image: 'wharf-test/busybox', memory: 32, essential: false, stopTimeout: 1, command: ['sleep', '3600'] },
    ]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    assert.equal(t.stopCode, 'EssentialContainerExited');
    assert.equal(t.stoppedReason, 'Essential container in task exited');
    const main = t.containers!.find((c) => c.name === 'main')!;
    assert.equal(main.exitCode, 7);
    assert.equal(main.lastStatus, 'STOPPED');
    assert.equal(t.containers!.find((c) => c.name === 'side')!.lastStatus, 'STOPPED');
    assert.equal((await runningContainers(h.clusterArn)).filter((c) => c.taskArn === arn).length, 0);
  });

  test('a container over its memory limit is OOM-killed and says so', async () => {
    const td = await h.register('tasks-oom', [
      { name: 'hog', image: 'wharf-test/memhog', memory: 16, essential: true, environment: [{ name: 'MEMHOG_MB', value: '128' }] },
    ]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    const hog = t.containers![0]!;
    assert.equal(hog.reason, 'OutOfMemoryError: Container killed due to memory usage');
    assert.equal(hog.exitCode, 137);
    assert.equal(t.stoppedReason, 'Essential container in task exited');
  });

  test('task-level memory is a hard limit for the whole task', async () => {
    // No container memory; the task's 32 MiB must still stop a 128 MiB allocation.
    const td = await h.register(
      'tasks-task-limit',
      [{ name: 'hog', image: 'wharf-test/memhog', memoryReservation: 16, essential: true, environment: [{ name: 'MEMHOG_MB', value: '128' }] }],
      { memory: '32', cpu: '128' },
    );
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    assert.equal(t.memory, '32');
    assert.equal(t.containers![0]!.exitCode, 137);
    assert.match(t.containers![0]!.reason ?? '', /OutOfMemoryError/);
  });

  test('an image that cannot be pulled fails the task with CannotPullContainerError and Docker\'s own error', async () => {
    const td = await h.register('tasks-nopull', [{ name: 'app', image: '127.0.0.1:1/wharf-missing/image:nope', memory: 32, essential: true }]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    assert.equal(t.stopCode, 'TaskFailedToStart');
    // As the ECS agent reports it: the daemon's answer as Docker's client words it, nothing of
    // the client library's wrapping ("(HTTP code 500) server error - ...").
    assert.match(t.stoppedReason!, /^CannotPullContainerError: Error response from daemon: Get "http:\/\/127\.0\.0\.1:1\/v2\/": .*connection refused$/);
    assert.equal(t.containers![0]!.reason, t.stoppedReason);
  });

  test('DescribeTasks names unknown tasks as MISSING failures; the CLI sees the same', async () => {
    const missing = `arn:aws:ecs:${h.srv.region}:123456789012:task/${h.cluster}/0123456789abcdef0123456789abcdef`;
    const out = await h.ecs.send(new DescribeTasksCommand({ cluster: h.cluster, tasks: [missing] }));
    assert.deepEqual(out.tasks, []);
    assert.deepEqual(out.failures, [{ arn: missing, reason: 'MISSING' }]);
    const cli = await awsCli(h.srv, ['describe-tasks', '--cluster', h.cluster, '--tasks', missing]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.json.failures[0].reason, 'MISSING');
  });

  test('the AWS CLI runs, waits for and stops a task', async () => {
    const run = await awsCli(h.srv, ['run-task', '--cluster', h.cluster, '--task-definition', 'tasks-sleeper', '--count', '2']);
    assert.equal(run.code, 0, run.stderr);
    const arns: string[] = run.json.tasks.map((t: Task) => t.taskArn);
    assert.equal(arns.length, 2);
    const wait = await awsCli(h.srv, ['wait', 'tasks-running', '--cluster', h.cluster, '--tasks', ...arns]);
    assert.equal(wait.code, 0, wait.stderr);
    for (const a of arns) {
      const s = await awsCli(h.srv, ['stop-task', '--cluster', h.cluster, '--task', a, '--reason', 'cli stop']);
      assert.equal(s.code, 0, s.stderr);
    }
    const waitStopped = await awsCli(h.srv, ['wait', 'tasks-stopped', '--cluster', h.cluster, '--tasks', ...arns]);
    assert.equal(waitStopped.code, 0, waitStopped.stderr);
    const d = await awsCli(h.srv, ['describe-tasks', '--cluster', h.cluster, '--tasks', ...arns]);
    for (const t of d.json.tasks) assert.equal(t.stoppedReason, 'cli stop');
  });
});
