/**
 * The web console at scale: page load and live-update latency in headless Chromium against a
 * `wharf server` holding many services and tasks on the simulated runtime (hollow instances:
 * the control plane does its real work, nothing runs in Docker).
 *
 *   full: 1,000 services of 100 tasks (100,000 tasks) on 1,000 simulated instances
 *   --quick: 100 services of 10 tasks (1,000 tasks) on 50 instances
 *
 * Page load: from navigation to the page's table filled (services page: 50 rows, its first page;
 * tasks page: 100 rows; a service page; the cluster page with every instance's bars), median of 5
 * loads. Update latency: UpdateService through the SDK until the open service page shows the new
 * desired count (the page polls every 2 s, so the floor is the poll interval), median of 5.
 *
 * Run: npx tsx bench/console-pages.ts [--quick]     (or through bench/run.ts)
 */
import os from 'node:os';
import { CreateClusterCommand, CreateServiceCommand, DescribeClustersCommand, RegisterTaskDefinitionCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { ensureConsoleBuilt, launchBrowser } from '../test/e2e/helpers/browser';
import { killAllSpawned, removeDir, runWharfFrom, sleep, spawnAgent, spawnServer } from '../test/e2e/helpers/processes';
import { wharfEntry } from './lib/processes';

const CLUSTER = 'bench-console';

export interface ConsoleBenchResult {
  machine: string;
  services: number;
  tasksPerService: number;
  instances: number;
  seedSeconds: number;
  pages: { page: string; rows: number; medianMs: number; maxMs: number }[];
  update: { medianMs: number; maxMs: number; pollMs: number };
  /** Load average (1 min) when seeding began, when page loads began, at the end. */
  load: number[];
}

// Run in the page (the console's CSP forbids evaluating strings), so typed without the DOM lib.
type Doc = { document: { querySelectorAll(s: string): { length: number }; querySelector(s: string): { textContent: string | null } | null } };
const rowsAtLeast = (n: number) => (globalThis as unknown as Doc).document.querySelectorAll('main tbody tr').length >= n;
const desiredIs = (want: string) => (globalThis as unknown as Doc).document.querySelector('[data-testid=desired]')?.textContent === want;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(opts: { quick?: boolean } = {}): Promise<ConsoleBenchResult> {
  runWharfFrom(wharfEntry()); // the built CLI, as users run it
  const services = opts.quick ? 100 : 1000;
  const perService = opts.quick ? 10 : 100;
  const instances = opts.quick ? 50 : 1000;
  const env = { WHARF_LOG_LEVEL: 'error' };
  ensureConsoleBuilt();
  const srv = await spawnServer({ healthyAfterRunningMs: 0, env, startTimeoutMs: 120_000 });
  const dirs = [srv.dataDir];
  const browser = await launchBrowser();
  try {
    const ecs = srv.ecs();
    await ecs.send(new CreateClusterCommand({ clusterName: CLUSTER }));
    const agent = await spawnAgent({
      server: srv,
      cluster: CLUSTER,
      runtime: 'simulated',
      instances,
      resources: 'cpu=16384,memory=65536',
      env: { ...env, NODE_OPTIONS: '--max-old-space-size=4096' },
      startTimeoutMs: 600_000,
    });
    dirs.push(agent.dataDir);
    const td = (
      await ecs.send(
        new RegisterTaskDefinitionCommand({
          family: 'bench-console',
          containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', essential: true, memory: 16, cpu: 4, command: ['sleep', '3600'] }],
        }),
      )
    ).taskDefinition!.taskDefinitionArn!;
    const loadAtSeed = os.loadavg()[0]!;
    const s0 = performance.now();
    const names = Array.from({ length: services }, (_, i) => `svc-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((serviceName) => ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName, taskDefinition: td, desiredCount: perService }))));
    }
    const total = services * perService;
    for (;;) {
      const c = (await ecs.send(new DescribeClustersCommand({ clusters: [CLUSTER] }))).clusters![0]!;
      if ((c.runningTasksCount ?? 0) >= total) break;
      if (performance.now() - s0 > 3_600_000) throw new Error(`only ${c.runningTasksCount} of ${total} tasks running after an hour`);
      await sleep(1000);
    }
    const seedSeconds = (performance.now() - s0) / 1000;

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${srv.endpoint}/console/`);
    await page.getByLabel('Access key ID').fill(srv.keys.accessKeyId);
    await page.getByLabel('Secret access key').fill(srv.keys.secretAccessKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: /^Clusters/ }).waitFor();

    const target = names[0]!;
    const cases: { page: string; hash: string; rows: number }[] = [
      { page: 'Services (first page)', hash: `#/services?cluster=${CLUSTER}`, rows: Math.min(50, services) },
      { page: 'Tasks (first page)', hash: `#/tasks?cluster=${CLUSTER}`, rows: Math.min(100, total) },
      { page: 'Tasks of one service', hash: `#/tasks?cluster=${CLUSTER}&service=${target}`, rows: Math.min(100, perService) },
      { page: 'Service (deployments, events)', hash: `#/services/${CLUSTER}/${target}`, rows: 1 },
      { page: `Cluster (${instances} instances with bars)`, hash: `#/clusters/${CLUSTER}`, rows: instances },
    ];
    const loadAtPages = os.loadavg()[0]!;
    const pages: ConsoleBenchResult['pages'] = [];
    for (const c of cases) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        await page.goto('about:blank');
        const t = performance.now();
        await page.goto(`${srv.endpoint}/console/${c.hash}`);
        await page.waitForFunction(rowsAtLeast, c.rows, { timeout: 120_000, polling: 10 });
        times.push(performance.now() - t);
      }
      pages.push({ page: c.page, rows: c.rows, medianMs: Math.round(median(times)), maxMs: Math.round(Math.max(...times)) });
    }

    await page.goto(`${srv.endpoint}/console/#/services/${CLUSTER}/${target}`);
    await page.getByTestId('desired').waitFor();
    const updates: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const want = String(perService + (i % 2));
      const t = performance.now();
      await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: target, desiredCount: Number(want) }));
      await page.waitForFunction(desiredIs, want, { timeout: 60_000, polling: 10 });
      updates.push(performance.now() - t);
      await sleep(500);
    }
    await context.close();
    return {
      machine: `${os.cpus().length} cpu ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ') ?? ''}`.trim(),
      services,
      tasksPerService: perService,
      instances,
      seedSeconds: Math.round(seedSeconds * 10) / 10,
      pages,
      update: { medianMs: Math.round(median(updates)), maxMs: Math.round(Math.max(...updates)), pollMs: 2000 },
      load: [loadAtSeed, loadAtPages, os.loadavg()[0]!].map((l) => Math.round(l * 10) / 10),
    };
  } finally {
    await browser.close().catch(() => undefined);
    await killAllSpawned();
    for (const d of dirs) removeDir(d);
  }
}

