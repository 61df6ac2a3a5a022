/**
 * Rules that look at one container definition on its own (plus the task's network mode), and
 * the defaults ECS fills in when it echoes a container back: essential true, cpu 0, protocol tcp,
 * health-check interval/timeout/retries, and empty lists for the common list members.
 * Rules that relate containers to each other (names, dependsOn, links, sums) live in
 * task-definition.ts and task-definition-graph.ts.
 */
import type {
  ContainerDefinition,
  HealthCheck,
  LinuxParameters,
  NetworkMode,
  PortMapping,
} from './shapes/ecs';
import {
  ContainerConditionValues,
  DeviceCgroupPermissionValues,
  FirelensConfigurationTypeValues,
  LogDriverValues,
  UlimitNameValues,
} from './shapes/ecs';
import {
  NAME_RE,
  checkOptionalInt,
  clientFail,
  isInt,
  isNonEmptyString,
  isObject,
  optionalArray,
  pick,
} from './task-definition-checks';
import { awslogsOptionsProblem } from './awslogs-options';

/** Docker 20.10+ refuses containers with less memory than this (MiB). */
export const MIN_CONTAINER_MEMORY_MIB = 6;
/** Upper bound for cpu units anywhere in a task definition (192 vCPU). */
export const MAX_CPU_UNITS = 196_608;

export const HEALTH_CHECK_DEFAULTS = { interval: 30, timeout: 5, retries: 3 } as const;

/** Kernel capabilities ECS accepts in linuxParameters.capabilities. */
export const LINUX_CAPABILITIES: readonly string[] = [
  'ALL', 'AUDIT_CONTROL', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'CHOWN', 'DAC_OVERRIDE',
  'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE',
  'LINUX_IMMUTABLE', 'MAC_ADMIN', 'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE',
  'NET_BROADCAST', 'NET_RAW', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_ADMIN', 'SYS_BOOT',
  'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT', 'SYS_PTRACE', 'SYS_RAWIO', 'SYS_RESOURCE',
  'SYS_TIME', 'SYS_TTY_CONFIG', 'SYSLOG', 'WAKE_ALARM',
];

/** Every ContainerDefinition member of the model, in model order (unknown members are dropped). */
const CONTAINER_KEYS = [
  'name', 'image', 'repositoryCredentials', 'cpu', 'memory', 'memoryReservation', 'links',
  'portMappings', 'essential', 'restartPolicy', 'entryPoint', 'command', 'environment',
  'environmentFiles', 'mountPoints', 'volumesFrom', 'linuxParameters', 'secrets', 'dependsOn',
  'startTimeout', 'stopTimeout', 'versionConsistency', 'hostname', 'user', 'workingDirectory',
  'disableNetworking', 'privileged', 'readonlyRootFilesystem', 'dnsServers', 'dnsSearchDomains',
  'extraHosts', 'dockerSecurityOptions', 'interactive', 'pseudoTerminal', 'dockerLabels', 'ulimits',
  'logConfiguration', 'healthCheck', 'systemControls', 'resourceRequirements',
  'firelensConfiguration', 'credentialSpecs',
] as const;

