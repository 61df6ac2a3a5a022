#!/usr/bin/env node
// Runs the test suites with node's test runner (TypeScript through tsx):
//   unit tests (src/**/*.test.ts) in parallel, then end-to-end tests (test/e2e/**/*.test.ts) in
//   two lanes that run side by side, each one file at a time. They share one Docker Engine, and
//   what must not run at once stays in one lane: lane 1 holds every file that makes the engine's
//   networks (awsvpc subnets, Fargate), HAProxy and wharf-elb0 addresses, or a dockerd of its own;
//   lane 2 the rest (API-only files, bridge-mode tasks, the test bed's namespaces, etcd). Most of
//   an end-to-end test is waiting (for containers, health checks, timeouts), so two lanes on two
//   cores take little more than the longer lane. WHARF_E2E_LANES=1 runs one lane.
//
// Each end-to-end file runs in a `node --test` of its own, and its report is printed whole when
// it ends (both lanes print as they go; a file's lines are never interleaved with another's).
// No file may take more than WHARF_E2E_FILE_TIMEOUT_S (480 s; the slowest takes about 250): one
// that does is killed with everything it started, and its report so far and its process tree are
// printed, so a hang on a machine we cannot log into still says where it was (a CI run once hung
// in a lane whose report was only printed at its end). scripts/test-guards.mjs (imported into
// every test process) bounds before/after hooks, which node:test otherwise lets wait forever, and
// ends a file whose tests have all ended but whose process stays, naming what is still open.
// A failed file runs once more (see runLane); WHARF_E2E_NO_RETRY=1 turns that off.
// Flags: --unit, --e2e (only that part); any other argument filters files by substring.
'use strict';
const { spawn, spawnSync, execFileSync } = require('node:child_process');
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

const env = { WHARF_LOG_LEVEL: 'silent', ...process.env };
// No --test-force-exit: it can end a file's process before its last results are written (ten
// passing tests once went unreported). test-guards.mjs reports and ends a process that stays.
const nodeArgs = (concurrency) => ['--import', 'tsx', '--import', './scripts/test-guards.mjs', '--test', `--test-concurrency=${concurrency}`];

function runUnit(files) {
  if (files.length === 0) return 0;
  const r = spawnSync(process.execPath, [...nodeArgs(2), ...files], { cwd: root, stdio: 'inherit', env });
  return r.status ?? 1;
}

/** Files that may not run beside one another (see the top of this file). */
// (wharf-status and services-replacement need none of that: they are here to even out the lanes.)
const LANE_ONE = /fargate|vpc-tasks|tasks-network|load-?balancer|discovery|capacity-providers|faults-docker|elbv2|services-protection|agent-task-runner|data-dir-security|wharf-status|services-replacement|pause-pool/;
const FILE_TIMEOUT_MS = Number(process.env.WHARF_E2E_FILE_TIMEOUT_S || 480) * 1000;

/**
 * The process tree under pid, as `ps` shows it (for a report on a file that timed out), and the
 * process groups in it: a test's HAProxy runs detached in a group of its own (it outlives a
 * `wharf server` by design), and must be ended with the file, or it goes on holding its load
 * balancer addresses for the files after it.
 */
function processTree(pid) {
  const groups = new Set();
  try {
    const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,pgid=,etimes=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [p, pp, pg, et, ...a] = l.trim().split(/\s+/);
        return { pid: Number(p), ppid: Number(pp), pgid: Number(pg), etimes: et, args: a.join(' ').slice(0, 200) };
      });
    const out = [];
    const walk = (p, depth) => {
      for (const r of rows.filter((x) => x.ppid === p)) {
        out.push(`#   ${'  '.repeat(depth)}${r.pid} (${r.etimes} s) ${r.args}`);
        groups.add(r.pgid);
        walk(r.pid, depth + 1);
      }
    };
    walk(pid, 0);
    return { text: out.join('\n'), groups: [...groups] };
  } catch (e) {
    return { text: `#   (ps failed: ${e.message})`, groups: [...groups] };
  }
}

/** Sends `signal` to every process group of `groups` (ignoring those already gone). */
function killGroups(groups, signal) {
  for (const g of groups) {
    try {
      process.kill(-g, signal);
    } catch {}
  }
}

