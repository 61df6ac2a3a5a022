import { createServer } from 'node:net';

/** Whether nothing listens on `port` of `host` now (a listen there succeeds). */
function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer().once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive ports free on `host` now, tried from random bases in
 * 20000-39999 (for tests and tools that must name a run of ports, such as etcd members').
 */
export async function freePortRun(count: number, host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let all = true;
    for (let i = 0; i < count && all; i++) all = await portFree(base + i, host);
    if (all) return base;
  }
  throw new Error(`no ${count} free ports in a row on ${host}`);
}