const IMAGE_REPO_RE = /^[A-Za-z0-9_\-:./#]+$/;
const IMAGE_DIGEST_RE = /^sha256:[A-Fa-f0-9]{64}$/;
const PORT_RANGE_RE = /^(\d+)-(\d+)$/;
const PORT_NAME_RE = /^[a-z0-9_][a-z0-9_-]{0,63}$/;
const SECURITY_OPTION_RE = /^(no-new-privileges|apparmor:.+|label:.+|credentialspec:.+)$/;
const MAX_PORT_RANGES = 100;

export interface ContainerContext {
  /** The task's effective network mode (bridge when the request omits it). */
  networkMode: NetworkMode;
  /** It requires FARGATE, whose own rules (task-definition-fargate.ts) say what it refuses. */
  fargate?: boolean;
}

const TMPFS_VALUED_OPTIONS = ['mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol'];
/** The tmpfs mount options ECS accepts (API reference, Tmpfs). */
const TMPFS_MOUNT_OPTIONS = [
  'defaults', 'ro', 'rw', 'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'sync', 'async', 'dirsync', 'remount', 'mand', 'nomand',
  'atime', 'noatime', 'diratime', 'nodiratime', 'bind', 'rbind', 'unbindable', 'runbindable', 'private', 'rprivate', 'shared', 'rshared',
  'slave', 'rslave', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', ...TMPFS_VALUED_OPTIONS,
];

/** A port span [first, last] with its protocol, used to find overlapping mappings. */
interface PortSpan {
  first: number;
  last: number;
  protocol: string;
}

/** Validate one container and return it with ECS's defaults filled in. */
export function normalizeContainer(input: ContainerDefinition, ctx: ContainerContext): ContainerDefinition {
  if (!isObject(input)) clientFail('Container.name should not be null or empty.');
  const c = pick(input, CONTAINER_KEYS);
  const name = c.name;
  if (!isNonEmptyString(name)) clientFail('Container.name should not be null or empty.');
  if (!NAME_RE.test(name)) {
    clientFail(
      `Invalid container name '${name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.`,
    );
  }
  const where = `container '${name}'`;
  checkImage(c.image, name);

  checkOptionalInt(c.cpu, 0, MAX_CPU_UNITS, 'cpu', where);
  for (const field of ['memory', 'memoryReservation'] as const) {
    const v = c[field];
    if (v === undefined) continue;
    if (!isInt(v)) clientFail(`Invalid '${field}' setting for ${where}. It must be an integer (MiB).`);
    if (v < MIN_CONTAINER_MEMORY_MIB) {
      clientFail(`Invalid '${field}' setting for ${where}. The minimum is ${MIN_CONTAINER_MEMORY_MIB} MiB.`);
    }
  }
  if (c.memory !== undefined && c.memoryReservation !== undefined && c.memory <= c.memoryReservation) {
    clientFail(`Invalid setting for ${where}. 'memory' must be greater than 'memoryReservation'.`);
  }
  if (c.essential !== undefined && typeof c.essential !== 'boolean') {
    clientFail(`Invalid 'essential' setting for ${where}. It must be true or false.`);
  }

  const portMappings = normalizePortMappings(optionalArray(c.portMappings, 'portMappings'), where, ctx);
  checkNetworkingOptions(c, where, ctx);

  const environmentFiles = optionalArray(c.environmentFiles, 'environmentFiles');
  if (environmentFiles.length > 10) {
    clientFail(`Invalid 'environmentFiles' setting for ${where}. At most 10 files are allowed.`);
  }
  for (const f of environmentFiles) {
    if (!isObject(f) || !isNonEmptyString(f.value) || f.type !== 's3') {
      clientFail(`Invalid 'environmentFiles' setting for ${where}. Each file needs a 'value' and type 's3'.`);
    }
  }
  const mountPoints = optionalArray(c.mountPoints, 'mountPoints');
  for (const m of mountPoints) {
    if (!isObject(m) || !isNonEmptyString(m.sourceVolume) || !isNonEmptyString(m.containerPath)) {
      clientFail(`Invalid 'mountPoints' setting for ${where}. 'sourceVolume' and 'containerPath' are required.`);
    }
  }
  const volumesFrom = optionalArray(c.volumesFrom, 'volumesFrom');
  for (const v of volumesFrom) {
    if (!isObject(v) || !isNonEmptyString(v.sourceContainer)) {
      clientFail(`Invalid 'volumesFrom' setting for ${where}. 'sourceContainer' is required.`);
    }
  }
  for (const d of optionalArray(c.dependsOn, 'dependsOn')) {
    if (!isObject(d) || !isNonEmptyString(d.containerName)) {
      clientFail(`Invalid 'dependsOn' setting for ${where}. 'containerName' is required.`);
    }
    if (!ContainerConditionValues.includes(d.condition)) {
      clientFail(
        `Invalid 'dependsOn' condition '${String(d.condition)}' for ${where}. Valid values: ${ContainerConditionValues.join(', ')}.`,
      );
    }
  }
  for (const s of optionalArray(c.secrets, 'secrets')) {
    if (!isObject(s) || !isNonEmptyString(s.name) || !isNonEmptyString(s.valueFrom)) {
      clientFail(`Invalid 'secrets' setting for ${where}. Each secret needs a 'name' and a 'valueFrom'.`);
    }
  }
  const systemControls = optionalArray(c.systemControls, 'systemControls');
  for (const s of systemControls) {
    if (!isObject(s) || !isNonEmptyString(s.namespace) || typeof s.value !== 'string') {
      clientFail(`Invalid 'systemControls' setting for ${where}. Each entry needs a 'namespace' and a 'value'.`);
    }
  }
  for (const o of optionalArray(c.dockerSecurityOptions, 'dockerSecurityOptions')) {
    if (typeof o !== 'string' || !SECURITY_OPTION_RE.test(o)) {
      clientFail(
        `Invalid 'dockerSecurityOptions' value '${String(o)}' for ${where}. Use no-new-privileges, apparmor:PROFILE, label:VALUE or credentialspec:VALUE.`,
      );
    }
  }
  if (optionalArray(c.credentialSpecs, 'credentialSpecs').length > 1) {
    clientFail(`Invalid 'credentialSpecs' setting for ${where}. At most one credential spec is allowed.`);
  }
  if (c.versionConsistency !== undefined && !['enabled', 'disabled'].includes(c.versionConsistency)) {
    clientFail(`Invalid 'versionConsistency' setting for ${where}. Valid values: enabled, disabled.`);
  }
  if (c.repositoryCredentials !== undefined && !isNonEmptyString(c.repositoryCredentials?.credentialsParameter)) {
    clientFail(`Invalid 'repositoryCredentials' setting for ${where}. 'credentialsParameter' is required.`);
  }
  if (c.firelensConfiguration !== undefined && !FirelensConfigurationTypeValues.includes(c.firelensConfiguration.type)) {
    clientFail(`Invalid 'firelensConfiguration.type' setting for ${where}. Valid values: fluentd, fluentbit.`);
  }
  checkOptionalInt(c.startTimeout, 0, Number.MAX_SAFE_INTEGER, 'startTimeout', where, 'seconds');
  checkOptionalInt(c.stopTimeout, 0, Number.MAX_SAFE_INTEGER, 'stopTimeout', where, 'seconds');
  checkRestartPolicy(c, where);
  checkResourceRequirements(c, where);
  checkUlimits(c, where);
  checkLogConfiguration(c, where);
  if (c.linuxParameters !== undefined) checkLinuxParameters(c.linuxParameters, where);

  const out: ContainerDefinition = {
    ...c,
    cpu: c.cpu ?? 0,
    portMappings,
    essential: c.essential ?? true,
    environment: optionalArray(c.environment, 'environment'),
    environmentFiles,
    mountPoints,
    volumesFrom,
    systemControls,
  };
  if (c.healthCheck !== undefined) out.healthCheck = normalizeHealthCheck(c.healthCheck, where);
  return out;
}

function checkImage(image: unknown, name: string): void {
  if (!isNonEmptyString(image)) clientFail('Container.image should not be null or empty.');
  const at = image.indexOf('@');
  const repo = at < 0 ? image : image.slice(0, at);
  const digest = at < 0 ? undefined : image.slice(at + 1);
  if (repo.length === 0 || repo.length > 255 || !IMAGE_REPO_RE.test(repo)) {
    clientFail(
      `Invalid image '${image}' for container '${name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, underscores, colons, periods, forward slashes, and number signs are allowed before an optional '@digest'.`,
    );
  }
  if (digest !== undefined && !IMAGE_DIGEST_RE.test(digest)) {
    clientFail(
      `Invalid image digest in '${image}' for container '${name}'. The digest must be 'sha256:' followed by 64 hexadecimal characters.`,
    );
  }
}

/**
 * Port mappings per network mode (ECS-REFERENCE 3.5 rule 5):
 *   none           no mappings at all
 *   host, awsvpc   hostPort omitted or equal to containerPort; echoed back equal
 *   bridge         hostPort omitted or 0 = dynamic (echoed as 0), otherwise a static host port
 * containerPortRange (bridge/awsvpc only) replaces containerPort and takes no hostPort.
 */
function normalizePortMappings(list: PortMapping[], where: string, ctx: ContainerContext): PortMapping[] {
  const mode = ctx.networkMode;
  if (list.length > 0 && mode === 'none') {
    clientFail(`Port mappings are not supported when networkMode=none (${where}).`);
  }
  const spans: PortSpan[] = [];
  let ranges = 0;
  const out = list.map((input) => {
    if (!isObject(input)) clientFail(`Invalid 'portMappings' setting for ${where}.`);
    const pm: PortMapping = { ...input };
    const protocol = pm.protocol ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') {
      clientFail(`Invalid 'protocol' setting '${String(protocol)}' for ${where}. Valid values are tcp and udp.`);
    }
    pm.protocol = protocol;
    if (pm.name !== undefined && (typeof pm.name !== 'string' || !PORT_NAME_RE.test(pm.name))) {
      clientFail(
        `Invalid port mapping name '${String(pm.name)}' for ${where}. Up to 64 lowercase letters, numbers, underscores and hyphens are allowed, not starting with a hyphen.`,
      );
    }
    if (pm.appProtocol !== undefined && !['http', 'http2', 'grpc'].includes(pm.appProtocol)) {
      clientFail(`Invalid 'appProtocol' setting for ${where}. Valid values: http, http2, grpc.`);
    }
    if (pm.containerPortRange !== undefined) {
      ranges++;
      spans.push(checkPortRange(pm, where, mode));
      return pm;
    }
    if (!isInt(pm.containerPort) || pm.containerPort < 1 || pm.containerPort > 65535) {
      clientFail(`Invalid 'containerPort' setting for ${where}.`);
    }
    if (pm.hostPort !== undefined && (!isInt(pm.hostPort) || pm.hostPort < 0 || pm.hostPort > 65535)) {
      clientFail(`Invalid 'hostPort' setting for ${where}.`);
    }
    if (mode === 'awsvpc' || mode === 'host') {
      if (pm.hostPort !== undefined && pm.hostPort !== pm.containerPort) {
        clientFail(`When networkMode=${mode}, the host ports and container ports in port mappings must match.`);
      }
      pm.hostPort = pm.containerPort;
    } else {
      pm.hostPort = pm.hostPort ?? 0;
    }
    spans.push({ first: pm.containerPort, last: pm.containerPort, protocol });
    return pm;
  });
  if (ranges > MAX_PORT_RANGES) {
    clientFail(`Invalid 'portMappings' setting for ${where}. At most ${MAX_PORT_RANGES} container port ranges are allowed.`);
  }
  if (ranges > 0) checkNoOverlap(spans, where);
  return out;
}

