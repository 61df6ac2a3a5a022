/**
 * Where the time of one FARGATE RunTask -> RUNNING goes, from the Docker Engine's own event
 * timestamps: RunTask answered, pause container created, pause started (its network attached),
 * task container created, task container started, RUNNING seen in DescribeTasks (polled every
 * 5 ms). Not a benchmark run.ts runs (it lives in bench/lib); a profiling tool for the figures
 * in bench/fargate-tasks.ts. Prints one tab-separated row of ms per task.
 *
 *   npx tsx bench/lib/fargate-start-profile.ts gvisor|runc [samples]
 */
import { defaultSubnets } from '../../test/e2e/helpers/wharf-server';
import fs from 'node:fs'; import os from 'node:os'; import path from 'node:path';
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import Docker from 'dockerode';
import { startServer } from '../../src/cmd/server';
import { startAgents } from '../../src/cmd/agent';
import { FARGATE_POOL } from '../../src/core/fargate-pool';
import { createLogger } from '../../src/lib';
import { ensureAgentToken } from '../../src/cmd/agent-tokens';
async function main() {
  const sandbox = (process.argv[2] ?? 'runc') as 'runc' | 'gvisor';
  const docker = new Docker();
  const events: { t: number; action: string; name: string }[] = [];
  const stream = await docker.getEvents({ filters: JSON.stringify({ type: ['container'], event: ['create', 'start'] }) }) as NodeJS.ReadableStream;
  stream.on('data', (d: Buffer) => { for (const l of String(d).split('\n').filter(Boolean)) { const e = JSON.parse(l); const a = e.Actor?.Attributes ?? {}; events.push({ t: e.timeNano / 1e6, action: e.Action, name: `${a['com.amazonaws.ecs.task-arn'] ?? ''} ${a['com.amazonaws.ecs.container-name'] ?? ''}` }); } });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-prof-'));
  const log = createLogger('bench', 'silent');
  const srv = await startServer({ host: '127.0.0.1', port: 0, dataDir, region: 'us-east-1', accountId: '123456789012', synchronous: 'FULL', log });
  const ecs = new ECSClient({ endpoint: srv.endpoint, region: 'us-east-1', credentials: srv.credentials.user, maxAttempts: 3 });
  const cluster = `prof-${process.pid}`;
  const clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
  const agents = await startAgents({ endpoint: srv.endpoint, region: 'us-east-1', cluster: FARGATE_POOL, credentials: ensureAgentToken(dataDir, FARGATE_POOL), dataDir, attributes: {}, fargateSandbox: sandbox, runtime: 'docker', instances: 1, pullBehaviour: 'prefer-cached', log });
  const env = { ...process.env, AWS_ACCESS_KEY_ID: srv.credentials.user.accessKeyId, AWS_SECRET_ACCESS_KEY: srv.credentials.user.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1' };
  const subnet = (await defaultSubnets({ endpoint: srv.endpoint, env: () => env }))['us-east-1a']!.id;
  const td = (await ecs.send(new RegisterTaskDefinitionCommand({ family: 'prof', requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox:latest', essential: true, stopTimeout: 2, command: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'] }] }))).taskDefinition!.taskDefinitionArn!;
  const rows: string[] = [];
  for (let i = 0; i < Number(process.argv[3] ?? 6); i++) {
    const t0 = Date.now();
    const out = await ecs.send(new RunTaskCommand({ cluster, taskDefinition: td, launchType: 'FARGATE', networkConfiguration: { awsvpcConfiguration: { subnets: [subnet] } } }));
    const tRun = Date.now();
    const arn = out.tasks![0]!.taskArn!; const id = arn.split('/').pop()!;
    let tRunning = 0;
    for (;;) { const t = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn] }))).tasks![0]!; if (t.lastStatus === 'RUNNING') { tRunning = Date.now(); break; } await new Promise((r) => setTimeout(r, 5)); }
    await new Promise((r) => setTimeout(r, 300));
    const mine = events.filter((e) => e.name.includes(id));
    const at = (a: string, pause: boolean) => mine.find((e) => e.action === a && e.name.includes('pause') === pause)?.t ?? NaN;
    const pc = at('create', true), ps = at('start', true), ac = at('create', false), as = at('start', false);
    rows.push([tRun - t0, pc - tRun, ps - pc, ac - ps, as - ac, tRunning - as, tRunning - t0].map((x) => Math.round(x)).join('\t'));
    await ecs.send(new StopTaskCommand({ cluster, task: arn }));
    for (;;) { const t = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn] }))).tasks![0]!; if (t.lastStatus === 'STOPPED') break; await new Promise((r) => setTimeout(r, 100)); }
  }
  console.log(`sandbox ${sandbox}\nRunTask\t->pauseCreate\tpauseCreate->pauseStart\tpauseStart->appCreate\tappCreate->appStart\tappStart->RUNNING seen\ttotal`);
  console.log(rows.join('\n'));
  await agents.stop(); ecs.destroy(); await srv.close(); (stream as unknown as { destroy(): void }).destroy();
  const ids = (await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`com.amazonaws.ecs.cluster=${clusterArn}`] }) })).map((c) => c.Id);
  await Promise.all(ids.map((i) => docker.getContainer(i).remove({ force: true }).catch(() => undefined)));
  fs.rmSync(dataDir, { recursive: true, force: true });
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
