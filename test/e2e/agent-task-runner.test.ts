/**
 * TaskRunner against a real Docker Engine, with images from test/images/build.sh.
 * Run: npx tsx --test test/e2e/agent-task-runner.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import Docker from 'dockerode';
import { hexId } from '../../src/lib/ids';
import { runnerHarness, until } from './helpers/runner-harness';
import type { ContainerDefinition, TaskDefinition } from '../../src/core/shapes/ecs';
import { OOM_REASON } from '../../src/agent/task-status';
import { streamTaskLogs } from '../../src/agent/task-logs';
import { pushToRegistry, startLocalRegistry } from '../images/local-registry';

const { skip, rt, makeTask, run } = runnerHarness('wharf-test');
const docker = new Docker();

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const HTTPD = ['httpd', '-f', '-p', '8080', '-h', '/var/www'];

test('bridge task: RUNNING with networkBindings, dynamic and static host ports really reachable', { skip }, async () => {
  const staticPort = await freePort();
  const t = makeTask([
    { name: 'web', image: 'wharf-test/busybox', command: HTTPD, memory: 64, portMappings: [{ containerPort: 8080, hostPort: 0 }] },
    { name: 'web2', image: 'wharf-test/busybox', command: HTTPD, memory: 64, portMappings: [{ containerPort: 8080, hostPort: staticPort }] },
  ]);
  const { runner, tasks } = run(t);
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const running = tasks.find((x) => x.status === 'RUNNING')!;
  const web = running.containers!.find((c) => c.containerName === 'web')!;
  const binding = web.networkBindings!.find((b) => b.bindIP === '0.0.0.0')!;
  assert.equal(binding.containerPort, 8080);
  assert.ok(binding.hostPort! > 0, 'Docker assigned a host port');
  assert.match(web.runtimeId!, /^[0-9a-f]{64}$/);
  const body = await (await fetch(`http://127.0.0.1:${binding.hostPort}/`)).text();
  assert.equal(body.trim(), 'wharf test page');
  const web2 = running.containers!.find((c) => c.containerName === 'web2')!;
  assert.ok(web2.networkBindings!.some((b) => b.hostPort === staticPort));
  assert.equal((await (await fetch(`http://127.0.0.1:${staticPort}/`)).text()).trim(), 'wharf test page');
  assert.ok(running.pullStartedAt! <= running.pullStoppedAt!);
  assert.deepEqual(tasks.map((x) => x.status), ['PENDING', 'RUNNING']);
});

test('container definition fields reach Docker', { skip }, async () => {
  const t = makeTask(
    [
      {
        name: 'c1',
        image: 'wharf-test/busybox',
        entryPoint: ['sh', '-c'],
        command: ['echo "$GREETING from $(pwd) as $(id -u)"; sleep 3600'],
        environment: [{ name: 'GREETING', value: 'hello' }],
        workingDirectory: '/tmp',
        user: '65534',
        cpu: 0,
        memory: 96,
        memoryReservation: 32,
        hostname: 'wharf-host',
        extraHosts: [{ hostname: 'db.internal', ipAddress: '10.1.2.3' }],
        dnsServers: ['10.0.0.2'],
        ulimits: [{ name: 'nofile', softLimit: 1000, hardLimit: 2000 }],
        dockerLabels: { team: 'wharf', 'com.amazonaws.ecs.task-arn': 'forged' },
        readonlyRootFilesystem: true,
        linuxParameters: {
          initProcessEnabled: true,
          capabilities: { add: ['NET_ADMIN'], drop: ['MKNOD'] },
          tmpfs: [{ containerPath: '/scratch', size: 16 }],
          sharedMemorySize: 32,
        },
        mountPoints: [
          { sourceVolume: 'scratchvol', containerPath: '/data' },
          { sourceVolume: 'shared', containerPath: '/shared', readOnly: true },
        ],
        healthCheck: { command: ['CMD-SHELL', 'true'], interval: 5, retries: 2 },
        stopTimeout: 3,
      },
      { name: 'c2', image: 'wharf-test/busybox', command: ['sleep', '3600'], memory: 32, essential: false, links: ['c1:primary'], volumesFrom: [{ sourceContainer: 'c1', readOnly: true }] },
    ],
    {
      volumes: [
        { name: 'scratchvol', host: {} },
        { name: 'shared', dockerVolumeConfiguration: { scope: 'shared', autoprovision: true, labels: { purpose: 'wharf-test' } } },
      ],
    },
  );
  const { runner } = run(t);
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING', 60_000);
  const [c1, c2] = runner.snapshot().containers;
  const i1 = await docker.getContainer(c1!.dockerId!).inspect();
  const h = i1.HostConfig;
  assert.equal(i1.Config.Labels['com.amazonaws.ecs.task-arn'], t.taskArn, 'ECS labels win over dockerLabels');
  assert.equal(i1.Config.Labels['com.amazonaws.ecs.container-name'], 'c1');
  assert.equal(i1.Config.Labels.team, 'wharf');
  assert.match(i1.Name, /^\/ecs-wharf-test-1-c1-[0-9a-f]+$/);
  assert.ok(i1.Config.Env.includes('GREETING=hello'));
  assert.equal(i1.Config.WorkingDir, '/tmp');
  assert.equal(i1.Config.User, '65534');
  assert.equal(i1.Config.Hostname, 'wharf-host');
  assert.equal(h.CpuShares, 2, 'cpu 0 becomes the minimum of 2 shares');
  assert.equal(h.Memory, 96 * 1024 * 1024);
  assert.equal(h.MemoryReservation, 32 * 1024 * 1024);
  assert.deepEqual(h.ExtraHosts, ['db.internal:10.1.2.3']);
  assert.deepEqual(h.Dns, ['10.0.0.2']);
  assert.deepEqual(h.Ulimits, [{ Name: 'nofile', Soft: 1000, Hard: 2000 }]);
  assert.equal(h.ReadonlyRootfs, true);
  assert.equal(h.Init, true);
  assert.deepEqual(h.CapAdd, ['NET_ADMIN']);
  assert.deepEqual(h.CapDrop, ['MKNOD']);
  assert.equal(h.ShmSize, 32 * 1024 * 1024);
  assert.deepEqual(h.Tmpfs, { '/scratch': 'size=16m' });
  assert.equal(h.LogConfig?.Type, 'json-file');
  assert.equal(i1.Config.Healthcheck?.Interval, 5e9);
  assert.equal((i1.Config as { StopTimeout?: number }).StopTimeout, 3);
  const mounts = Object.fromEntries(i1.Mounts.map((m) => [m.Destination, m]));
  assert.equal(mounts['/data']!.Type, 'volume');
  assert.match(mounts['/data']!.Name!, /^wharf-[0-9a-f]{32}-scratchvol$/);
  assert.equal(mounts['/shared']!.Name, 'shared');
  assert.equal(mounts['/shared']!.RW, false);
  const i2 = await docker.getContainer(c2!.dockerId!).inspect();
  assert.equal(i2.HostConfig.Links?.[0]?.split(':')[1], `/${i2.Name.slice(1)}/primary`);
  assert.deepEqual(i2.HostConfig.VolumesFrom, [`${c1!.dockerId}:ro`]);
  const logs = await rt!.logs(c1!.dockerId!);
  let text = '';
  for await (const chunk of logs) text += chunk.toString();
  assert.equal(text.trim(), 'hello from /tmp as 65534');
  await until(() => runner.snapshot().containers[0]!.health === 'HEALTHY', 'healthy', 20_000);
  assert.equal(runner.snapshot().healthStatus, 'HEALTHY');
  runner.stop();
  await runner.whenStopped();
  await runner.cleanup();
  assert.equal(await rt!.volumeExists(mounts['/data']!.Name!), false, 'task-lifetime volume removed with the task');
  assert.equal(await rt!.volumeExists('shared'), true, 'shared volume persists');
  await rt!.removeVolume('shared');
});

test('an essential container exit stops the task with its exit code', { skip }, async () => {
  const t = makeTask([
    { name: 'main', image: 'wharf-test/exit', memory: 32, environment: [{ name: 'EXIT_CODE', value: '3' }, { name: 'SLEEP_SECONDS', value: '1' }] },
    { name: 'side', image: 'wharf/pause', memory: 32, essential: false },
  ]);
  const { runner, tasks } = run(t);
  await runner.whenStopped();
  const last = tasks.at(-1)!;
  assert.equal(last.status, 'STOPPED');
  assert.equal(last.stopCode, 'EssentialContainerExited');
  assert.equal(last.reason, 'Essential container in task exited');
  const byName = Object.fromEntries(last.containers!.map((c) => [c.containerName, c]));
  assert.equal(byName.main!.exitCode, 3);
  assert.equal(byName.side!.exitCode, 0, 'the pause image exits 0 on SIGTERM');
  assert.ok(last.executionStoppedAt! > 0);
});

test('a container over its memory limit is OOM-killed and reported as OutOfMemoryError', { skip }, async () => {
  const t = makeTask([{ name: 'hog', image: 'wharf-test/memhog', memory: 32, environment: [{ name: 'MEMHOG_MB', value: '256' }] }]);
  const { runner, tasks } = run(t);
  await runner.whenStopped();
  const c = tasks.at(-1)!.containers![0]!;
  assert.equal(c.exitCode, 137);
  assert.equal(c.reason, OOM_REASON);
});

test('task-level memory is a hard limit for the whole task', { skip }, async () => {
  const t = makeTask([{ name: 'hog', image: 'wharf-test/memhog', environment: [{ name: 'MEMHOG_MB', value: '256' }] }], { memory: '64', cpu: '256' });
  const { runner, tasks } = run(t);
  await until(() => !!runner.snapshot().containers[0]!.dockerId, 'created');
  const info = await docker.getContainer(runner.snapshot().containers[0]!.dockerId!).inspect();
  await runner.whenStopped();
  const c = tasks.at(-1)!.containers![0]!;
  assert.equal(c.exitCode, 137, 'killed although the container itself has no memory limit');
  assert.equal(c.reason, OOM_REASON);
  if (info.HostConfig.CgroupParent) assert.equal(info.HostConfig.CgroupParent, `/wharf/${runner.taskId}`);
  else assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024, 'per-container fallback');
});

test('stopTimeout: SIGTERM first, SIGKILL after the timeout', { skip }, async () => {
  const t = makeTask([
    { name: 'stubborn', image: 'wharf-test/busybox', memory: 32, stopTimeout: 2, entryPoint: ['sh', '-c'], command: ['trap "" TERM; while :; do sleep 1; done'] },
    { name: 'polite', image: 'wharf/pause', memory: 32, stopTimeout: 2 },
  ]);
  const { runner, tasks } = run(t);
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const t0 = Date.now();
  runner.update({ ...t, desiredStatus: 'STOPPED', version: 2 });
  await runner.whenStopped();
  const took = Date.now() - t0;
  assert.ok(took >= 2000, `waited the stop timeout (${took} ms)`);
  const byName = Object.fromEntries(tasks.at(-1)!.containers!.map((c) => [c.containerName, c]));
  assert.equal(byName.stubborn!.exitCode, 137);
  assert.equal(byName.polite!.exitCode, 0);
  assert.deepEqual(tasks.map((x) => x.status), ['PENDING', 'RUNNING', 'STOPPING', 'STOPPED']);
});

test('awsvpc: two containers share localhost through the pause container; its IP is the task IP', { skip }, async () => {
  const t = makeTask(
    [
      { name: 'server', image: 'wharf-test/busybox', memory: 32, command: HTTPD, portMappings: [{ containerPort: 8080 }] },
      { name: 'client', image: 'wharf-test/busybox', memory: 32, entryPoint: ['sh', '-c'], command: ['until wget -qO- http://localhost:8080/; do sleep 0.2; done; sleep 3600'] },
    ],
    { networkMode: 'awsvpc', pidMode: 'task', ipcMode: 'task' },
    { network: { name: `wharf-test-${hexId().slice(0, 8)}` } },
  );
  const { runner, tasks } = run(t);
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const ip = tasks.find((x) => x.status === 'RUNNING')!.privateIpv4Address!;
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(tasks[0]!.status, 'PROVISIONING');
  const client = runner.snapshot().containers.find((c) => c.name === 'client')!;
  const info = await docker.getContainer(client.dockerId!).inspect();
  assert.match(info.HostConfig.NetworkMode!, /^container:[0-9a-f]{64}$/);
  assert.equal(info.HostConfig.PidMode, info.HostConfig.NetworkMode, "pidMode task: the pause container's PID namespace");
  assert.equal(info.HostConfig.IpcMode, info.HostConfig.NetworkMode);
  let text = '';
  for (let i = 0; i < 50 && !text.includes('wharf test page'); i++) {
    text = '';
    for await (const chunk of await rt!.logs(client.dockerId!)) text += chunk.toString();
    if (!text.includes('wharf test page')) await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(text, /wharf test page/);
  const direct = await (await fetch(`http://${ip}:8080/`)).text();
  assert.equal(direct.trim(), 'wharf test page', 'the task IP serves the container port');
  runner.stop();
  await runner.whenStopped();
  assert.deepEqual(tasks.map((x) => x.status), ['PROVISIONING', 'PENDING', 'RUNNING', 'STOPPING', 'DEPROVISIONING', 'STOPPED']);
  await runner.cleanup();
  await rt!.removeNetwork(t.network!.name);
});

test('bridge: pidMode and ipcMode task share one PID and IPC namespace through a namespace pause container, each container keeping its own network', { skip }, async () => {
  const t = makeTask(
    [
      { name: 'main', image: 'wharf-test/busybox', memory: 32, command: ['sleep', '3601'] },
      { name: 'side', image: 'wharf-test/busybox', memory: 32, essential: false, command: ['sleep', '3602'] },
    ],
    { networkMode: 'bridge', pidMode: 'task', ipcMode: 'task' },
  );
  const { runner, tasks } = run(t);
  await until(() => runner.knownStatus === 'RUNNING', 'RUNNING');
  const snap = runner.snapshot().containers;
  const main = await docker.getContainer(snap.find((c) => c.name === 'main')!.dockerId!).inspect();
  const side = await docker.getContainer(snap.find((c) => c.name === 'side')!.dockerId!).inspect();
  assert.match(main.HostConfig.PidMode!, /^container:[0-9a-f]{64}$/);
  assert.equal(side.HostConfig.PidMode, main.HostConfig.PidMode, 'one PID namespace');
  assert.equal(main.HostConfig.IpcMode, main.HostConfig.PidMode, 'one IPC namespace, the same container');
  assert.equal(main.HostConfig.NetworkMode, 'bridge', 'the network stays the bridge');
  const pause = await docker.getContainer(main.HostConfig.PidMode!.slice('container:'.length)).inspect();
  assert.equal(pause.HostConfig.NetworkMode, 'none');
  assert.equal(pause.Config.Labels?.['com.amazonaws.ecs.container-name'], '~internal~ecs~pause');
  // From inside one container, the other's process is visible.
  const exec = await docker.getContainer(main.Id).exec({ Cmd: ['ps'], AttachStdout: true, AttachStderr: true });
  let out = '';
  const stream = await exec.start({ hijack: true, stdin: false });
  for await (const chunk of stream) out += chunk.toString();
  assert.match(out, /sleep 3602/, out);
  runner.stop();
  await runner.whenStopped();
  assert.equal(tasks.at(-1)!.status, 'STOPPED');
  assert.ok(!tasks.some((x) => x.privateIpv4Address), 'no task address: it is not awsvpc');
  await runner.cleanup();
});

test('pull from a registry with basic auth; without credentials the task fails to start', { skip }, async () => {
  const registry = await startLocalRegistry({ auth: true });
  try {
    const image = await pushToRegistry(docker, 'wharf-test/busybox:latest', registry, `wharf/private-${hexId().slice(0, 6)}:v1`);
    const ok = makeTask([{ name: 'app', image, memory: 32, command: ['sleep', '3600'] }], {}, { registryAuth: { app: registry.auth! } });
    const a = run(ok);
    await until(() => a.runner.knownStatus === 'RUNNING', 'RUNNING with credentials');
    assert.match(a.tasks.at(-1)!.containers![0]!.imageDigest ?? '', /sha256:[0-9a-f]{64}/);
    a.runner.stop();
    await a.runner.whenStopped();
    await a.runner.cleanup();
    await docker.getImage(image).remove().catch(() => undefined);

    const denied = makeTask([{ name: 'app', image, memory: 32 }]);
    const b = run(denied);
    await b.runner.whenStopped();
    const last = b.tasks.at(-1)!;
    assert.equal(last.stopCode, 'TaskFailedToStart');
    assert.match(last.reason!, /^CannotPullContainerError: .*(no basic auth credentials|unauthorized|authentication required)/i);
    assert.deepEqual(b.tasks.map((x) => x.status), ['PENDING', 'STOPPED']);
  } finally {
    await registry.stop();
  }
});

test('logs: a follow stream delivers lines as they are written and ends when the container stops', { skip }, async () => {
  const t = makeTask([{ name: 'talker', image: 'wharf-test/busybox', memory: 32, entryPoint: ['sh', '-c'], command: ['for i in 1 2 3; do echo line-$i; echo err-$i >&2; sleep 0.3; done'] }]);
  const { runner } = run(t);
  await until(() => !!runner.snapshot().containers[0]!.dockerId, 'created');
  const stream = await streamTaskLogs(rt!, { taskArn: t.taskArn, containerName: 'talker' }, { follow: true });
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  assert.deepEqual(text.trim().split('\n').filter((l) => l.startsWith('line-')), ['line-1', 'line-2', 'line-3']);
  assert.ok(text.includes('err-3'), 'stderr is included');
  await runner.whenStopped();
  const tail = await streamTaskLogs(rt!, { taskArn: t.taskArn, containerName: 'talker' }, { tail: 1 });
  let last = '';
  for await (const chunk of tail) last += chunk.toString();
  assert.equal(last.trim().split('\n').length, 1);
});

test('pull behaviours: prefer-cached and default use the cache when the registry is gone, always fails', { skip }, async () => {
  const registry = await startLocalRegistry();
  const image = await pushToRegistry(docker, 'wharf-test/busybox:latest', registry, `wharf/cache-${hexId().slice(0, 6)}:v1`);
  try {
    const first = await rt!.pullImage(image, { behaviour: 'prefer-cached' });
    assert.equal(first.cached, false, 'not cached yet: pulled');
    const second = await rt!.pullImage(image, { behaviour: 'prefer-cached' });
    assert.equal(second.cached, true);
    const once = await rt!.pullImage(image, { behaviour: 'once' });
    assert.equal(once.cached, true, 'once: already pulled by this runtime');
    await registry.stop();
    const fallback = await rt!.pullImage(image, { behaviour: 'default' });
    assert.equal(fallback.cached, true, 'default falls back to the cached image');
    await assert.rejects(rt!.pullImage(image, { behaviour: 'always' }));
  } finally {
    await registry.stop().catch(() => undefined);
    await docker.getImage(image).remove().catch(() => undefined);
  }
});