function checkPortRange(pm: PortMapping, where: string, mode: NetworkMode): PortSpan {
  if (mode !== 'bridge' && mode !== 'awsvpc') {
    clientFail(`containerPortRange is only supported when networkMode is bridge or awsvpc (${where}).`);
  }
  if (pm.containerPort !== undefined) {
    clientFail(`Invalid port mapping for ${where}. Specify either 'containerPort' or 'containerPortRange', not both.`);
  }
  if (pm.hostPort !== undefined) {
    clientFail(`Invalid port mapping for ${where}. 'hostPort' cannot be set together with 'containerPortRange'.`);
  }
  const m = typeof pm.containerPortRange === 'string' ? PORT_RANGE_RE.exec(pm.containerPortRange) : null;
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!m || first < 1 || last > 65535 || first >= last) {
    clientFail(
      `Invalid 'containerPortRange' setting '${String(pm.containerPortRange)}' for ${where}. Use 'first-last' with 1 <= first < last <= 65535.`,
    );
  }
  return { first, last, protocol: pm.protocol ?? 'tcp' };
}

function checkNoOverlap(spans: PortSpan[], where: string): void {
  const sorted = [...spans].sort((a, b) => a.protocol.localeCompare(b.protocol) || a.first - b.first);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (prev.protocol === cur.protocol && cur.first <= prev.last) {
      clientFail(
        `Invalid 'portMappings' setting for ${where}. Container ports ${prev.first}-${prev.last} and ${cur.first}-${cur.last} (${cur.protocol}) overlap.`,
      );
    }
  }
}