export function toMarkdown(r: ConsoleBenchResult): string {
  return [
    `Headless Chromium (Debian) against \`wharf server\` and \`wharf agent --runtime simulated --instances ${r.instances}\` on one machine (${r.machine}): ${r.services.toLocaleString('en-US')} services of ${r.tasksPerService} tasks (${(r.services * r.tasksPerService).toLocaleString('en-US')} tasks RUNNING; seeding took ${r.seedSeconds} s). Page load is navigation until the page's table is filled, every call signed with SigV4 in the browser; median and worst of 5.`,
    '',
    '| Page | Rows | Median | Worst |',
    '|---|---:|---:|---:|',
    ...r.pages.map((p) => `| ${p.page} | ${p.rows} | ${p.medianMs} ms | ${p.maxMs} ms |`),
    `| Update latency: UpdateService until the open service page shows it (polls every ${r.update.pollMs / 1000} s) | | ${r.update.medianMs} ms | ${r.update.maxMs} ms |`,
    '',
    `Load average (1 min) on the ${r.machine.split(' ')[0]} cpus: ${r.load[0]} when seeding began, ${r.load[1]} when the page loads began, ${r.load[2]} at the end${Math.max(...r.load) > 2 * Number(r.machine.split(' ')[0]) ? ' (other work shared the machine: every figure is skewed upward)' : ''}.`,
    '',
    `Command: \`npx tsx bench/run.ts console-pages\` (full: 1,000 services of 100 tasks on 1,000 simulated instances) or \`npx tsx bench/console-pages.ts --quick\` (100 of 10 on 50).`,
    '',
  ].join('\n');
}

if (require.main === module) {
  run({ quick: process.argv.includes('--quick') }).then(
    (r) => process.stdout.write(toMarkdown(r)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
