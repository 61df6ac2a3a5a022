import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from './errors';
import type { ContainerDefinition, NetworkMode, RegisterTaskDefinitionRequest } from './shapes/ecs';
import { validateAndNormalizeTaskDefinition } from './task-definition';
import { normalizeContainer } from './task-definition-container';
import { container, ec2Request } from './task-definition-test-helpers';

/** A one-container EC2 request in the given network mode. */
const withContainer = (over: Partial<ContainerDefinition>, networkMode?: NetworkMode): RegisterTaskDefinitionRequest =>
  ec2Request({ networkMode, containerDefinitions: [container(over)] });

function rejects(req: RegisterTaskDefinitionRequest, message: string | RegExp): void {
  assert.throws(
    () => validateAndNormalizeTaskDefinition(req),
    (e: unknown) => {
      assert.ok(e instanceof WharfError);
      assert.equal(e.code, 'ClientException');
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

const cases: { name: string; req: RegisterTaskDefinitionRequest; message: string | RegExp }[] = [
  // names and images
  { name: 'a container without a name', req: withContainer({ name: undefined }), message: 'Container.name should not be null or empty.' },
  {
    name: 'a container name with a dot',
    req: withContainer({ name: 'web.1' }),
    message: "Invalid container name 'web.1'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
  },
  { name: 'a container without an image', req: withContainer({ image: '' }), message: 'Container.image should not be null or empty.' },
  { name: 'an image name over 255 characters', req: withContainer({ image: 'a'.repeat(256) }), message: /^Invalid image 'a+' for container 'web'/ },
  { name: 'an image with a space', req: withContainer({ image: 'my image' }), message: /^Invalid image 'my image' for container 'web'/ },
  {
    name: 'an image digest that is not sha256 of 64 hex characters',
    req: withContainer({ image: 'nginx@sha256:abc' }),
    message: "Invalid image digest in 'nginx@sha256:abc' for container 'web'. The digest must be 'sha256:' followed by 64 hexadecimal characters.",
  },
  // memory and cpu
  {
    name: 'memory below 6 MiB',
    req: withContainer({ memory: 4 }),
    message: "Invalid 'memory' setting for container 'web'. The minimum is 6 MiB.",
  },
  {
    name: 'memoryReservation below 6 MiB',
    req: withContainer({ memory: undefined, memoryReservation: 5 }),
    message: "Invalid 'memoryReservation' setting for container 'web'. The minimum is 6 MiB.",
  },
  {
    name: 'memory equal to memoryReservation',
    req: withContainer({ memory: 128, memoryReservation: 128 }),
    message: "Invalid setting for container 'web'. 'memory' must be greater than 'memoryReservation'.",
  },
  {
    name: 'memory below memoryReservation',
    req: withContainer({ memory: 64, memoryReservation: 128 }),
    message: "Invalid setting for container 'web'. 'memory' must be greater than 'memoryReservation'.",
  },
  {
    name: 'a fractional memory',
    req: withContainer({ memory: 100.5 }),
    message: "Invalid 'memory' setting for container 'web'. It must be an integer (MiB).",
  },
  {
    name: 'a negative container cpu',
    req: withContainer({ cpu: -1 }),
    message: "Invalid 'cpu' setting for container 'web'. It must be an integer between 0 and 196608.",
  },
  // port mappings per network mode
  {
    name: 'a port mapping in networkMode none',
    req: withContainer({ portMappings: [{ containerPort: 80 }] }, 'none'),
    message: "Port mappings are not supported when networkMode=none (container 'web').",
  },
  {
    name: 'a port mapping without containerPort',
    req: withContainer({ portMappings: [{ hostPort: 80 }] }),
    message: "Invalid 'containerPort' setting for container 'web'.",
  },
  {
    name: 'a containerPort of 70000',
    req: withContainer({ portMappings: [{ containerPort: 70000 }] }),
    message: "Invalid 'containerPort' setting for container 'web'.",
  },
  {
    name: 'a negative hostPort',
    req: withContainer({ portMappings: [{ containerPort: 80, hostPort: -1 }] }),
    message: "Invalid 'hostPort' setting for container 'web'.",
  },
  {
    name: 'an unknown protocol',
    req: withContainer({ portMappings: [{ containerPort: 80, protocol: 'sctp' as never }] }),
    message: "Invalid 'protocol' setting 'sctp' for container 'web'. Valid values are tcp and udp.",
  },
  {
    name: 'a different hostPort in awsvpc mode',
    req: withContainer({ portMappings: [{ containerPort: 80, hostPort: 8080 }] }, 'awsvpc'),
    message: 'When networkMode=awsvpc, the host ports and container ports in port mappings must match.',
  },
  {
    name: 'a different hostPort in host mode',
    req: withContainer({ portMappings: [{ containerPort: 80, hostPort: 8080 }] }, 'host'),
    message: 'When networkMode=host, the host ports and container ports in port mappings must match.',
  },
  {
    name: 'a containerPortRange in host mode',
    req: withContainer({ portMappings: [{ containerPortRange: '8000-8010' }] }, 'host'),
    message: "containerPortRange is only supported when networkMode is bridge or awsvpc (container 'web').",
  },
  {
    name: 'both containerPort and containerPortRange',
    req: withContainer({ portMappings: [{ containerPort: 80, containerPortRange: '8000-8010' }] }),
    message: "Invalid port mapping for container 'web'. Specify either 'containerPort' or 'containerPortRange', not both.",
  },
  {
    name: 'a hostPort with a containerPortRange',
    req: withContainer({ portMappings: [{ hostPort: 8000, containerPortRange: '8000-8010' }] }),
    message: "Invalid port mapping for container 'web'. 'hostPort' cannot be set together with 'containerPortRange'.",
  },
  {
    name: 'a containerPortRange whose first port is not below its last',
    req: withContainer({ portMappings: [{ containerPortRange: '9000-8000' }] }),
    message: "Invalid 'containerPortRange' setting '9000-8000' for container 'web'. Use 'first-last' with 1 <= first < last <= 65535.",
  },
  {
    name: 'a containerPortRange that is not a range',
    req: withContainer({ portMappings: [{ containerPortRange: '8000' }] }),
    message: /^Invalid 'containerPortRange' setting '8000'/,
  },
  {
    name: 'a containerPortRange overlapping a containerPort of the same protocol',
    req: withContainer({ portMappings: [{ containerPortRange: '8000-8010' }, { containerPort: 8005 }] }),
    message: "Invalid 'portMappings' setting for container 'web'. Container ports 8000-8010 and 8005-8005 (tcp) overlap.",
  },
  {
    name: 'a port mapping name with capitals',
    req: withContainer({ portMappings: [{ containerPort: 80, name: 'HTTP' }] }),
    message: /^Invalid port mapping name 'HTTP' for container 'web'/,
  },
  {
    name: 'an unknown appProtocol',
    req: withContainer({ portMappings: [{ containerPort: 80, appProtocol: 'ftp' as never }] }),
    message: "Invalid 'appProtocol' setting for container 'web'. Valid values: http, http2, grpc.",
  },
  // network-mode-dependent options
  {
    name: 'hostname in awsvpc mode',
    req: withContainer({ hostname: 'web' }, 'awsvpc'),
    message: "hostname is not supported on container when networkMode=awsvpc (container 'web').",
  },
  {
    name: 'extraHosts in awsvpc mode',
    req: withContainer({ extraHosts: [{ hostname: 'db', ipAddress: '10.0.0.2' }] }, 'awsvpc'),
    message: "extraHosts is not supported on container when networkMode=awsvpc (container 'web').",
  },
  {
    name: 'an extraHosts entry without an address',
    req: withContainer({ extraHosts: [{ hostname: 'db' } as never] }),
    message: "Invalid 'extraHosts' setting for container 'web'. Each entry needs a 'hostname' and an 'ipAddress'.",
  },
  { name: 'links in awsvpc mode', req: withContainer({ links: ['db'] }, 'awsvpc'), message: 'Links are not supported when networkMode=awsvpc.' },
  { name: 'links in host mode', req: withContainer({ links: ['db'] }, 'host'), message: 'Links are not supported when networkMode=host.' },
  // lists
  {
    name: 'a mount point without a container path',
    req: withContainer({ mountPoints: [{ sourceVolume: 'data' }] }),
    message: "Invalid 'mountPoints' setting for container 'web'. 'sourceVolume' and 'containerPath' are required.",
  },
  {
    name: 'volumesFrom without a source container',
    req: withContainer({ volumesFrom: [{ readOnly: true }] }),
    message: "Invalid 'volumesFrom' setting for container 'web'. 'sourceContainer' is required.",
  },
  {
    name: 'an unknown dependsOn condition',
    req: withContainer({ dependsOn: [{ containerName: 'db', condition: 'READY' as never }] }),
    message: "Invalid 'dependsOn' condition 'READY' for container 'web'. Valid values: START, COMPLETE, SUCCESS, HEALTHY.",
  },
  {
    name: 'eleven environment files',
    req: withContainer({ environmentFiles: Array.from({ length: 11 }, () => ({ value: 'arn:aws:s3:::b/x.env', type: 's3' as const })) }),
    message: "Invalid 'environmentFiles' setting for container 'web'. At most 10 files are allowed.",
  },
  {
    name: 'a secret without valueFrom',
    req: withContainer({ secrets: [{ name: 'PASSWORD' } as never] }),
    message: "Invalid 'secrets' setting for container 'web'. Each secret needs a 'name' and a 'valueFrom'.",
  },
  {
    name: 'an unknown docker security option',
    req: withContainer({ dockerSecurityOptions: ['seccomp=unconfined'] }),
    message: /^Invalid 'dockerSecurityOptions' value 'seccomp=unconfined' for container 'web'/,
  },
  {
    name: 'two credential specs',
    req: withContainer({ credentialSpecs: ['a', 'b'] }),
    message: "Invalid 'credentialSpecs' setting for container 'web'. At most one credential spec is allowed.",
  },
  // health check ranges
  {
    name: 'a health check without a command',
    req: withContainer({ healthCheck: { command: [] } }),
    message: "Invalid 'healthCheck.command' setting for container 'web'. It must be a non-empty list of strings.",
  },
  {
    name: 'a health-check interval of 4 seconds',
    req: withContainer({ healthCheck: { command: ['CMD', 'true'], interval: 4 } }),
    message: "Invalid 'healthCheck.interval' setting for container 'web'. It must be an integer between 5 and 300 seconds.",
  },
  {
    name: 'a health-check timeout of 61 seconds',
    req: withContainer({ healthCheck: { command: ['CMD', 'true'], timeout: 61 } }),
    message: "Invalid 'healthCheck.timeout' setting for container 'web'. It must be an integer between 2 and 60 seconds.",
  },
  {
    name: 'zero health-check retries',
    req: withContainer({ healthCheck: { command: ['CMD', 'true'], retries: 0 } }),
    message: "Invalid 'healthCheck.retries' setting for container 'web'. It must be an integer between 1 and 10.",
  },
  {
    name: 'a health-check start period of 301 seconds',
    req: withContainer({ healthCheck: { command: ['CMD', 'true'], startPeriod: 301 } }),
    message: "Invalid 'healthCheck.startPeriod' setting for container 'web'. It must be an integer between 0 and 300 seconds.",
  },
  // ulimits
  {
    name: 'an unknown ulimit name',
    req: withContainer({ ulimits: [{ name: 'files' as never, softLimit: 1, hardLimit: 1 }] }),
    message: /^Invalid ulimit name 'files' for container 'web'\. Valid names: core, cpu,/,
  },
  {
    name: 'a ulimit soft limit above its hard limit',
    req: withContainer({ ulimits: [{ name: 'nofile', softLimit: 2048, hardLimit: 1024 }] }),
    message: "Invalid ulimit 'nofile' for container 'web'. 'softLimit' cannot be greater than 'hardLimit'.",
  },
  {
    name: 'the same ulimit twice',
    req: withContainer({
      ulimits: [
        { name: 'nofile', softLimit: 1, hardLimit: 1 },
        { name: 'nofile', softLimit: 2, hardLimit: 2 },
      ],
    }),
    message: "Duplicate ulimit 'nofile' for container 'web'.",
  },
  // linuxParameters
  {
    name: 'an unknown capability',
    req: withContainer({ linuxParameters: { capabilities: { add: ['SUPERPOWER'] } } }),
    message: "Invalid capability 'SUPERPOWER' in 'linuxParameters.capabilities.add' for container 'web'.",
  },
  {
    name: 'a device without a host path',
    req: withContainer({ linuxParameters: { devices: [{ hostPath: '' }] } }),
    message: "Invalid 'linuxParameters.devices' setting for container 'web'. 'hostPath' is required.",
  },
  {
    name: 'an unknown device permission',
    req: withContainer({ linuxParameters: { devices: [{ hostPath: '/dev/fuse', permissions: ['exec' as never] }] } }),
    message: "Invalid device permission 'exec' for container 'web'. Valid values: read, write, mknod.",
  },
  {
    name: 'a swappiness of 101',
    req: withContainer({ linuxParameters: { swappiness: 101 } }),
    message: "Invalid 'linuxParameters.swappiness' setting for container 'web'. It must be an integer between 0 and 100.",
  },
  {
    name: 'a negative maxSwap',
    req: withContainer({ linuxParameters: { maxSwap: -1 } }),
    message: /^Invalid 'linuxParameters\.maxSwap' setting for container 'web'/,
  },
  {
    name: 'a zero sharedMemorySize',
    req: withContainer({ linuxParameters: { sharedMemorySize: 0 } }),
    message: /^Invalid 'linuxParameters\.sharedMemorySize' setting for container 'web'/,
  },
  {
    name: 'a tmpfs without a size',
    req: withContainer({ linuxParameters: { tmpfs: [{ containerPath: '/tmp' } as never] } }),
    message: "Invalid 'linuxParameters.tmpfs' setting for container 'web'. 'containerPath' and a positive 'size' (MiB) are required.",
  },
  // logging, restart policy, resources
  {
    name: 'an unknown log driver',
    req: withContainer({ logConfiguration: { logDriver: 'loki' as never } }),
    message: /^Invalid 'logConfiguration\.logDriver' setting for container 'web'\. Valid values: json-file,/,
  },
  {
    name: 'awslogs without its group and region options',
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: {} } }),
    message: 'Log driver awslogs requires options: awslogs-region, awslogs-group',
  },
  {
    name: 'awslogs without a region',
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g' } } }),
    message: 'Log driver awslogs requires options: awslogs-region',
  },
  {
    name: 'an awslogs option Docker does not know',
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-foo': 'bar' } } }),
    message: /^Invalid 'logConfiguration\.options' setting for container 'web': unknown log opt 'awslogs-foo' for awslogs log driver\. Valid options: awslogs-region,/,
  },
  {
    name: "awslogs-create-group 'yes'",
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-create-group': 'yes' } } }),
    message: `Invalid 'logConfiguration.options' setting for container 'web': must specify valid value for log opt 'awslogs-create-group': strconv.ParseBool: parsing "yes": invalid syntax (use true or false).`,
  },
  {
    name: 'awslogs-datetime-format with awslogs-multiline-pattern',
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-datetime-format': '%Y', 'awslogs-multiline-pattern': '^x' } } }),
    message: "Invalid 'logConfiguration.options' setting for container 'web': you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time.",
  },
  {
    name: 'an awslogs-force-flush-interval-seconds of 0',
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-force-flush-interval-seconds': '0' } } }),
    message: "Invalid 'logConfiguration.options' setting for container 'web': must specify a positive integer for log opt 'awslogs-force-flush-interval-seconds': 0",
  },
  {
    name: 'an awslogs-multiline-pattern that does not compile',
    req: withContainer({ logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-multiline-pattern': '^(INFO' } } }),
    message: /^Invalid 'logConfiguration\.options' setting for container 'web': awslogs could not parse multiline pattern key "\^\(INFO": /,
  },
  {
    name: 'a restart attempt period of 30 seconds',
    req: withContainer({ restartPolicy: { enabled: true, restartAttemptPeriod: 30 } }),
    message: "Invalid 'restartPolicy.restartAttemptPeriod' setting for container 'web'. It must be an integer between 60 and 1800 seconds.",
  },
  {
    name: 'a GPU requirement that is not a positive whole number',
    req: withContainer({ resourceRequirements: [{ type: 'GPU', value: '0' }] }),
    message: "Invalid GPU resource requirement '0' for container 'web'. It must be a positive whole number.",
  },
  {
    name: 'a negative stopTimeout',
    req: withContainer({ stopTimeout: -5 }),
    message: /^Invalid 'stopTimeout' setting for container 'web'/,
  },
];

for (const c of cases) {
  test(`rejects ${c.name}`, () => rejects(c.req, c.message));
}

test('awslogs takes Docker’s options, ECS’s stream prefix and Go’s booleans', () => {
  const options = { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': 'web', 'awslogs-create-group': 'True', 'awslogs-multiline-pattern': '^INFO', mode: 'non-blocking', 'max-buffer-size': '4m' };
  const { taskDefinition } = validateAndNormalizeTaskDefinition(withContainer({ logConfiguration: { logDriver: 'awslogs', options } }));
  assert.deepEqual(taskDefinition.containerDefinitions[0]!.logConfiguration?.options, options);
});

test('fills the defaults ECS echoes for a minimal container', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(ec2Request());
  assert.deepEqual(taskDefinition.containerDefinitions[0], {
    name: 'web',
    image: 'nginx',
    memory: 128,
    cpu: 0,
    essential: true,
    portMappings: [],
    environment: [],
    environmentFiles: [],
    mountPoints: [],
    volumesFrom: [],
    systemControls: [],
  });
  assert.deepEqual(taskDefinition.volumes, []);
  assert.deepEqual(taskDefinition.placementConstraints, []);
});

test('keeps essential false when the request says so', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    ec2Request({ containerDefinitions: [container(), container({ name: 'sidecar', essential: false })] }),
  );
  assert.equal(taskDefinition.containerDefinitions[1]!.essential, false);
});

test('drops container members the model does not know', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    ec2Request({ containerDefinitions: [{ ...container(), futureField: 1 } as ContainerDefinition] }),
  );
  assert.equal('futureField' in taskDefinition.containerDefinitions[0]!, false);
});

