/**
 * The scheduler end-to-end benchmark (bench/scheduler-e2e.ts) in distributed mode: three
 * replicas on a three-member etcd cluster behind the clients (spread round-robin), against one
 * server on SQLite in the same run (SQLite first). Goals (issue 13): at least 1,500 tasks placed
 * per second on etcd, at most 1 GiB of memory per replica.
 *
 *   npx tsx bench/scheduler-e2e-etcd.ts                          1,000 instances, 100,000 tasks
 *   npx tsx bench/scheduler-e2e-etcd.ts --instances 200 --tasks 10000   a smaller size
 *   npx tsx bench/scheduler-e2e-etcd.ts --quick                  100 instances, 5,000 tasks
 *   ... --clients-on-one-replica   every client calls the first replica: one group-commit queue
 *                                  decides every placement (what a single placement writer gives)
 *
 * Besides the rates it reports figures that do not depend on how loaded the machine is: etcd
 * write transactions (Raft proposals) per RunTask, the bytes per task the etcd members wrote to
 * their WALs and sent to their clients, the size of a stored task record, the CPU burnt per second with nothing to place, CPU seconds per 1,000 tasks of the replicas,
 * the etcd members and the agent, and the group commits' sizes (placement transactions and the
 * callers they answered, conflicts, the largest batch; task report transactions and reports).
 */
import os from 'node:os';
import { runOnce, type E2EResult } from './scheduler-e2e';
import { etcdTxnFloor, type EtcdFloor } from './lib/etcd-floor';

export interface EtcdComparison {
  sqlite: E2EResult;
  etcd: E2EResult;
  /** etcd alone on this machine, in the same run (bench/lib/etcd-floor.ts). */
  floor: EtcdFloor[];
}

export async function run(
  opts: { quick?: boolean; instances?: number; tasks?: number; clients?: number; clientsOnOneReplica?: boolean } = {},
): Promise<EtcdComparison> {
  const common = { quick: opts.quick, instances: opts.instances, tasks: opts.tasks, clients: opts.clients, clientsOnOneReplica: opts.clientsOnOneReplica };
  process.stderr.write('scheduler-e2e-etcd: SQLite (one server)\n');
  const sqlite = await runOnce({ ...common, store: 'sqlite' });
  process.stderr.write('scheduler-e2e-etcd: etcd (three replicas)\n');
  const etcd = await runOnce({ ...common, store: 'etcd' });
  process.stderr.write('scheduler-e2e-etcd: etcd alone\n');
  const floor = await etcdTxnFloor();
  return { sqlite, etcd, floor };
}

/**
 * What the figures say, from the figures: the rate against the goal, and the bound the CPU per
 * task puts on it when everything shares this machine's cores (cores / CPU-seconds per task).
 */
function summary(r: EtcdComparison): string[] {
  const e = r.etcd;
  const c = e.cpuPer1000Tasks;
  const perTask = (c.controlPlane + c.etcd + c.agent) / 1000;
  const cores = os.cpus().length;
  const bound = perTask > 0 ? Math.round(cores / perTask) : NaN;
  const size = `${e.instances.toLocaleString('en-US')} instances, ${e.tasks.toLocaleString('en-US')} tasks`;
  return [
    `Command: \`npx tsx bench/run.ts scheduler-e2e-etcd\` (full size: 1,000 instances, 100,000 tasks), or ` +
      '`npx tsx bench/scheduler-e2e-etcd.ts --instances 200 --tasks 10000` for a reduced one. ' +
      `This run (${size}): ${e.placedPerSecond} tasks/s on etcd against ${r.sqlite.placedPerSecond} on SQLite (${(e.placedPerSecond / Math.max(1, r.sqlite.placedPerSecond)).toFixed(2)}x); ` +
      `the 1,500/s goal is ${e.placedPerSecond >= 1500 ? 'met' : 'NOT met'}. Memory per replica: ${e.serverPeakRssMiB} MiB peak (goal 1,024: ${e.serverPeakRssMiB <= 1024 ? 'met' : 'NOT met'}). ` +
      `The replicas, etcd members and agent together spend ${(perTask * 1000).toFixed(2)} CPU-ms per task placed ` +
      `(${c.controlPlane} + ${c.etcd} + ${c.agent} per 1,000 tasks), so on these ${cores} shared cores the whole system cannot place more than about ` +
      `${bound} tasks/s however the work is batched; 1,500/s here would need at most ${((cores / 1500) * 1000).toFixed(2)} CPU-ms per task.`,
  ];
}

function batchMean(r: E2EResult): string {
  return r.placementTxns > 0 ? (r.placementCalls / r.placementTxns).toFixed(2) : '?';
}

