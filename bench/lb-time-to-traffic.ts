/**
 * Time from a service task RUNNING to its first request through the load balancer, on a real
 * Docker Engine and a real HAProxy (issue 11's goal: within one health-check interval).
 *
 * A Wharf server with its load balancer controller and one Docker agent (in this process, as the
 * e2e tests run them); `aws elbv2`-equivalent calls through the API make an application load
 * balancer, an HTTP target group (health checks every 5 s, timeout 2 s) and a listener; an ECS
 * service (awsvpc, busybox httpd answering its hostname, one per task) sits behind it. Each round
 * scales the service up by one and, at once, polls DescribeTasks (every 50 ms) for the new task's
 * RUNNING and the listener (a fresh connection every 10 ms) for the first answer from its
 * container. The figure is the time between the two, against the health-check interval.
 *
 *   npx tsx bench/run.ts lb-time-to-traffic [--quick]
 */
import http from 'node:http';
import os from 'node:os';
import { CreateServiceCommand, DeleteServiceCommand, DescribeTasksCommand, ListTasksCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { haproxySkipReason } from '../test/e2e/helpers/lb-harness';
import { sleep } from '../test/e2e/helpers/processes';
import { startTasksHarness, type TasksHarness } from '../test/e2e/helpers/tasks-harness';
import { AWS_CLI, defaultSubnets, run as runCommand } from '../test/e2e/helpers/wharf-server';
import { pct } from './lib/processes';

const INTERVAL_S = 5;

export interface TimeToTrafficResult {
  host: string;
  rounds: number;
  intervalSeconds: number;
  /** ms from RUNNING (seen in DescribeTasks) to the first request through the listener, per round. */
  samples: number[];
  median: number;
  p90: number;
  max: number;
}

function get(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += String(d)));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function cli(h: TasksHarness, service: string, args: string[]): Promise<any> {
  const r = await runCommand(AWS_CLI, [service, ...args, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env(), undefined, 60_000);
  if (r.code !== 0) throw new Error(`aws ${service} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
}

export async function run(opts: { quick?: boolean } = {}): Promise<TimeToTrafficResult> {
  const skip = haproxySkipReason();
  if (skip) throw new Error(skip);
  const rounds = opts.quick ? 3 : 8;
  const h = await startTasksHarness('bench-ttt', { loadBalancers: { enabled: true } });
  try {
    const subnets = await defaultSubnets(h.srv);
    const zone = (z: string) => subnets[`${h.srv.region}${z}`]!.id;
    const vpcId = (await cli(h, 'ec2', ['describe-vpcs'])).Vpcs[0].VpcId;
    const lb = (await cli(h, 'elbv2', ['create-load-balancer', '--name', 'ttt', '--subnets', zone('a'), zone('b')])).LoadBalancers[0];
    const address = lb.AvailabilityZones[0].LoadBalancerAddresses[0].IpAddress as string;
    const tg = (
      await cli(h, 'elbv2', [
        'create-target-group', '--name', 'ttt', '--protocol', 'HTTP', '--port', '8080', '--vpc-id', vpcId, '--target-type', 'ip',
        '--health-check-interval-seconds', String(INTERVAL_S), '--health-check-timeout-seconds', '2',
      ])
    ).TargetGroups[0].TargetGroupArn as string;
    await cli(h, 'elbv2', ['modify-target-group-attributes', '--target-group-arn', tg, '--attributes', 'Key=deregistration_delay.timeout_seconds,Value=0']);
    await cli(h, 'elbv2', ['create-listener', '--load-balancer-arn', lb.LoadBalancerArn, '--protocol', 'HTTP', '--port', '80', '--default-actions', `Type=forward,TargetGroupArn=${tg}`]);
    const td = await h.register(
      'ttt-web',
      [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, portMappings: [{ containerPort: 8080 }], command: ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'] }],
      { networkMode: 'awsvpc' },
    );
    await h.ecs.send(
      new CreateServiceCommand({
        cluster: h.cluster,
        serviceName: 'ttt',
        taskDefinition: td,
        desiredCount: 0,
        networkConfiguration: { awsvpcConfiguration: { subnets: [zone('a')] } },
        loadBalancers: [{ targetGroupArn: tg, containerName: 'web', containerPort: 8080 }],
      }),
    );
    const known = new Set<string>();
    const bodies = new Set<string>();
    const samples: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      await h.ecs.send(new UpdateServiceCommand({ cluster: h.cluster, service: 'ttt', desiredCount: i }));
      let runningAt: number | undefined;
      let servedAt: number | undefined;
      const deadline = Date.now() + 120_000;
      const watchTask = (async () => {
        while (!runningAt && Date.now() < deadline) {
          const arns = (await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, serviceName: 'ttt' }))).taskArns ?? [];
          const fresh = arns.filter((a) => !known.has(a));
          if (fresh.length) {
            const t = (await h.ecs.send(new DescribeTasksCommand({ cluster: h.cluster, tasks: fresh }))).tasks?.[0];
            if (t?.lastStatus === 'RUNNING') {
              runningAt = Date.now();
              known.add(t.taskArn!);
            }
          }
          if (!runningAt) await sleep(50);
        }
      })();
      // The older tasks' answers were all seen in earlier rounds: a new answer is the new task's.
      while (Date.now() < deadline) {
        const body = await get(`http://${address}/`);
        if (body && !bodies.has(body)) {
          bodies.add(body);
          servedAt = Date.now();
          break;
        }
        await sleep(10);
      }
      await watchTask;
      if (!runningAt || !servedAt) throw new Error(`round ${i}: the new task ${runningAt ? 'never answered through the listener' : 'never reached RUNNING'}`);
      samples.push(Math.max(0, servedAt - runningAt));
      process.stderr.write(`lb-time-to-traffic: round ${i}: ${samples[samples.length - 1]} ms\n`);
    }
    await h.ecs.send(new DeleteServiceCommand({ cluster: h.cluster, service: 'ttt', force: true }));
    const sorted = [...samples].sort((a, b) => a - b);
    return {
      host: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}`,
      rounds,
      intervalSeconds: INTERVAL_S,
      samples,
      median: pct(sorted, 50),
      p90: pct(sorted, 90),
      max: sorted[sorted.length - 1]!,
    };
  } finally {
    await h.close();
  }
}

export function toMarkdown(r: TimeToTrafficResult): string {
  const ratio = (ms: number) => (ms / (r.intervalSeconds * 1000)).toFixed(2);
  return [
    `One host (${r.host}); \`wharf server\` with its load balancer controller (HAProxy) and one Docker agent; an ECS service (awsvpc, busybox httpd) behind an application load balancer whose target group checks every ${r.intervalSeconds} s (timeout 2 s). Each of ${r.rounds} rounds scales the service up by one and measures, on the client, from DescribeTasks first showing the new task RUNNING (polled every 50 ms) to the first answer from its container through the listener (a request every 10 ms). The first health check of a new target is made by Wharf when the target is registered; later ones by HAProxy.`,
    '',
    '| | median | p90 | max |',
    '|---|---:|---:|---:|',
    `| task RUNNING -> first request through the listener (ms) | ${r.median} | ${r.p90} | ${r.max} |`,
    `| as a share of the health-check interval | ${ratio(r.median)} | ${ratio(r.p90)} | ${ratio(r.max)} |`,
    '',
    `Samples (ms): ${r.samples.join(', ')}.`,
    '',
    `Goal: within one health-check interval (${r.intervalSeconds} s): median ${r.median <= r.intervalSeconds * 1000 ? 'met' : 'NOT met'}, max ${r.max <= r.intervalSeconds * 1000 ? 'met' : 'NOT met'}.`,
    '',
    'Command: `npx tsx bench/run.ts lb-time-to-traffic`',
    '',
  ].join('\n');
}
