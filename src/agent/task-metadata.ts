/**
 * The task metadata endpoint documents, as the ECS agent serves them to a task's containers:
 * version 4 (`ECS_CONTAINER_METADATA_URI_V4`) and version 3 (`ECS_CONTAINER_METADATA_URI`),
 *
 *   GET $URI             the calling container
 *   GET $URI/task        the task, with every container
 *   GET $URI/stats       the calling container's Docker stats
 *   GET $URI/task/stats  Docker id -> stats, every container of the task
 *
 * built from what the agent knows: the task as the control plane sent it (its service, its
 * containers' ARNs) and its runner's snapshot (statuses, pull times, and what the engine last
 * said of each container: created and started times, image id, addresses). The field names are
 * ECS's (PascalCase), times are Go's RFC 3339 form in UTC, and a field the agent has no value for
 * is left out, as the ECS agent omits its empty ones. Version 3 is version 4 without what v4
 * added (LaunchType, ServiceName, ContainerARN, LogDriver, LogOptions, RestartCount, the ports'
 * HostIp, network_rate_stats).
 *
 * Networks: an awsvpc container shows the task's address (its pause container's); a bridge,
 * host or none one shows each network Docker attached it to with its address there, as the ECS
 * agent reads them from `docker inspect` (for host and none that address is empty: `[""]`).
 *
 * The stats documents are the engine's own (Docker's ContainerStats JSON, also under gVisor,
 * whose runsc reports the sandbox's cgroup usage), plus, in v4, ECS's `network_rate_stats`,
 * which needs two readings: it is there from a container's second read on.
 */
import type { AgentTask } from '../api/agent/protocol';
import { LABELS } from '../api/agent/protocol';
import { taskDefinitionRefOf } from '../core/arn';
import { awslogsStreamName } from '../core/awslogs-options';
import type { TaskSnapshot } from './task-status';

export interface MetadataContext {
  task: AgentTask;
  snapshot: TaskSnapshot;
  availabilityZone?: string;
  /** Which endpoint is asked: 4 (the default) or 3. */
  version?: 3 | 4;
}

type Doc = Record<string, unknown>;

/** The endpoint id a task's v3 URI carries: its v4 id with this suffix. */
export const V3_ID_SUFFIX = '-v3';

/**
 * A container's ECS_CONTAINER_METADATA_URI_V4 and ECS_CONTAINER_METADATA_URI, beside its
 * ECS_AGENT_URI (`<base>/api/<id>`): `<base>/v4/<id>/<container>` and
 * `<base>/v4/<id>-v3/<container>`. The v3 one has its own id rather than a `/v3/` prefix
 * because the endpoint's HTTP routing (task-protection-endpoint.ts) knows the one prefix;
 * clients only ever append `/task`, `/stats` or `/task/stats` to the variable.
 */
export function metadataUris(agentUri: string, containerName: string): { v4: string; v3: string } {
  const m = /^(.*)\/api\/([^/]+)$/.exec(agentUri);
  const name = encodeURIComponent(containerName);
  if (!m) return { v4: `${agentUri}/${name}`, v3: `${agentUri}${V3_ID_SUFFIX}/${name}` };
  return { v4: `${m[1]}/v4/${m[2]}/${name}`, v3: `${m[1]}/v4/${m[2]}${V3_ID_SUFFIX}/${name}` };
}

/** Go's time.Time JSON form in UTC (RFC 3339, fraction without trailing zeros), as the ECS agent writes times. */
function goTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.(\d*?)0*Z$/, (_m, f: string) => (f ? `.${f}Z` : 'Z'));
}

function networkMode(task: AgentTask): string {
  return task.taskDefinition.networkMode ?? (task.launchType === 'FARGATE' ? 'awsvpc' : 'bridge');
}

type SnapContainer = TaskSnapshot['containers'][number];

function networksOf(m: MetadataContext, snap: SnapContainer): Doc[] | undefined {
  const mode = networkMode(m.task);
  if (mode === 'awsvpc') return [{ NetworkMode: mode, IPv4Addresses: m.snapshot.privateIpv4Address ? [m.snapshot.privateIpv4Address] : [] }];
  const nets = Object.entries(snap.ipAddresses ?? {});
  // Not inspected yet, or detached: the network its mode puts it on, without an address.
  if (nets.length === 0) return [{ NetworkMode: mode, IPv4Addresses: [''] }];
  return nets.map(([net, ip]) => ({ NetworkMode: net, IPv4Addresses: [ip] }));
}

function logOptionsOf(m: MetadataContext, name: string, options: Record<string, string>, driver: string): Record<string, string> {
  const out = { ...options };
  // The stream the agent writes to (agent/awslogs-shipper.ts), as the ECS agent shows it.
  if (driver === 'awslogs' && out['awslogs-stream-prefix'] !== undefined) {
    const stream = awslogsStreamName(out, name, m.task.taskArn.slice(m.task.taskArn.lastIndexOf('/') + 1), undefined);
    delete out['awslogs-stream-prefix'];
    if (stream) out['awslogs-stream'] = stream;
  }
  return out;
}

