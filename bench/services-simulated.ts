/**
 * The service scheduler at scale, on the simulated runtime (hollow instances: nothing runs, the
 * control plane does all its real work: placement, store transactions, agent channel, state
 * changes, deployment bookkeeping).
 *
 *   `wharf server` + `wharf agent --runtime simulated --instances 1000` (child processes);
 *   a REPLICA service of 5,000 tasks: time to steady state (runningCount = 5,000, COMPLETED);
 *   UpdateService to a new revision at minimumHealthyPercent 100 / maximumPercent 200: time until
 *   the new deployment is COMPLETED and no task of the old one is left, and the control plane's
 *   CPU time (utime + stime from /proc) spent per task replaced.
 * --quick: 500 tasks on 100 instances.
 *
 * Tasks count as healthy as soon as they are RUNNING (--healthy-after-running 0): the bench
 * measures the scheduler, not ECS's 40 s wait.
 *
 * Run: npx tsx bench/services-simulated.ts [--quick]     (or through bench/run.ts)
 */
import os from 'node:os';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type ECSClient,
  type Service,
} from '@aws-sdk/client-ecs';
import { killAllSpawned, removeDir, runWharfFrom, sleep, spawnAgent, spawnServer } from '../test/e2e/helpers/processes';
import { wharfEntry } from './lib/processes';

export interface SimulatedServiceBenchResult {
  instances: number;
  tasks: number;
  machine: string;
  registerSeconds: number;
  /** CreateService to runningCount = tasks and the deployment COMPLETED. */
  steadySeconds: number;
  /** UpdateService to the new deployment COMPLETED with every old task gone. */
  deploymentSeconds: number;
  tasksReplaced: number;
  serverCpuMsDuringDeployment: number;
  serverCpuMsPerTaskReplaced: number;
  agentCpuMsDuringDeployment: number;
}

const CLUSTER = 'bench-sim';

async function describe(ecs: ECSClient): Promise<Service> {
  return (await ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: ['fleet'] }))).services![0]!;
}

async function waitFor(ecs: ECSClient, ok: (s: Service) => boolean, what: string, timeoutMs: number): Promise<Service> {
  const end = Date.now() + timeoutMs;
  let last: Service | undefined;
  for (;;) {
    last = await describe(ecs);
    if (ok(last)) return last;
    if (Date.now() > end) {
      const d = last.deployments?.map((x) => `${x.status} ${x.rolloutState} running ${x.runningCount} pending ${x.pendingCount}`).join('; ');
      throw new Error(`timed out waiting for ${what}: running ${last.runningCount}, pending ${last.pendingCount}, deployments: ${d}; events: ${last.events?.slice(0, 3).map((e) => e.message).join(' | ')}`);
    }
    await sleep(250);
  }
}

