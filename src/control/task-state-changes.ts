/**
 * SubmitTaskStateChange / SubmitContainerStateChange: the agent reports what really happened.
 * The control plane folds each report into the task record: lastStatus and container statuses
 * only move forward, timestamps are set once, and when the task reaches STOPPED its resources
 * go back to the instance in the same transaction, exactly once.
 */
import { instanceClusterOf } from '../core/fargate-pool';
import { WharfError, invalidParameter } from '../core/errors';
import { release } from '../core/instance-resources';
import type { TaskRecord } from '../core/resources';
import type { Container, Resource, SubmitContainerStateChangeRequest, SubmitTaskStateChangeRequest, SubmitTaskStateChangeResponse } from '../core/shapes/ecs';
import { STOP, STOPPED_TASK_RETENTION_MS, containerStatusRank, isForward, isTerminal, taskHealthOf } from '../core/task-status';
import type { WharfContainerStateChange, WharfTaskStateChange } from '../api/agent/protocol';
import { epochSeconds } from '../lib';
import { StoreConflictError, type TxnOp } from '../store/store';
import { requireActiveCluster } from './clusters';
import { committed, type ControlContext } from './context';
import { usageOps } from './instance-usage';
import { requireTask } from './tasks';
import { attachedEni, taskKey } from './task-records';

const ACK = { acknowledgment: 'true' };

function mergeContainer(c: Container, ch: WharfContainerStateChange): Container {
  const out: Container = { ...c };
  if (ch.status && containerStatusRank(ch.status) >= containerStatusRank(c.lastStatus ?? 'PENDING')) out.lastStatus = ch.status;
  if (ch.runtimeId) out.runtimeId = ch.runtimeId;
  if (ch.imageDigest) out.imageDigest = ch.imageDigest;
  if (ch.exitCode !== undefined && ch.exitCode !== null) out.exitCode = ch.exitCode;
  if (ch.reason) out.reason = ch.reason;
  if (ch.networkBindings) out.networkBindings = ch.networkBindings;
  if (ch.healthStatus) out.healthStatus = ch.healthStatus;
  return out;
}

function eniAddress(t: TaskRecord): string | undefined {
  return t.attachments?.find((a) => a.type === 'ElasticNetworkInterface')?.details?.find((d) => d.name === 'privateIPv4Address')?.value;
}