function containerDoc(m: MetadataContext, name: string): Doc | undefined {
  const def = m.task.taskDefinition.containerDefinitions?.find((d) => d.name === name);
  const snap = m.snapshot.containers.find((c) => c.name === name);
  if (!def || !snap) return undefined;
  const v4 = (m.version ?? 4) === 4;
  const ref = taskDefinitionRefOf(m.task.taskDefinition.taskDefinitionArn ?? '');
  const awsvpc = networkMode(m.task) === 'awsvpc';
  const doc: Doc = {
    DockerId: snap.dockerId ?? '',
    Name: name,
    DockerName: snap.dockerName ?? '',
    Image: def.image,
    ImageID: snap.imageId ?? '',
  };
  const ports = snap.networkBindings.map((b) => ({
    ContainerPort: b.containerPort,
    Protocol: b.protocol ?? 'tcp',
    HostPort: awsvpc ? b.containerPort : b.hostPort,
    ...(v4 && b.bindIP ? { HostIp: b.bindIP } : {}),
  }));
  // An awsvpc container publishes nothing on the host, so it has no bindings: as the ECS agent
  // does, its ports are the definition's mappings, each on its own port of the task's address.
  if (awsvpc && ports.length === 0) {
    for (const pm of def.portMappings ?? []) {
      if (pm.containerPort !== undefined) ports.push({ ContainerPort: pm.containerPort, Protocol: pm.protocol ?? 'tcp', HostPort: pm.containerPort });
    }
  }
  if (ports.length > 0) doc.Ports = ports;
  // The container's labels: its dockerLabels, under ECS's own (which they cannot override).
  doc.Labels = {
    ...(def.dockerLabels ?? {}),
    [LABELS.cluster]: m.task.clusterArn,
    [LABELS.containerName]: name,
    [LABELS.taskArn]: m.task.taskArn,
    [LABELS.family]: ref?.family ?? '',
    [LABELS.revision]: String(ref?.revision ?? ''),
  };
  doc.DesiredStatus = m.snapshot.desiredStatus;
  doc.KnownStatus = snap.knownStatus ?? snap.status;
  if (snap.exitCode !== undefined) doc.ExitCode = snap.exitCode;
  doc.Limits = { CPU: def.cpu ?? 0, Memory: def.memory ?? 0 };
  if (snap.createdAt !== undefined) doc.CreatedAt = goTime(snap.createdAt);
  if (snap.startedAt !== undefined) doc.StartedAt = goTime(snap.startedAt);
  if (snap.finishedAt !== undefined) doc.FinishedAt = goTime(snap.finishedAt);
  doc.Type = 'NORMAL';
  if (v4) {
    const driver = def.logConfiguration?.logDriver;
    if (driver) doc.LogDriver = driver;
    if (driver && def.logConfiguration?.options) doc.LogOptions = logOptionsOf(m, name, def.logConfiguration.options, driver);
    const arn = m.task.containerArns?.[name];
    if (arn) doc.ContainerARN = arn;
  }
  const networks = networksOf(m, snap);
  if (networks) doc.Networks = networks;
  // The ECS agent leaves an unknown health status out of the object.
  if (def.healthCheck) doc.Health = snap.health === 'UNKNOWN' ? {} : { status: snap.health };
  // As the ECS agent: only a container whose restart policy is enabled has a RestartCount.
  if (v4 && def.restartPolicy?.enabled) doc.RestartCount = snap.restartCount;
  return doc;
}

/** The calling container's document (undefined when the task has no such container). */
export function containerMetadata(m: MetadataContext, name: string): Doc | undefined {
  return containerDoc(m, name);
}

