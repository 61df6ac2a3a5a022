/**
 * What etcd alone does on this machine, as the floor under distributed mode's figures: a
 * three-member cluster on loopback, `txns` transactions each writing 11 keys of 1.5 KB (about
 * what a RunTask of ten tasks writes: ten task records and an instance usage record), one at a
 * time and `concurrency` at a time, straight through the etcd3 client (no Wharf in between).
 */
import { Etcd3 } from 'etcd3';
import { startEtcdCluster } from '../../src/store/etcd';
import { pct } from './processes';

export interface EtcdFloor {
  concurrency: number;
  txnsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export async function etcdTxnFloor(txns = 400, concurrencies = [1, 16]): Promise<EtcdFloor[]> {
  const cluster = await startEtcdCluster(3);
  const client = new Etcd3({ hosts: cluster.endpoints });
  const value = Buffer.from('x'.repeat(1500));
  const out: EtcdFloor[] = [];
  try {
    for (const concurrency of concurrencies) {
      const latencies: number[] = [];
      let n = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (n < txns) {
            const i = n++;
            const s = performance.now();
            await client.kv.txn({ compare: [], success: Array.from({ length: 11 }, (_, j) => ({ request_put: { key: Buffer.from(`floor/${concurrency}/${i}/${j}`), value } })), failure: [] });
            latencies.push(performance.now() - s);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      latencies.sort((a, b) => a - b);
      out.push({ concurrency, txnsPerSecond: Math.round(txns / seconds), p50Ms: +pct(latencies, 50).toFixed(1), p99Ms: +pct(latencies, 99).toFixed(1) });
    }
  } finally {
    client.close();
    await cluster.stop();
  }
  return out;
}

if (require.main === module) {
  void etcdTxnFloor().then((r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n'));
}