const portCases: { name: string; mode: NetworkMode; input: ContainerDefinition['portMappings']; expected: unknown }[] = [
  {
    name: 'bridge: an omitted hostPort becomes 0 (dynamic) and protocol tcp',
    mode: 'bridge',
    input: [{ containerPort: 80 }],
    expected: [{ containerPort: 80, hostPort: 0, protocol: 'tcp' }],
  },
  {
    name: 'bridge: a static hostPort is kept',
    mode: 'bridge',
    input: [{ containerPort: 80, hostPort: 8080, protocol: 'udp' }],
    expected: [{ containerPort: 80, hostPort: 8080, protocol: 'udp' }],
  },
  {
    name: 'awsvpc: hostPort is set equal to containerPort',
    mode: 'awsvpc',
    input: [{ containerPort: 80 }],
    expected: [{ containerPort: 80, hostPort: 80, protocol: 'tcp' }],
  },
  {
    name: 'host: hostPort is set equal to containerPort',
    mode: 'host',
    input: [{ containerPort: 5432, hostPort: 5432 }],
    expected: [{ containerPort: 5432, hostPort: 5432, protocol: 'tcp' }],
  },
  {
    name: 'awsvpc: a containerPortRange takes no hostPort',
    mode: 'awsvpc',
    input: [{ containerPortRange: '8000-8010', protocol: 'udp' }],
    expected: [{ containerPortRange: '8000-8010', protocol: 'udp' }],
  },
  {
    name: 'bridge: ranges of different protocols may overlap',
    mode: 'bridge',
    input: [{ containerPortRange: '8000-8010' }, { containerPortRange: '8000-8010', protocol: 'udp' }],
    expected: [
      { containerPortRange: '8000-8010', protocol: 'tcp' },
      { containerPortRange: '8000-8010', protocol: 'udp' },
    ],
  },
];

