/**
 * Distributed mode under faults (issue 13, part 4), on loopback: three replicas on a three-member
 * etcd, one of them reaching etcd only through TCP proxies the test can cut.
 *
 * What a user relies on: a replica cut off from etcd stops leading before its lease expires, and
 * another leads only after it (no two leaders act at once, checked from the terms every replica
 * logs); the leader killed with -9 in the middle of a rolling deployment is replaced within 5 s
 * and the deployment completes with every task on the new revision, none lost or doubled; one
 * etcd member killed, the API keeps working; and through all of it, the history of concurrent
 * RunTask, StopTask, UpdateService and Describe* calls, spread over every live replica, is
 * linearizable per object (helpers/linearizability.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
  type ECSClient,
} from '@aws-sdk/client-ecs';
import { startEtcdCluster, type EtcdCluster } from '../../src/store/etcd';
import { killAllSpawned, spawnAgent, spawnServer, waitUntil, sleep, type AgentProcess, type ServerProcess } from './helpers/processes';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy';
import { recordHistory } from './helpers/ecs-history';
import { checkRegisterHistory, describeFailure } from './helpers/linearizability';
import { inCI } from '../images/docker-test-env';

const missing = spawnSync('etcd', ['--version']).status !== 0;
if (missing && inCI()) throw new Error('etcd is not installed (apt-get install etcd-server); CI runs every test');

const CLUSTER = `faults-${process.pid}`;
const PREFIX = `faults${process.pid}/`;
/** The lease TTL replicas use (etcd-leadership.ts default, 4 s). */
const TTL_MS = 4000;

/** One leadership term, as its replica logged it (or as the test ended it with kill -9). */
interface Term {
  replica: string;
  pid: number;
  start: number;
  end?: number;
  endedBy?: 'step-down' | 'kill';
}