/** Runs one end-to-end file; resolves with its exit status, report and counts. */
function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Its own process group, so that a timeout can end it and all it started.
    const child = spawn(process.execPath, [...nodeArgs(1), file], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let report = '';
    child.stdout.on('data', (d) => (report += d));
    child.stderr.on('data', (d) => (report += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      const tree = processTree(child.pid);
      report += `\n# TIMEOUT: ${file} still running after ${FILE_TIMEOUT_MS / 1000} s; its processes:\n${tree.text}\n`;
      const groups = [child.pid, ...tree.groups.filter((g) => g !== child.pid && g > 1)];
      killGroups(groups, 'SIGTERM');
      setTimeout(() => killGroups(groups, 'SIGKILL'), 5000).unref();
      // A process stuck in the kernel (uninterruptible I/O) outlives even SIGKILL, and so do the
      // pipes it holds: the lane goes on without it.
      setTimeout(() => {
        report += `\n# ${file}: its processes did not end 30 s after SIGKILL; going on without them\n`;
        child.stdout.destroy();
        child.stderr.destroy();
        done(1, 'SIGKILL');
      }, 35_000).unref();
    }, FILE_TIMEOUT_MS);
    let finished = false;
    const done = (code, signal) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const count = (k) => Number((report.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) || [])[1] || 0);
      resolve({
        file,
        code: timedOut ? 1 : (code ?? 1),
        signal,
        timedOut,
        seconds: Math.round((Date.now() - started) / 1000),
        report,
        tests: count('tests'),
        pass: count('pass'),
        fail: count('fail'),
        cancelled: count('cancelled'),
        lingered: /^# test-guards: /m.test(report),
      });
    };
    child.on('close', done);
  });
}

/**
 * A file that fails is run once more, and the run passes only if that second run passes; both
 * reports are printed and the summary names the file as flaky. These files drive real Docker
 * Engines, HAProxy, etcd and Chromium on a shared machine, and one failure in a few hundred runs
 * of a file that then passes is a timing problem to fix, not a reason for a whole CI run to fail:
 * the summary keeps it visible.
 */
async function runLane(name, files, results) {
  let status = 0;
  for (const file of files) {
    let r = await runFile(file);
    print(name, r, '');
    if (r.code !== 0 && !process.env.WHARF_E2E_NO_RETRY) {
      const first = r;
      r = await runFile(file);
      r.flakyAfter = first;
      print(name, r, ' (second run)');
    }
    results.push(r);
    if (r.code !== 0) status = 1;
  }
  return status;
}

function print(lane, r, which) {
  const verdict = r.timedOut ? 'TIMED OUT' : r.code === 0 ? 'ok' : `FAILED (exit ${r.code}${r.signal ? `, ${r.signal}` : ''})`;
  process.stdout.write(`\n# ==== [${lane}] ${r.file}${which}: ${verdict}, ${r.tests} tests, ${r.pass} passed, ${r.fail} failed, ${r.cancelled} cancelled, ${r.seconds} s ====\n${r.report}`);
}

async function e2eLanes(files) {
  if (files.length === 0) return 0;
  // The test images, once, before two lanes would both build them.
  spawnSync(join(root, 'test', 'images', 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
  const oneLane = process.env.WHARF_E2E_LANES === '1';
  const one = oneLane ? files : files.filter((f) => LANE_ONE.test(f));
  const two = oneLane ? [] : files.filter((f) => !LANE_ONE.test(f));
  process.stdout.write(`# e2e: lane 1 ${one.length} files, lane 2 ${two.length} files; each file's report is printed when it ends\n`);
  const started = Date.now();
  const results = [];
  const [a, b] = await Promise.all([runLane('lane 1', one, results), runLane('lane 2', two, results)]);
  const sum = (k) => results.reduce((n, r) => n + r[k], 0);
  const bad = results.filter((r) => r.code !== 0);
  const lingered = results.filter((r) => r.lingered);
  process.stdout.write(
    `\n# e2e: ${results.length} files, ${sum('tests')} tests, ${sum('pass')} passed, ${sum('fail')} failed, ${sum('cancelled')} cancelled, in ${Math.round((Date.now() - started) / 1000)} s` +
      ` (lane 1 exit ${a}, lane 2 exit ${b})\n` +
      bad.map((r) => `# e2e: ${r.timedOut ? 'TIMED OUT' : 'FAILED'}: ${r.file}\n`).join('') +
      lingered.map((r) => `# e2e: WARNING: ${r.file} did not exit after its tests ended (see its test-guards line)\n`).join('') +
      results
        .filter((r) => r.flakyAfter && r.code === 0)
        .map((r) => `# e2e: FLAKY: ${r.file} failed once (${r.flakyAfter.timedOut ? 'timed out' : `${r.flakyAfter.fail} failed, ${r.flakyAfter.cancelled} cancelled`}) and passed when run again; see its first report above\n`)
        .join('') +
      results
        .slice()
        .sort((x, y) => y.seconds - x.seconds)
        .slice(0, 8)
        .map((r) => `# e2e: slowest: ${r.seconds} s ${r.file}\n`)
        .join(''),
  );
  return a || b;
}

const u = runUnit(unit);
e2eLanes(e2e).then((e) => process.exit(u || e));
