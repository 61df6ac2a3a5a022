/**
 * A Docker Engine that answers, for `wharf up` and for the test preflight (test/preflight/), so
 * that both install and start it the same way. When none answers and we are root on Debian:
 * install Debian's docker.io if dockerd is missing, and start dockerd ourselves (there may be no
 * systemd, as in containers and CI machines).
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, openSync } from 'node:fs';
import { delimiter, join, sep } from 'node:path';

export const DOCKERD_LOG = '/var/log/wharf-dockerd.log';

export const dockerAnswers = (): boolean => spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;

/**
 * The path of an executable named `name` on PATH or in the sbin folders, which a user's PATH
 * often lacks (dockerd lives in /usr/sbin), or undefined.
 */
export function findCommand(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const dockerdInstalled = (): boolean => findCommand('dockerd') !== undefined && findCommand('docker') !== undefined;

/** `apt-get update`, then `apt-get install -y` the packages; false when either fails. */
export function aptInstall(packages: string[], say: (s: string) => void): boolean {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  say(`wharf: installing ${packages.join(' ')} (apt-get update && apt-get install -y ${packages.join(' ')})`);
  for (const args of [['update', '-q'], ['install', '-y', '-q', ...packages]]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) {
      // apt's progress is noise when it works; on failure its last lines say why.
      say(`${(r.stdout ?? '') + (r.stderr ?? '')}`.trim().split('\n').slice(-20).join('\n'));
      say(`wharf: apt-get ${args[0]} failed (exit ${r.status ?? r.signal})`);
      return false;
    }
  }
  return true;
}

/** Starts dockerd in the background (it outlives us) and waits up to 60 s for it to answer. */
/** The runsc wrapper (scripts/runsc-wharf) registered as the `runsc` runtime of a dockerd Wharf starts. */
export const RUNSC_WRAPPER = join(__dirname, '..', '..', ...(__dirname.includes(`${sep}dist${sep}`) ? ['..'] : []), 'scripts', 'runsc-wharf');

export async function startDockerd(say: (s: string) => void): Promise<void> {
  say(`wharf: starting dockerd (log: ${DOCKERD_LOG})`);
  const out = openSync(DOCKERD_LOG, 'a');
  // Where gVisor is installed, Fargate tasks get a kernel of their own (agent: wharf.fargate-sandbox).
  const args = findCommand('runsc') !== undefined ? ['--add-runtime', `runsc=${RUNSC_WRAPPER}`] : [];
  if (args.length === 0) say('wharf: gVisor (runsc) is not installed; Fargate tasks will run under runc (apt-get install runsc)');
  const child = spawn(findCommand('dockerd') ?? 'dockerd', args, { detached: true, stdio: ['ignore', out, out] });
  child.on('error', () => undefined); // reported below as "did not answer"
  child.unref();
  for (let i = 0; i < 60; i++) {
    if (dockerAnswers()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`dockerd did not answer within 60 s; see ${DOCKERD_LOG}`);
}

export const isRoot = (): boolean => process.getuid?.() === 0;
export const hasApt = (): boolean => findCommand('apt-get') !== undefined;

export async function ensureDocker(say: (s: string) => void): Promise<void> {
  if (dockerAnswers()) return;
  if (!isRoot() || !hasApt()) {
    throw new Error(
      'Wharf runs containers on a Docker Engine, and none answers here.\n' +
        'On Debian: sudo apt-get install -y docker.io && sudo dockerd &   (or: sudo systemctl start docker)\n' +
        'Elsewhere: install Docker Engine, start it, and run `wharf up` again.',
    );
  }
  if (!dockerdInstalled()) {
    say("wharf: no Docker Engine found; installing Debian's docker.io (and runsc, gVisor, for Fargate tasks)");
    if (!aptInstall(['docker.io'], say)) throw new Error('installing docker.io failed; install it yourself and run `wharf up` again');
    if (findCommand('runsc') === undefined) aptInstall(['runsc'], say); // best effort: runc is the fallback
  }
  await startDockerd(say);
}

/**
 * `wharf up` serves load balancers with Debian's haproxy: installed here when it is missing and
 * this is a Debian machine run as root (best effort: without it Wharf runs, and says that load
 * balancers are not served).
 */
export function ensureHaproxy(say: (s: string) => void): void {
  // A binary named by WHARF_HAPROXY is the user's to provide.
  if (process.env.WHARF_HAPROXY || findCommand('haproxy') !== undefined || !isRoot() || !hasApt()) return;
  say("wharf: installing Debian's haproxy (the data plane of load balancers)");
  aptInstall(['haproxy'], say);
}

/**
 * `wharf up --ha` runs its etcd members with Debian's etcd-server (3.4): installed here when
 * `etcd` is missing and this is a Debian machine run as root. Without it there is no --ha.
 */
export function ensureEtcdServer(say: (s: string) => void): string {
  const found = findCommand('etcd');
  if (found) return found;
  if (isRoot() && hasApt()) {
    say("wharf: installing Debian's etcd-server (the store of distributed mode)");
    aptInstall(['etcd-server'], say);
  }
  const after = findCommand('etcd');
  if (!after) throw new Error('wharf up --ha needs etcd (3.4): on Debian, sudo apt-get install -y etcd-server, then run it again');
  return after;
}
