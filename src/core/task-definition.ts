/**
 * RegisterTaskDefinition's rules: turn a request into the task definition ECS would store, or
 * throw the error ECS would answer with. Pure; the caller adds arn, revision, status and
 * registeredAt/By.
 *
 * Order of checks (the first failure wins, as in ECS):
 *   task-level enums and names -> tags -> task cpu/memory strings -> each container on its own
 *   -> container set (count, unique names, essential) -> volumes and references -> memory and
 *   cpu arithmetic -> launch-type rules (FARGATE, EXTERNAL) -> computed fields.
 * ECS answers nearly every failure here with ClientException; tag problems are
 * InvalidParameterException.
 */
import type {
  Attribute,
  Compatibility,
  ContainerDefinition,
  NetworkMode,
  RegisterTaskDefinitionRequest,
  Tag,
  TaskDefinition,
  TaskDefinitionPlacementConstraint,
  Volume,
} from './shapes/ecs';
import {
  CompatibilityValues,
  IpcModeValues,
  NetworkModeValues,
  OSFamilyValues,
  PidModeValues,
  CPUArchitectureValues,
} from './shapes/ecs';
import {
  NAME_RE,
  clientFail,
  invalidParameterFail,
  isNonEmptyString,
  isObject,
  optionalArray,
  taskSizeProblem,
} from './task-definition-checks';
import { MAX_CPU_UNITS, MIN_CONTAINER_MEMORY_MIB, normalizeContainer } from './task-definition-container';
import { checkContainerReferences } from './task-definition-graph';
import { EPHEMERAL_STORAGE_GIB, fargateViolation } from './task-definition-fargate';
import { computeCompatibilities, computeRequiresAttributes } from './task-definition-attributes';
import { parseTaskCpu, parseTaskMemory } from './task-definition-units';

/** What the caller (RegisterTaskDefinition) adds itself. */
type CallerFields =
  | 'taskDefinitionArn'
  | 'revision'
  | 'status'
  | 'registeredAt'
  | 'registeredBy'
  | 'deregisteredAt'
  | 'deleteRequestedAt';

/** A validated task definition, ready for the caller to give an ARN, revision and status. */
export type TaskDefinitionBody = Omit<TaskDefinition, CallerFields> & {
  family: string;
  containerDefinitions: ContainerDefinition[];
  volumes: Volume[];
  placementConstraints: TaskDefinitionPlacementConstraint[];
  compatibilities: Compatibility[];
  requiresAttributes: Attribute[];
};

export interface NormalizedTaskDefinition {
  taskDefinition: TaskDefinitionBody;
  /** The request's tags, validated; stored beside the definition, not inside it. */
  tags: Tag[];
}

export const MAX_CONTAINERS = 10;
export const MIN_TASK_CPU_UNITS = 128;
export const MAX_TAGS = 50;
export const MAX_PLACEMENT_CONSTRAINTS = 10;

const TAG_CHARS_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** The network mode a definition runs with: bridge when the request left it out (Linux default). */
export function effectiveNetworkMode(td: { networkMode?: NetworkMode }): NetworkMode {
  return td.networkMode ?? 'bridge';
}

