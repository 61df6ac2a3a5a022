/**
 * The task metadata endpoint v4 documents (`ECS_CONTAINER_METADATA_URI_V4`), as the ECS agent
 * serves them to a task's containers:
 *
 *   GET $ECS_CONTAINER_METADATA_URI_V4             the calling container
 *   GET $ECS_CONTAINER_METADATA_URI_V4/task        the task, with every container
 *   GET $ECS_CONTAINER_METADATA_URI_V4/stats       the calling container's Docker stats
 *   GET $ECS_CONTAINER_METADATA_URI_V4/task/stats  Docker id -> stats, every container of the task
 *
 * built from what the agent knows: the task as the control plane sent it and its runner's
 * snapshot. The field names are ECS's (PascalCase); fields the agent cannot know here (image
 * digests, pull timestamps) are left out rather than invented. The stats documents are the
 * engine's own (Docker's ContainerStats JSON, also under gVisor, whose runsc reports the
 * sandbox's cgroup usage), plus ECS's `network_rate_stats`, which needs two readings: it is
 * there from a container's second read on.
 */
import type { AgentTask } from '../api/agent/protocol';
import { LABELS } from '../api/agent/protocol';
import { taskDefinitionRefOf } from '../core/arn';
import type { TaskSnapshot } from './task-status';

export interface MetadataContext {
  task: AgentTask;
  snapshot: TaskSnapshot;
  availabilityZone?: string;
}

type Doc = Record<string, unknown>;

function networkMode(task: AgentTask): string {
  return task.taskDefinition.networkMode ?? (task.launchType === 'FARGATE' ? 'awsvpc' : 'bridge');
}

function containerDoc(m: MetadataContext, name: string): Doc | undefined {
  const def = m.task.taskDefinition.containerDefinitions?.find((d) => d.name === name);
  const snap = m.snapshot.containers.find((c) => c.name === name);
  if (!def || !snap) return undefined;
  const ref = taskDefinitionRefOf(m.task.taskDefinition.taskDefinitionArn ?? '');
  const mode = networkMode(m.task);
  const doc: Doc = {
    DockerId: snap.dockerId ?? '',
    Name: name,
    Image: def.image,
    Labels: {
      [LABELS.cluster]: m.task.clusterArn,
      [LABELS.containerName]: name,
      [LABELS.taskArn]: m.task.taskArn,
      [LABELS.family]: ref?.family ?? '',
      [LABELS.revision]: String(ref?.revision ?? ''),
    },
    DesiredStatus: m.snapshot.desiredStatus,
    KnownStatus: snap.status,
    Limits: { CPU: def.cpu ?? 0, ...(def.memory !== undefined ? { Memory: def.memory } : {}) },
    Type: 'NORMAL',
    Networks: [{ NetworkMode: mode, IPv4Addresses: m.snapshot.privateIpv4Address ? [m.snapshot.privateIpv4Address] : [] }],
    RestartCount: snap.restartCount,
  };
  if (snap.exitCode !== undefined) doc.ExitCode = snap.exitCode;
  if (def.healthCheck) doc.Health = { status: snap.health };
  if (def.logConfiguration?.logDriver) doc.LogDriver = def.logConfiguration.logDriver;
  return doc;
}

/** The calling container's document (undefined when the task has no such container). */
export function containerMetadata(m: MetadataContext, name: string): Doc | undefined {
  return containerDoc(m, name);
}

/** The task's document, with every container of the task. */
export function taskMetadata(m: MetadataContext): Doc {
  const td = m.task.taskDefinition;
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
    Limits: { ...(Number.isFinite(cpu) ? { CPU: cpu / 1024 } : {}), ...(Number.isFinite(memory) ? { Memory: memory } : {}) },
    LaunchType: m.task.launchType ?? 'EC2',
    Containers: m.snapshot.containers.map((c) => containerDoc(m, c.name)).filter((d): d is Doc => d !== undefined),
  };
  if (m.availabilityZone) doc.AvailabilityZone = m.availabilityZone;
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

/** One container's stats document: the engine's (it names the container), with ECS's network rates. */
export function statsDocument(raw: Doc, dockerId: string, rates: NetworkRates): Doc {
  const doc: Doc = { ...raw };
  doc.id ??= dockerId;
  const rate = rates.next(dockerId, raw);
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
    return raw ? statsDocument(raw, c.dockerId, rates) : null;
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