/** The task's document, with every container of the task. */
export function taskMetadata(m: MetadataContext): Doc {
  const td = m.task.taskDefinition;
  const v4 = (m.version ?? 4) === 4;
  const ref = taskDefinitionRefOf(td.taskDefinitionArn ?? '');
  const cpu = Number(m.task.overrides?.cpu ?? td.cpu);
  const memory = Number(m.task.overrides?.memory ?? td.memory);
  const doc: Doc = {
    Cluster: m.task.clusterArn,
    TaskARN: m.task.taskArn,
    Family: ref?.family ?? td.family ?? '',
    Revision: String(ref?.revision ?? td.revision ?? ''),
    DesiredStatus: m.snapshot.desiredStatus,
    KnownStatus: m.snapshot.knownStatus,
  };
  // ECS documents ServiceName for tasks on EC2 (and ECS Anywhere) instances only.
  if (v4 && m.task.serviceName && m.task.launchType !== 'FARGATE') doc.ServiceName = m.task.serviceName;
  const limits = { ...(Number.isFinite(cpu) && cpu > 0 ? { CPU: cpu / 1024 } : {}), ...(Number.isFinite(memory) && memory > 0 ? { Memory: memory } : {}) };
  if (Object.keys(limits).length > 0) doc.Limits = limits;
  if (m.snapshot.pullStartedAt !== undefined) doc.PullStartedAt = goTime(m.snapshot.pullStartedAt);
  if (m.snapshot.pullStoppedAt !== undefined) doc.PullStoppedAt = goTime(m.snapshot.pullStoppedAt);
  if (m.snapshot.executionStoppedAt !== undefined) doc.ExecutionStoppedAt = goTime(m.snapshot.executionStoppedAt);
  if (m.availabilityZone) doc.AvailabilityZone = m.availabilityZone;
  if (v4) doc.LaunchType = m.task.launchType ?? 'EC2';
  doc.Containers = m.snapshot.containers.map((c) => containerDoc(m, c.name)).filter((d): d is Doc => d !== undefined);
  return doc;
}

// ---- /stats ---------------------------------------------------------------------------------

interface NetworkSample {
  at: number;
  rx: number;
  tx: number;
}

/**
 * The last network byte counters read per container, so that a read can say how fast they grew
 * since the one before (ECS's `network_rate_stats`). Docker's one-shot stats carry no earlier
 * network reading, and the ECS agent derives the rate from its own stream of samples in the same
 * way.
 */
export class NetworkRates {
  private readonly last = new Map<string, NetworkSample>();

  /** Bytes per second since this container's previous reading; undefined on its first. */
  next(dockerId: string, stats: Doc): { rx_bytes_per_sec: number; tx_bytes_per_sec: number } | undefined {
    const now = sampleOf(stats);
    if (!now) return undefined;
    const before = this.last.get(dockerId);
    this.last.set(dockerId, now);
    if (!before || now.at <= before.at) return undefined;
    const sec = (now.at - before.at) / 1000;
    // A counter that went backwards (the interface was recreated) has no rate to give.
    if (now.rx < before.rx || now.tx < before.tx) return undefined;
    return { rx_bytes_per_sec: (now.rx - before.rx) / sec, tx_bytes_per_sec: (now.tx - before.tx) / sec };
  }

  /** Drops what is kept for containers that are gone. */
  forget(dockerIds: Iterable<string>): void {
    for (const id of dockerIds) this.last.delete(id);
  }

  get size(): number {
    return this.last.size;
  }
}

function sampleOf(stats: Doc): NetworkSample | undefined {
  const at = Date.parse(String(stats.read ?? ''));
  const networks = stats.networks as Record<string, { rx_bytes?: number; tx_bytes?: number }> | undefined;
  if (!Number.isFinite(at) || !networks || typeof networks !== 'object') return undefined;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(networks)) {
    rx += Number(n?.rx_bytes ?? 0);
    tx += Number(n?.tx_bytes ?? 0);
  }
  return { at, rx, tx };
}

/**
 * One container's stats document: the engine's (it names the container), with ECS's network
 * rates when `rates` is given (v4; v3 has none).
 */
export function statsDocument(raw: Doc, dockerId: string, rates: NetworkRates | undefined): Doc {
  const doc: Doc = { ...raw };
  doc.id ??= dockerId;
  const rate = rates?.next(dockerId, raw);
  if (rate) doc.network_rate_stats = rate;
  return doc;
}

/** Reads one container's stats from the engine (undefined: no such container). */
export type StatsReader = (dockerId: string) => Promise<Doc | undefined>;

/**
 * The `/stats` (one container) or `/task/stats` (every container) answer, or undefined when the
 * task has no such container. A container that is not running has no stats: `/task/stats` maps
 * its id to null and `/stats` answers `{}`.
 */
export async function statsMetadata(m: MetadataContext, container: string | undefined, read: StatsReader, rates: NetworkRates): Promise<Doc | undefined> {
  const one = async (c: TaskSnapshot['containers'][number]): Promise<Doc | null> => {
    if (!c.dockerId || c.status !== 'RUNNING') return null;
    const raw = await read(c.dockerId);
    return raw ? statsDocument(raw, c.dockerId, (m.version ?? 4) === 4 ? rates : undefined) : null;
  };
  if (container !== undefined) {
    const c = m.snapshot.containers.find((x) => x.name === container);
    if (!c) return undefined;
    return (await one(c)) ?? {};
  }
  const out: Doc = {};
  const withIds = m.snapshot.containers.filter((c) => c.dockerId);
  const docs = await Promise.all(withIds.map(one));
  withIds.forEach((c, i) => (out[c.dockerId!] = docs[i]));
  return out;
}
