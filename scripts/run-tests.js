#!/usr/bin/env node
// Runs the test suites with node's test runner (TypeScript through tsx):
//   unit tests (src/**/*.test.ts) in parallel, then end-to-end tests (test/e2e/**/*.test.ts)
//   one file at a time, since they share one Docker Engine.
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

const a = run(unit, 2);
const b = run(e2e, 1);
process.exit(a || b);
