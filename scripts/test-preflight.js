#!/usr/bin/env node
// The first step of `npm test` and of .ci/run: npm dependencies if missing, then what the tests
// need from the machine (test/preflight/test-deps.ts, the one list): installed as root on Debian,
// otherwise named with the commands to install it, and the run stops. See test/preflight/preflight.ts.
'use strict';
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');
const { root, ensureNodeModules } = require('./node-modules');

ensureNodeModules('npm test');
const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'test', 'preflight', 'preflight.ts')], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