export function validateAndNormalizeTaskDefinition(req: RegisterTaskDefinitionRequest): NormalizedTaskDefinition {
  if (!isObject(req)) clientFail('Family should not be null or empty.');
  checkFamily(req.family);
  const requested = optionalArray(req.requiresCompatibilities, 'requiresCompatibilities');
  for (const c of requested) {
    if (!CompatibilityValues.includes(c)) {
      clientFail(`Invalid 'requiresCompatibilities' value '${String(c)}'. Valid values: ${CompatibilityValues.join(', ')}.`);
    }
  }
  checkEnum(req.networkMode, NetworkModeValues, 'networkMode');
  checkEnum(req.pidMode, PidModeValues, 'pidMode');
  checkEnum(req.ipcMode, IpcModeValues, 'ipcMode');
  checkRuntimePlatform(req);
  const tags = normalizeTags(req.tags);

  const taskCpu = req.cpu === undefined ? undefined : normalizeTaskCpu(req.cpu);
  const taskMemory = req.memory === undefined ? undefined : normalizeTaskMemory(req.memory);

  const networkMode = effectiveNetworkMode(req);
  const rawContainers = req.containerDefinitions;
  if (!Array.isArray(rawContainers) || rawContainers.length === 0) clientFail('Container list cannot be empty.');
  if (rawContainers.length > MAX_CONTAINERS) clientFail('Too many containers.');
  // A FARGATE definition's launch-type rules name what Fargate refuses; those come later.
  const fargate = Array.isArray(req.requiresCompatibilities) && req.requiresCompatibilities.includes('FARGATE');
  const containers = rawContainers.map((c) => normalizeContainer(c, { networkMode, fargate }));
  checkContainerSet(containers);

  const volumes = normalizeVolumes(req.volumes);
  checkMountPoints(containers, volumes);
  checkContainerReferences(containers);
  checkProxyAndAccelerators(req, containers);
  checkMemoryAndCpu(containers, taskCpu, taskMemory);
  const placementConstraints = normalizePlacementConstraints(req.placementConstraints);

  const body: TaskDefinitionBody = {
    family: req.family,
    containerDefinitions: containers,
    volumes,
    placementConstraints,
    compatibilities: [],
    requiresAttributes: [],
  };
  if (req.taskRoleArn !== undefined) body.taskRoleArn = req.taskRoleArn;
  if (req.executionRoleArn !== undefined) body.executionRoleArn = req.executionRoleArn;
  if (req.networkMode !== undefined) body.networkMode = req.networkMode;
  if (req.requiresCompatibilities !== undefined) body.requiresCompatibilities = [...requested];
  if (taskCpu !== undefined) body.cpu = String(taskCpu);
  if (taskMemory !== undefined) body.memory = String(taskMemory);
  if (req.pidMode !== undefined) body.pidMode = req.pidMode;
  if (req.ipcMode !== undefined) body.ipcMode = req.ipcMode;
  if (req.proxyConfiguration !== undefined) body.proxyConfiguration = req.proxyConfiguration;
  if (req.inferenceAccelerators !== undefined) body.inferenceAccelerators = req.inferenceAccelerators;
  if (req.ephemeralStorage !== undefined) body.ephemeralStorage = req.ephemeralStorage;
  if (req.runtimePlatform !== undefined) body.runtimePlatform = req.runtimePlatform;
  if (req.enableFaultInjection !== undefined) body.enableFaultInjection = req.enableFaultInjection;

  checkLaunchTypes(body, requested);
  body.compatibilities = computeCompatibilities(body);
  body.requiresAttributes = computeRequiresAttributes(body);
  return { taskDefinition: body, tags };
}

function checkFamily(family: unknown): asserts family is string {
  if (!isNonEmptyString(family)) clientFail('Family should not be null or empty.');
  if (!NAME_RE.test(family)) {
    clientFail(
      `Invalid family '${family}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.`,
    );
  }
}

function checkEnum(value: unknown, allowed: readonly string[], field: string): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !allowed.includes(value)) {
    clientFail(`Invalid '${field}' setting '${String(value)}'. Valid values: ${allowed.join(', ')}.`);
  }
}

function checkRuntimePlatform(req: RegisterTaskDefinitionRequest): void {
  const rp = req.runtimePlatform;
  if (rp === undefined) return;
  if (!isObject(rp)) clientFail("Invalid 'runtimePlatform' setting.");
  checkEnum(rp.cpuArchitecture, CPUArchitectureValues, 'runtimePlatform.cpuArchitecture');
  checkEnum(rp.operatingSystemFamily, OSFamilyValues, 'runtimePlatform.operatingSystemFamily');
  const windows = rp.operatingSystemFamily !== undefined && rp.operatingSystemFamily !== 'LINUX';
  if (!windows) return;
  if (rp.cpuArchitecture === 'ARM64') clientFail('Windows task definitions support only the X86_64 cpu architecture.');
  if (req.pidMode !== undefined) clientFail('pidMode is not supported for Windows task definitions.');
  if (req.ipcMode !== undefined) clientFail('ipcMode is not supported for Windows task definitions.');
  if (req.networkMode === 'host' || req.networkMode === 'none') {
    clientFail(`networkMode '${req.networkMode}' is not supported for Windows task definitions.`);
  }
}

