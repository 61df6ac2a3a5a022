import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError, type ErrorCode } from './errors';
import type { RegisterTaskDefinitionRequest } from './shapes/ecs';
import { validateAndNormalizeTaskDefinition } from './task-definition';
import { container, ec2Request, fargateRequest } from './task-definition-test-helpers';

interface Rejection {
  name: string;
  req: RegisterTaskDefinitionRequest;
  message: string | RegExp;
  code?: ErrorCode;
}

function assertRejected({ req, message, code = 'ClientException' }: Rejection): void {
  assert.throws(
    () => validateAndNormalizeTaskDefinition(req),
    (e: unknown) => {
      assert.ok(e instanceof WharfError, `expected a WharfError, got ${String(e)}`);
      assert.equal(e.code, code);
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

const manyContainers = (n: number) =>
  Array.from({ length: n }, (_, i) => container({ name: `c${i}` }));

const taskLevelRejections: Rejection[] = [
  { name: 'a missing family', req: ec2Request({ family: '' }), message: 'Family should not be null or empty.' },
  {
    name: 'a family with a space',
    req: ec2Request({ family: 'web server' }),
    message: /^Invalid family 'web server'\. Up to 255 letters/,
  },
  { name: 'a family of 256 characters', req: ec2Request({ family: 'a'.repeat(256) }), message: /^Invalid family/ },
  { name: 'no containers', req: ec2Request({ containerDefinitions: [] }), message: 'Container list cannot be empty.' },
  { name: 'eleven containers', req: ec2Request({ containerDefinitions: manyContainers(11) }), message: 'Too many containers.' },
  {
    name: 'two containers with the same name',
    req: ec2Request({ containerDefinitions: [container(), container()] }),
    message: "Duplicate container name 'web'. Container names must be unique within a task definition.",
  },
  {
    name: 'no essential container',
    req: ec2Request({ containerDefinitions: [container({ essential: false })] }),
    message: 'A task definition must have at least one essential container.',
  },
  {
    name: 'an unknown requiresCompatibilities value',
    req: ec2Request({ requiresCompatibilities: ['LAMBDA' as never] }),
    message: "Invalid 'requiresCompatibilities' value 'LAMBDA'. Valid values: EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES.",
  },
  {
    name: 'an unknown networkMode',
    req: ec2Request({ networkMode: 'nat' as never }),
    message: "Invalid 'networkMode' setting 'nat'. Valid values: bridge, host, awsvpc, none.",
  },
  {
    name: 'an unknown pidMode',
    req: ec2Request({ pidMode: 'container' as never }),
    message: "Invalid 'pidMode' setting 'container'. Valid values: host, task.",
  },
  {
    name: 'an unknown ipcMode',
    req: ec2Request({ ipcMode: 'shareable' as never }),
    message: "Invalid 'ipcMode' setting 'shareable'. Valid values: host, task, none.",
  },
  {
    name: 'a task cpu that is not a number',
    req: ec2Request({ cpu: 'lots' }),
    message: /^Invalid 'cpu' setting for task: 'lots'\./,
  },
  {
    name: 'a task cpu below 128 units',
    req: ec2Request({ cpu: '64' }),
    message: "Invalid 'cpu' setting for task. It must be between 128 and 196608 CPU units.",
  },
  {
    name: 'a fractional vCPU that is not a whole number of units',
    req: ec2Request({ cpu: '0.1 vcpu' }),
    message: /^Invalid 'cpu' setting for task: '0\.1 vcpu'/,
  },
  {
    name: 'a task memory in an unknown unit',
    req: ec2Request({ memory: '1 TB' }),
    message: /^Invalid 'memory' setting for task: '1 TB'\./,
  },
  {
    name: 'a task memory below 6 MiB',
    req: ec2Request({ memory: '4' }),
    message: "Invalid 'memory' setting for task. The minimum is 6 MiB.",
  },
  {
    name: 'EC2 without task memory and a container without memory or memoryReservation',
    req: ec2Request({ containerDefinitions: [container({ memory: undefined })] }),
    message: "Invalid setting for container 'web'. At least one of 'memory' or 'memoryReservation' must be specified.",
  },
  {
    name: "a container 'memory' above the task memory",
    req: ec2Request({ memory: '256', containerDefinitions: [container({ memory: 512 })] }),
    message: "Invalid 'memory' setting for container 'web'. A container's 'memory' cannot be greater than the task 'memory'.",
  },
  {
    name: 'memory reservations summing above the task memory',
    req: ec2Request({
      memory: '256',
      containerDefinitions: [
        container({ name: 'a', memory: undefined, memoryReservation: 200 }),
        container({ name: 'b', memory: undefined, memoryReservation: 100 }),
      ],
    }),
    message: "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.",
  },
  {
    name: 'hard memory limits summing above the task memory',
    req: ec2Request({
      memory: '256',
      containerDefinitions: [container({ name: 'a', memory: 200 }), container({ name: 'b', memory: 100 })],
    }),
    message: "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'.",
  },
  {
    name: 'container cpu summing above the task cpu',
    req: ec2Request({
      cpu: '256',
      containerDefinitions: [container({ name: 'a', cpu: 200 }), container({ name: 'b', cpu: 100 })],
    }),
    message: "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.",
  },
  {
    name: 'a mount point naming an undefined volume',
    req: ec2Request({ containerDefinitions: [container({ mountPoints: [{ sourceVolume: 'data', containerPath: '/data' }] })] }),
    message: "Invalid 'mountPoints' setting for container 'web'. Volume 'data' is not defined in the task definition's volumes.",
  },
  {
    name: 'a volume without a name',
    req: ec2Request({ volumes: [{ host: {} }] }),
    message: 'Volume name should not be null or empty.',
  },
  {
    name: 'a volume name with a slash',
    req: ec2Request({ volumes: [{ name: 'a/b' }] }),
    message: /^Invalid volume name 'a\/b'/,
  },
  {
    name: 'two volumes with the same name',
    req: ec2Request({ volumes: [{ name: 'data' }, { name: 'data' }] }),
    message: "Duplicate volume name 'data'. Volume names must be unique within a task definition.",
  },
  {
    name: 'a volume with both host and dockerVolumeConfiguration',
    req: ec2Request({ volumes: [{ name: 'data', host: { sourcePath: '/srv' }, dockerVolumeConfiguration: { scope: 'task' } }] }),
    message: "Invalid volume 'data'. Only one of 'host' and 'dockerVolumeConfiguration' can be specified.",
  },
  {
    name: 'a docker volume with an unknown scope',
    req: ec2Request({ volumes: [{ name: 'data', dockerVolumeConfiguration: { scope: 'global' as never } }] }),
    message: "Invalid 'dockerVolumeConfiguration.scope' for volume 'data'. Valid values: task, shared.",
  },
  {
    name: 'autoprovision on a task-scoped docker volume',
    req: ec2Request({ volumes: [{ name: 'data', dockerVolumeConfiguration: { scope: 'task', autoprovision: true } }] }),
    message: "Invalid volume 'data'. 'autoprovision' is only supported when 'scope' is 'shared'.",
  },
  {
    name: 'autoprovision with the scope left to its task default',
    req: ec2Request({ volumes: [{ name: 'data', dockerVolumeConfiguration: { autoprovision: true } }] }),
    message: "Invalid volume 'data'. 'autoprovision' is only supported when 'scope' is 'shared'.",
  },
  {
    name: 'an EFS volume without a file system id',
    req: ec2Request({ volumes: [{ name: 'efs', efsVolumeConfiguration: { fileSystemId: '' } }] }),
    message: "Invalid 'efsVolumeConfiguration' for volume 'efs'. 'fileSystemId' is required.",
  },
  {
    name: 'an EFS transit encryption port without transit encryption',
    req: ec2Request({ volumes: [{ name: 'efs', efsVolumeConfiguration: { fileSystemId: 'fs-1', transitEncryptionPort: 2049 } }] }),
    message: /transitEncryptionPort' and IAM authorization require transitEncryption ENABLED/,
  },
  {
    name: 'an EFS access point with a root directory other than /',
    req: ec2Request({ volumes: [{ name: 'efs', efsVolumeConfiguration: { fileSystemId: 'fs-1', rootDirectory: '/x', transitEncryption: 'ENABLED', authorizationConfig: { accessPointId: 'fsap-1' } } }] }),
    message: "Root Directory can not be set when using an EFS Access Point (volume 'efs'): omit rootDirectory or set it to '/'.",
  },
  {
    name: 'an EFS access point without transit encryption',
    req: ec2Request({ volumes: [{ name: 'efs', efsVolumeConfiguration: { fileSystemId: 'fs-1', authorizationConfig: { accessPointId: 'fsap-1' } } }] }),
    message: "Invalid 'efsVolumeConfiguration' for volume 'efs'. An access point requires transitEncryption ENABLED.",
  },
  {
    name: 'more than 50 tags',
    req: ec2Request({ tags: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }),
    code: 'InvalidParameterException',
    message: 'Too many tags: 51. A resource can have at most 50 tags.',
  },
  {
    name: 'a tag key longer than 128 characters',
    req: ec2Request({ tags: [{ key: 'k'.repeat(129), value: 'v' }] }),
    code: 'InvalidParameterException',
    message: 'Invalid tag key. Tag keys must be 1 to 128 characters long.',
  },
  {
    name: 'a tag value longer than 256 characters',
    req: ec2Request({ tags: [{ key: 'team', value: 'v'.repeat(257) }] }),
    code: 'InvalidParameterException',
    message: "Invalid value for tag 'team'. Tag values can be at most 256 characters long.",
  },
  {
    name: "a tag key with the reserved 'aws:' prefix",
    req: ec2Request({ tags: [{ key: 'aws:owner', value: 'me' }] }),
    code: 'InvalidParameterException',
    message: "Invalid tag key 'aws:owner'. The 'aws:' prefix is reserved for AWS use.",
  },
  {
    name: "the reserved prefix in another case ('AWS:')",
    req: ec2Request({ tags: [{ key: 'AWS:owner', value: 'me' }] }),
    code: 'InvalidParameterException',
    message: "Invalid tag key 'AWS:owner'. The 'aws:' prefix is reserved for AWS use.",
  },
  {
    name: 'a tag with a character tags may not hold',
    req: ec2Request({ tags: [{ key: 'team', value: 'a;b' }] }),
    code: 'InvalidParameterException',
    message: /^Invalid tag 'team'\. Tags may contain letters/,
  },
  {
    name: 'the same tag key twice',
    req: ec2Request({ tags: [{ key: 'team', value: 'a' }, { key: 'team', value: 'b' }] }),
    code: 'InvalidParameterException',
    message: "Duplicate tag key 'team'.",
  },
  {
    name: 'a distinctInstance placement constraint',
    req: ec2Request({ placementConstraints: [{ type: 'distinctInstance' as never }] }),
    message: "Invalid placement constraint type 'distinctInstance'. Task definitions support only 'memberOf'.",
  },
  {
    name: 'a memberOf constraint without an expression',
    req: ec2Request({ placementConstraints: [{ type: 'memberOf' }] }),
    message: "Invalid 'memberOf' placement constraint. An expression of 1 to 2000 characters is required.",
  },
  {
    name: 'eleven placement constraints',
    req: ec2Request({
      placementConstraints: Array.from({ length: 11 }, () => ({ type: 'memberOf' as const, expression: 'attribute:ecs.os-type == linux' })),
    }),
    message: 'Too many placement constraints: 11. At most 10 are allowed.',
  },
  {
    name: 'an unknown cpu architecture',
    req: ec2Request({ runtimePlatform: { cpuArchitecture: 'MIPS' as never } }),
    message: "Invalid 'runtimePlatform.cpuArchitecture' setting 'MIPS'. Valid values: X86_64, ARM64.",
  },
  {
    name: 'Windows on ARM64',
    req: ec2Request({ runtimePlatform: { cpuArchitecture: 'ARM64', operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE' } }),
    message: 'Windows task definitions support only the X86_64 cpu architecture.',
  },
  {
    name: 'pidMode on Windows',
    req: ec2Request({ pidMode: 'task', runtimePlatform: { operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE' } }),
    message: 'pidMode is not supported for Windows task definitions.',
  },
  {
    name: 'ephemeralStorage below 21 GiB',
    req: fargateRequest({ ephemeralStorage: { sizeInGiB: 20 } }),
    message: "Invalid 'ephemeralStorage.sizeInGiB' setting. It must be an integer between 21 and 200.",
  },
  {
    name: 'ephemeralStorage above 200 GiB',
    req: fargateRequest({ ephemeralStorage: { sizeInGiB: 201 } }),
    message: "Invalid 'ephemeralStorage.sizeInGiB' setting. It must be an integer between 21 and 200.",
  },
  {
    name: 'ephemeralStorage without requiring FARGATE',
    req: ec2Request({ ephemeralStorage: { sizeInGiB: 30 } }),
    message: "'ephemeralStorage' is only supported for task definitions that require the FARGATE launch type.",
  },
  {
    name: 'EXTERNAL with awsvpc',
    req: ec2Request({ requiresCompatibilities: ['EXTERNAL'], networkMode: 'awsvpc' }),
    message: "Tasks using the EXTERNAL launch type do not support network mode 'awsvpc'.",
  },
  {
    name: 'a proxy configuration naming an unknown container',
    req: ec2Request({ proxyConfiguration: { type: 'APPMESH', containerName: 'envoy' } }),
    message: "Invalid 'proxyConfiguration' setting. Container 'envoy' is not defined in the task definition.",
  },
  {
    name: 'an inference accelerator requirement naming an undefined device',
    req: ec2Request({ containerDefinitions: [container({ resourceRequirements: [{ type: 'InferenceAccelerator', value: 'dev1' }] })] }),
    message: "Invalid 'resourceRequirements' setting for container 'web'. Inference accelerator 'dev1' is not defined in the task definition.",
  },
  {
    name: 'two containers with firelensConfiguration',
    req: ec2Request({
      containerDefinitions: [
        container({ name: 'a', firelensConfiguration: { type: 'fluentbit' } }),
        container({ name: 'b', firelensConfiguration: { type: 'fluentbit' } }),
      ],
    }),
    message: 'Only one container in a task definition can have a firelensConfiguration.',
  },
  {
    name: 'the awsfirelens log driver without a firelens container',
    req: ec2Request({ containerDefinitions: [container({ logConfiguration: { logDriver: 'awsfirelens' } })] }),
    message: "Container 'web' uses the awsfirelens log driver, but no container in the task definition has a firelensConfiguration.",
  },
  {
    name: 'the same port mapping name in two containers',
    req: ec2Request({
      containerDefinitions: [
        container({ name: 'a', portMappings: [{ containerPort: 80, name: 'http' }] }),
        container({ name: 'b', portMappings: [{ containerPort: 81, name: 'http' }] }),
      ],
    }),
    message: "Duplicate port mapping name 'http'. Port mapping names must be unique within a task definition.",
  },
  {
    name: 'one container mapping two container ports to one host port',
    req: ec2Request({ containerDefinitions: [container({ portMappings: [{ containerPort: 80, hostPort: 3000 }, { containerPort: 81, hostPort: 3000 }] })] }),
    message: "TCP host port '3000' is mapped multiple times in task.",
  },
  {
    name: 'two containers mapping the same UDP host port',
    req: ec2Request({
      containerDefinitions: [
        container({ name: 'a', portMappings: [{ containerPort: 53, hostPort: 5353, protocol: 'udp' }] }),
        container({ name: 'b', portMappings: [{ containerPort: 54, hostPort: 5353, protocol: 'udp' }] }),
      ],
    }),
    message: "UDP host port '5353' is mapped multiple times in task.",
  },
  {
    name: 'two containers on the same port in host mode',
    req: ec2Request({
      networkMode: 'host',
      containerDefinitions: [container({ name: 'a', portMappings: [{ containerPort: 8080 }] }), container({ name: 'b', portMappings: [{ containerPort: 8080 }] })],
    }),
    message: "TCP host port '8080' is mapped multiple times in task.",
  },
];

for (const r of taskLevelRejections) {
  test(`rejects ${r.name}`, () => assertRejected(r));
}

const references: Rejection[] = [
  {
    name: 'a link to an unknown container',
    req: ec2Request({ containerDefinitions: [container({ links: ['db:database'] })] }),
    message: "Invalid 'links' setting for container 'web'. Container 'db' is not defined in the task definition.",
  },
  {
    name: 'volumesFrom an unknown container',
    req: ec2Request({ containerDefinitions: [container({ volumesFrom: [{ sourceContainer: 'data' }] })] }),
    message: "Invalid 'volumesFrom' setting for container 'web'. Container 'data' is not defined in the task definition.",
  },
  {
    name: 'dependsOn an unknown container',
    req: ec2Request({ containerDefinitions: [container({ dependsOn: [{ containerName: 'db', condition: 'START' }] })] }),
    message: "Invalid 'dependsOn' setting for container 'web'. Container 'db' is not defined in the task definition.",
  },
  {
    name: 'a COMPLETE dependency on an essential container',
    req: ec2Request({
      containerDefinitions: [
        container({ dependsOn: [{ containerName: 'init', condition: 'COMPLETE' }] }),
        container({ name: 'init' }),
      ],
    }),
    message: 'A dependency container with SUCCESS or COMPLETE condition cannot be an essential container',
  },
  {
    name: 'a SUCCESS dependency on a container that is essential by default',
    req: ec2Request({
      containerDefinitions: [
        container({ dependsOn: [{ containerName: 'init', condition: 'SUCCESS' }] }),
        container({ name: 'init', essential: undefined }),
      ],
    }),
    message: 'A dependency container with SUCCESS or COMPLETE condition cannot be an essential container',
  },
  {
    name: 'a HEALTHY dependency on a container without a health check',
    req: ec2Request({
      containerDefinitions: [container({ dependsOn: [{ containerName: 'db', condition: 'HEALTHY' }] }), container({ name: 'db' })],
    }),
    message: "Invalid 'dependsOn' setting for container 'web'. Container 'db' must define a healthCheck to be a HEALTHY dependency.",
  },
  {
    name: 'a container that depends on itself',
    req: ec2Request({ containerDefinitions: [container({ dependsOn: [{ containerName: 'web', condition: 'START' }] })] }),
    message: 'Circular dependency between containers: web -> web.',
  },
  {
    name: 'a dependsOn cycle of three containers',
    req: ec2Request({
      containerDefinitions: [
        container({ name: 'a', dependsOn: [{ containerName: 'b', condition: 'START' }] }),
        container({ name: 'b', dependsOn: [{ containerName: 'c', condition: 'START' }] }),
        container({ name: 'c', dependsOn: [{ containerName: 'a', condition: 'START' }] }),
      ],
    }),
    message: 'Circular dependency between containers: a -> b -> c -> a.',
  },
  {
    name: 'a cycle made of a dependsOn and a link',
    req: ec2Request({
      containerDefinitions: [
        container({ name: 'web', dependsOn: [{ containerName: 'db', condition: 'START' }] }),
        container({ name: 'db', links: ['web'] }),
      ],
    }),
    message: 'Circular dependency between containers: web -> db -> web.',
  },
  {
    name: 'a cycle through volumesFrom',
    req: ec2Request({
      containerDefinitions: [
        container({ name: 'a', volumesFrom: [{ sourceContainer: 'b' }] }),
        container({ name: 'b', volumesFrom: [{ sourceContainer: 'a' }] }),
      ],
    }),
    message: 'Circular dependency between containers: a -> b -> a.',
  },
];

for (const r of references) {
  test(`rejects ${r.name}`, () => assertRejected(r));
}

test('accepts a dependency chain without a cycle (diamond shape)', () => {
  const td = validateAndNormalizeTaskDefinition(
    ec2Request({
      containerDefinitions: [
        container({ name: 'app', dependsOn: [{ containerName: 'b', condition: 'START' }, { containerName: 'c', condition: 'START' }] }),
        container({ name: 'b', dependsOn: [{ containerName: 'd', condition: 'START' }] }),
        container({ name: 'c', dependsOn: [{ containerName: 'd', condition: 'HEALTHY' }] }),
        container({ name: 'd', healthCheck: { command: ['CMD', 'true'] } }),
      ],
    }),
  );
  assert.equal(td.taskDefinition.containerDefinitions.length, 4);
});

test('accepts COMPLETE and SUCCESS dependencies on non-essential containers', () => {
  const td = validateAndNormalizeTaskDefinition(
    ec2Request({
      containerDefinitions: [
        container({
          dependsOn: [
            { containerName: 'migrate', condition: 'SUCCESS' },
            { containerName: 'warmup', condition: 'COMPLETE' },
          ],
        }),
        container({ name: 'migrate', essential: false }),
        container({ name: 'warmup', essential: false }),
      ],
    }),
  );
  assert.deepEqual(
    td.taskDefinition.containerDefinitions.map((c) => c.essential),
    [true, false, false],
  );
});

test('accepts dynamic host ports, and TCP and UDP on the same host port', () => {
  const td = validateAndNormalizeTaskDefinition(
    ec2Request({
      containerDefinitions: [
        container({ name: 'a', portMappings: [{ containerPort: 80 }, { containerPort: 81, hostPort: 0 }, { containerPort: 53, hostPort: 53 }] }),
        container({ name: 'b', portMappings: [{ containerPort: 80 }, { containerPort: 53, hostPort: 53, protocol: 'udp' }] }),
      ],
    }),
  );
  assert.equal(td.taskDefinition.containerDefinitions.length, 2);
});

test('accepts memory reservations that exactly fill the task memory', () => {
  const td = validateAndNormalizeTaskDefinition(
    ec2Request({
      memory: '512',
      containerDefinitions: [
        container({ name: 'a', memory: 300 }),
        container({ name: 'b', memory: 400, memoryReservation: 212 }),
      ],
    }),
  );
  assert.equal(td.taskDefinition.memory, '512');
});

test('accepts containers without memory when the task sets memory (EC2)', () => {
  const td = validateAndNormalizeTaskDefinition(ec2Request({ memory: '1 GB', containerDefinitions: [container({ memory: undefined })] }));
  assert.equal(td.taskDefinition.memory, '1024');
  assert.equal(td.taskDefinition.containerDefinitions[0]!.memory, undefined);
});

test('accepts a Windows task definition that leaves networkMode out', () => {
  const td = validateAndNormalizeTaskDefinition(
    ec2Request({ runtimePlatform: { cpuArchitecture: 'X86_64', operatingSystemFamily: 'WINDOWS_SERVER_2022_CORE' } }),
  );
  assert.equal(td.taskDefinition.networkMode, undefined);
});

test('reports the first failing rule when a request breaks several', () => {
  // The family is checked before anything about containers.
  assertRejected({ name: 'both', req: { family: '', containerDefinitions: [] }, message: 'Family should not be null or empty.' });
});

test('rejects a request that is not an object at all', () => {
  assertRejected({ name: 'null', req: null as never, message: 'Family should not be null or empty.' });
});

test('rejects containerDefinitions that is not a list', () => {
  assertRejected({ name: 'object', req: ec2Request({ containerDefinitions: {} as never }), message: 'Container list cannot be empty.' });
});

test('an EFS volume without rootDirectory is stored with rootDirectory "/", a given one is kept', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    ec2Request({
      volumes: [
        { name: 'plain', efsVolumeConfiguration: { fileSystemId: 'fs-1' } },
        { name: 'sub', efsVolumeConfiguration: { fileSystemId: 'fs-2', rootDirectory: '/data', transitEncryption: 'ENABLED' } },
      ],
    }),
  );
  assert.deepEqual(taskDefinition.volumes.map((v) => v.efsVolumeConfiguration), [
    { fileSystemId: 'fs-1', rootDirectory: '/' },
    { fileSystemId: 'fs-2', rootDirectory: '/data', transitEncryption: 'ENABLED' },
  ]);
});
