/**
 * Where the time of one RunTask -> RUNNING goes, split into control plane, agent and report
 * back. Not a benchmark run.ts runs (it lives in bench/lib): a profiling tool for the figures
 * of bench/tasks-docker.ts (mode `ec2`) and bench/fargate-tasks.ts (modes `runc`, `gvisor`).
 * Server and agent run as processes of their own, as in those benches; the agent logs at debug,
 * and its `task start steps` line (agent/start-timeline.ts) gives when its runner began and
 * each step; the Docker Engine's own events give when each container was created and started.
 *
 * Columns (ms, per task; medians last):
 *   answer    RunTask sent -> answered
 *   push      RunTask sent -> the agent's runner began (the task pushed over the channel)
 *   agent     runner began -> every container started (the agent's own total)
 *   report    every container started -> DescribeTasks said RUNNING (state change sent,
 *             committed, seen by a poll every 5 ms)
 *   total     RunTask sent -> DescribeTasks said RUNNING
 *   floor     create + start through the Engine API of the task container's configuration
 *             (bench/lib/engine-floor.ts; Fargate: on a bridge network of its own, same runtime),
 *             taken right after each task, with nothing polling
 *   cpu       CPU ms the server, the agent and this process (the polling client) each used
 *             during the task's start
 * then the agent's steps as `name start-end` (ms since the runner began).
 *
 *   npx tsx bench/lib/start-profile.ts ec2|runc|gvisor [samples] [agent flags...]
 *
 * e.g. `... runc 8 --pause-pool 0` for a Fargate start without pause containers started ahead.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, CreateClusterCommand, type RunTaskCommandInput } from '@aws-sdk/client-ecs';
import Docker from 'dockerode';
import { removeClusterContainers, runWharfFrom, sleep, spawnAgent, spawnServer } from '../../test/e2e/helpers/processes';
import { wharfEntry } from './processes';
import { defaultSubnets } from '../../test/e2e/helpers/wharf-server';
import { taskTimer } from './task-timing';
import { floorConfigFrom, floorStart, removeLabelled, type FloorConfig } from './engine-floor';

const IMAGE = 'wharf-test/busybox:latest';
const COMMAND = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

async function main(): Promise<void> {
  runWharfFrom(wharfEntry()); // the built CLI, as users run it
  const mode = (process.argv[2] ?? 'ec2') as 'ec2' | 'runc' | 'gvisor';
  const samples = Number(process.argv[3] ?? 8);
  execFileSync(`${__dirname}/../../test/images/build.sh`, { stdio: 'ignore' });
  const docker = new Docker();
  const events: { t: number; action: string; task: string; pause: boolean }[] = [];
  const stream = (await docker.getEvents({ filters: JSON.stringify({ type: ['container'], event: ['create', 'start'] }) })) as NodeJS.ReadableStream;
  stream.on('data', (d: Buffer) => {
    for (const l of String(d).split('\n').filter(Boolean)) {
      const e = JSON.parse(l) as { timeNano: number; Action: string; Actor?: { Attributes?: Record<string, string> } };
      const a = e.Actor?.Attributes ?? {};
      events.push({ t: e.timeNano / 1e6, action: e.Action, task: a['com.amazonaws.ecs.task-arn'] ?? '', pause: a['io.wharf.pause'] === 'true' });
    }
  });
  const cluster = `prof-${process.pid}`;
  const srv = await spawnServer({ sync: 'full', env: { WHARF_LOG_LEVEL: 'error' } });
  const ecs = srv.ecs();
  const clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
  const fargate = mode !== 'ec2';
  const agent = await spawnAgent({
    server: srv,
    cluster,
    fargate,
    resources: fargate ? `cpu=${4 * 256},memory=${4 * 512}` : undefined,
    extraArgs: [...(fargate ? ['--fargate-sandbox', mode] : []), '--image-pull-behavior', 'prefer-cached', ...process.argv.slice(4)],
    env: { WHARF_LOG_LEVEL: 'debug' },
  });
  const rows: number[][] = [];
  try {
    const td = (
      await ecs.send(
        new RegisterTaskDefinitionCommand(
          fargate
            ? { family: 'prof', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: IMAGE, essential: true, stopTimeout: 2, command: COMMAND }] }
            : { family: 'prof', networkMode: 'bridge', containerDefinitions: [{ name: 'app', image: IMAGE, memory: 16, essential: true, stopTimeout: 2, command: COMMAND }] },
        ),
      )
    ).taskDefinition!.taskDefinitionArn!;
    const request: RunTaskCommandInput = fargate
      ? { cluster, taskDefinition: td, launchType: 'FARGATE', networkConfiguration: { awsvpcConfiguration: { subnets: [(await defaultSubnets(srv))['us-east-1a']!.id] } } }
      : { cluster, taskDefinition: td };
    const { waitAll, stopAll } = taskTimer(ecs, cluster, { pollMs: 5, timeoutMs: 120_000 });
    const floorNet = `wharf-prof-floor-${process.pid}`;
    let floor: FloorConfig | undefined;
    const marker = { 'io.wharf.bench.floor': cluster };
    const cpu = () => [srv.cpuTimeMs(), agent.cpuTimeMs(), (process.cpuUsage().user + process.cpuUsage().system) / 1000];
    console.log(`mode ${mode}\tanswer\tpush\tagent\treport\ttotal\tfloor\tcpu:srv\tagent\tclient\tsteps`);
    for (let i = 0; i <= samples; i++) {
      const cpu0 = cpu();
      const t0 = Date.now();
      const out = await ecs.send(new RunTaskCommand(request));
      const tAnswer = Date.now();
      const arn = out.tasks![0]!.taskArn!;
      await waitAll([arn], 'RUNNING');
      const tRunning = Date.now();
      const cpuUsed = cpu().map((x, k) => x - cpu0[k]!);
      await sleep(200);
      const line = agent
        .output()
        .split('\n')
        .filter((l) => l.includes('task start steps') && l.includes(arn))
        .pop();
      const steps = line ? (JSON.parse(line) as { startedAt: number; totalMs: number; steps: string }) : undefined;
      const mine = events.filter((e) => e.task === arn && !e.pause && e.action === 'start');
      const appStarted = mine.length ? Math.max(...mine.map((e) => e.t)) : NaN;
      if (!floor) {
        const runtimeId = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn] }))).tasks![0]!.containers![0]!.runtimeId!;
        const base = await floorConfigFrom(docker, runtimeId, marker);
        if (fargate) await docker.createNetwork({ Name: floorNet, Driver: 'bridge' });
        floor = fargate
          ? { ...base, HostConfig: { ...base.HostConfig, NetworkMode: floorNet, CgroupParent: undefined, Memory: 512 * 1048576, Runtime: mode === 'gvisor' ? 'runsc' : 'runc' } }
          : base;
      }
      await stopAll([arn]);
      const floorMs = await floorStart(docker, floor);
      await removeLabelled(docker, 'io.wharf.bench.floor', cluster);
      const row = [tAnswer - t0, (steps?.startedAt ?? NaN) - t0, steps?.totalMs ?? NaN, tRunning - appStarted, tRunning - t0, floorMs, ...cpuUsed];
      // The first is a warm-up (first-use costs), not counted.
      if (i > 0) rows.push(row);
      console.log(`${i === 0 ? 'warm-up' : i}\t${row.map((x) => Math.round(x)).join('\t')}\t${steps?.steps ?? '?'}`);
    }
    console.log(`median\t${[0, 1, 2, 3, 4, 5, 6, 7, 8].map((k) => Math.round(median(rows.map((r) => r[k]!)))).join('\t')}`);
    if (fargate) await docker.getNetwork(floorNet).remove().catch(() => undefined);
    console.log(`load\t${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  } finally {
    await agent.stop();
    await srv.stop();
    (stream as unknown as { destroy(): void }).destroy();
    await removeClusterContainers(clusterArn);
    for (const dir of [srv.dataDir, agent.dataDir]) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