function normalizeTags(input: Tag[] | undefined): Tag[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) invalidParameterFail("Invalid 'tags' setting. It must be a list.");
  if (input.length > MAX_TAGS) invalidParameterFail(`Too many tags: ${input.length}. A resource can have at most ${MAX_TAGS} tags.`);
  const seen = new Set<string>();
  return input.map((t) => {
    if (!isObject(t) || typeof t.key !== 'string' || t.key.length < 1 || t.key.length > 128) {
      invalidParameterFail('Invalid tag key. Tag keys must be 1 to 128 characters long.');
    }
    const value = t.value ?? '';
    if (typeof value !== 'string' || value.length > 256) {
      invalidParameterFail(`Invalid value for tag '${t.key}'. Tag values can be at most 256 characters long.`);
    }
    if (!TAG_CHARS_RE.test(t.key) || !TAG_CHARS_RE.test(value)) {
      invalidParameterFail(
        `Invalid tag '${t.key}'. Tags may contain letters, numbers, spaces and the characters _ . : / = + - @.`,
      );
    }
    if (t.key.toLowerCase().startsWith('aws:')) {
      invalidParameterFail(`Invalid tag key '${t.key}'. The 'aws:' prefix is reserved for AWS use.`);
    }
    if (seen.has(t.key)) invalidParameterFail(`Duplicate tag key '${t.key}'.`);
    seen.add(t.key);
    return { key: t.key, value };
  });
}

function normalizeTaskCpu(value: unknown): number {
  const units = typeof value === 'string' ? parseTaskCpu(value) : undefined;
  if (units === undefined) {
    clientFail(`Invalid 'cpu' setting for task: '${String(value)}'. Use CPU units ("1024") or vCPUs ("1 vCPU", "0.25 vcpu").`);
  }
  if (units < MIN_TASK_CPU_UNITS || units > MAX_CPU_UNITS) {
    clientFail(`Invalid 'cpu' setting for task. It must be between ${MIN_TASK_CPU_UNITS} and ${MAX_CPU_UNITS} CPU units.`);
  }
  return units;
}

function normalizeTaskMemory(value: unknown): number {
  const mib = typeof value === 'string' ? parseTaskMemory(value) : undefined;
  if (mib === undefined) {
    clientFail(`Invalid 'memory' setting for task: '${String(value)}'. Use MiB ("512") or GB ("1 GB", "2GB").`);
  }
  if (mib < MIN_CONTAINER_MEMORY_MIB) {
    clientFail(`Invalid 'memory' setting for task. The minimum is ${MIN_CONTAINER_MEMORY_MIB} MiB.`);
  }
  return mib;
}

function checkContainerSet(containers: ContainerDefinition[]): void {
  const names = new Set<string>();
  for (const c of containers) {
    if (names.has(c.name!)) {
      clientFail(`Duplicate container name '${c.name}'. Container names must be unique within a task definition.`);
    }
    names.add(c.name!);
  }
  if (!containers.some((c) => c.essential)) {
    clientFail('A task definition must have at least one essential container.');
  }
  const portNames = new Set<string>();
  for (const c of containers) {
    for (const pm of c.portMappings ?? []) {
      if (pm.name === undefined) continue;
      if (portNames.has(pm.name)) {
        clientFail(`Duplicate port mapping name '${pm.name}'. Port mapping names must be unique within a task definition.`);
      }
      portNames.add(pm.name);
    }
  }
  // Normalized mappings carry their host port: 0 is dynamic (never conflicts); TCP and UDP differ.
  const hostPorts = new Set<string>();
  for (const c of containers) {
    for (const pm of c.portMappings ?? []) {
      if (!pm.hostPort) continue;
      const key = `${pm.protocol ?? 'tcp'} ${pm.hostPort}`;
      if (hostPorts.has(key)) clientFail(`${(pm.protocol ?? 'tcp').toUpperCase()} host port '${pm.hostPort}' is mapped multiple times in task.`);
      hostPorts.add(key);
    }
  }
  const firelens = containers.filter((c) => c.firelensConfiguration !== undefined);
  if (firelens.length > 1) clientFail('Only one container in a task definition can have a firelensConfiguration.');
  const usesFirelens = containers.find((c) => c.logConfiguration?.logDriver === 'awsfirelens');
  if (usesFirelens && firelens.length === 0) {
    clientFail(
      `Container '${usesFirelens.name}' uses the awsfirelens log driver, but no container in the task definition has a firelensConfiguration.`,
    );
  }
}