/** hostname, extraHosts, links and DNS options depend on the task's network mode. */
function checkNetworkingOptions(c: ContainerDefinition, where: string, ctx: ContainerContext): void {
  const mode = ctx.networkMode;
  if (c.hostname !== undefined && mode === 'awsvpc') {
    clientFail(`hostname is not supported on container when networkMode=awsvpc (${where}).`);
  }
  const extraHosts = optionalArray(c.extraHosts, 'extraHosts');
  if (extraHosts.length > 0 && mode === 'awsvpc') {
    clientFail(`extraHosts is not supported on container when networkMode=awsvpc (${where}).`);
  }
  // The task's resolvers are its network's (the pause container's), as ECS's docs say of both:
  // "not supported for ... tasks that use the awsvpc network mode". Accepting them changed nothing.
  for (const field of ['dnsServers', 'dnsSearchDomains'] as const) {
    if (optionalArray(c[field], field).length > 0 && mode === 'awsvpc' && !ctx.fargate) clientFail(`${field} is not supported on container when networkMode=awsvpc (${where}).`);
  }
  for (const h of extraHosts) {
    if (!isObject(h) || !isNonEmptyString(h.hostname) || !isNonEmptyString(h.ipAddress)) {
      clientFail(`Invalid 'extraHosts' setting for ${where}. Each entry needs a 'hostname' and an 'ipAddress'.`);
    }
  }
  const links = optionalArray(c.links, 'links');
  if (links.length > 0 && mode !== 'bridge') {
    clientFail(`Links are not supported when networkMode=${mode}.`);
  }
  for (const l of links) {
    if (!isNonEmptyString(l)) clientFail(`Invalid 'links' setting for ${where}. Use 'name' or 'name:alias'.`);
  }
}