describe('distributed mode under faults', { skip: missing ? 'etcd is not installed' : false }, () => {
  let etcd: EtcdCluster;
  let proxies: TcpProxy[] = [];
  const replicas: ServerProcess[] = [];
  const terms: Term[] = [];
  let agent: AgentProcess;
  let dataDir: string;

  const hostsOf = (e: string) => e.replace('http://', '');
  const storeUrl = (hosts: string[]) => `etcd://${hosts.join(',')}/${PREFIX}`;
  const live = () => replicas.filter((r) => !r.exited);
  const open = () => terms.filter((t) => t.end === undefined);
  const ecsClients = new Map<ServerProcess, ECSClient>();
  const ecsOf = (r: ServerProcess) => {
    let c = ecsClients.get(r);
    if (!c) ecsClients.set(r, (c = r.ecs()));
    return c;
  };

  /** Collects the replica's `{"leading":...}` lines into terms. */
  function watchTerms(line: string): void {
    if (!line.includes('"leading"')) return;
    const rec = JSON.parse(line) as { leading: boolean; replica: string; at: number };
    const pid = Number(rec.replica.split('-').at(-2));
    if (rec.leading) terms.push({ replica: rec.replica, pid, start: rec.at });
    else {
      const t = terms.find((x) => x.replica === rec.replica && x.end === undefined);
      if (t) Object.assign(t, { end: rec.at, endedBy: 'step-down' });
    }
  }

  async function spawnReplica(hosts: string[]): Promise<ServerProcess> {
    const r = await spawnServer({ dataDir, agentTimeoutMs: 8000, healthyAfterRunningMs: 300, onLine: watchTerms, env: { WHARF_LOG_LEVEL: 'warn' }, extraArgs: ['--store', storeUrl(hosts), '--load-balancers', 'off'] });
    replicas.push(r);
    return r;
  }

  async function kill9(r: ServerProcess): Promise<number> {
    const at = Date.now();
    await r.kill9();
    for (const t of terms) if (t.pid === r.pid && t.end === undefined) Object.assign(t, { end: at, endedBy: 'kill' });
    return at;
  }

  /** No two terms overlap (all replicas share this machine's clock). */
  function assertNoTwoLeaders(): void {
    const sorted = [...terms].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      assert.ok(prev.end !== undefined && prev.end <= cur.start, `two leaders at once: ${JSON.stringify(prev)} and ${JSON.stringify(cur)}`);
    }
  }

  before(async () => {
    etcd = await startEtcdCluster(3);
    proxies = await Promise.all(etcd.endpoints.map((e) => {
      const u = new URL(e);
      return startTcpProxy({ host: u.hostname, port: Number(u.port) });
    }));
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-faults-'));
    // The replica behind the proxies starts first, alone, so that it is the one leading.
    await spawnReplica(proxies.map((p) => p.address));
    await waitUntil(() => open().length === 1, 'the first replica leads', { timeoutMs: 20_000 });
    await spawnReplica(etcd.endpoints.map(hostsOf));
    await spawnReplica(etcd.endpoints.map(hostsOf));
    await ecsOf(replicas[1]!).send(new CreateClusterCommand({ clusterName: CLUSTER }));
  });

  after(async () => {
    await killAllSpawned();
    await Promise.all(proxies.map((p) => p.close()));
    await etcd?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('a write acknowledged by one replica is seen by the very next read on any other', async () => {
    const ecs = ecsOf(replicas[1]!);
    await ecs.send(new RegisterTaskDefinitionCommand({ family: 'rw', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 16, essential: true }] }));
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'rw', taskDefinition: 'rw', desiredCount: 0 }));
    const stale: string[] = [];
    for (let i = 1; i <= 90; i++) {
      const writer = replicas[i % 3]!;
      const reader = replicas[(i + 1) % 3]!;
      await ecsOf(writer).send(new UpdateServiceCommand({ cluster: CLUSTER, service: 'rw', desiredCount: i }));
      const seen = (await ecsOf(reader).send(new DescribeServicesCommand({ cluster: CLUSTER, services: ['rw'] }))).services![0]!.desiredCount;
      if (seen !== i) stale.push(`wrote ${i}, read ${seen}`);
    }
    assert.deepEqual(stale, []);
  });

  test('a replica cut off from etcd stops leading before its lease expires; another leads only after it', async () => {
    const cutOff = replicas[0]!;
    const term = open()[0]!;
    assert.equal(term.pid, cutOff.pid, 'the replica behind the proxies leads');
    const cutAt = Date.now();
    for (const p of proxies) p.cut();
    await waitUntil(() => term.end !== undefined, 'the cut-off replica steps down', { timeoutMs: 15_000, describe: () => cutOff.output().slice(-2000) });
    const next = await waitUntil(() => open().find((t) => t.pid !== cutOff.pid), 'another replica leads', { timeoutMs: 20_000 });
    const stepDownMs = term.end! - cutAt;
    const takeoverMs = next.start - cutAt;
    process.stderr.write(`cut: step-down ${stepDownMs} ms after the cut, next leader ${takeoverMs} ms after it\n`);
    assert.ok(stepDownMs < TTL_MS, `stepped down ${stepDownMs} ms after the cut, not before the ${TTL_MS} ms lease could expire`);
    assert.ok(next.start >= term.end!, 'the next term starts after the cut-off one ended');
    // Healed, the old leader comes back as a follower: the other keeps leading.
    for (const p of proxies) p.heal();
    await sleep(TTL_MS);
    assert.equal(open().length, 1, JSON.stringify(terms));
    assert.equal(open()[0], next);
    assertNoTwoLeaders();
  });

  test('kill -9 the leader in a rolling deployment and one etcd member, under concurrent calls: failover within 5 s, the deployment completes, the history is linearizable', async () => {
    const leaderNow = () => live().find((r) => open().some((t) => t.pid === r.pid));
    const first = leaderNow()!;
    // The agent joins a replica that does not lead (it learns the others from the answers).
    const home = live().find((r) => r !== first)!;
    agent = await spawnAgent({ server: home, cluster: CLUSTER, runtime: 'simulated', instances: 1, resources: 'cpu=65536,memory=65536' });
    const ecs = ecsOf(home);
    const td = (family: string, env: string) =>
      ecs.send(new RegisterTaskDefinitionCommand({ family, containerDefinitions: [{ name: 'app', image: 'busybox', memory: 16, essential: true, environment: [{ name: 'V', value: env }] }] }));
    const v1 = (await td('roll', '1')).taskDefinition!.taskDefinitionArn!;
    const v2 = (await td('roll', '2')).taskDefinition!.taskDefinitionArn!;
    await td('hist', '1');
    await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: 'roll', taskDefinition: v1, desiredCount: 4 }));
    const historyServices = ['h1', 'h2'];
    for (const s of historyServices) await ecs.send(new CreateServiceCommand({ cluster: CLUSTER, serviceName: s, taskDefinition: 'hist', desiredCount: 0 }));
    const roll = () => ecs.send(new DescribeServicesCommand({ cluster: CLUSTER, services: ['roll'] })).then((o) => o.services![0]!);
    await waitUntil(async () => (await roll()).runningCount === 4, 'four tasks of revision 1 running', { timeoutMs: 30_000 });

    // Concurrent clients over every live replica, from here to the end of the faults.
    const history = recordHistory({
      cluster: CLUSTER,
      services: historyServices,
      taskDefinition: 'hist',
      clientFor: (w) => {
        const l = live();
        return ecsOf(l[w % l.length]!);
      },
    }, 6);
    await sleep(2000);

    // The rolling deployment starts; the leader dies in the middle of it.
    await ecs.send(new UpdateServiceCommand({ cluster: CLUSTER, service: 'roll', taskDefinition: v2 }));
    const killedAt = await kill9(first);
    const next = await waitUntil(() => open().find((t) => t.pid !== first.pid), 'a new leader', { timeoutMs: 20_000 });
    const failoverMs = next.start - killedAt;
    process.stderr.write(`kill -9: new leader ${failoverMs} ms after the kill\n`);
    assert.ok(failoverMs <= 5000, `the new leader took ${failoverMs} ms`);

    // One etcd member dies too; the calls go on.
    await sleep(1000);
    const memberKilledAt = Date.now();
    await etcd.kill('m3');
    await sleep(4000);
    await history.stop();
    const okAfterMemberLoss = history.okSince(memberKilledAt);
    assert.ok(okAfterMemberLoss > 10, `only ${okAfterMemberLoss} calls succeeded after an etcd member was killed`);

    // The deployment completes on the new leader: four tasks, all of revision 2, each once.
    const done = await waitUntil(async () => {
      const s = await roll();
      return s.deployments!.length === 1 && s.deployments![0]!.rolloutState === 'COMPLETED' && s.runningCount === 4 ? s : undefined;
    }, 'the deployment completes', { timeoutMs: 60_000, describe: async () => JSON.stringify((await roll()).deployments) });
    assert.equal(done.taskDefinition, v2);
    const arns = (await ecs.send(new ListTasksCommand({ cluster: CLUSTER, serviceName: 'roll', desiredStatus: 'RUNNING' }))).taskArns!;
    assert.equal(arns.length, 4, `RUNNING tasks of the service: ${arns.length}`);
    const described = (await ecs.send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: arns }))).tasks!;
    assert.deepEqual(described.map((t) => t.taskDefinitionArn), [v2, v2, v2, v2]);
    assert.ok(described.every((t) => t.lastStatus === 'RUNNING'), JSON.stringify(described.map((t) => t.lastStatus)));

    // No two leaders ever, and the history is linearizable per object.
    assertNoTwoLeaders();
    const started = Date.now();
    const result = checkRegisterHistory(history.ops, (key) => (key.startsWith('service/') ? 0 : undefined));
    const checkMs = Date.now() - started;
    const keys = result.keys.length;
    const largest = Math.max(...result.keys.map((k) => k.operations));
    process.stderr.write(`history: ${history.ops.length} ops on ${keys} objects (largest ${largest}), checked in ${checkMs} ms\n`);
    assert.ok(history.ops.length > 100, `a history of ${history.ops.length} ops is too small to tell anything`);
    assert.ok(result.ok, result.failures.map(describeFailure).join('\n'));
    await agent.stop();
  });
});
