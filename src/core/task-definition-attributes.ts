/**
 * The two things ECS computes about a task definition at registration:
 *
 * - `requiresAttributes`: container-instance attributes an EC2/EXTERNAL host must advertise to
 *   run the task. The scheduler's attribute filter drops hosts that lack any of them, so a task
 *   that needs e.g. health checks or the awslogs driver never lands on an agent that can't do it.
 *   The names and the Docker API versions follow the ECS developer guide and real
 *   DescribeTaskDefinition output; where the guide is silent we leave the attribute out rather
 *   than invent one (see the report of the change that added this file).
 * - `compatibilities`: the launch types the definition is valid for. EC2 unless something only
 *   Fargate supports is used; FARGATE whenever every Fargate rule holds (even if not requested);
 *   EXTERNAL when requested; MANAGED_INSTANCES when requested or the network mode is awsvpc/host
 *   (as current ECS reports it).
 */
import type { Attribute, Compatibility, ContainerDefinition, Volume } from './shapes/ecs';
import { fargateViolation, type FargateCandidate } from './task-definition-fargate';
import { CAPABILITIES_ADD_ATTRIBUTE, HOST_NETWORK_ATTRIBUTE, PRIVILEGED_ATTRIBUTE } from './host-policy-attributes';

const DOCKER = (v: string) => `com.amazonaws.ecs.capability.docker-remote-api.${v}`;
const LOGGING = (d: string) => `com.amazonaws.ecs.capability.logging-driver.${d}`;

/** Minimum Docker remote API per log driver, as the ECS agent advertises them. */
const LOG_DRIVER_DOCKER_API: Record<string, string | undefined> = {
  'json-file': '1.18',
  syslog: '1.18',
  journald: '1.19',
  gelf: '1.20',
  fluentd: '1.20',
  awslogs: '1.19',
  splunk: '1.22',
};

const ECR_IMAGE_RE = /^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\//;

export interface AttributeCandidate extends FargateCandidate {
  taskRoleArn?: string;
  executionRoleArn?: string;
  proxyConfiguration?: unknown;
  volumes?: Volume[];
}

export function computeRequiresAttributes(td: AttributeCandidate): Attribute[] {
  const names: string[] = [];
  const add = (n: string) => {
    if (!names.includes(n)) names.push(n);
  };
  const hasExecRole = td.executionRoleArn !== undefined;

  for (const c of td.containerDefinitions) addContainerAttributes(c, hasExecRole, add);

  if (td.taskRoleArn !== undefined) {
    add('com.amazonaws.ecs.capability.task-iam-role');
    if (td.networkMode === 'host') add('com.amazonaws.ecs.capability.task-iam-role-network-host');
  }
  // Wharf's own: a host started with --disallow-host-network does not advertise it.
  if (td.networkMode === 'host') add(HOST_NETWORK_ATTRIBUTE);
  if (td.networkMode === 'awsvpc') {
    add(DOCKER('1.18'));
    add('ecs.capability.task-eni');
  }
  // Observed on every definition with task-level cpu or memory.
  if (td.cpu !== undefined || td.memory !== undefined) add(DOCKER('1.29'));
  if (td.pidMode !== undefined || td.ipcMode !== undefined) add('ecs.capability.pid-ipc-namespace-sharing');
  if (td.proxyConfiguration !== undefined) add('ecs.capability.aws-appmesh');
  for (const v of td.volumes ?? []) {
    if (v.dockerVolumeConfiguration) {
      add(DOCKER('1.25'));
      add(`ecs.capability.docker-plugin.${v.dockerVolumeConfiguration.driver ?? 'local'}`);
    }
    const efs = v.efsVolumeConfiguration;
    if (efs) {
      add('ecs.capability.efs');
      if (efs.transitEncryption === 'ENABLED' || efs.authorizationConfig !== undefined) add('ecs.capability.efsAuth');
    }
  }
  return [...names.map((name) => ({ name })), ...runtimePlatformAttributes(td)];
}

/**
 * runtimePlatform as attributes with values, so the attribute filter keeps the task off hosts of
 * another CPU architecture or OS (failure ATTRIBUTE), Fargate pool hosts included: the values are
 * the ones the agent advertises (`ecs.cpu-architecture` x86_64/arm64, `ecs.os-type`
 * linux/windows). Nothing is required when runtimePlatform (or one of its members) is left out.
 */