function normalizeHealthCheck(hc: HealthCheck, where: string): HealthCheck {
  if (!isObject(hc) || !Array.isArray(hc.command) || hc.command.length === 0 || !hc.command.every((x) => typeof x === 'string')) {
    clientFail(`Invalid 'healthCheck.command' setting for ${where}. It must be a non-empty list of strings.`);
  }
  checkOptionalInt(hc.interval, 5, 300, 'healthCheck.interval', where, 'seconds');
  checkOptionalInt(hc.timeout, 2, 60, 'healthCheck.timeout', where, 'seconds');
  checkOptionalInt(hc.retries, 1, 10, 'healthCheck.retries', where);
  checkOptionalInt(hc.startPeriod, 0, 300, 'healthCheck.startPeriod', where, 'seconds');
  const out: HealthCheck = {
    command: hc.command,
    interval: hc.interval ?? HEALTH_CHECK_DEFAULTS.interval,
    timeout: hc.timeout ?? HEALTH_CHECK_DEFAULTS.timeout,
    retries: hc.retries ?? HEALTH_CHECK_DEFAULTS.retries,
  };
  if (hc.startPeriod !== undefined) out.startPeriod = hc.startPeriod;
  return out;
}

function checkUlimits(c: ContainerDefinition, where: string): void {
  const seen = new Set<string>();
  for (const u of optionalArray(c.ulimits, 'ulimits')) {
    if (!isObject(u) || !UlimitNameValues.includes(u.name)) {
      clientFail(
        `Invalid ulimit name '${String(isObject(u) ? u.name : u)}' for ${where}. Valid names: ${UlimitNameValues.join(', ')}.`,
      );
    }
    if (seen.has(u.name)) clientFail(`Duplicate ulimit '${u.name}' for ${where}.`);
    seen.add(u.name);
    if (!isInt(u.softLimit) || !isInt(u.hardLimit) || u.softLimit < 0 || u.hardLimit < 0) {
      clientFail(`Invalid ulimit '${u.name}' for ${where}. 'softLimit' and 'hardLimit' must be non-negative integers.`);
    }
    if (u.softLimit > u.hardLimit) {
      clientFail(`Invalid ulimit '${u.name}' for ${where}. 'softLimit' cannot be greater than 'hardLimit'.`);
    }
  }
}

