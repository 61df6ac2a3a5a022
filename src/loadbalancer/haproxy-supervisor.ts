/**
 * Runs HAProxy in master-worker mode (`-W -S master.sock`), as Wharf's own process to supervise:
 *
 *   start():  adopt the haproxy a previous control plane left running (pid file + its master
 *             answering + our config path in its command line), else write the config and spawn
 *   watch:    if it dies while supervised, respawn it from `config()`, the reconciler's current
 *             desired state with its current targets, so it comes back with the same targets
 *   reload(): validate (`haproxy -c`), write, `reload` through the master socket, and wait for
 *             the new worker to answer: listeners keep their sockets (`expose-fd listeners`)
 *   stop():   SIGUSR1 (soft stop: in-flight requests finish) then SIGTERM
 *   detach(): stop watching and leave it running: a control-plane restart keeps every
 *             listener serving and re-adopts it
 *
 * It is spawned detached (its own session) so that signals to the control plane's process group
 * do not reach it. Everything lives in `dataDir`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../lib/logger';
import { processAlive } from '../lib/process';
import { RuntimeApi } from './runtime-api';

export const HAPROXY = process.env.WHARF_HAPROXY ?? '/usr/sbin/haproxy';

export interface SupervisorPaths {
  dataDir: string;
  configFile: string;
  pidFile: string;
  masterSocket: string;
  runtimeSocket: string;
  serverStateFile: string;
  logFile: string;
}

export function supervisorPaths(dataDir: string): SupervisorPaths {
  return {
    dataDir,
    configFile: path.join(dataDir, 'haproxy.cfg'),
    pidFile: path.join(dataDir, 'haproxy.pid'),
    masterSocket: path.join(dataDir, 'master.sock'),
    runtimeSocket: path.join(dataDir, 'runtime.sock'),
    serverStateFile: path.join(dataDir, 'server-state'),
    logFile: path.join(dataDir, 'haproxy.log'),
  };
}

export const structureFile = (p: SupervisorPaths): string => `${p.configFile}.structure`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class HaproxySupervisor {
  readonly paths: SupervisorPaths;
  readonly runtime: RuntimeApi;
  private pid: number | undefined;
  private child: ChildProcess | undefined;
  private poll: NodeJS.Timeout | undefined;
  private supervising = false;
  private restarting: Promise<void> | undefined;
  /** How many times it was found dead and respawned. */
  restarts = 0;

  constructor(
    dataDir: string,
    private readonly config: () => string,
    private readonly log?: Logger,
    private readonly haproxy = HAPROXY,
  ) {
    this.paths = supervisorPaths(dataDir);
    this.runtime = new RuntimeApi(this.paths.runtimeSocket);
  }

  get masterPid(): number | undefined {
    return this.pid;
  }

  /** 'adopted' when a running haproxy of this data dir was taken over, else 'started'. */
  async start(): Promise<'adopted' | 'started'> {
    fs.mkdirSync(this.paths.dataDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(this.paths.dataDir, 0o700);
    this.supervising = true;
    const running = await this.findRunning();
    if (running !== undefined) {
      this.pid = running;
      this.watchAdopted();
      this.log?.info({ pid: running }, 'adopted the running haproxy');
      return 'adopted';
    }
    await this.spawnFresh();
    return 'started';
  }

  private async findRunning(): Promise<number | undefined> {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(this.paths.pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!pid || !processAlive(pid)) return undefined;
    let cmdline = '';
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return undefined;
    }
    // A recycled pid is some other process: it must be haproxy run on our config.
    if (!cmdline.includes('haproxy') || !cmdline.includes(this.paths.configFile)) return undefined;
    try {
      await this.runtime.workerPid();
      return pid;
    } catch {
      return undefined;
    }
  }

  /** `haproxy -c`: the error text, or undefined when the file is valid. */
  check(configText: string): string | undefined {
    const file = `${this.paths.configFile}.check`;
    fs.writeFileSync(file, configText, { mode: 0o600 });
    const r = spawnSync(this.haproxy, ['-c', '-f', file], { encoding: 'utf8' });
    fs.rmSync(file, { force: true });
    if (r.error) return `cannot run ${this.haproxy}: ${r.error.message}`;
    return r.status === 0 ? undefined : (r.stderr || r.stdout || `exit ${r.status}`).trim();
  }

  private writeConfig(text: string): void {
    const problem = this.check(text);
    if (problem) throw new Error(`haproxy rejects the generated configuration: ${problem}`);
    fs.writeFileSync(`${this.paths.configFile}.new`, text, { mode: 0o600 });
    fs.renameSync(`${this.paths.configFile}.new`, this.paths.configFile);
  }

  private async spawnFresh(): Promise<void> {
    this.writeConfig(this.config());
    // A state file from before a crash would override the config's targets with stale ones.
    fs.rmSync(this.paths.serverStateFile, { force: true });
    // The reconciler compares its structure with this file; a fresh process must be reloaded once.
    fs.rmSync(structureFile(this.paths), { force: true });
    for (const p of [this.paths.masterSocket, this.paths.runtimeSocket]) fs.rmSync(p, { force: true });
    const out = fs.openSync(this.paths.logFile, 'a', 0o600);
    fs.fchmodSync(out, 0o600);
    // HAProxy makes its pid file 0644 less the umask (it unlinks and recreates it), so it runs
    // with an owner-only umask: the child takes the umask at fork, inside spawn().
    const umask = process.umask(0o077);
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(this.haproxy, ['-W', '-S', `${this.paths.masterSocket},mode,600`, '-f', this.paths.configFile, '-p', this.paths.pidFile], {
        detached: true,
        stdio: ['ignore', out, out],
      });
    } finally {
      process.umask(umask);
      fs.closeSync(out);
    }
    child.unref();
    this.child = child;
    this.pid = child.pid;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.onDeath(`exit ${code ?? signal}`);
    });
    try {
      await this.waitReady(child.pid!);
    } catch (e) {
      this.child = undefined;
      child.kill('SIGKILL');
      throw e;
    }
    this.log?.info({ pid: child.pid }, 'haproxy started');
  }

  private async waitReady(pid: number, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.runtime.workerPid();
        return;
      } catch (e) {
        if (!processAlive(pid) || Date.now() > until) {
          const tail = fs.existsSync(this.paths.logFile) ? fs.readFileSync(this.paths.logFile, 'utf8').slice(-2000) : '';
          throw new Error(`haproxy did not come up (${(e as Error).message}); its log ends:\n${tail}`);
        }
        await sleep(50);
      }
    }
  }

  /** An adopted haproxy is not our child: its death shows only as its pid going away. */
  private watchAdopted(): void {
    clearInterval(this.poll);
    const pid = this.pid!;
    this.poll = setInterval(() => {
      if (this.pid === pid && !this.child && !processAlive(pid)) {
        clearInterval(this.poll);
        this.onDeath('adopted process gone');
      }
    }, 250);
    this.poll.unref();
  }

  private onDeath(why: string): void {
    if (!this.supervising || this.restarting) return;
    this.log?.warn({ pid: this.pid, why }, 'haproxy died; starting it again');
    this.restarts++;
    this.restarting = (async () => {
      for (let attempt = 0; this.supervising; attempt++) {
        try {
          await this.spawnFresh();
          return;
        } catch (e) {
          this.log?.error({ err: (e as Error).message }, 'haproxy restart failed');
          await sleep(Math.min(5000, 200 * 2 ** attempt));
        }
      }
    })().finally(() => {
      this.restarting = undefined;
    });
  }

  /** Resolves once a restart in progress (after a death) is over. */
  async settled(): Promise<void> {
    await this.restarting;
  }

  /**
   * Hitless reload: `stateText` (from `show servers state`) lets the new worker keep every slot's
   * address, drain and health; the old worker finishes its in-flight requests.
   */
  async reload(configText: string, stateText: string): Promise<void> {
    await this.settled();
    this.writeConfig(configText);
    fs.writeFileSync(this.paths.serverStateFile, stateText, { mode: 0o600 });
    const before = await this.runtime.workerPid();
    await this.sendReload();
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        if ((await this.runtime.workerPid()) !== before) return;
      } catch {
        // The socket is briefly absent while the new worker takes it over.
      }
      if (Date.now() > until) throw new Error('haproxy reload: no new worker answered within 15 s');
      await sleep(50);
    }
  }

  /**
   * Sends `reload` to the master. Right after a previous reload the master may not be listening on
   * its socket yet (it re-executes itself; a CI run once got ECONNREFUSED there), so a refused or
   * absent socket is tried again for a few seconds: a connection that failed sent nothing.
   */
  private async sendReload(): Promise<void> {
    const until = Date.now() + 5000;
    for (;;) {
      try {
        await new Promise<void>((resolve, reject) => {
          const s = net.connect(this.paths.masterSocket, () => s.end('reload\n'));
          s.on('error', reject);
          s.on('close', (hadError) => (hadError ? undefined : resolve()));
          s.setTimeout(2000, () => s.destroy());
        });
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > until) throw e;
        await sleep(50);
      }
    }
  }

  /** Stops watching and leaves haproxy serving, for a later `start()` to adopt. */
  detach(): void {
    this.supervising = false;
    clearInterval(this.poll);
    this.child = undefined;
  }

  /** Stops haproxy: a soft stop first, so in-flight requests finish, then a hard one. */
  async stop(graceMs = 5000): Promise<void> {
    this.supervising = false;
    clearInterval(this.poll);
    await this.restarting;
    const pid = this.pid;
    this.child = undefined;
    if (pid === undefined || !processAlive(pid)) return;
    process.kill(pid, 'SIGUSR1');
    const until = Date.now() + graceMs;
    while (processAlive(pid) && Date.now() < until) await sleep(50);
    if (processAlive(pid)) process.kill(pid, 'SIGTERM');
    while (processAlive(pid) && Date.now() < until + 2000) await sleep(50);
    fs.rmSync(this.paths.pidFile, { force: true });
  }
}