/** Folds a report into the task; returns undefined when nothing changes. Pure. */
export function applyTaskReport(t: TaskRecord, report: WharfTaskStateChange, now: number, essentialWithCheck: Set<string>): TaskRecord | undefined {
  const before = JSON.stringify(t);
  const n: TaskRecord = { ...t, wharf: { ...t.wharf } };
  const nowS = epochSeconds(now);
  if (report.containers?.length) {
    const byName = new Map(report.containers.map((c) => [c.containerName, c]));
    n.containers = (t.containers ?? []).map((c) => {
      const ch = byName.get(c.name);
      return ch ? mergeContainer(c, ch) : c;
    });
  }
  if (report.pullStartedAt !== undefined && n.pullStartedAt === undefined) n.pullStartedAt = report.pullStartedAt;
  if (report.pullStoppedAt !== undefined && n.pullStoppedAt === undefined) n.pullStoppedAt = report.pullStoppedAt;
  if (report.executionStoppedAt !== undefined && n.executionStoppedAt === undefined) n.executionStoppedAt = report.executionStoppedAt;
  if (n.connectivity === undefined) {
    n.connectivity = 'CONNECTED';
    n.connectivityAt = nowS;
  }
  // A container report can bring the published ports (assignPublicIp ENABLED) after the address.
  const ip = report.privateIpv4Address ?? (n.wharf.assignPublicIp && report.containers?.length ? eniAddress(n) : undefined);
  if (ip) {
    n.attachments = attachedEni(n, ip, report.macAddress);
    const eni = n.attachments.find((a) => a.type === 'ElasticNetworkInterface');
    n.containers = (n.containers ?? []).map((c) => ({
      ...c,
      networkInterfaces: [{ attachmentId: eni?.id, privateIpv4Address: ip }],
    }));
  }
  const status = report.status;
  if (status && status !== n.lastStatus && isForward(n.lastStatus, status)) {
    n.lastStatus = status;
    if (status === 'RUNNING' && n.startedAt === undefined) n.startedAt = report.startedAt ?? nowS;
    // The task stops on its own (not by request: an essential container exited, it failed to
    // start): from its first stopping report on it is no longer wanted, and says why, as ECS
    // shows it while it stops; stoppingAt is when that began.
    const stopping = status === 'STOPPING' || status === 'DEPROVISIONING' || status === 'STOPPED';
    if (stopping && n.desiredStatus !== 'STOPPED') {
      n.desiredStatus = 'STOPPED';
      n.stopCode = (report.stopCode ?? STOP.essentialExited.stopCode) as TaskRecord['stopCode'];
      n.stoppedReason = report.reason ?? STOP.essentialExited.reason;
      if (n.stoppingAt === undefined) n.stoppingAt = nowS;
    } else if (stopping && report.stopCode === 'TaskFailedToStart' && n.stopCode !== 'TaskFailedToStart') {
      n.stopCode = 'TaskFailedToStart';
      if (report.reason) n.stoppedReason = report.reason;
    }
    if (status === 'STOPPED') {
      n.stoppedAt = nowS;
      if (n.executionStoppedAt === undefined) n.executionStoppedAt = nowS;
      if (n.stoppingAt === undefined) n.stoppingAt = nowS;
      n.attachments = (n.attachments ?? []).map((a) => ({ ...a, status: 'DELETED' }));
      n.wharf.expiresAt = now + STOPPED_TASK_RETENTION_MS;
    }
  }
  n.healthStatus = taskHealthOf((n.containers ?? []).map((c) => ({ essential: essentialWithCheck.has(c.name!), hasHealthCheck: essentialWithCheck.has(c.name!), health: c.healthStatus })));
  // `t` is never mutated above (n holds copies of what changes), and spreading keeps key order,
  // so equal JSON means nothing changed.
  if (JSON.stringify({ ...n, version: t.version }) === before) return undefined;
  n.version = t.version + 1;
  return n;
}

async function applyReport(ctx: ControlContext, clusterRef: string | undefined, taskRef: string | undefined, report: WharfTaskStateChange) {
  const cluster = requireActiveCluster(ctx, clusterRef);
  if (!taskRef) throw invalidParameter('task is required.');
  const t = requireTask(ctx, cluster.clusterName, taskRef);
  if (isTerminal(t.lastStatus)) return ACK;
  return batcherOf(ctx).submit({ cluster: cluster.clusterName, taskId: t.wharf.id, report });
}

/**
 * Group commit of agent reports. One transaction of reports is in flight at a time per context:
 * reports arriving meanwhile (a thousand agents report at once, and each instance's task changes
 * come close together) wait and are folded into the next one. A commit costs about as much as
 * three single-row ones on SQLite and a Raft round trip on etcd, and reports are most of the
 * control plane's writes. A transaction stays under the store's maxTxnOps (etcd's
 * --max-txn-ops); the reports that do not fit go first in the next. Each task's update is still
 * compared-and-swapped on the revision it was computed from; on a conflict the batch is folded
 * again once on the fresh state, and if that conflicts too each report is applied on its own.
 */
interface PendingReport {
  cluster: string;
  taskId: string;
  report: WharfTaskStateChange;
  resolve: (v: typeof ACK) => void;
  reject: (e: unknown) => void;
}

/** A cap on reports per transaction when the store sets no limit (SQLite). */
const MAX_BATCH = 256;