function checkLinuxParameters(lp: LinuxParameters, where: string): void {
  if (!isObject(lp)) clientFail(`Invalid 'linuxParameters' setting for ${where}.`);
  for (const list of ['add', 'drop'] as const) {
    for (const cap of optionalArray(lp.capabilities?.[list], `linuxParameters.capabilities.${list}`)) {
      if (!LINUX_CAPABILITIES.includes(cap)) {
        clientFail(`Invalid capability '${String(cap)}' in 'linuxParameters.capabilities.${list}' for ${where}.`);
      }
    }
  }
  for (const d of optionalArray(lp.devices, 'linuxParameters.devices')) {
    if (!isObject(d) || !isNonEmptyString(d.hostPath)) {
      clientFail(`Invalid 'linuxParameters.devices' setting for ${where}. 'hostPath' is required.`);
    }
    for (const p of optionalArray(d.permissions, 'linuxParameters.devices.permissions')) {
      if (!DeviceCgroupPermissionValues.includes(p)) {
        clientFail(`Invalid device permission '${String(p)}' for ${where}. Valid values: read, write, mknod.`);
      }
    }
  }
  checkOptionalInt(lp.sharedMemorySize, 1, Number.MAX_SAFE_INTEGER, 'linuxParameters.sharedMemorySize', where, 'MiB');
  for (const t of optionalArray(lp.tmpfs, 'linuxParameters.tmpfs')) {
    if (!isObject(t) || !isNonEmptyString(t.containerPath) || !isInt(t.size) || t.size < 1) {
      clientFail(`Invalid 'linuxParameters.tmpfs' setting for ${where}. 'containerPath' and a positive 'size' (MiB) are required.`);
    }
    for (const o of optionalArray(t.mountOptions, 'linuxParameters.tmpfs.mountOptions')) {
      // ECS's list (Tmpfs.mountOptions); mode, uid, gid, nr_inodes, nr_blocks and mpol take `=value`.
      const name = typeof o === 'string' ? o.split('=')[0]! : '';
      if (!TMPFS_MOUNT_OPTIONS.includes(name) || (typeof o === 'string' && o.includes('=') && !TMPFS_VALUED_OPTIONS.includes(name))) {
        clientFail(`Invalid 'linuxParameters.tmpfs' mount option '${String(o)}' for ${where}. Valid values: ${TMPFS_MOUNT_OPTIONS.join(' | ')} (the last six as name=value).`);
      }
    }
  }
  checkOptionalInt(lp.maxSwap, 0, Number.MAX_SAFE_INTEGER, 'linuxParameters.maxSwap', where, 'MiB');
  checkOptionalInt(lp.swappiness, 0, 100, 'linuxParameters.swappiness', where);
  if (lp.initProcessEnabled !== undefined && typeof lp.initProcessEnabled !== 'boolean') {
    clientFail(`Invalid 'linuxParameters.initProcessEnabled' setting for ${where}. It must be true or false.`);
  }
}