for (const p of portCases) {
  test(`port mappings, ${p.name}`, () => {
    const { taskDefinition } = validateAndNormalizeTaskDefinition(withContainer({ portMappings: p.input }, p.mode));
    assert.deepEqual(taskDefinition.containerDefinitions[0]!.portMappings, p.expected);
  });
}

test('fills health-check defaults (interval 30, timeout 5, retries 3) and keeps a given start period', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    withContainer({ healthCheck: { command: ['CMD-SHELL', 'curl -f http://localhost/'], startPeriod: 10 } }),
  );
  assert.deepEqual(taskDefinition.containerDefinitions[0]!.healthCheck, {
    command: ['CMD-SHELL', 'curl -f http://localhost/'],
    interval: 30,
    timeout: 5,
    retries: 3,
    startPeriod: 10,
  });
});

test('keeps health-check values the request gives', () => {
  const hc = { command: ['CMD', 'true'], interval: 5, timeout: 2, retries: 10 };
  const { taskDefinition } = validateAndNormalizeTaskDefinition(withContainer({ healthCheck: hc }));
  assert.deepEqual(taskDefinition.containerDefinitions[0]!.healthCheck, hc);
});

test('accepts links in bridge mode and hostname outside awsvpc', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    ec2Request({ containerDefinitions: [container({ links: ['db:database'], hostname: 'web' }), container({ name: 'db' })] }),
  );
  assert.deepEqual(taskDefinition.containerDefinitions[0]!.links, ['db:database']);
});

