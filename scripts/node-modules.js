// The npm dependencies, installed with `npm ci` when node_modules is missing (a fresh checkout):
// shared by `npm start` and the test preflight, which both run before anything else can.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');

function ensureNodeModules(who) {
  if (existsSync(join(root, 'node_modules', '.package-lock.json'))) return;
  console.log(`${who}: installing npm dependencies (npm ci)`);
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

module.exports = { root, ensureNodeModules };
