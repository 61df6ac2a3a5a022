/**
 * ECS services behind an application load balancer, end to end: `aws elbv2` makes the load
 * balancer, target groups, listener and a path rule; `aws ecs create-service --load-balancers`
 * puts busybox httpd tasks (awsvpc) behind it; Wharf registers them, HAProxy health-checks them,
 * and real HTTP requests go through the listener's address:
 *   - every task answers in turn;
 *   - a path rule routes /api/ to a second service;
 *   - a rolling deployment under a steady stream of requests loses none (the count is printed);
 *   - a task killed under that stream loses at most the requests in flight on it;
 *   - a task whose container stops answering health checks is replaced with ECS's stop reason.
 *
 * Run: node scripts/run-tests.js --e2e services-load-balancers
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { CreateServiceCommand, DescribeServicesCommand, DescribeTasksCommand, ListTasksCommand, UpdateServiceCommand, type Service } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { haproxySkipReason } from './helpers/lb-harness';
import { sleep, waitUntil } from './helpers/processes';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';
import { AWS_CLI, defaultSubnets, run } from './helpers/wharf-server';

const skip = dockerSkipReason() ?? haproxySkipReason();

/** busybox httpd on 8080 answering "<label> <container hostname>" at / and at /api/. */
const httpd = (label: string) => [
  'sh',
  '-c',
  `mkdir -p /www/api && echo "${label} $(hostname)" > /www/index.html && cp /www/index.html /www/api/index.html && exec httpd -f -p 8080 -h /www`,
];

interface Reply {
  status: number;
  body: string;
}

