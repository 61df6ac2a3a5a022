/**
 * The control plane a benchmark runs against, either way Wharf can be run: one `wharf server` on
 * its SQLite store, or a three-member etcd cluster (on loopback) with `replicas` servers sharing
 * it (`--store etcd://...`, one data dir for their key files). Every server is a child process.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startEtcdCluster, type EtcdCluster } from '../../src/store/etcd';
import { freePort, request, stopChild, until, wharf } from './processes';

export type StoreKind = 'sqlite' | 'etcd';

/** The installation's key prefix in etcd (`--store etcd://.../bench/`). */
export const ETCD_PREFIX = 'bench/';

export interface BenchServer {
  child: ChildProcess;
  endpoint: string;
  port: number;
  log: string;
}

export interface BenchControlPlane {
  kind: StoreKind;
  servers: BenchServer[];
  /** The servers' shared data dir (credentials.json, agent-tokens.json). */
  dataDir: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  etcd?: EtcdCluster;
  /** Starts server `i` again (same port, data dir and store) after it died. */
  restart(i: number): Promise<BenchServer>;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  kind: StoreKind;
  /** Replicas on etcd (default 3); SQLite always has one server. */
  replicas?: number;
  dir: string;
  /** Extra `wharf server` flags (e.g. --sync normal, --heap-growth). */
  serverArgs?: string[];
  nodeArgs?: (i: number) => string[];
}

async function healthz(endpoint: string): Promise<{ leader?: boolean; replica?: string } | undefined> {
  const r = await request(`${endpoint}/healthz`, { timeoutMs: 1000 });
  return r.status === 200 ? (JSON.parse(r.text) as { leader?: boolean; replica?: string }) : undefined;
}

export { healthz };

export async function startControlPlane(o: ControlPlaneOptions): Promise<BenchControlPlane> {
  const dataDir = path.join(o.dir, 'server');
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const etcd = o.kind === 'etcd' ? await startEtcdCluster(3, { dir: path.join(o.dir, 'etcd') }) : undefined;
  const storeArgs = etcd ? ['--store', `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}/${ETCD_PREFIX}`] : [];
  const n = etcd ? (o.replicas ?? 3) : 1;
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const start = async (i: number): Promise<BenchServer> => {
    const port = ports[i]!;
    const log = path.join(o.dir, `server-${i + 1}.log`);
    const args = ['server', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--load-balancers', 'off', '--dns', 'off', ...storeArgs, ...(o.serverArgs ?? [])];
    const child = wharf(args, o.nodeArgs?.(i) ?? [], log);
    const endpoint = `http://127.0.0.1:${port}`;
    await until(`server ${i + 1}`, 60_000, async () => (child.exitCode !== null ? 'exited' : healthz(endpoint)), 100).then((v) => {
      if (v === 'exited') throw new Error(`server ${i + 1} exited: ${fs.readFileSync(log, 'utf8').slice(-2000)}`);
    });
    return { child, endpoint, port, log };
  };
  const servers: BenchServer[] = [];
  try {
    // One after another: the first makes the data dir's key files the others then read.
    for (let i = 0; i < n; i++) servers.push(await start(i));
  } catch (e) {
    await Promise.all(servers.map((s) => stopChild(s.child)));
    await etcd?.stop();
    throw e;
  }
  const credentials = (JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8')) as { user: { accessKeyId: string; secretAccessKey: string } }).user;
  return {
    kind: o.kind,
    servers,
    dataDir,
    credentials,
    etcd,
    async restart(i) {
      servers[i] = await start(i);
      return servers[i]!;
    },
    async stop() {
      await Promise.all(servers.map((s) => stopChild(s.child)));
      await etcd?.stop();
    },
  };
}
