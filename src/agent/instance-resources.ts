/**
 * What the agent registers: total resources (ECS-REFERENCE 7.1) and attributes (5.5, 9.2),
 * detected from the engine and overridable by configuration.
 */
import { SANDBOX_ATTRIBUTE } from '../core/fargate-pool';
import type { Attribute, Resource } from '../core/shapes/ecs';
import type { EngineInfo } from './runtime/container-runtime';
import { hostPolicyAttributes, type HostPolicy } from './host-policy';

export const DEFAULT_RESERVED_PORTS = [22, 2375, 2376, 51678, 51679];

export interface InstanceConfig {
  region: string;
  availabilityZone?: string;
  instanceType?: string;
  /** Custom attributes (ECS_INSTANCE_ATTRIBUTES). */
  attributes?: Record<string, string>;
  /** Replace the detected totals (e.g. to offer only part of a host). */
  resources?: { cpu?: number; memory?: number };
  /** MiB kept back for the host and the agent (ECS_RESERVED_MEMORY). */
  reservedMemoryMiB?: number;
  reservedPorts?: number[];
  reservedUdpPorts?: number[];
  /**
   * `runc`: run Fargate tasks under runc even where the engine offers runsc (`--fargate-sandbox
   * runc`, to compare the two on one host). Default: gVisor where available.
   */
  fargateSandbox?: 'gvisor' | 'runc';
  /** What tasks may ask of this host (host-policy.ts): withholds or adds capability attributes. */
  hostPolicy?: HostPolicy;
}

const intResource = (name: string, v: number): Resource => ({ name, type: 'INTEGER', integerValue: v, doubleValue: 0, longValue: 0 });
const setResource = (name: string, v: number[]): Resource => ({ name, type: 'STRINGSET', stringSetValue: v.map(String), doubleValue: 0, longValue: 0, integerValue: 0 });

export function totalResources(info: EngineInfo, cfg: InstanceConfig): Resource[] {
  const cpu = cfg.resources?.cpu ?? info.cpus * 1024;
  const memory = cfg.resources?.memory ?? Math.max(0, Math.floor(info.memoryBytes / 1024 / 1024) - (cfg.reservedMemoryMiB ?? 256));
  const ports = [...new Set([...DEFAULT_RESERVED_PORTS, ...(cfg.reservedPorts ?? [])])].sort((a, b) => a - b);
  return [intResource('CPU', cpu), intResource('MEMORY', memory), setResource('PORTS', ports), setResource('PORTS_UDP', cfg.reservedUdpPorts ?? [])];
}

function architecture(a: string): string {
  return /^(aarch64|arm64)$/i.test(a) ? 'arm64' : /^(x86_64|amd64)$/i.test(a) ? 'x86_64' : a;
}

/** `gvisor` when the engine can run containers under runsc (and runc was not asked for), else `runc`. */
export function sandboxOf(info: EngineInfo, cfg?: Pick<InstanceConfig, 'fargateSandbox'>): 'gvisor' | 'runc' {
  return info.runtimes.includes('runsc') && cfg?.fargateSandbox !== 'runc' ? 'gvisor' : 'runc';
}

export function instanceAttributes(info: EngineInfo, cfg: InstanceConfig): Attribute[] {
  const attrs = new Map<string, string | undefined>();
  attrs.set('ecs.availability-zone', cfg.availabilityZone ?? `${cfg.region}a`);
  attrs.set('ecs.instance-type', cfg.instanceType ?? 'wharf.host');
  attrs.set('ecs.os-type', info.os === 'windows' ? 'windows' : 'linux');
  attrs.set('ecs.os-family', info.os === 'windows' ? 'WINDOWS_SERVER' : 'LINUX');
  attrs.set('ecs.cpu-architecture', architecture(info.architecture));
  // What isolates a Fargate task here: gVisor where the engine offers runsc, else runc.
  attrs.set(SANDBOX_ATTRIBUTE, sandboxOf(info, cfg));
  // Every Docker Remote API version from 1.17 up to what the engine speaks, as the ECS agent does.
  const [, minor = '0'] = info.apiVersion.split('.');
  for (let v = 17; v <= Number(minor); v++) attrs.set(`com.amazonaws.ecs.capability.docker-remote-api.1.${v}`, undefined);
  for (const d of info.loggingDrivers.filter((x) => ['json-file', 'syslog', 'journald', 'gelf', 'fluentd', 'awslogs', 'splunk', 'none'].includes(x))) {
    attrs.set(`com.amazonaws.ecs.capability.logging-driver.${d}`, undefined);
  }
  attrs.set('com.amazonaws.ecs.capability.logging-driver.none', undefined);
  for (const cap of [
    'com.amazonaws.ecs.capability.privileged-container',
    'ecs.capability.task-eni',
    'ecs.capability.container-health-check',
    'ecs.capability.container-ordering',
    'ecs.capability.docker-plugin.local',
    'ecs.capability.task-cpu-mem-limit',
    'ecs.capability.full-sync',
    // The TaskRunner applies containerDefinitions[].restartPolicy (restarts the same container).
    'ecs.capability.container-restart-policy',
    // The control plane resolves repositoryCredentials secrets into each task's registryAuth.
    'com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager',
    // ...and Secrets Manager `secrets` into environment variables (AgentTask.secrets). Not the
    // ssm one: Wharf has no Parameter Store, so a definition reading SSM parameters is refused at
    // placement (ATTRIBUTE) rather than started and failed.
    'ecs.capability.secrets.asm.environment-variables',
    // Advertised although Wharf has no S3: a task with environmentFiles then reaches the agent and
    // fails to start saying exactly that (TaskStarter), where a missing attribute would only
    // answer RunTask with a bare ATTRIBUTE failure.
    'ecs.capability.env-files.s3',
    // The agent ships awslogs output itself (awslogs-shipper.ts), with or without an execution
    // role and whatever logging drivers the engine lists.
    'com.amazonaws.ecs.capability.logging-driver.awslogs',
    'ecs.capability.execution-role-awslogs',
    // pidMode/ipcMode `task` (container-spec.ts namespaceModes) and containerPortRange mappings.
    'ecs.capability.pid-ipc-namespace-sharing',
    'ecs.capability.container-port-range',
    // A task with a taskRoleArn runs, but Wharf has no IAM roles: its containers get no role
    // credentials (no AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; README says so). Without these a
    // definition with a role, as most examples have, could never be placed.
    'com.amazonaws.ecs.capability.task-iam-role',
    'com.amazonaws.ecs.capability.task-iam-role-network-host',
  ]) {
    attrs.set(cap, undefined);
  }
  for (const [k, v] of Object.entries(cfg.attributes ?? {})) attrs.set(k, v);
  // Last, so that a custom attribute cannot advertise what the policy forbids.
  const policy = hostPolicyAttributes(cfg.hostPolicy);
  for (const [k, v] of policy.advertise) attrs.set(k, v);
  for (const k of policy.withhold) attrs.delete(k);
  return [...attrs].map(([name, value]) => (value === undefined ? { name } : { name, value }));
}