/** One request on a fresh connection (as most load balancer clients make them). */
function get(url: string, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d) => (body += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/**
 * `n` clients, each sending its next request as soon as the last one is answered, counting
 * what fails (an error or a status other than 200); the first word of each answer is kept.
 */
function steadyStream(url: string, n: number) {
  let stopped = false;
  const counts = { sent: 0, failed: 0 };
  const failures: string[] = [];
  const bodies: string[] = [];
  const clients = Array.from({ length: n }, async () => {
    while (!stopped) {
      counts.sent++;
      try {
        const r = await get(url);
        if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.slice(0, 80)}`);
        bodies.push(r.body.split(' ')[0]!);
      } catch (err) {
        counts.failed++;
        failures.push((err as Error).message);
        await sleep(10);
      }
    }
  });
  return {
    counts,
    failures,
    bodies,
    async stop() {
      stopped = true;
      await Promise.all(clients);
    },
  };
}

describe('services behind a load balancer', { skip, timeout: 600_000 }, () => {
  let h: TasksHarness;
  let subnet = '';
  let lbAddress = '';
  let vpcId = '';
  let webGroup = '';
  let apiGroup = '';
  let listenerArn = '';
  let webTd = '';

  const cli = async (service: string, args: string[]) => {
    const r = await run(AWS_CLI, [service, ...args, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env(), undefined, 60_000);
    assert.equal(r.code, 0, `aws ${service} ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };
  const elb = (args: string[]) => cli('elbv2', args);

  /** A target group for httpd on 8080 with quick health checks and a short drain. */
  const targetGroup = async (name: string, path: string): Promise<string> => {
    const tg = (
      await elb([
        'create-target-group', '--name', name, '--protocol', 'HTTP', '--port', '8080', '--vpc-id', vpcId, '--target-type', 'ip',
        '--health-check-path', path, '--health-check-interval-seconds', '5', '--health-check-timeout-seconds', '2',
        '--healthy-threshold-count', '2', '--unhealthy-threshold-count', '2',
      ])
    ).TargetGroups[0].TargetGroupArn as string;
    await elb(['modify-target-group-attributes', '--target-group-arn', tg, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=5']);
    return tg;
  };

  const healthyTargets = async (tg: string): Promise<string[]> => {
    const d = (await elb(['describe-target-health', '--target-group-arn', tg])).TargetHealthDescriptions as { Target: { Id: string }; TargetHealth: { State: string } }[];
    return d.filter((x) => x.TargetHealth.State === 'healthy').map((x) => x.Target.Id).sort();
  };

  const service = async (name: string): Promise<Service> => (await h.ecs.send(new DescribeServicesCommand({ cluster: h.cluster, services: [name] }))).services![0]!;

  /** The private IPs of the service's RUNNING tasks. */
  const taskIps = async (name: string): Promise<string[]> => {
    const arns = (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, serviceName: name, desiredStatus: 'RUNNING' }))).taskArns ?? [];
    if (!arns.length) return [];
    const tasks = (await h.ecs.send(new DescribeTasksCommand({ cluster: h.cluster, tasks: arns }))).tasks ?? [];
    return tasks.filter((t) => t.lastStatus === 'RUNNING').map((t) => t.containers?.[0]?.networkInterfaces?.[0]?.privateIpv4Address ?? '').sort();
  };

  /** Waits until the group's healthy targets are exactly the service's RUNNING tasks, `n` of them. */
  const waitServing = (name: string, tg: string, n: number) =>
    waitUntil(
      async () => {
        const [ips, healthy] = [await taskIps(name), await healthyTargets(tg)];
        return ips.length === n && JSON.stringify(ips) === JSON.stringify(healthy) ? ips : undefined;
      },
      `${n} tasks of ${name} healthy in their target group`,
      { timeoutMs: 120_000, intervalMs: 1000 },
    );

  before(async () => {
    h = await startTasksHarness('svc-lb', { loadBalancers: { enabled: true } });
    const subnets = await defaultSubnets(h.srv);
    subnet = subnets[`${h.srv.region}a`]!.id;
    vpcId = (await cli('ec2', ['describe-vpcs'])).Vpcs[0].VpcId;
    const lb = (await elb(['create-load-balancer', '--name', 'web', '--subnets', subnets[`${h.srv.region}a`]!.id, subnets[`${h.srv.region}b`]!.id])).LoadBalancers[0];
    lbAddress = lb.AvailabilityZones[0].LoadBalancerAddresses[0].IpAddress;
    webGroup = await targetGroup('web', '/');
    apiGroup = await targetGroup('api', '/api/');
    listenerArn = (await elb(['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', '80', '--default-actions', `Type=forward,TargetGroupArn=${webGroup}`])).Listeners[0].ListenerArn;
    await elb(['create-rule', '--listener-arn', listenerArn, '--priority', '10', '--conditions', 'Field=path-pattern,Values=/api/*', '--actions', `Type=forward,TargetGroupArn=${apiGroup}`]);
    webTd = await h.register('lb-web', [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 2, portMappings: [{ containerPort: 8080 }], command: httpd('web-v1') }], { networkMode: 'awsvpc' });
  });
  after(async () => {
    await h?.close();
  });

  const createService = async (name: string, td: string, tg: string, count: number) =>
    h.ecs.send(
      new CreateServiceCommand({
        cluster: h.cluster,
        serviceName: name,
        taskDefinition: td,
        desiredCount: count,
        networkConfiguration: { awsvpcConfiguration: { subnets: [subnet] } },
        loadBalancers: [{ targetGroupArn: tg, containerName: 'web', containerPort: 8080 }],
        deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 },
      }),
    );

  test('every task of the service answers through the listener in turn', async () => {
    await createService('web', webTd, webGroup, 3);
    const ips = await waitServing('web', webGroup, 3);
    assert.equal(ips.length, 3);
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await get(`http://${lbAddress}/`);
      assert.equal(r.status, 200);
      bodies.push(r.body);
    }
    assert.equal(new Set(bodies).size, 3, `three tasks answered: ${bodies.join(' | ')}`);
    assert.deepEqual(bodies.slice(3), bodies.slice(0, 3), 'round robin: the same order again');
    const events = (await service('web')).events?.map((e) => e.message) ?? [];
    assert.ok(events.some((m) => /registered 3 targets in \(target-group .*targetgroup\/web\//.test(m ?? '') || /registered \d targets/.test(m ?? '')), events.join('\n'));
  });

  test('a path rule routes /api/ to a second service', async () => {
    const apiTd = await h.register('lb-api', [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 2, portMappings: [{ containerPort: 8080 }], command: httpd('api') }], { networkMode: 'awsvpc' });
    await createService('api', apiTd, apiGroup, 1);
    await waitServing('api', apiGroup, 1);
    const api = await get(`http://${lbAddress}/api/`);
    assert.equal(api.status, 200);
    assert.match(api.body, /^api /);
    const web = await get(`http://${lbAddress}/`);
    assert.match(web.body, /^web-v1 /);
  });

  test('a rolling deployment under a steady request stream loses no request', async () => {
    const before = await taskIps('web');
    const v2 = await h.register('lb-web', [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 2, portMappings: [{ containerPort: 8080 }], command: httpd('web-v2') }], { networkMode: 'awsvpc' });
    const stream = steadyStream(`http://${lbAddress}/`, 4);
    try {
      await sleep(1000);
      await h.ecs.send(new UpdateServiceCommand({ cluster: h.cluster, service: 'web', taskDefinition: v2 }));
      await waitUntil(
        async () => {
          const s = await service('web');
          const primary = s.deployments?.find((d) => d.status === 'PRIMARY');
          return s.deployments?.length === 1 && primary?.rolloutState === 'COMPLETED' && primary.taskDefinition === v2 ? true : undefined;
        },
        'the deployment to complete',
        { timeoutMs: 240_000, intervalMs: 1000 },
      );
      const after = await waitServing('web', webGroup, 3);
      assert.equal(after.filter((ip) => before.includes(ip)).length, 0, 'every task was replaced');
      await sleep(1000);
    } finally {
      await stream.stop();
    }
    const counts = stream.counts;
    const fromV1 = stream.bodies.filter((b) => b === 'web-v1').length;
    const fromV2 = stream.bodies.filter((b) => b === 'web-v2').length;
    console.log(`rolling deployment behind the load balancer: ${counts.sent} requests, ${counts.failed} failed (v1 answered ${fromV1}, v2 ${fromV2})`);
    assert.equal(counts.failed, 0, `failed requests: ${stream.failures.slice(0, 5).join('; ')}`);
    assert.ok(fromV1 > 0 && fromV2 > 0, 'both revisions answered during the deployment');
    const last = await get(`http://${lbAddress}/`);
    assert.match(last.body, /^web-v2 /);
    const events = (await service('web')).events?.map((e) => e.message ?? '') ?? [];
    assert.ok(events.some((m) => /has begun draining connections on \d+ tasks/.test(m)), events.slice(0, 20).join('\n'));
    assert.ok(events.some((m) => /deregistered \d+ targets in \(target-group /.test(m)), events.slice(0, 20).join('\n'));
  });

  test('killing a task under load loses at most the requests in flight on it', async () => {
    const arns = (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, serviceName: 'web', desiredStatus: 'RUNNING' }))).taskArns!;
    const victim = (await h.ecs.send(new DescribeTasksCommand({ cluster: h.cluster, tasks: arns }))).tasks![0]!;
    const stream = steadyStream(`http://${lbAddress}/`, 4);
    try {
      await sleep(1000);
      const kill = await run('docker', ['kill', victim.containers![0]!.runtimeId!], process.env);
      assert.equal(kill.code, 0, kill.stderr);
      await h.waitTask(victim.taskArn!, (t) => t.lastStatus === 'STOPPED', 'the killed task to stop', { timeoutMs: 60_000 });
      await waitServing('web', webGroup, 3);
      await sleep(1000);
    } finally {
      await stream.stop();
    }
    const c = stream.counts;
    console.log(`a task killed behind the load balancer: ${c.sent} requests, ${c.failed} failed (4 clients, so at most 4 in flight on it)`);
    assert.ok(c.failed <= 4, `failed requests: ${c.failed}: ${stream.failures.slice(0, 5).join('; ')}`);
    assert.ok(c.sent > c.failed + 100, 'the stream kept going');
  });

  test('a task that fails its load balancer health checks is replaced', async () => {
    const [victim] = await taskIps('api');
    assert.ok(victim);
    const arns = (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, serviceName: 'api', desiredStatus: 'RUNNING' }))).taskArns!;
    const task = (await h.ecs.send(new DescribeTasksCommand({ cluster: h.cluster, tasks: arns }))).tasks![0]!;
    const docker = task.containers![0]!.runtimeId!;
    // The page the health check asks for goes away; the container keeps running.
    const rm = await run('docker', ['exec', docker, 'rm', '-rf', '/www/api'], process.env);
    assert.equal(rm.code, 0, rm.stderr);
    const stopped = await h.waitTask(task.taskArn!, (t) => t.lastStatus === 'STOPPED', 'the unhealthy task to be stopped', { timeoutMs: 120_000 });
    assert.match(stopped.stoppedReason ?? '', /^Task failed ELB health checks in \(target-group arn:aws:elasticloadbalancing:[^)]+targetgroup\/api\/[0-9a-f]+\)$/);
    assert.equal(stopped.stopCode, 'ServiceSchedulerInitiated');
    const ips = await waitServing('api', apiGroup, 1);
    assert.notDeepEqual(ips, [victim], 'a new task took its place');
    assert.match((await get(`http://${lbAddress}/api/`)).body, /^api /);
  });
});
