/**
 * Network modes end to end through the ECS API on a real Docker Engine: bridge with dynamic host
 * ports, host with fixed ports (and the port accounting of the instance), none, and awsvpc (the
 * task's private IP in its ENI attachment and in containers[].networkInterfaces, on the Docker
 * network Wharf manages for the task's subnet).
 *
 * Run: npx tsx --test test/e2e/tasks-network.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { DescribeContainerInstancesCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { waitUntil } from './helpers/processes';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';
import { defaultSubnets } from './helpers/wharf-server';
import { subnetNetworkName } from '../../src/control/agent-desired-state';

const skip = dockerSkipReason();
const HTTPD = (port: number) => ['httpd', '-f', '-p', String(port), '-h', '/var/www'];

function inspect(id: string): any {
  return JSON.parse(execFileSync('docker', ['inspect', id], { encoding: 'utf8' }))[0];
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function inCidr(cidr: string, ip: string): boolean {
  const n = (x: string) => x.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const [base, bits] = cidr.split('/');
  return n(ip) >= n(base!) && n(ip) < n(base!) + 2 ** (32 - Number(bits));
}

async function httpGet(url: string): Promise<string> {
  return waitUntil(async () => {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return r.ok ? await r.text() : undefined;
  }, `GET ${url}`, { timeoutMs: 15_000, intervalMs: 200 });
}

describe('network modes', { skip, timeout: 300_000 }, () => {
  let h: TasksHarness;
  /** The default subnet of the agent's zone (an agent is in <region>a unless told otherwise). */
  let subnet: { id: string; cidr: string };
  before(async () => {
    h = await startTasksHarness('tasks-net');
    subnet = (await defaultSubnets(h.srv))[`${h.srv.region}a`]!;
  });
  after(async () => {
    await h?.close();
  });

  const stop = async (arn: string) => {
    await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
    return h.waitTask(arn, (t) => t.lastStatus === 'STOPPED', 'STOPPED');
  };

  test('bridge: hostPort 0 gets a dynamic host port that serves the container', async () => {
    const td = await h.register('net-bridge', [
      { name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: HTTPD(8080), portMappings: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp' }] },
    ]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
    const b = t.containers![0]!.networkBindings!;
    const v4 = b.find((x) => x.containerPort === 8080 && !String(x.bindIP).includes(':'))!;
    assert.ok(v4, JSON.stringify(b));
    assert.ok(v4.hostPort! >= 1024, `dynamic port ${v4.hostPort}`);
    assert.equal(v4.protocol, 'tcp');
    assert.match(await httpGet(`http://127.0.0.1:${v4.hostPort}/`), /wharf test page/);
    assert.equal(inspect(t.containers![0]!.runtimeId!).HostConfig.NetworkMode, 'bridge');
    await stop(arn);
  });

  test('host: a fixed port is served on the host and reserved on the instance until the task stops', async () => {
    const port = await freePort();
    const td = await h.register(
      'net-host',
      [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: HTTPD(port), portMappings: [{ containerPort: port, hostPort: port }] }],
      { networkMode: 'host' },
    );
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
    assert.equal(inspect(t.containers![0]!.runtimeId!).HostConfig.NetworkMode, 'host');
    assert.deepEqual(t.containers![0]!.networkBindings!.map((x) => x.hostPort), [port]);
    assert.match(await httpGet(`http://127.0.0.1:${port}/`), /wharf test page/);
    const inst = (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [h.instanceArn] }))).containerInstances![0]!;
    assert.ok(inst.remainingResources!.find((r) => r.name === 'PORTS')!.stringSetValue!.includes(String(port)));
    // The port is taken: a second copy cannot be placed.
    const second = await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }));
    assert.equal(second.tasks!.length, 0);
    assert.equal(second.failures![0]!.reason, 'RESOURCE:PORTS');
    await stop(arn);
    const freed = (await h.ecs.send(new DescribeContainerInstancesCommand({ cluster: h.cluster, containerInstances: [h.instanceArn] }))).containerInstances![0]!;
    assert.ok(!freed.remainingResources!.find((r) => r.name === 'PORTS')!.stringSetValue!.includes(String(port)), 'the port is released');
    const third = await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }));
    assert.equal(third.tasks!.length, 1, JSON.stringify(third.failures));
    await h.waitTask(third.tasks![0]!.taskArn!, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
    await stop(third.tasks![0]!.taskArn!);
  });

  test('none: the container has no network but loopback', async () => {
    const td = await h.register(
      'net-none',
      [{ name: 'app', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'] }],
      { networkMode: 'none' },
    );
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
    const id = t.containers![0]!.runtimeId!;
    assert.equal(inspect(id).HostConfig.NetworkMode, 'none');
    const links = execFileSync('docker', ['exec', id, 'ls', '/sys/class/net'], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
    assert.deepEqual(links, ['lo']);
    assert.deepEqual(t.containers![0]!.networkBindings ?? [], []);
    await stop(arn);
  });

  test("awsvpc: the task's private IP, in its subnet's range, is in its attachment and containers, on its subnet's network", async () => {
    const td = await h.register(
      'net-awsvpc',
      [
        { name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, command: HTTPD(8080), portMappings: [{ containerPort: 8080 }] },
        // Shares the task's network namespace: reaches the web container on localhost.
        { name: 'probe', image: 'wharf-test/busybox', memory: 32, essential: false, stopTimeout: 1, command: ['sh', '-c', 'while :; do wget -q -O /tmp/page http://localhost:8080/ && cp /tmp/page /tmp/ok; sleep 1; done'] },
      ],
      { networkMode: 'awsvpc' },
    );
    const out = await h.ecs.send(
      new RunTaskCommand({ cluster: h.cluster, taskDefinition: td, networkConfiguration: { awsvpcConfiguration: { subnets: [subnet.id] } } }),
    );
    assert.equal(out.tasks![0]!.lastStatus, 'PROVISIONING');
    const arn = out.tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING', 'RUNNING');
    const eni = t.attachments!.find((a) => a.type === 'ElasticNetworkInterface')!;
    assert.equal(eni.status, 'ATTACHED');
    const details = Object.fromEntries(eni.details!.map((d) => [d.name, d.value]));
    assert.equal(details.subnetId, subnet.id);
    assert.match(details.networkInterfaceId ?? '', /^eni-[0-9a-f]{17}$/);
    assert.match(details.macAddress ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const ip = details.privateIPv4Address!;
    assert.ok(inCidr(subnet.cidr, ip), `${ip} in ${subnet.cidr}`);
    assert.equal(details.privateDnsName, `ip-${ip.replace(/\./g, '-')}.ec2.internal`);
    assert.equal(t.availabilityZone, `${h.srv.region}a`);
    for (const c of t.containers!) {
      assert.equal(c.networkInterfaces![0]!.privateIpv4Address, ip);
      assert.equal(c.networkInterfaces![0]!.attachmentId, eni.id);
    }
    // The Docker network of the subnet exists and the task's namespace holds that address.
    const net = JSON.parse(execFileSync('docker', ['network', 'inspect', subnetNetworkName(subnet.id, subnet.cidr, `${h.srv.region}a`)], { encoding: 'utf8' }))[0];
    assert.equal(net.IPAM.Config[0].Subnet, subnet.cidr, "the bridge has the subnet's range");
    const addrs = Object.values(net.Containers as Record<string, { IPv4Address: string }>).map((c) => c.IPv4Address.split('/')[0]);
    assert.ok(addrs.includes(ip), `${ip} in ${addrs.join(',')}`);
    // Containers share the namespace: the web container's mode is container:<pause>.
    const web = inspect(t.containers!.find((c) => c.name === 'web')!.runtimeId!);
    assert.match(web.HostConfig.NetworkMode, /^container:/);
    // ... and the probe reached web on localhost.
    const probeId = t.containers!.find((c) => c.name === 'probe')!.runtimeId!;
    await waitUntil(() => {
      try {
        return execFileSync('docker', ['exec', probeId, 'cat', '/tmp/ok'], { encoding: 'utf8' }).includes('wharf test page');
      } catch {
        return false;
      }
    }, 'probe reached web on localhost', { timeoutMs: 15_000 });
    // The host reaches the task on its private IP.
    assert.match(await httpGet(`http://${ip}:8080/`), /wharf test page/);
    const stopped = await stop(arn);
    assert.equal(stopped.attachments!.find((a) => a.type === 'ElasticNetworkInterface')!.status, 'DELETED');
  });
});
