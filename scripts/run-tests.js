#!/usr/bin/env node
// Runs the test suites with node's test runner (TypeScript through tsx):
//   unit tests (src/**/*.test.ts) in parallel, then end-to-end tests (test/e2e/**/*.test.ts) in
//   two lanes that run side by side, each one file at a time. They share one Docker Engine, and
//   what must not run at once stays in one lane: lane 1 holds every file that makes the engine's
//   networks (awsvpc subnets, Fargate), HAProxy and wharf-elb0 addresses, or a dockerd of its own;
//   lane 2 the rest (API-only files, bridge-mode tasks, the test bed's namespaces, etcd). Most of
//   an end-to-end test is waiting (for containers, health checks, timeouts), so two lanes on two
//   cores take little more than the longer lane. WHARF_E2E_LANES=1 runs one lane, as before.
// Flags: --unit, --e2e (only that part); any other argument filters files by substring.
'use strict';
const { spawnSync } = require('node:child_process');
const { readdirSync, statSync } = require('node:fs');
const { join, relative } = require('node:path');

const root = join(__dirname, '..');
function find(dir, out = []) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) find(p, out);
    else if (e.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

const args = process.argv.slice(2);
const onlyUnit = args.includes('--unit');
const onlyE2e = args.includes('--e2e');
const filters = args.filter((a) => !a.startsWith('--'));
const keep = (f) => filters.length === 0 || filters.some((x) => f.includes(x));

const unit = onlyE2e ? [] : find(join(root, 'src')).filter(keep);
const e2e = onlyUnit ? [] : find(join(root, 'test')).filter(keep);

function run(files, concurrency) {
  if (files.length === 0) return 0;
  const r = spawnSync(
    process.execPath,
    // No --test-force-exit: it can end a file's process before its last results are written (ten
    // passing tests once went unreported), and it hid handles tests left open. Every file now
    // closes what it opens; one that does not will hang here, which is the bug to fix.
    ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
    { cwd: root, stdio: 'inherit', env: { WHARF_LOG_LEVEL: 'silent', ...process.env } },
  );
  return r.status ?? 1;
}

/** Files that may not run beside one another (see the top of this file). */
// (wharf-status needs none of that: it is here to even out the lanes, about 20 minutes each.)
const LANE_ONE = /fargate|vpc-tasks|tasks-network|load-?balancer|discovery|capacity-providers|faults-docker|elbv2|services-protection|agent-task-runner|data-dir-security|wharf-status|pause-pool/;

function runAsync(files, concurrency, logFile) {
  if (files.length === 0) return Promise.resolve(0);
  const { spawn } = require('node:child_process');
  const { openSync, closeSync } = require('node:fs');
  const fd = logFile ? openSync(logFile, 'w') : undefined;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
    { cwd: root, stdio: ['ignore', fd ?? 'inherit', fd ?? 'inherit'], env: { WHARF_LOG_LEVEL: 'silent', ...process.env } },
  );
  return new Promise((resolve) =>
    child.on('close', (code) => {
      if (fd !== undefined) closeSync(fd);
      resolve(code ?? 1);
    }),
  );
}

async function e2eLanes(files) {
  if (files.length === 0) return 0;
  if (process.env.WHARF_E2E_LANES === '1') return run(files, 1);
  // The test images, once, before two lanes would both build them.
  spawnSync(join(root, 'test', 'images', 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
  const one = files.filter((f) => LANE_ONE.test(f));
  const two = files.filter((f) => !LANE_ONE.test(f));
  // Lane 1 reports as it goes; lane 2's report is printed whole when it ends (interleaved TAP
  // lines of two runs would be unreadable).
  const { mkdtempSync, readFileSync } = require('node:fs');
  const { tmpdir } = require('node:os');
  const log2 = join(mkdtempSync(join(tmpdir(), 'wharf-e2e-lane2-')), 'tap.txt');
  process.stdout.write(`# e2e: lane 1 (${one.length} files) live; lane 2 (${two.length} files) in ${log2}, printed when it ends\n`);
  const started = Date.now();
  const [a, b] = await Promise.all([
    runAsync(one, 1),
    runAsync(two, 1, log2).then((code) => {
      process.stdout.write(`\n# ---- e2e lane 2 (${two.length} files) ----\n${readFileSync(log2, 'utf8')}# ---- end of lane 2: exit ${code} ----\n`);
      return code;
    }),
  ]);
  process.stdout.write(`# e2e: both lanes done in ${Math.round((Date.now() - started) / 1000)} s (lane 1 exit ${a}, lane 2 exit ${b})\n`);
  return a || b;
}

const a = run(unit, 2);
e2eLanes(e2e).then((b) => process.exit(a || b));
