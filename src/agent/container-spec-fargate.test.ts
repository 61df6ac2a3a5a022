import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentTask } from '../api/agent/protocol';
import { buildContainerSpec, hostNofileLimit, type SpecContext } from './container-spec';

const task = (launchType: string) =>
  ({ taskArn: 'arn:aws:ecs:us-east-1:000000000000:task/c/abc', clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/c', desiredStatus: 'RUNNING', launchType, taskDefinition: { family: 'f', revision: 1, containerDefinitions: [] } }) as unknown as AgentTask;
const spec = (launchType: string, def: SpecContext['def'], sandboxRuntime?: string, hostNofileLimit?: number) =>
  buildContainerSpec({ task: task(launchType), containerInstanceArn: 'arn:aws:ecs:us-east-1:000000000000:container-instance/c/i', def, dockerName: 'x', networkMode: 'awsvpc', pauseId: 'pause', dockerNames: {}, dockerIds: {}, volumeSources: { data: '/var/lib/x' }, sandboxRuntime, hostNofileLimit });

test('a Fargate container gets nofile 65535/65535 unless its definition sets nofile; EC2 containers keep the engine default', () => {
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox' }).host.ulimits, [{ name: 'nofile', soft: 65535, hard: 65535 }]);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', ulimits: [{ name: 'nofile', softLimit: 1024, hardLimit: 4096 }, { name: 'core', softLimit: 0, hardLimit: 0 }] }).host.ulimits, [
    { name: 'nofile', soft: 1024, hard: 4096 },
    { name: 'core', soft: 0, hard: 0 },
  ]);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', ulimits: [{ name: 'core', softLimit: 0, hardLimit: 0 }] }).host.ulimits, [
    { name: 'core', soft: 0, hard: 0 },
    { name: 'nofile', soft: 65535, hard: 65535 },
  ]);
  assert.equal(spec('EC2', { name: 'a', image: 'busybox' }).host.ulimits, undefined);
});

test("Fargate's default nofile is capped at the host's hard limit (runc cannot start a container above it); a definition's own value is left as given", () => {
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox' }, undefined, 20000).host.ulimits, [{ name: 'nofile', soft: 20000, hard: 20000 }]);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox' }, undefined, 1048576).host.ulimits, [{ name: 'nofile', soft: 65535, hard: 65535 }]);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', ulimits: [{ name: 'nofile', softLimit: 30000, hardLimit: 30000 }] }, undefined, 20000).host.ulimits, [{ name: 'nofile', soft: 30000, hard: 30000 }]);
  const limits = ['Limit                     Soft Limit           Hard Limit           Units', 'Max open files            1024                 20000                files', ''].join('\n');
  assert.equal(hostNofileLimit(limits), 20000);
  assert.equal(hostNofileLimit(limits.replace('20000', 'unlimited')), undefined);
  assert.equal(typeof (hostNofileLimit() ?? 0), 'number', "this machine's own /proc/self/limits reads");
});

test('a read-only root under gVisor gets a read-only /tmp (gVisor would mount a writable one), unless /tmp is mounted already', () => {
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', readonlyRootFilesystem: true }, 'runsc').host.tmpfs, { '/tmp': 'ro' });
  assert.equal(spec('FARGATE', { name: 'a', image: 'busybox', readonlyRootFilesystem: true }).host.tmpfs, undefined, 'runc keeps /tmp read-only itself');
  assert.equal(spec('FARGATE', { name: 'a', image: 'busybox' }, 'runsc').host.tmpfs, undefined);
  const withVolume = spec('FARGATE', { name: 'a', image: 'busybox', readonlyRootFilesystem: true, mountPoints: [{ sourceVolume: 'data', containerPath: '/tmp/' }] }, 'runsc');
  assert.equal(withVolume.host.tmpfs, undefined);
  assert.deepEqual(withVolume.host.binds, ['/var/lib/x:/tmp/']);
});

test('a Fargate container runs without NET_RAW (no forged sources or ARP on the subnet bridge), whatever its definition drops or adds; EC2 containers keep the defaults', () => {
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox' }).host.capDrop, ['NET_RAW']);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox' }, 'runsc').host.capDrop, ['NET_RAW'], 'under gVisor too');
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', linuxParameters: { capabilities: { drop: ['MKNOD'], add: ['SYS_PTRACE'] } } }).host.capDrop, ['MKNOD', 'NET_RAW']);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', linuxParameters: { capabilities: { add: ['SYS_PTRACE'] } } }).host.capAdd, ['SYS_PTRACE']);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', linuxParameters: { capabilities: { drop: ['ALL'] } } }).host.capDrop, ['ALL']);
  assert.deepEqual(spec('FARGATE', { name: 'a', image: 'busybox', linuxParameters: { capabilities: { drop: ['CAP_NET_RAW'] } } }).host.capDrop, ['CAP_NET_RAW']);
  assert.equal(spec('EC2', { name: 'a', image: 'busybox' }).host.capDrop, undefined);
  assert.deepEqual(spec('EC2', { name: 'a', image: 'busybox', linuxParameters: { capabilities: { drop: ['MKNOD'] } } }).host.capDrop, ['MKNOD']);
});

test("a Fargate container without memory of its own is limited to the task's memory in its own cgroup (JVMs size from it); EC2 containers are not", () => {
  const withMemory = (launchType: string, memory?: string, overrides?: object) =>
    buildContainerSpec({
      task: { ...task(launchType), overrides, taskDefinition: { family: 'f', revision: 1, memory, containerDefinitions: [] } } as unknown as AgentTask,
      containerInstanceArn: 'arn:aws:ecs:us-east-1:000000000000:container-instance/c/i',
      def: { name: 'a', image: 'busybox' },
      dockerName: 'x',
      networkMode: 'awsvpc',
      pauseId: 'pause',
      dockerNames: {},
      dockerIds: {},
      volumeSources: {},
    }).host.memoryBytes;
  assert.equal(withMemory('FARGATE', '512'), 512 * 1024 * 1024);
  assert.equal(withMemory('FARGATE', '512', { memory: '1024' }), 1024 * 1024 * 1024, "the task's memory override");
  assert.equal(spec('FARGATE', { name: 'a', image: 'busybox', memory: 128 }).host.memoryBytes, 128 * 1024 * 1024, 'its own memory wins');
  assert.equal(withMemory('EC2', '512'), undefined);
});