function runtimePlatformAttributes(td: AttributeCandidate): Attribute[] {
  const out: Attribute[] = [];
  const arch = td.runtimePlatform?.cpuArchitecture;
  if (arch === 'ARM64') out.push({ name: 'ecs.cpu-architecture', value: 'arm64' });
  else if (arch === 'X86_64') out.push({ name: 'ecs.cpu-architecture', value: 'x86_64' });
  const os = td.runtimePlatform?.operatingSystemFamily;
  if (os === 'LINUX') out.push({ name: 'ecs.os-type', value: 'linux' });
  else if (os !== undefined && os.startsWith('WINDOWS_')) out.push({ name: 'ecs.os-type', value: 'windows' });
  return out;
}

function addContainerAttributes(c: ContainerDefinition, hasExecRole: boolean, add: (n: string) => void): void {
  const driver = c.logConfiguration?.logDriver;
  if (driver !== undefined) {
    add(LOGGING(driver));
    const api = LOG_DRIVER_DOCKER_API[driver];
    if (api) add(DOCKER(api));
    if (driver === 'awslogs' && hasExecRole) add('ecs.capability.execution-role-awslogs');
    for (const s of c.logConfiguration?.secretOptions ?? []) {
      add(isSecretsManager(s.valueFrom) ? 'ecs.capability.secrets.asm.bootstrap.log-driver' : 'ecs.capability.secrets.ssm.bootstrap.log-driver');
    }
  }
  if (c.image !== undefined && ECR_IMAGE_RE.test(c.image)) {
    add('com.amazonaws.ecs.capability.ecr-auth');
    if (hasExecRole) add('ecs.capability.execution-role-ecr-pull');
  }
  if (c.memoryReservation !== undefined) add(DOCKER('1.21'));
  if (Object.keys(c.dockerLabels ?? {}).length > 0 || (c.ulimits ?? []).length > 0) add(DOCKER('1.18'));
  if (c.healthCheck !== undefined) add('ecs.capability.container-health-check');
  if ((c.dependsOn ?? []).length > 0 || c.startTimeout !== undefined || c.stopTimeout !== undefined) {
    add('ecs.capability.container-ordering');
  }
  for (const s of c.secrets ?? []) {
    add(isSecretsManager(s.valueFrom) ? 'ecs.capability.secrets.asm.environment-variables' : 'ecs.capability.secrets.ssm.environment-variables');
  }
  if (c.repositoryCredentials !== undefined) add('com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager');
  if ((c.environmentFiles ?? []).length > 0) add('ecs.capability.env-files.s3');
  if (c.firelensConfiguration !== undefined) add(`ecs.capability.firelens.${c.firelensConfiguration.type}`);
  if (c.privileged === true) add(PRIVILEGED_ATTRIBUTE);
  // Wharf's own: a host started with --disable-capabilities ALL does not advertise it.
  if ((c.linuxParameters?.capabilities?.add ?? []).length > 0) add(CAPABILITIES_ADD_ATTRIBUTE);
  for (const o of c.dockerSecurityOptions ?? []) {
    if (o.startsWith('label:')) add('com.amazonaws.ecs.capability.selinux');
    if (o.startsWith('apparmor:')) add('com.amazonaws.ecs.capability.apparmor');
  }
  if (c.linuxParameters?.initProcessEnabled !== undefined) add(DOCKER('1.25'));
  if ((c.portMappings ?? []).some((p) => p.containerPortRange !== undefined)) add('ecs.capability.container-port-range');
  if (c.restartPolicy?.enabled === true) add('ecs.capability.container-restart-policy');
}

/** Secrets Manager ARNs vs SSM parameters (an ARN of service `ssm`, or a bare parameter name). */
function isSecretsManager(valueFrom: string): boolean {
  return /^arn:aws[a-z-]*:secretsmanager:/.test(valueFrom);
}

export interface CompatibilityCandidate extends FargateCandidate {
  requiresCompatibilities?: Compatibility[];
  ephemeralStorage?: unknown;
}

export function computeCompatibilities(td: CompatibilityCandidate): Compatibility[] {
  const requested = td.requiresCompatibilities ?? [];
  const out: Compatibility[] = [];
  // ephemeralStorage is a Fargate-only setting; nothing else forbids EC2.
  if (td.ephemeralStorage === undefined) out.push('EC2');
  if (fargateViolation(td) === undefined) out.push('FARGATE');
  if (requested.includes('EXTERNAL')) out.push('EXTERNAL');
  if (requested.includes('MANAGED_INSTANCES') || td.networkMode === 'awsvpc' || td.networkMode === 'host') {
    out.push('MANAGED_INSTANCES');
  }
  return out;
}
