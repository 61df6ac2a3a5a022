#!/usr/bin/env node
// `npm start`: installs what is missing, builds if the sources changed, then runs `wharf up`
// (control plane + one local agent) with any extra arguments given after `npm start --`.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');
const { root, ensureNodeModules } = require('./node-modules');

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

ensureNodeModules('wharf');
const entry = join(root, 'dist', 'src', 'cmd', 'main.js');
if (!existsSync(entry) || newest(join(root, 'src')) > statSync(entry).mtimeMs) {
  console.log('wharf: building');
  run('npm', ['run', 'build', '--silent']);
}
const r = spawnSync(process.execPath, [join(root, 'bin', 'wharf'), 'up', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 0);