test('dnsServers and dnsSearchDomains are refused in awsvpc mode (the task resolves through its network), allowed in bridge', () => {
  for (const field of ['dnsServers', 'dnsSearchDomains'] as const) {
    const value = field === 'dnsServers' ? ['10.0.0.2'] : ['corp.example'];
    assert.throws(
      () => normalizeContainer({ name: 'web', image: 'busybox', memory: 64, [field]: value }, { networkMode: 'awsvpc' }),
      (e: unknown) => e instanceof WharfError && e.code === 'ClientException' && e.message === `${field} is not supported on container when networkMode=awsvpc (container 'web').`,
    );
    assert.deepEqual(normalizeContainer({ name: 'web', image: 'busybox', memory: 64, [field]: value }, { networkMode: 'bridge' })[field], value);
  }
});

test("tmpfs mount options are ECS's list (mode=1777 and the like as name=value); others are refused at registration", () => {
  const tmpfs = (mountOptions: string[]) => normalizeContainer({ name: 'web', image: 'busybox', memory: 64, linuxParameters: { tmpfs: [{ containerPath: '/scratch', size: 16, mountOptions }] } }, { networkMode: 'bridge' });
  assert.deepEqual(tmpfs(['noexec', 'nosuid', 'mode=1777', 'uid=1000']).linuxParameters!.tmpfs![0]!.mountOptions, ['noexec', 'nosuid', 'mode=1777', 'uid=1000']);
  for (const bad of ['bogus', 'noexec=1', 'size=64m']) {
    assert.throws(() => tmpfs([bad]), (e: unknown) => e instanceof WharfError && e.code === 'ClientException' && e.message.startsWith(`Invalid 'linuxParameters.tmpfs' mount option '${bad}' for container 'web'. Valid values: defaults | ro | rw`), bad);
  }
});
