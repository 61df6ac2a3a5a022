/**
 * A throwaway Docker registry on 127.0.0.1 for pull tests: Debian's `docker-registry` binary
 * (distribution 2.x) with a temp config, optionally behind htpasswd basic auth. Docker treats
 * 127.0.0.0/8 registries as insecure by default, so plain HTTP works without daemon changes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

export const REGISTRY_USER = 'wharf';
export const REGISTRY_PASSWORD = 'wharf-secret';
// bcrypt of REGISTRY_PASSWORD (cost 10), computed once so tests need no bcrypt tool.
const HTPASSWD = `${REGISTRY_USER}:$2b$10$huKED2BkvGlGiiho7g4q2uAERM.Weu2EzAYRUYxDSkni7H2jVq7iC\n`;

export interface LocalRegistry {
  /** `127.0.0.1:<port>`, the prefix of image names in this registry. */
  host: string;
  auth?: { username: string; password: string; serverAddress: string };
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startLocalRegistry(opts: { auth?: boolean } = {}): Promise<LocalRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const authBlock = opts.auth
    ? `auth:\n  htpasswd:\n    realm: wharf-test\n    path: ${join(dir, 'htpasswd')}\n`
    : '';
  if (opts.auth) writeFileSync(join(dir, 'htpasswd'), HTPASSWD);
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n` +
      `http:\n  addr: ${host}\n${authBlock}`,
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // Ready once /v2/ answers (200 without auth, 401 with it).
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    auth: opts.auth ? { username: REGISTRY_USER, password: REGISTRY_PASSWORD, serverAddress: host } : undefined,
    async stop() {
      // A signalled child has signalCode set and exitCode null: both mean it is gone.
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Tags a local image into the registry and pushes it; returns the registry image name. */
export async function pushToRegistry(
  docker: Docker,
  localImage: string,
  registry: LocalRegistry,
  repoTag: string,
): Promise<string> {
  const [repo, tag = 'latest'] = repoTag.split(':');
  const target = `${registry.host}/${repo}`;
  await docker.getImage(localImage).tag({ repo: target, tag });
  const stream = await docker.getImage(`${target}:${tag}`).push({ authconfig: registry.auth ?? {} });
  const events: { error?: string }[] = await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => (err ? reject(err) : resolve(out))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`push failed: ${failed.error}`);
  // Drop the local tag so that a later pull really goes to the registry.
  await docker.getImage(`${target}:${tag}`).remove().catch(() => undefined);
  return `${target}:${tag}`;
}