/** Counters of every report batcher in the process, for /metrics and the benchmarks. */
export const reportCommitStats = { txns: 0, reports: 0 };

class ReportBatcher {
  private queue: PendingReport[] = [];
  private running = false;

  constructor(private readonly ctx: ControlContext) {}

  submit(r: Omit<PendingReport, 'resolve' | 'reject'>): Promise<typeof ACK> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...r, resolve, reject });
      if (!this.running) {
        this.running = true;
        // The rest of this turn's reports join the first transaction.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          const left = await commitReports(this.ctx, batch);
          this.queue.unshift(...left);
        } catch (e) {
          if (!(e instanceof StoreConflictError)) {
            for (const p of batch) p.reject(e);
            continue;
          }
          // Someone else wrote one of these first: fold them again on the state that won.
          try {
            await committed(this.ctx, await this.ctx.store.revision());
            this.queue.unshift(...(await commitReports(this.ctx, batch)));
          } catch (again) {
            if (!(again instanceof StoreConflictError)) {
              for (const p of batch) p.reject(again);
              continue;
            }
            await Promise.all(batch.map((p) => commitReportAlone(this.ctx, p).then(p.resolve, p.reject)));
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}

const batchers = new WeakMap<ControlContext, ReportBatcher>();
function batcherOf(ctx: ControlContext): ReportBatcher {
  let b = batchers.get(ctx);
  if (!b) batchers.set(ctx, (b = new ReportBatcher(ctx)));
  return b;
}

function essentialWithCheckOf(ctx: ControlContext, t: TaskRecord): Set<string> {
  const td = ctx.state.taskDefinitions.get(t.taskDefinitionArn!.split('/').pop()!.replace(/:\d+$/, ''), t.taskDefinitionArn!.split(':').pop()!.padStart(10, '0'))?.value;
  return new Set((td?.containerDefinitions ?? []).filter((c) => c.essential !== false && c.healthCheck).map((c) => c.name!));
}

/**
 * Folds the reports into the cached tasks (several reports of one task in order) and commits
 * once; resolves the reports it committed and answers those that did not fit in the store's
 * maxTxnOps (a prefix of the batch is always taken, at least one report).
 */
async function commitReports(ctx: ControlContext, batch: PendingReport[]): Promise<PendingReport[]> {
  const tasks = new Map<string, { cluster: string; modRevision: number; value: TaskRecord }>();
  /** Remaining resources of the instances whose tasks stop in this batch, by cluster/id. */
  const instances = new Map<string, { cluster: string; id: string; remaining: Resource[] }>();
  const now = ctx.clock.now();
  const budget = ctx.store.maxTxnOps ?? Infinity;
  // A task update weighs 2, an instance's usage write 3 (store.ts txnWeight).
  let weight = 0;
  let taken = 0;
  for (const p of batch) {
    const k = `${p.cluster}/${p.taskId}`;
    const known = tasks.get(k);
    let cur = known;
    if (!cur) {
      const e = ctx.state.tasks.get(p.cluster, p.taskId);
      // Deleted since it was looked up: the single path answers as it always did.
      if (!e) throw new StoreConflictError(`tasks/${k}`, 'missing');
      cur = { cluster: p.cluster, modRevision: e.modRevision, value: e.value };
    }
    const next = isTerminal(cur.value.lastStatus) ? undefined : applyTaskReport(cur.value, p.report, now, essentialWithCheckOf(ctx, cur.value));
    const stops = next?.lastStatus === 'STOPPED' && next.wharf.instanceId && next.wharf.reservation && !next.wharf.released;
    const ic = next ? instanceClusterOf(next) : '';
    const ik = `${ic}/${next?.wharf.instanceId}`;
    const add = (known ? 0 : 2) + (stops && !instances.has(ik) ? 3 : 0);
    if (taken > 0 && weight + add > budget) break;
    weight += add;
    taken++;
    if (next && stops) {
      next.wharf.released = true;
      const id = next.wharf.instanceId!;
      const remaining = instances.get(ik)?.remaining ?? ctx.state.instances.get(ic, id)?.value.remainingResources;
      if (remaining) instances.set(ik, { cluster: ic, id, remaining: release(remaining, next.wharf.reservation!) });
    }
    tasks.set(k, next ? { ...cur, value: next } : cur);
  }
  const ops: TxnOp[] = [];
  for (const t of tasks.values()) {
    if (t.value !== ctx.state.tasks.get(t.cluster, t.value.wharf.id)?.value) ops.push({ op: 'update', key: taskKey(t.value), value: t.value, expectedRevision: t.modRevision });
  }
  for (const i of instances.values()) ops.push(...usageOps(ctx, i.cluster, i.id, i.remaining));
  if (ops.length > 0) {
    const rev = await ctx.store.txn(ops);
    reportCommitStats.txns++;
    reportCommitStats.reports += taken;
    await committed(ctx, rev);
  }
  for (const p of batch.slice(0, taken)) p.resolve(ACK);
  return batch.slice(taken);
}

/** One report in its own transaction, retried on conflicts (the path before batching). */
async function commitReportAlone(ctx: ControlContext, p: PendingReport): Promise<typeof ACK> {
  for (let attempt = 0; ; attempt++) {
    const entry = ctx.state.tasks.get(p.cluster, p.taskId);
    if (!entry) throw invalidParameter('The referenced task was not found.');
    const t = entry.value;
    if (isTerminal(t.lastStatus)) return ACK;
    const next = applyTaskReport(t, p.report, ctx.clock.now(), essentialWithCheckOf(ctx, t));
    if (!next) return ACK;
    const ops: TxnOp[] = [{ op: 'update', key: taskKey(t), value: next, expectedRevision: entry.modRevision }];
    if (next.lastStatus === 'STOPPED' && next.wharf.instanceId && next.wharf.reservation && !next.wharf.released) {
      next.wharf.released = true;
      const ic = instanceClusterOf(next);
      const ie = ctx.state.instances.get(ic, next.wharf.instanceId);
      if (ie) ops.push(...usageOps(ctx, ic, next.wharf.instanceId, release(ie.value.remainingResources ?? [], next.wharf.reservation)));
    }
    try {
      const rev = await ctx.store.txn(ops);
      await committed(ctx, rev);
      return ACK;
    } catch (e) {
      if (!(e instanceof StoreConflictError) || attempt >= 50) throw e;
      await committed(ctx, await ctx.store.revision());
    }
  }
}

export async function submitTaskStateChange(ctx: ControlContext, input: SubmitTaskStateChangeRequest & WharfTaskStateChange): Promise<SubmitTaskStateChangeResponse> {
  if (input.status !== undefined && !['PENDING', 'RUNNING', 'STOPPED', 'PROVISIONING', 'ACTIVATING', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING'].includes(input.status)) {
    throw invalidParameter(`Invalid task status '${input.status}'.`);
  }
  return applyReport(ctx, input.cluster, input.task, input);
}

export async function submitContainerStateChange(ctx: ControlContext, input: SubmitContainerStateChangeRequest & { healthStatus?: WharfContainerStateChange['healthStatus'] }): Promise<SubmitTaskStateChangeResponse> {
  if (!input.containerName) throw invalidParameter('containerName is required.');
  if (input.status !== undefined && containerStatusRank(input.status) < 0) throw new WharfError('InvalidParameterException', `Invalid container status '${input.status}'.`);
  const change: WharfContainerStateChange = {
    containerName: input.containerName,
    runtimeId: input.runtimeId,
    status: input.status,
    exitCode: input.exitCode,
    reason: input.reason,
    networkBindings: input.networkBindings,
    healthStatus: input.healthStatus,
  };
  return applyReport(ctx, input.cluster, input.task, { containers: [change] });
}
