/**
 * Starts etcd members on loopback (a single one, or a cluster of several) in a directory of their
 * own: for the etcd backend's tests, and for anyone trying distributed mode on one machine. Uses
 * Debian's `etcd` (package etcd-server, 3.4). Each member listens on two free loopback ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  process: ChildProcess;
}

export interface EtcdCluster {
  members: EtcdMember[];
  endpoints: string[];
  /** Stops one member (SIGKILL: as a machine loss) and returns it. */
  kill(name: string): Promise<void>;
  /** Stops every member and removes their data. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function answers(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    return res.ok && ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** Starts `size` members forming one cluster and waits until each answers /health. */
export async function startEtcdCluster(size = 1, opts: { dir?: string; binary?: string } = {}): Promise<EtcdCluster> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'wharf-etcd-'));
  const members: Omit<EtcdMember, 'process'>[] = [];
  for (let i = 0; i < size; i++) {
    members.push({ name: `m${i + 1}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}` });
  }
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const started: EtcdMember[] = members.map((m) => {
    const data = join(dir, m.name);
    mkdirSync(data, { recursive: true, mode: 0o700 });
    const args = [
      '--name', m.name, '--data-dir', data,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `wharf-${process.pid}`,
      '--log-level', 'error',
    ];
    const p = spawn(opts.binary ?? 'etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    p.once('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`etcd ${m.name} exited ${code}: ${stderr}\n`);
    });
    return { ...m, process: p };
  });
  const until = Date.now() + 30_000;
  for (const m of started) {
    while (!(await answers(m.clientUrl))) {
      if (m.process.exitCode !== null) throw new Error(`etcd member ${m.name} exited with ${m.process.exitCode}`);
      if (Date.now() > until) throw new Error(`etcd member ${m.name} did not become healthy within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const stopOne = async (m: EtcdMember) => {
    m.process.kill('SIGKILL');
    await exited(m.process);
  };
  return {
    members: started,
    endpoints: started.map((m) => m.clientUrl),
    kill: async (name) => {
      const m = started.find((x) => x.name === name);
      if (!m) throw new Error(`no etcd member ${name}`);
      await stopOne(m);
    },
    stop: async () => {
      await Promise.all(started.map(stopOne));
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