/** Volumes: unique valid names, at most one kind of backing, Docker volume scope rules. */
function normalizeVolumes(input: Volume[] | undefined): Volume[] {
  const seen = new Set<string>();
  return optionalArray(input, 'volumes').map((v) => {
    if (!isObject(v) || !isNonEmptyString(v.name)) clientFail('Volume name should not be null or empty.');
    if (!NAME_RE.test(v.name)) {
      clientFail(
        `Invalid volume name '${v.name}'. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.`,
      );
    }
    if (seen.has(v.name)) clientFail(`Duplicate volume name '${v.name}'. Volume names must be unique within a task definition.`);
    seen.add(v.name);
    const kinds = (
      ['host', 'dockerVolumeConfiguration', 'efsVolumeConfiguration', 's3filesVolumeConfiguration', 'fsxWindowsFileServerVolumeConfiguration'] as const
    ).filter((k) => v[k] !== undefined);
    if (kinds.length > 1) {
      clientFail(`Invalid volume '${v.name}'. Only one of ${kinds.map((k) => `'${k}'`).join(' and ')} can be specified.`);
    }
    if (v.configuredAtLaunch === true && kinds.length > 0) {
      clientFail(`Invalid volume '${v.name}'. A volume configured at launch cannot also specify '${kinds[0]}'.`);
    }
    const out: Volume = { ...v };
    const dvc = v.dockerVolumeConfiguration;
    if (dvc !== undefined) {
      if (!isObject(dvc)) clientFail(`Invalid 'dockerVolumeConfiguration' for volume '${v.name}'.`);
      const scope = dvc.scope ?? 'task';
      if (scope !== 'task' && scope !== 'shared') {
        clientFail(`Invalid 'dockerVolumeConfiguration.scope' for volume '${v.name}'. Valid values: task, shared.`);
      }
      if (dvc.autoprovision === true && scope !== 'shared') {
        clientFail(`Invalid volume '${v.name}'. 'autoprovision' is only supported when 'scope' is 'shared'.`);
      }
      out.dockerVolumeConfiguration = { ...dvc, scope };
    }
    const efs = v.efsVolumeConfiguration;
    if (efs !== undefined) {
      if (!isObject(efs) || !isNonEmptyString(efs.fileSystemId)) {
        clientFail(`Invalid 'efsVolumeConfiguration' for volume '${v.name}'. 'fileSystemId' is required.`);
      }
      const encrypted = efs.transitEncryption === 'ENABLED';
      if (!encrypted && (efs.transitEncryptionPort !== undefined || efs.authorizationConfig?.iam === 'ENABLED')) {
        clientFail(
          `Invalid 'efsVolumeConfiguration' for volume '${v.name}'. 'transitEncryptionPort' and IAM authorization require transitEncryption ENABLED.`,
        );
      }
      // An access point fixes the directory and needs TLS (EFSAuthorizationConfig's reference):
      // rootDirectory may only be left out or be '/'. The first half of the text is ECS's own.
      if (efs.authorizationConfig?.accessPointId !== undefined) {
        if (!encrypted) clientFail(`Invalid 'efsVolumeConfiguration' for volume '${v.name}'. An access point requires transitEncryption ENABLED.`);
        if (efs.rootDirectory !== undefined && efs.rootDirectory !== '/') {
          clientFail(`Root Directory can not be set when using an EFS Access Point (volume '${v.name}'): omit rootDirectory or set it to '/'.`);
        }
      }
      // ECS stores and returns the file system's root when none is given.
      out.efsVolumeConfiguration = { ...efs, rootDirectory: efs.rootDirectory ?? '/' };
    }
    return out;
  });
}

function checkMountPoints(containers: ContainerDefinition[], volumes: Volume[]): void {
  const names = new Set(volumes.map((v) => v.name));
  for (const c of containers) {
    for (const m of c.mountPoints ?? []) {
      if (!names.has(m.sourceVolume)) {
        clientFail(
          `Invalid 'mountPoints' setting for container '${c.name}'. Volume '${m.sourceVolume}' is not defined in the task definition's volumes.`,
        );
      }
    }
  }
}

