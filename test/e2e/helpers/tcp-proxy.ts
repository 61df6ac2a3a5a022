/**
 * A TCP proxy on loopback that a test can cut: put it between one process and a server (here a
 * replica and an etcd member) and `cut()` it to partition them without touching either. A cut
 * stops forwarding on open connections and holds new ones unanswered, as a network that drops
 * packets does (the peers learn it only from their own timeouts, not from a reset); `heal()`
 * drops what was held, so both sides reconnect, and forwards again.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** `127.0.0.1:<port>`, to give in place of the target's address. */
  address: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let cut = false;
  const pairs = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  const server = net.createServer((client) => {
    const pair: { client: net.Socket; upstream?: net.Socket } = { client };
    pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    // A connection that arrives during a cut is held: accepted, never answered.
    if (cut) return;
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (d) => {
      if (!cut) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!cut) client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    cut() {
      cut = true;
    },
    heal() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      pairs.clear();
      cut = false;
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
