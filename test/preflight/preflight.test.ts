/**
 * The test preflight's decisions, on a fake machine: what is missing -> what it installs, starts,
 * or names. (Run for real by `npm test`; this file checks every branch without touching apt.)
 *
 * Run: node --import tsx --test test/preflight/preflight.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFailure, preflight, type PreflightHost } from './preflight';
import { TEST_DEPENDENCIES, isStaticElf, type TestDependency } from './test-deps';

const dep = (aptPackage: string): TestDependency => ({ what: `the ${aptPackage} thing`, aptPackage, neededBy: `${aptPackage} tests`, present: () => assert.fail('the host decides') });
const DEPS = ['docker.io', 'awscli', 'busybox-static'].map(dep);

interface Fake extends PreflightHost {
  log: string[];
}

/**
 * A machine with the given packages, Docker answering or not. Installing a package makes it
 * present unless it is in `stillMissingAfterInstall`; starting dockerd works if docker.io is
 * there and `dockerdStarts` is not false.
 */
function machine(o: { have: string[]; dockerUp: boolean; isRoot?: boolean; hasApt?: boolean; aptWorks?: boolean; stillMissingAfterInstall?: string[]; dockerdStarts?: boolean }): Fake {
  const have = new Set(o.have);
  let up = o.dockerUp;
  const log: string[] = [];
  return {
    log,
    isRoot: o.isRoot ?? true,
    hasApt: o.hasApt ?? true,
    present: (d) => have.has(d.aptPackage),
    dockerAnswers: () => up,
    aptInstall(packages) {
      log.push(`apt-get install ${packages.join(' ')}`);
      if (o.aptWorks === false) return false;
      for (const p of packages) if (!o.stillMissingAfterInstall?.includes(p)) have.add(p);
      return true;
    },
    async startDockerd() {
      log.push('start dockerd');
      if (!have.has('docker.io') || o.dockerdStarts === false) throw new Error('dockerd did not answer within 60 s');
      up = true;
    },
    say: () => undefined,
  };
}

test('everything there and Docker answering: nothing is installed or started', async () => {
  const m = machine({ have: ['docker.io', 'awscli', 'busybox-static'], dockerUp: true });
  assert.deepEqual(await preflight(DEPS, m), { ok: true, installed: [], startedDockerd: false });
  assert.deepEqual(m.log, []);
});

test('root with apt: every missing package in one apt-get call, in the order of the list', async () => {
  const m = machine({ have: ['docker.io'], dockerUp: true });
  assert.deepEqual(await preflight(DEPS, m), { ok: true, installed: ['awscli', 'busybox-static'], startedDockerd: false });
  assert.deepEqual(m.log, ['apt-get install awscli busybox-static']);
});

test('root with apt on a fresh machine: docker.io is installed first, then dockerd is started', async () => {
  const m = machine({ have: [], dockerUp: false });
  assert.deepEqual(await preflight(DEPS, m), { ok: true, installed: ['docker.io', 'awscli', 'busybox-static'], startedDockerd: true });
  assert.deepEqual(m.log, ['apt-get install docker.io awscli busybox-static', 'start dockerd']);
});

test('root with everything installed but dockerd not running (wharf up was never run): dockerd is started', async () => {
  const m = machine({ have: ['docker.io', 'awscli', 'busybox-static'], dockerUp: false });
  assert.deepEqual(await preflight(DEPS, m), { ok: true, installed: [], startedDockerd: true });
  assert.deepEqual(m.log, ['start dockerd']);
});

test('not root: nothing is installed; each missing piece is named with the sudo commands that fix it', async () => {
  const m = machine({ have: ['docker.io'], dockerUp: false, isRoot: false });
  const r = await preflight(DEPS, m);
  assert.deepEqual(m.log, [], 'no install or start attempted');
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.problems.length, 3);
  assert.match(r.problems[0]!, /the awscli thing \(Debian package awscli\), for awscli tests/);
  assert.match(r.problems[1]!, /busybox-static/);
  assert.match(r.problems[2]!, /Docker Engine does not answer/);
  assert.equal(r.commands[0], 'sudo apt-get update && sudo apt-get install -y awscli busybox-static');
  assert.match(r.commands[1]!, /^sudo dockerd &/);
  const text = formatFailure(r);
  for (const line of [...r.problems, ...r.commands]) assert.ok(text.includes(line), `the message shows: ${line}`);
});

test('not root, only Docker down: only the start command is given', async () => {
  const m = machine({ have: ['docker.io', 'awscli', 'busybox-static'], dockerUp: false, isRoot: false });
  const r = await preflight(DEPS, m);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.problems.length, 1);
  assert.equal(r.commands.length, 1);
  assert.match(r.commands[0]!, /^sudo dockerd &/);
});

test('root without apt-get (not Debian): the Debian package names are given, nothing is run', async () => {
  const m = machine({ have: ['docker.io'], dockerUp: true, hasApt: false });
  const r = await preflight(DEPS, m);
  assert.deepEqual(m.log, []);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(r.commands, ["install the equivalent of Debian's awscli busybox-static with this system's package manager"]);
});

test('apt-get fails: the run stops, naming what is missing, and dockerd is not started', async () => {
  const m = machine({ have: [], dockerUp: false, aptWorks: false });
  const r = await preflight(DEPS, m);
  assert.deepEqual(m.log, ['apt-get install docker.io awscli busybox-static']);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.problems.length, 3);
});

test('a package that installs but still does not provide the piece is named', async () => {
  const m = machine({ have: ['docker.io', 'awscli'], dockerUp: true, stillMissingAfterInstall: ['busybox-static'] });
  const r = await preflight(DEPS, m);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(r.problems, ['the busybox-static thing (Debian package busybox-static), for busybox-static tests: still missing after installing busybox-static']);
});

test('dockerd that does not come up stops the run with its reason', async () => {
  const m = machine({ have: ['docker.io', 'awscli', 'busybox-static'], dockerUp: false, dockerdStarts: false });
  const r = await preflight(DEPS, m);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.match(r.problems[0]!, /does not answer.*dockerd did not answer within 60 s/);
});

test('the one list names each Debian package once, and covers what the tests run', () => {
  const packages = TEST_DEPENDENCIES.map((d) => d.aptPackage);
  assert.equal(new Set(packages).size, packages.length);
  // The commands and modules the e2e tests and test/images spawn, and the package behind each.
  for (const p of ['docker.io', 'awscli', 'docker-registry', 'busybox-static', 'iproute2', 'python3-boto3']) assert.ok(packages.includes(p), p);
});

test('a static busybox is told from a dynamic executable by its ELF program headers', () => {
  assert.equal(isStaticElf(process.execPath), false, 'node is dynamically linked');
  assert.equal(isStaticElf('/nonexistent/busybox'), false);
  assert.equal(isStaticElf(__filename), false, 'not an ELF file');
  // The preflight installs busybox-static before the tests run.
  assert.equal(isStaticElf('/bin/busybox'), true);
});
