/**
 * The load balancer controller behind the ELBv2 API, driven as a user would: `aws elbv2` creates
 * an application load balancer, an instance target group and a listener, registers two
 * bridge-mode containers (host ports of a container instance) as targets; the controller serves
 * them on the load balancer's address, DescribeTargetHealth reads the health it writes, and a
 * deregistration drains. Deleting the load balancer takes its address off wharf-elb0.
 *
 * A region of its own (ca-central-1), so its address (10.99.<region index>.1) is not one another
 * test's server hands out at the same time.
 *
 * Run: node --import tsx --test test/e2e/load-balancer-controller-api.test.ts
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { interfaceAddresses } from '../../src/cmd/elb-interface';
import { dockerSkipReason } from '../images/docker-test-env';
import { get, haproxySkipReason } from './helpers/lb-harness';
import { waitUntil } from './helpers/processes';
import { AWS_CLI, defaultSubnets, ecsCall, run, startTestServer, type TestServer } from './helpers/wharf-server';

const skip = dockerSkipReason() || haproxySkipReason();
const REGION = 'ca-central-1';
const TAG = `lbapi${process.pid}`;
const containers: string[] = [];
let srv: TestServer;

async function elb(args: string[]): Promise<any> {
  const r = await run(AWS_CLI, ['elbv2', ...args, '--endpoint-url', srv.endpoint, '--output', 'json', '--region', REGION], srv.env());
  assert.equal(r.code, 0, `aws elbv2 ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

function httpd(name: string): number {
  const cname = `${TAG}-${name}`;
  const script = `mkdir -p /w && echo ${name} > /w/index.html && echo ok > /w/health && exec httpd -f -p 8080 -h /w`;
  execFileSync('docker', ['run', '-d', '--name', cname, '--label', `wharf-test=${TAG}`, '-p', '0:8080', 'wharf-test/busybox', 'sh', '-c', script], { stdio: 'ignore' });
  containers.push(cname);
  const port = execFileSync('docker', ['port', cname, '8080/tcp'], { encoding: 'utf8' });
  return Number(/:(\d+)$/m.exec(port)![1]);
}

before(async () => {
  if (skip) return;
  srv = await startTestServer({ region: REGION });
});

after(async () => {
  await srv?.close();
  for (const c of containers) execFileSync('docker', ['rm', '-f', c], { stdio: 'ignore' });
});

test('aws elbv2: an instance target group behind an application load balancer serves, reports health, drains', { skip, timeout: 240_000 }, async () => {
  const instanceId = `i-0${(process.pid * 7919).toString(16).padStart(16, '0').slice(-16)}`;
  assert.equal((await ecsCall(srv, 'CreateCluster', { clusterName: TAG })).status, 200);
  const reg = await ecsCall(srv, 'RegisterContainerInstance', {
    cluster: TAG,
    instanceIdentityDocument: JSON.stringify({ instanceId, availabilityZone: `${REGION}a` }),
    totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }],
  });
  assert.equal(reg.status, 200, reg.text);
  const ports = { one: httpd('one'), two: httpd('two') };

  const zones = Object.values(await defaultSubnets(srv, REGION)).map((s) => s.id);
  const lb = (await elb(['create-load-balancer', '--name', TAG, '--subnets', ...zones.slice(0, 2), '--scheme', 'internal'])).LoadBalancers[0];
  const described = (await elb(['describe-load-balancers', '--load-balancer-arns', lb.LoadBalancerArn])).LoadBalancers[0];
  const address: string = described.AvailabilityZones[0].LoadBalancerAddresses[0].IpAddress;
  assert.match(address, /^10\.99\.\d+\.\d+$/);
  const tg = (
    await elb([
      'create-target-group', '--name', `${TAG}-web`, '--protocol', 'HTTP', '--port', '8080', '--vpc-id', lb.VpcId, '--target-type', 'instance',
      '--health-check-path', '/health', '--health-check-interval-seconds', '5', '--health-check-timeout-seconds', '2', '--healthy-threshold-count', '2', '--unhealthy-threshold-count', '2',
    ])
  ).TargetGroups[0];
  await elb(['modify-target-group-attributes', '--target-group-arn', tg.TargetGroupArn, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=3']);
  await elb(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', '80', '--default-actions', `Type=forward,TargetGroupArn=${tg.TargetGroupArn}`]);
  await elb(['register-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=${instanceId},Port=${ports.one}`, `Id=${instanceId},Port=${ports.two}`]);

  const health = async () => ((await elb(['describe-target-health', '--target-group-arn', tg.TargetGroupArn])).TargetHealthDescriptions as any[]).map((d) => `${d.Target.Port}:${d.TargetHealth.State}`).sort();
  await waitUntil(async () => (await health()).join() === [`${ports.one}:healthy`, `${ports.two}:healthy`].sort().join(), 'both targets healthy in DescribeTargetHealth', { timeoutMs: 40_000, intervalMs: 500 });
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) bodies.add((await get(`http://${address}/`)).body.trim());
  assert.deepEqual([...bodies].sort(), ['one', 'two']);

  await elb(['deregister-targets', '--target-group-arn', tg.TargetGroupArn, '--targets', `Id=${instanceId},Port=${ports.two}`]);
  await waitUntil(async () => (await health()).join() === `${ports.one}:healthy`, 'the deregistered target gone after draining', { timeoutMs: 30_000, intervalMs: 500 });
  for (let i = 0; i < 3; i++) assert.equal((await get(`http://${address}/`)).body.trim(), 'one');

  assert.ok((await interfaceAddresses()).includes(address));
  await elb(['delete-load-balancer', '--load-balancer-arn', lb.LoadBalancerArn]);
  await waitUntil(async () => !(await interfaceAddresses()).includes(address), `${address} taken off wharf-elb0`, { timeoutMs: 10_000, intervalMs: 200 });
});

test('two Wharf servers on one host: a second server allocates around the first one\'s load balancer address, and each serves its own', { skip, timeout: 240_000 }, async () => {
  const other = await startTestServer({ region: REGION });
  try {
    const on = (s: TestServer) => async (args: string[]) => {
      const r = await run(AWS_CLI, ['elbv2', ...args, '--endpoint-url', s.endpoint, '--output', 'json', '--region', REGION], s.env());
      assert.equal(r.code, 0, `aws elbv2 ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    };
    const serveFixed = async (s: TestServer, name: string) => {
      const call = on(s);
      const zones = Object.values(await defaultSubnets(s, REGION)).map((z) => z.id);
      const lb = (await call(['create-load-balancer', '--name', name, '--subnets', ...zones.slice(0, 2), '--scheme', 'internal'])).LoadBalancers[0];
      await call(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', '80', '--default-actions', `Type=fixed-response,FixedResponseConfig={StatusCode=200,ContentType=text/plain,MessageBody=${name}}`]);
      const address: string = lb.AvailabilityZones[0].LoadBalancerAddresses[0].IpAddress;
      await waitUntil(async () => (await get(`http://${address}/`).catch(() => undefined))?.body === name, `${name} served at ${address}`, { timeoutMs: 20_000, intervalMs: 200 });
      return { lb, address, call };
    };
    const first = await serveFixed(srv, `${TAG}-first`);
    // The second server's store knows nothing of the first's load balancer: only the host does.
    const second = await serveFixed(other, `${TAG}-second`);
    assert.notEqual(second.address, first.address);
    for (let i = 0; i < 10; i++) {
      assert.equal((await get(`http://${first.address}/`)).body, `${TAG}-first`);
      assert.equal((await get(`http://${second.address}/`)).body, `${TAG}-second`);
    }
    await second.call(['delete-load-balancer', '--load-balancer-arn', second.lb.LoadBalancerArn]);
    await waitUntil(async () => !(await interfaceAddresses()).includes(second.address), `${second.address} taken off`, { timeoutMs: 10_000, intervalMs: 200 });
    assert.ok((await interfaceAddresses()).includes(first.address), "the first server's address stays");
    assert.equal((await get(`http://${first.address}/`)).body, `${TAG}-first`);
    await first.call(['delete-load-balancer', '--load-balancer-arn', first.lb.LoadBalancerArn]);
  } finally {
    await other.close();
  }
});