export function toMarkdown(r: EtcdComparison): string {
  const { sqlite: s, etcd: e } = r;
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? `${(a / b).toFixed(2)}x` : '?');
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const row = (name: string, a: number | string | null, b: number | string | null, note = '') => `| ${name} | ${a ?? '?'} | ${b ?? '?'} | ${note} |`;
  return [
    `${e.instances.toLocaleString('en-US')} hollow instances (one \`wharf agent --runtime simulated\` process, given every replica), ` +
      `${e.tasks.toLocaleString('en-US')} tasks via RunTask (count 10, ${e.clients} concurrent SDK v3 clients, on etcd ${e.clientsOnOneReplica ? 'all calling the first replica (--clients-on-one-replica)' : 'spread round-robin over the replicas'}), ` +
      `\`--sync ${e.sync}\` on SQLite; one run each, SQLite first, in the same run. Everything (etcd members, replicas, agent, clients) shares this ` +
      `${os.cpus().length}-core machine; load average ${s.loadAverage[0]} at the start of SQLite's placement, ${e.loadAverage[0]} at etcd's, ${e.loadAverage[1]} at the end.`,
    '',
    '| figure | SQLite, 1 server | etcd, 3 replicas | etcd vs SQLite; goal |',
    '|---|---|---|---|',
    row('tasks placed per second', s.placedPerSecond, e.placedPerSecond, `${ratio(e.placedPerSecond, s.placedPerSecond)}; goal on etcd >= 1,500 (${goal(e.placedPerSecond >= 1500)})`),
    row('tasks placed / failures', `${s.placed} / ${s.failures}`, `${e.placed} / ${e.failures}${e.failures ? ` ${JSON.stringify(e.failureReasons)}` : ''}`),
    row('RunTask (count 10) p50 / p99 (ms)', `${s.runTaskP50Ms} / ${s.runTaskP99Ms}`, `${e.runTaskP50Ms} / ${e.runTaskP99Ms}`, `p50 ${ratio(e.runTaskP50Ms, s.runTaskP50Ms)}`),
    row('seconds until all RUNNING', s.allRunningSeconds, e.allRunningSeconds),
    row('peak RSS of a control-plane process (MiB; etcd: largest replica)', s.serverPeakRssMiB, e.serverPeakRssMiB, `goal <= 1,024 per replica (${goal(e.serverPeakRssMiB <= 1024)})`),
    row('live heap after a full GC (MiB; etcd: largest replica)', s.serverLiveHeapMiB, e.serverLiveHeapMiB),
    row('CPU seconds while placing: control plane (all replicas) / etcd members / agent', `${s.serverCpuPlacing} / - / ${s.agentCpuPlacing}`, `${e.serverCpuPlacing} / ${e.etcdCpuPlacing} / ${e.agentCpuPlacing}`),
    row('seconds to register and connect all instances', s.registerSeconds, e.registerSeconds),
    row('etcd write transactions (Raft proposals) committed while placing', '-', e.etcdCommitsPlacing, `${(e.etcdCommitsPlacing / Math.max(1, e.placeSeconds)).toFixed(0)}/s; RunTask calls: ${Math.ceil(e.tasks / 10)}`),
    row('etcd write transactions per RunTask (load-insensitive)', '-', e.etcdTxnsPerRunTask),
    row('idle CPU-ms per second, all instances connected, nothing placed: control plane / etcd members / agent', `${s.idleCpuMsPerSecond.controlPlane} / - / ${s.idleCpuMsPerSecond.agent}`, `${e.idleCpuMsPerSecond.controlPlane} / ${e.idleCpuMsPerSecond.etcd} / ${e.idleCpuMsPerSecond.agent}`),
    row('etcd calls per RunTask while placing, by method (all replicas; load-insensitive)', '-', Object.entries(e.etcdCallsPerRunTask).map(([k, v]) => `${k} ${v}`).join(', ')),
    row('bytes per task placed, while placing: written to the etcd WALs / sent to clients (all members; load-insensitive)', '-', `${e.etcdBytesPerTask.wal} / ${e.etcdBytesPerTask.sent}`),
    row('a stored task record once RUNNING: bytes etcd holds / its JSON text (mean of up to 1,000)', '-', e.taskRecordBytes ? `${e.taskRecordBytes.stored} / ${e.taskRecordBytes.json}` : '?'),
    row('CPU seconds per 1,000 tasks while placing: control plane / etcd members / agent (load-insensitive)', `${s.cpuPer1000Tasks.controlPlane} / - / ${s.cpuPer1000Tasks.agent}`, `${e.cpuPer1000Tasks.controlPlane} / ${e.cpuPer1000Tasks.etcd} / ${e.cpuPer1000Tasks.agent}`),
    row('placement transactions / callers answered (group commit; mean, largest batch)', `${s.placementTxns} / ${s.placementCalls} (${batchMean(s)}, ${s.placementLargestBatch})`, `${e.placementTxns} / ${e.placementCalls} (${batchMean(e)}, ${e.placementLargestBatch})`, `conflicts: ${s.placementConflicts} / ${e.placementConflicts}`),
    row("agents' task reports: transactions / reports (whole run)", `${s.reportTxns} / ${s.reports}`, `${e.reportTxns} / ${e.reports}`),
    '',
    'etcd alone, same machine, same run (three members on loopback; 11 keys of 1.5 KB per transaction, about what a RunTask of ten tasks writes):',
    '',
    '| transactions at a time | transactions/s | p50 (ms) | p99 (ms) |',
    '|---|---|---|---|',
    ...r.floor.map((f) => `| ${f.concurrency} | ${f.txnsPerSecond} | ${f.p50Ms} | ${f.p99Ms} |`),
    '',
    ...summary(r),
    '',
  ].join('\n');
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const num = (n: string) => (argv.includes(n) ? Number(argv[argv.indexOf(n) + 1]) : undefined);
  run({
    quick: argv.includes('--quick'),
    instances: num('--instances'),
    tasks: num('--tasks'),
    clients: num('--clients'),
    clientsOnOneReplica: argv.includes('--clients-on-one-replica'),
  })
    .then((r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n\n' + toMarkdown(r)))
    .catch((e: unknown) => {
      process.stderr.write(`scheduler-e2e-etcd: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    });
}
