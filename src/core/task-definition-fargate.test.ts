import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from './errors';
import type { RegisterTaskDefinitionRequest } from './shapes/ecs';
import { validateAndNormalizeTaskDefinition } from './task-definition';
import { FARGATE_SIZES, isFargateSize } from './task-definition-fargate';
import { fargateRequest, fargateWith } from './task-definition-test-helpers';

function rejects(req: RegisterTaskDefinitionRequest, message: string): void {
  assert.throws(
    () => validateAndNormalizeTaskDefinition(req),
    (e: unknown) => {
      assert.ok(e instanceof WharfError);
      assert.equal(e.code, 'ClientException');
      assert.equal(e.message, message);
      return true;
    },
  );
}

const nope = (what: string) => `Tasks using the Fargate launch type do not support ${what}.`;

const cases: { name: string; req: RegisterTaskDefinitionRequest; message: string }[] = [
  { name: 'bridge mode', req: fargateRequest({ networkMode: 'bridge' }), message: 'Fargate only supports network mode \u2018awsvpc\u2019.' },
  { name: 'an omitted network mode', req: fargateRequest({ networkMode: undefined }), message: 'Fargate only supports network mode \u2018awsvpc\u2019.' },
  { name: 'no task cpu', req: fargateRequest({ cpu: undefined }), message: "Fargate requires that 'cpu' be defined at the task level." },
  { name: 'no task memory', req: fargateRequest({ memory: undefined, containerDefinitions: [{ name: 'web', image: 'nginx', memory: 512 }] }), message: "Fargate requires that 'memory' be defined at the task level." },
  { name: 'cpu 256 with 4 GB', req: fargateRequest({ memory: '4 GB' }), message: 'No Fargate configuration exists for given values.' },
  { name: 'cpu 300', req: fargateRequest({ cpu: '300' }), message: 'No Fargate configuration exists for given values.' },
  { name: 'cpu 8192 with memory 18432 (not a 4 GB step)', req: fargateRequest({ cpu: '8192', memory: '18432' }), message: 'No Fargate configuration exists for given values.' },
  {
    name: 'a Windows task with 0.5 vCPU',
    req: fargateRequest({ cpu: '512', memory: '1024', runtimePlatform: { operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE' } }),
    message: 'No Fargate configuration exists for given values.',
  },
  { name: 'ipcMode', req: fargateRequest({ ipcMode: 'task' }), message: nope('ipcMode') },
  {
    name: "pidMode 'host'",
    req: fargateRequest({ pidMode: 'host' }),
    message: "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.",
  },
  {
    name: 'placement constraints',
    req: fargateRequest({ placementConstraints: [{ type: 'memberOf', expression: 'attribute:ecs.os-type == linux' }] }),
    message: nope('placementConstraints'),
  },
  { name: 'a host volume with a source path', req: fargateRequest({ volumes: [{ name: 'data', host: { sourcePath: '/srv' } }] }), message: nope("host volumes with a sourcePath (volume 'data')") },
  { name: 'a docker volume', req: fargateRequest({ volumes: [{ name: 'data', dockerVolumeConfiguration: { scope: 'task' } }] }), message: nope("dockerVolumeConfiguration (volume 'data')") },
  { name: 'a privileged container', req: fargateWith({ privileged: true }), message: nope("'privileged' for container 'web'") },
  { name: 'dnsServers', req: fargateWith({ dnsServers: ['10.0.0.2'] }), message: nope("'dnsServers' for container 'web'") },
  { name: 'dnsSearchDomains', req: fargateWith({ dnsSearchDomains: ['corp'] }), message: nope("'dnsSearchDomains' for container 'web'") },
  { name: 'dockerSecurityOptions', req: fargateWith({ dockerSecurityOptions: ['no-new-privileges'] }), message: nope("'dockerSecurityOptions' for container 'web'") },
  { name: 'disableNetworking', req: fargateWith({ disableNetworking: true }), message: nope("'disableNetworking' for container 'web'") },
  { name: 'maxSwap', req: fargateWith({ linuxParameters: { maxSwap: 100 } }), message: nope("'linuxParameters.maxSwap' for container 'web'") },
  { name: 'swappiness', req: fargateWith({ linuxParameters: { swappiness: 10 } }), message: nope("'linuxParameters.swappiness' for container 'web'") },
  { name: 'devices', req: fargateWith({ linuxParameters: { devices: [{ hostPath: '/dev/fuse' }] } }), message: nope("'linuxParameters.devices' for container 'web'") },
  { name: 'sharedMemorySize', req: fargateWith({ linuxParameters: { sharedMemorySize: 64 } }), message: nope("'linuxParameters.sharedMemorySize' for container 'web'") },
  { name: 'tmpfs', req: fargateWith({ linuxParameters: { tmpfs: [{ containerPath: '/tmp', size: 64 }] } }), message: nope("'linuxParameters.tmpfs' for container 'web'") },
  {
    name: 'adding NET_ADMIN',
    req: fargateWith({ linuxParameters: { capabilities: { add: ['NET_ADMIN'] } } }),
    message: nope("adding the capability 'NET_ADMIN' for container 'web' (only SYS_PTRACE)"),
  },
  {
    name: 'a non-network sysctl',
    req: fargateWith({ systemControls: [{ namespace: 'kernel.shm_rmid_forced', value: '1' }] }),
    message: nope("the systemControls namespace 'kernel.shm_rmid_forced' for container 'web' (only net.*)"),
  },
  { name: 'the syslog log driver', req: fargateWith({ logConfiguration: { logDriver: 'syslog' } }), message: nope("the log driver 'syslog' for container 'web'") },
  {
    name: 'awslogs without an execution role',
    req: fargateWith({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1' } } }),
    message: 'Fargate requires task definition to have execution role ARN to support log driver awslogs.',
  },
  {
    name: 'awslogs without awslogs-stream-prefix',
    req: fargateRequest({
      executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
      containerDefinitions: [{ name: 'web', image: 'nginx', logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1' } } }],
    }),
    message: 'Fargate requires log configuration options to include awslogs-stream-prefix to support log driver awslogs.',
  },
  { name: 'a GPU', req: fargateWith({ resourceRequirements: [{ type: 'GPU', value: '1' }] }), message: nope("GPU resource requirements for container 'web'") },
  { name: 'a stopTimeout of 121 seconds', req: fargateWith({ stopTimeout: 121 }), message: "Invalid 'stopTimeout' setting for container 'web'. Fargate supports at most 120 seconds." },
  { name: 'a startTimeout of 1 second', req: fargateWith({ startTimeout: 1 }), message: "Invalid 'startTimeout' setting for container 'web'. Fargate supports 2 to 120 seconds." },
  { name: 'a startTimeout of 121 seconds', req: fargateWith({ startTimeout: 121 }), message: "Invalid 'startTimeout' setting for container 'web'. Fargate supports 2 to 120 seconds." },
  {
    name: 'container cpu above the task cpu',
    req: fargateWith({ cpu: 512 }),
    message: "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.",
  },
];

for (const c of cases) {
  test(`Fargate rejects ${c.name}`, () => rejects(c.req, c.message));
}

const accepted: { name: string; req: RegisterTaskDefinitionRequest; cpu: string; memory: string }[] = [
  { name: '"0.25 vcpu" with "0.5 GB"', req: fargateRequest({ cpu: '0.25 vcpu', memory: '0.5 GB' }), cpu: '256', memory: '512' },
  { name: '"1 vCPU" with "2GB"', req: fargateRequest({ cpu: '1 vCPU', memory: '2GB' }), cpu: '1024', memory: '2048' },
  { name: '"4 vCPU" with "30 GB"', req: fargateRequest({ cpu: '4 vCPU', memory: '30 GB' }), cpu: '4096', memory: '30720' },
  { name: '16 vCPU with 120 GB', req: fargateRequest({ cpu: '16384', memory: '122880' }), cpu: '16384', memory: '122880' },
  {
    name: 'Windows with 1 vCPU',
    req: fargateRequest({ cpu: '1024', memory: '2048', runtimePlatform: { operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE', cpuArchitecture: 'X86_64' } }),
    cpu: '1024',
    memory: '2048',
  },
];

for (const a of accepted) {
  test(`Fargate accepts ${a.name} and stores plain units`, () => {
    const { taskDefinition } = validateAndNormalizeTaskDefinition(a.req);
    assert.equal(taskDefinition.cpu, a.cpu);
    assert.equal(taskDefinition.memory, a.memory);
    assert.ok(taskDefinition.compatibilities.includes('FARGATE'));
  });
}

test('Fargate accepts pidMode task, SYS_PTRACE, net.* sysctls, stopTimeout 120 and awslogs with an execution role', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    fargateRequest({
      pidMode: 'task',
      executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
      containerDefinitions: [
        {
          name: 'web',
          image: 'nginx',
          stopTimeout: 120,
          startTimeout: 2,
          linuxParameters: { capabilities: { add: ['SYS_PTRACE'] }, initProcessEnabled: true },
          systemControls: [{ namespace: 'net.ipv4.tcp_keepalive_time', value: '60' }],
          logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': 'web' } },
        },
      ],
      ephemeralStorage: { sizeInGiB: 21 },
    }),
  );
  assert.deepEqual(taskDefinition.ephemeralStorage, { sizeInGiB: 21 });
  // ephemeralStorage exists only on Fargate, so EC2 is not among the compatibilities.
  assert.deepEqual(taskDefinition.compatibilities, ['FARGATE', 'MANAGED_INSTANCES']);
});

test('every size in the Fargate table is accepted and its neighbours off the table are not', () => {
  for (const size of FARGATE_SIZES) {
    for (const mem of size.memory) assert.ok(isFargateSize(size.cpu, mem), `${size.cpu}/${mem}`);
    assert.equal(isFargateSize(size.cpu, size.memory[0]! - 1), false);
    assert.equal(isFargateSize(size.cpu, size.memory.at(-1)! + 1024), false);
  }
  assert.deepEqual(FARGATE_SIZES.find((s) => s.cpu === 2048)!.memory.length, 13); // 4096..16384 by 1024
});
