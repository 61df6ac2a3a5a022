/**
 * Distributed mode without etcd's quorum: two of three members gone. What a user sees is a prompt
 * 503 ServiceUnavailableException saying, in Wharf's words, that the store has no quorum or cannot
 * be reached, since when, and that the replica keeps trying (SDKs retry it), not a generic
 * ServerException after up to half a minute, and /healthz answers 503 so probes take the replica
 * out.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ECSClient, ListClustersCommand } from '@aws-sdk/client-ecs';
import { startEtcdCluster, type EtcdCluster } from '../../src/store/etcd';
import { killAllSpawned, spawnServer, waitUntil, type ServerProcess } from './helpers/processes';
import { inCI } from '../images/docker-test-env';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && inCI()) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

describe('distributed mode: etcd without quorum', { skip: missing ? 'etcd is not installed' : false }, () => {
  let etcd: EtcdCluster;
  let replica: ServerProcess;
  let dataDir: string;

  before(async () => {
    etcd = await startEtcdCluster(3);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-quorum-'));
    const url = `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}/quorum${process.pid}/`;
    replica = await spawnServer({ dataDir, extraArgs: ['--store', url, '--load-balancers', 'off'] });
  });

  after(async () => {
    await killAllSpawned();
    await etcd?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('API calls answer at once with 503 ServiceUnavailableException, and /healthz is 503', async () => {
    // One attempt: what is measured is the server's answer, not the SDK's retries.
    const ecs = new ECSClient({ endpoint: replica.endpoint, region: replica.region, credentials: replica.keys, maxAttempts: 1 });
    const healthz = async () => {
      const r = await fetch(`${replica.endpoint}/healthz`);
      return { code: r.status, body: (await r.json()) as { status: string; error?: string } };
    };
    try {
      await ecs.send(new ListClustersCommand({}));
      assert.equal((await healthz()).code, 200);

      await etcd.kill('m2');
      await etcd.kill('m3');
      const started = Date.now();
      const err = await ecs.send(new ListClustersCommand({})).then(
        () => assert.fail('ListClusters succeeded without a quorum'),
        (e: Error & { $metadata?: { httpStatusCode?: number } }) => e,
      );
      const ms = Date.now() - started;
      assert.equal(err.name, 'ServiceUnavailableException', err.message);
      assert.equal(err.$metadata?.httpStatusCode, 503);
      assert.ok(ms < 5000, `answered in ${ms} ms`);
      // Every answer says, in Wharf's words, what is wrong, for how long, and that the replica
      // keeps trying; the later ones too, once the etcd client has stopped calling the members
      // for a while (its "circuit breaker is open", which a tester read in these answers).
      const messages = [err.message];
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 500));
        messages.push(await ecs.send(new ListClustersCommand({})).then(() => 'succeeded', (e: Error) => `${e.name}: ${e.message}`));
      }
      for (const m of messages) {
        assert.match(m, /(^|ServiceUnavailableException: )The request has failed due to a temporary failure of the server: its store \(etcd\) has no quorum or cannot be reached \(.+\)(, for \d+ s now)?\. This replica keeps trying to reach it, at least every 5 s; retry the request then\.$/, m);
        assert.doesNotMatch(m, /circuit breaker|Execution prevented/, m);
      }
      const outFor = Number(/, for (\d+) s now\./.exec(messages[messages.length - 1]!)?.[1]);
      assert.ok(outFor >= 2, `the later answers say how long the store has been out: ${messages[messages.length - 1]}`);

      const unhealthy = await waitUntil(async () => {
        const h = await healthz();
        return h.code === 503 ? h : undefined;
      }, '/healthz to say the store is unavailable', { timeoutMs: 15_000 });
      assert.equal(unhealthy.body.status, 'store unavailable');
      assert.match(unhealthy.body.error ?? '', /the store has taken no heartbeat of this replica for \d+ s/);
    } finally {
      ecs.destroy();
    }
  });
});