function checkProxyAndAccelerators(req: RegisterTaskDefinitionRequest, containers: ContainerDefinition[]): void {
  const proxy = req.proxyConfiguration;
  if (proxy !== undefined) {
    if (!isObject(proxy) || !containers.some((c) => c.name === proxy.containerName)) {
      clientFail(
        `Invalid 'proxyConfiguration' setting. Container '${String(proxy?.containerName)}' is not defined in the task definition.`,
      );
    }
    if (proxy.type !== undefined && proxy.type !== 'APPMESH') clientFail("Invalid 'proxyConfiguration.type' setting. Valid values: APPMESH.");
  }
  const accelerators = optionalArray(req.inferenceAccelerators, 'inferenceAccelerators');
  for (const a of accelerators) {
    if (!isObject(a) || !isNonEmptyString(a.deviceName) || !isNonEmptyString(a.deviceType)) {
      clientFail("Invalid 'inferenceAccelerators' setting. Each accelerator needs a 'deviceName' and a 'deviceType'.");
    }
  }
  for (const c of containers) {
    for (const r of c.resourceRequirements ?? []) {
      if (r.type === 'InferenceAccelerator' && !accelerators.some((a) => a.deviceName === r.value)) {
        clientFail(
          `Invalid 'resourceRequirements' setting for container '${c.name}'. Inference accelerator '${r.value}' is not defined in the task definition.`,
        );
      }
    }
  }
}

/** Memory and cpu arithmetic (taskSizeProblem); without a task memory each container needs its own. */
function checkMemoryAndCpu(containers: ContainerDefinition[], taskCpu?: number, taskMemory?: number): void {
  if (taskMemory === undefined) {
    const bare = containers.find((c) => c.memory === undefined && c.memoryReservation === undefined);
    if (bare) {
      clientFail(`Invalid setting for container '${bare.name}'. At least one of 'memory' or 'memoryReservation' must be specified.`);
    }
  }
  const problem = taskSizeProblem(containers, taskCpu, taskMemory);
  if (problem) clientFail(problem);
}

function normalizePlacementConstraints(input: TaskDefinitionPlacementConstraint[] | undefined): TaskDefinitionPlacementConstraint[] {
  const list = optionalArray(input, 'placementConstraints');
  if (list.length > MAX_PLACEMENT_CONSTRAINTS) {
    clientFail(`Too many placement constraints: ${list.length}. At most ${MAX_PLACEMENT_CONSTRAINTS} are allowed.`);
  }
  return list.map((pc) => {
    if (!isObject(pc) || pc.type !== 'memberOf') {
      clientFail(
        `Invalid placement constraint type '${String(isObject(pc) ? pc.type : pc)}'. Task definitions support only 'memberOf'.`,
      );
    }
    if (!isNonEmptyString(pc.expression) || pc.expression.length > 2000) {
      clientFail("Invalid 'memberOf' placement constraint. An expression of 1 to 2000 characters is required.");
    }
    return { type: pc.type, expression: pc.expression };
  });
}

/** Rules for the launch types the request asks to be validated against. */
function checkLaunchTypes(body: TaskDefinitionBody, requested: readonly Compatibility[]): void {
  if (requested.includes('FARGATE')) {
    const why = fargateViolation(body);
    if (why) clientFail(why);
  }
  if (requested.includes('EXTERNAL') && body.networkMode === 'awsvpc') {
    clientFail("Tasks using the EXTERNAL launch type do not support network mode 'awsvpc'.");
  }
  const es = body.ephemeralStorage;
  if (es !== undefined) {
    const size = isObject(es) ? es.sizeInGiB : undefined;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < EPHEMERAL_STORAGE_GIB.min || size > EPHEMERAL_STORAGE_GIB.max) {
      clientFail(
        `Invalid 'ephemeralStorage.sizeInGiB' setting. It must be an integer between ${EPHEMERAL_STORAGE_GIB.min} and ${EPHEMERAL_STORAGE_GIB.max}.`,
      );
    }
    if (!requested.includes('FARGATE')) {
      clientFail("'ephemeralStorage' is only supported for task definitions that require the FARGATE launch type.");
    }
  }
}