function checkLogConfiguration(c: ContainerDefinition, where: string): void {
  const lc = c.logConfiguration;
  if (lc === undefined) return;
  if (!isObject(lc) || !LogDriverValues.includes(lc.logDriver)) {
    clientFail(
      `Invalid 'logConfiguration.logDriver' setting for ${where}. Valid values: ${LogDriverValues.join(', ')}.`,
    );
  }
  if (lc.logDriver === 'awslogs') {
    const missing = ['awslogs-region', 'awslogs-group'].filter((k) => !isNonEmptyString(lc.options?.[k]));
    if (missing.length > 0) clientFail(`Log driver awslogs requires options: ${missing.join(', ')}`);
    checkAwslogsOptions(lc.options ?? {}, where);
  }
  for (const s of optionalArray(lc.secretOptions, 'logConfiguration.secretOptions')) {
    if (!isObject(s) || !isNonEmptyString(s.name) || !isNonEmptyString(s.valueFrom)) {
      clientFail(`Invalid 'logConfiguration.secretOptions' setting for ${where}. Each entry needs a 'name' and a 'valueFrom'.`);
    }
  }
}

function checkAwslogsOptions(o: Record<string, string>, where: string): void {
  const problem = awslogsOptionsProblem(o);
  if (problem !== undefined) clientFail(`Invalid 'logConfiguration.options' setting for ${where}: ${problem}`);
}

function checkRestartPolicy(c: ContainerDefinition, where: string): void {
  const rp = c.restartPolicy;
  if (rp === undefined) return;
  if (!isObject(rp) || typeof rp.enabled !== 'boolean') {
    clientFail(`Invalid 'restartPolicy' setting for ${where}. 'enabled' is required.`);
  }
  const codes = optionalArray(rp.ignoredExitCodes, 'restartPolicy.ignoredExitCodes');
  if (codes.length > 50 || !codes.every(isInt)) {
    clientFail(`Invalid 'restartPolicy.ignoredExitCodes' setting for ${where}. At most 50 integer exit codes are allowed.`);
  }
  checkOptionalInt(rp.restartAttemptPeriod, 60, 1800, 'restartPolicy.restartAttemptPeriod', where, 'seconds');
}

function checkResourceRequirements(c: ContainerDefinition, where: string): void {
  const seen = new Set<string>();
  for (const r of optionalArray(c.resourceRequirements, 'resourceRequirements')) {
    if (!isObject(r) || (r.type !== 'GPU' && r.type !== 'InferenceAccelerator')) {
      clientFail(`Invalid 'resourceRequirements' type for ${where}. Valid values: GPU, InferenceAccelerator.`);
    }
    if (seen.has(r.type)) clientFail(`Duplicate '${r.type}' resource requirement for ${where}.`);
    seen.add(r.type);
    if (r.type === 'GPU' && !(isNonEmptyString(r.value) && /^[1-9]\d*$/.test(r.value))) {
      clientFail(`Invalid GPU resource requirement '${String(r.value)}' for ${where}. It must be a positive whole number.`);
    }
    if (r.type === 'InferenceAccelerator' && !isNonEmptyString(r.value)) {
      clientFail(`Invalid InferenceAccelerator resource requirement for ${where}. 'value' must name a device.`);
    }
  }
}

/** Number of GPUs a container asks for through resourceRequirements. */
export function containerGpuCount(c: Pick<ContainerDefinition, 'resourceRequirements'>): number {
  const gpu = (c.resourceRequirements ?? []).find((r) => r.type === 'GPU');
  return gpu ? Number(gpu.value) : 0;
}