export async function run(opts: { quick?: boolean } = {}): Promise<SimulatedServiceBenchResult> {
  runWharfFrom(wharfEntry()); // the built CLI, as users run it
  const instances = opts.quick ? 100 : 1000;
  const tasks = opts.quick ? 500 : 5000;
  const env = { WHARF_LOG_LEVEL: 'error' };
  const srv = await spawnServer({ healthyAfterRunningMs: 0, env, extraArgs: [], startTimeoutMs: 120_000 });
  const dirs = [srv.dataDir];
  try {
    const ecs = srv.ecs();
    await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }));
    const r0 = performance.now();
    const agent = await spawnAgent({
      server: srv,
      cluster: CLUSTER,
      runtime: 'simulated',
      instances,
      env: { ...env, NODE_OPTIONS: '--max-old-space-size=4096' },
      startTimeoutMs: 600_000,
    });
    dirs.push(agent.dataDir);
    const registerSeconds = (performance.now() - r0) / 1000;
    const td = async (v: string) =>
      (
        await ecs.send(
          new RegisterTaskDefinitionCommand({
            family: 'bench-fleet',
            containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', essential: true, memory: 64, cpu: 16, command: ['sleep', '3600'], environment: [{ name: 'V', value: v }] }],
          }),
        )
      ).taskDefinition!.taskDefinitionArn!;
    const td1 = await td('one');
    const td2 = await td('two');
    const completed = (arn: string) => (s: Service) =>
      s.deployments?.length === 1 && s.deployments[0]!.taskDefinition === arn && s.deployments[0]!.rolloutState === 'COMPLETED' && s.runningCount === tasks && s.pendingCount === 0;

    const t0 = performance.now();
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'fleet', taskDefinition: td1, desiredCount: tasks, deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 } }));
    await waitFor(ecs, completed(td1), 'the service to reach a steady state', 900_000);
    const steadySeconds = (performance.now() - t0) / 1000;

    const cpu0 = srv.cpuTimeMs();
    const acpu0 = agent.cpuTimeMs();
    const t1 = performance.now();
    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: 'fleet', taskDefinition: td2 }));
    // One deployment left means the old one has no task present any more.
    await waitFor(ecs, completed(td2), 'the rolling deployment to complete', 1_800_000);
    const deploymentSeconds = (performance.now() - t1) / 1000;
    const serverCpu = srv.cpuTimeMs() - cpu0;
    const agentCpu = agent.cpuTimeMs() - acpu0;
    await agent.kill9();
    return {
      instances,
      tasks,
      machine: `${os.cpus().length} cpu ${os.cpus()[0]?.model ?? ''}`,
      registerSeconds: Math.round(registerSeconds * 10) / 10,
      steadySeconds: Math.round(steadySeconds * 10) / 10,
      deploymentSeconds: Math.round(deploymentSeconds * 10) / 10,
      tasksReplaced: tasks,
      serverCpuMsDuringDeployment: Math.round(serverCpu),
      serverCpuMsPerTaskReplaced: Math.round((serverCpu / tasks) * 100) / 100,
      agentCpuMsDuringDeployment: Math.round(agentCpu),
    };
  } finally {
    await killAllSpawned();
    for (const d of dirs) removeDir(d);
  }
}

export function toMarkdown(r: SimulatedServiceBenchResult): string {
  return [
    `\`wharf server\` (SQLite, synchronous=NORMAL) and \`wharf agent --runtime simulated --instances ${r.instances}\` as two processes on one machine (${r.machine}; the simulated fleet shares the machine's CPUs with the control plane). One REPLICA service of ${r.tasks.toLocaleString('en-US')} tasks (64 MiB, 16 CPU units each); tasks count as healthy once RUNNING.`,
    '',
    '| Measurement | Value |',
    '|---|---:|',
    `| Register ${r.instances} simulated instances | ${r.registerSeconds} s |`,
    `| CreateService to steady state (${r.tasks.toLocaleString('en-US')} tasks RUNNING, deployment COMPLETED) | ${r.steadySeconds} s |`,
    `| Rolling deployment 100/200 to a new revision: UpdateService to COMPLETED, old tasks gone | ${r.deploymentSeconds} s |`,
    `| Control-plane CPU time during the deployment | ${(r.serverCpuMsDuringDeployment / 1000).toFixed(1)} s |`,
    `| Control-plane CPU time per task replaced | ${r.serverCpuMsPerTaskReplaced} ms |`,
    `| Simulated-agent process CPU time during the deployment | ${(r.agentCpuMsDuringDeployment / 1000).toFixed(1)} s |`,
  ].join('\n') + '\n';
}

if (require.main === module) {
  run({ quick: process.argv.includes('--quick') }).then(
    (r) => process.stdout.write(toMarkdown(r) + '\n' + JSON.stringify(r) + '\n'),
    (e: unknown) => {
      process.stderr.write(String(e instanceof Error ? e.stack : e) + '\n');
      process.exit(1);
    },
  );
}
