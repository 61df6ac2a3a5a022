/**
 * The load balancer controller on a real Wharf server with real containers: ELBv2 records in the
 * store become a running HAProxy on an address of wharf-elb0, and HAProxy's view of the targets
 * comes back as health records. Targets are busybox httpd containers on a Docker network of the
 * test's own (`/` answers the container's name, `/health` is the check path, `/cgi-bin/env`
 * echoes the request's headers).
 *
 * The ELBv2 API lands separately: the records are written through the region's store by
 * `elbRecords` below, the one place to swap for `aws elbv2` calls.
 *
 * Run: node --import tsx --test test/e2e/load-balancer-controller.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ControlContext } from '../../src/control/context';
import {
  elbIdOf,
  healthKey,
  healthOf,
  listenerKey,
  loadBalancerKey,
  ruleKey,
  targetGroupKey,
  targetKeyOf,
  type ElbAction,
  type ElbRuleCondition,
  type ListenerRecord,
  type LoadBalancerRecord,
  type TargetGroupRecord,
  type TargetHealthRecord,
} from '../../src/control/elbv2-records';
import { interfaceAddresses } from '../../src/cmd/elb-interface';
import { processAlive } from '../../src/lib/process';
import { dockerSkipReason } from '../images/docker-test-env';
import { haproxySkipReason, get } from './helpers/lb-harness';
import { sleep, waitUntil } from './helpers/processes';
import { ecsCall, run, startTestServer, type TestServer } from './helpers/wharf-server';

const skip = dockerSkipReason() || haproxySkipReason();
const TAG = `lbctl${process.pid}`;
const NETWORK = `${TAG}-net`;
// Each test run has its own address in us-east-1's /24, away from what the ELBv2 API allocates first.
const ADDRESS = `10.99.0.${200 + (process.pid % 50)}`;
const NAME = `${TAG}-alb`;
const DNS_NAME = `${NAME}-0123456789.us-east-1.elb.amazonaws.com`;
const ACCOUNT = '123456789012';
const arn = (resource: string) => `arn:aws:elasticloadbalancing:us-east-1:${ACCOUNT}:${resource}`;
const hex = (n: number) => n.toString(16).padStart(16, '0');

/** The ELBv2 records a test needs, written through the region's store (the API's job, later). */
let seq = 0x1000 + (process.pid % 0x1000) * 0x100;
function elbRecords(ctx: ControlContext) {
  const write = async (key: string, value: unknown) => {
    const have = await ctx.store.get(key);
    const rev = have ? await ctx.store.update(key, value, have.modRevision) : await ctx.store.create(key, value);
    await ctx.state.waitFor(rev);
  };
  const now = Math.floor(Date.now() / 1000);
  return {
    async loadBalancer(name: string, address: string, dnsName: string): Promise<LoadBalancerRecord> {
      const lb: LoadBalancerRecord = {
        LoadBalancerArn: arn(`loadbalancer/app/${name}/${hex(++seq)}`),
        LoadBalancerName: name,
        DNSName: dnsName,
        CanonicalHostedZoneId: 'Z35SXDOTRQ7X7K',
        CreatedTime: now,
        Scheme: 'internal',
        VpcId: 'vpc-test',
        State: { Code: 'active' },
        Type: 'application',
        AvailabilityZones: [],
        IpAddressType: 'ipv4',
        Attributes: {},
        Tags: [],
        address,
      };
      await write(loadBalancerKey(name), lb);
      return lb;
    },
    async targetGroup(name: string, over: Partial<TargetGroupRecord> = {}, attributes: Record<string, string> = {}): Promise<TargetGroupRecord> {
      const tg: TargetGroupRecord = {
        TargetGroupArn: arn(`targetgroup/${name}/${hex(++seq)}`),
        TargetGroupName: name,
        Protocol: 'HTTP',
        Port: 8080,
        VpcId: 'vpc-test',
        TargetType: 'ip',
        IpAddressType: 'ipv4',
        HealthCheckEnabled: true,
        HealthCheckProtocol: 'HTTP',
        HealthCheckPort: 'traffic-port',
        HealthCheckPath: '/health',
        HealthCheckIntervalSeconds: 2,
        HealthCheckTimeoutSeconds: 1,
        HealthyThresholdCount: 2,
        UnhealthyThresholdCount: 2,
        Matcher: { HttpCode: '200' },
        Attributes: { 'deregistration_delay.timeout_seconds': '4', ...attributes },
        Tags: [],
        CreatedTime: now,
        ...over,
      };
      await write(targetGroupKey(name), tg);
      return tg;
    },
    async listener(lb: LoadBalancerRecord, port: number, defaultActions: ElbAction[]): Promise<ListenerRecord> {
      const l: ListenerRecord = { ListenerArn: arn(`listener/app/${lb.LoadBalancerName}/${elbIdOf(lb.LoadBalancerArn)}/${hex(++seq)}`), LoadBalancerArn: lb.LoadBalancerArn, Port: port, Protocol: 'HTTP', DefaultActions: defaultActions, Tags: [] };
      await write(listenerKey(elbIdOf(lb.LoadBalancerArn), elbIdOf(l.ListenerArn)), l);
      return l;
    },
    async rule(l: ListenerRecord, priority: number, conditions: ElbRuleCondition[], actions: ElbAction[]): Promise<void> {
      const ruleArn = `${l.ListenerArn.replace(':listener/', ':listener-rule/')}/${hex(++seq)}`;
      await write(ruleKey(elbIdOf(l.ListenerArn), elbIdOf(ruleArn)), { RuleArn: ruleArn, ListenerArn: l.ListenerArn, Priority: String(priority), Conditions: conditions, Actions: actions, Tags: [] });
    },
    async register(tg: TargetGroupRecord, id: string, port: number): Promise<void> {
      await write(targetKeyOf(elbIdOf(tg.TargetGroupArn), id, port), { Id: id, Port: port, registeredAt: Date.now() });
    },
    async deregister(tg: TargetGroupRecord, id: string, port: number): Promise<void> {
      const key = targetKeyOf(elbIdOf(tg.TargetGroupArn), id, port);
      const have = await ctx.store.get(key);
      if (have) await ctx.state.waitFor(await ctx.store.delete(key, have.modRevision));
    },
  };
}

const forward = (tg: TargetGroupRecord): ElbAction[] => [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn }];

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).trim();
}

const containers: string[] = [];

/** A busybox httpd answering its name on /, `ok` on /health, its request headers on /cgi-bin/env. */
function startHttpd(name: string, o: { publish?: boolean; network?: string; files?: Record<string, string> } = {}): { ip: string; hostPort?: number } {
  const files = { 'index.html': name, health: 'ok', ...(o.files ?? {}) };
  const script = [
    'mkdir -p /w/cgi-bin',
    ...Object.entries(files).map(([f, body]) => `mkdir -p "$(dirname /w/${f})" && echo ${body} > /w/${f}`),
    `printf '#!/bin/sh\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\n"\\nenv\\n' > /w/cgi-bin/env && chmod +x /w/cgi-bin/env`,
    'exec httpd -f -p 8080 -h /w',
  ].join(' && ');
  const cname = `${TAG}-${name}`;
  docker('run', '-d', '--name', cname, '--label', `wharf-test=${TAG}`, ...(o.network ? ['--network', o.network] : []), ...(o.publish ? ['-p', '0:8080'] : []), 'wharf-test/busybox', 'sh', '-c', script);
  containers.push(cname);
  const ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', cname);
  const hostPort = o.publish ? Number(/:(\d+)$/m.exec(docker('port', cname, '8080/tcp'))![1]) : undefined;
  return { ip, hostPort };
}

function stored(ctx: ControlContext, tg: TargetGroupRecord): TargetHealthRecord[] {
  return healthOf(ctx, elbIdOf(tg.TargetGroupArn));
}

async function waitHealth(ctx: ControlContext, tg: TargetGroupRecord, want: (h: TargetHealthRecord[]) => boolean, what: string, timeoutMs = 30_000): Promise<TargetHealthRecord[]> {
  return waitUntil(() => (want(stored(ctx, tg)) ? stored(ctx, tg) : undefined), what, { timeoutMs, intervalMs: 100, describe: () => stored(ctx, tg) });
}

const url = (path = '/', port = 80) => `http://${ADDRESS}:${port}${path}`;

/** Runs a command in a throwaway container on the test network (resolving through Wharf's DNS). */
async function fromContainer(gateway: string, cmd: string[]): Promise<string> {
  const r = await run('docker', ['run', '--rm', '--network', NETWORK, '--dns', gateway, 'wharf-test/busybox', ...cmd], process.env, undefined, 30_000);
  if (r.code !== 0) throw new Error(`${cmd.join(' ')} in a container failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

describe('load balancer controller: ELBv2 records -> HAProxy -> health records', { skip, timeout: 600_000 }, () => {
  let srv: TestServer;
  let gateway: string;
  let dataDir: string;
  let web: TargetGroupRecord;
  let api: TargetGroupRecord;
  let lb: LoadBalancerRecord;
  const webTargets: Record<string, string> = {};
  const healthSeen: string[] = [];

  before(async () => {
    docker('network', 'create', '--label', `wharf-test=${TAG}`, NETWORK);
    gateway = docker('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Gateway}}{{end}}', NETWORK);
    // The DNS server on the test network's gateway: what its containers use as their resolver.
    // The test's own data dir: the restart below starts a second server on it.
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `${TAG}-`));
    srv = await startTestServer({ dataDir, dns: { listen: [{ host: gateway, port: 53 }], required: true } });
  });

  after(async () => {
    await srv?.close();
    for (const c of containers) await run('docker', ['rm', '-f', c], process.env);
    await run('docker', ['network', 'rm', NETWORK], process.env);
    // Nothing left behind: no HAProxy of this data dir, no address of ours on wharf-elb0.
    assert.ok(!(await interfaceAddresses()).includes(ADDRESS), `${ADDRESS} is still on wharf-elb0`);
    const pidFile = `${dataDir}/haproxy/haproxy.pid`;
    assert.ok(!fs.existsSync(pidFile) || !processAlive(Number(fs.readFileSync(pidFile, 'utf8'))), 'haproxy still runs');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('every target answers through the listener in turn, with X-Forwarded-For/Proto/Port', async () => {
    const ctx = srv.server.ctx;
    for (const n of ['a', 'b', 'c']) webTargets[n] = startHttpd(`web-${n}`, { network: NETWORK }).ip;
    const recs = elbRecords(ctx);
    lb = await recs.loadBalancer(NAME, ADDRESS, DNS_NAME);
    web = await recs.targetGroup(`${TAG}-web`);
    const listener = await recs.listener(lb, 80, forward(web));
    api = await recs.targetGroup(`${TAG}-api`);
    await recs.rule(listener, 10, [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/api/*'] } }], forward(api));
    await recs.rule(listener, 20, [{ Field: 'host-header', Values: ['teapot.example'] }], [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '418', ContentType: 'text/plain', MessageBody: 'short and stout' } }]);
    const unsubscribe = ctx.state.subscribe((c) => {
      if (c.kind === 'elbhealth' && c.parent === elbIdOf(web.TargetGroupArn) && c.current) healthSeen.push(`${(c.current.value as TargetHealthRecord).Id}:${(c.current.value as TargetHealthRecord).State}`);
    });
    for (const ip of Object.values(webTargets)) await recs.register(web, ip, 8080);
    const healthy = await waitHealth(ctx, web, (h) => h.length === 3 && h.every((r) => r.State === 'healthy'), 'all three web targets healthy');
    unsubscribe();
    assert.deepEqual(healthy.map((h) => h.Id).sort(), Object.values(webTargets).sort());
    // Each target was recorded initial before healthy (ELB's Elb.InitialHealthChecking / RegistrationInProgress).
    for (const ip of Object.values(webTargets)) {
      const seen = healthSeen.filter((s) => s.startsWith(`${ip}:`)).map((s) => s.split(':')[1]);
      assert.equal(seen[0], 'initial', `${ip}: ${seen.join(' -> ')}`);
      assert.equal(seen.at(-1), 'healthy');
    }
    assert.ok((await interfaceAddresses()).includes(ADDRESS), `${ADDRESS} is on wharf-elb0`);
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) bodies.push((await get(url())).body.trim());
    assert.deepEqual([...bodies.slice(0, 3)].sort(), ['web-a', 'web-b', 'web-c']);
    assert.deepEqual(bodies.slice(3), bodies.slice(0, 3));
    const env = (await get(url('/cgi-bin/env'))).body;
    assert.match(env, /^HTTP_X_FORWARDED_FOR=\d+\.\d+\.\d+\.\d+$/m);
    assert.match(env, /^HTTP_X_FORWARDED_PROTO=http$/m);
    assert.match(env, /^HTTP_X_FORWARDED_PORT=80$/m);
    const teapot = await get(url('/'), { host: 'teapot.example' });
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body, 'short and stout');
  });

  test('a path rule routes to a second target group', async () => {
    const ctx = srv.server.ctx;
    const { ip } = startHttpd('api-1', { network: NETWORK, files: { 'api/index.html': 'api-one' } });
    await elbRecords(ctx).register(api, ip, 8080);
    await waitHealth(ctx, api, (h) => h.length === 1 && h[0]!.State === 'healthy', 'the api target healthy');
    for (let i = 0; i < 3; i++) assert.equal((await get(url('/api/'))).body.trim(), 'api-one');
    assert.match((await get(url('/'))).body, /^web-/);
  });

  test('a target that stops answering its health check becomes unhealthy, and healthy again', async () => {
    const ctx = srv.server.ctx;
    docker('exec', `${TAG}-web-b`, 'rm', '/w/health');
    const h = await waitHealth(ctx, web, (hs) => hs.find((r) => r.Id === webTargets.b)?.State === 'unhealthy', 'web-b unhealthy');
    const b = h.find((r) => r.Id === webTargets.b)!;
    assert.equal(b.Reason, 'Target.ResponseCodeMismatch');
    assert.equal(b.Description, 'Health checks failed with these codes: [404]');
    for (let i = 0; i < 4; i++) assert.notEqual((await get(url())).body.trim(), 'web-b');
    docker('exec', `${TAG}-web-b`, 'sh', '-c', 'echo ok > /w/health');
    await waitHealth(ctx, web, (hs) => hs.find((r) => r.Id === webTargets.b)?.State === 'healthy', 'web-b healthy again');
  });

  test('a deregistered target drains, then its health record is deleted', async () => {
    const ctx = srv.server.ctx;
    await elbRecords(ctx).deregister(web, webTargets.c!, 8080);
    await waitHealth(ctx, web, (hs) => hs.find((r) => r.Id === webTargets.c)?.State === 'draining', 'web-c draining');
    const c = stored(ctx, web).find((r) => r.Id === webTargets.c)!;
    assert.equal(c.Reason, 'Target.DeregistrationInProgress');
    for (let i = 0; i < 4; i++) assert.notEqual((await get(url())).body.trim(), 'web-c');
    await waitHealth(ctx, web, (hs) => !hs.some((r) => r.Id === webTargets.c), 'web-c health record gone', 20_000);
    assert.equal(await ctx.store.get(healthKey(elbIdOf(web.TargetGroupArn), webTargets.c!, 8080)), undefined);
    // Back for the tests that follow.
    await elbRecords(ctx).register(web, webTargets.c!, 8080);
    await waitHealth(ctx, web, (hs) => hs.length === 3 && hs.every((r) => r.State === 'healthy'), 'web-c back');
  });

  test('a container reaches the listener by address and by the load balancer DNS name', async () => {
    const byAddress = await fromContainer(gateway, ['wget', '-qO-', `http://${ADDRESS}/`]);
    assert.match(byAddress, /^web-[abc]$/);
    const lookup = await fromContainer(gateway, ['nslookup', DNS_NAME]);
    assert.match(lookup, new RegExp(`Address:\\s*${ADDRESS.replace(/\./g, '\\.')}`));
    const byName = await fromContainer(gateway, ['wget', '-qO-', `http://${DNS_NAME}/api/`]);
    assert.equal(byName, 'api-one');
  });

  test('an instance target (a container instance and a bridge-mode host port) answers through the listener', async () => {
    const ctx = srv.server.ctx;
    const instanceId = `i-0${hex(process.pid).slice(-16)}`;
    assert.equal((await ecsCall(srv, 'CreateCluster', { clusterName: TAG })).status, 200);
    const reg = await ecsCall(srv, 'RegisterContainerInstance', {
      cluster: TAG,
      instanceIdentityDocument: JSON.stringify({ instanceId, availabilityZone: 'us-east-1a' }),
      totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }],
    });
    assert.equal(reg.status, 200, reg.text);
    assert.equal(reg.json.containerInstance.ec2InstanceId, instanceId);
    const { hostPort } = startHttpd('inst-1', { publish: true });
    const recs = elbRecords(ctx);
    const inst = await recs.targetGroup(`${TAG}-inst`, { TargetType: 'instance' });
    await recs.listener(lb, 8081, forward(inst));
    await recs.register(inst, instanceId, hostPort!);
    const h = await waitHealth(ctx, inst, (hs) => hs.length === 1 && hs[0]!.State === 'healthy', 'the instance target healthy');
    assert.deepEqual([h[0]!.Id, h[0]!.Port], [instanceId, hostPort]);
    assert.equal((await get(url('/', 8081))).body.trim(), 'inst-1');
  });

  test('time to traffic: a registered target gets its first request after one passing check (5 s health checks)', async (t) => {
    const ctx = srv.server.ctx;
    const recs = elbRecords(ctx);
    const slow = await recs.targetGroup(`${TAG}-ttt`, { HealthCheckIntervalSeconds: 5, HealthCheckTimeoutSeconds: 2, HealthyThresholdCount: 2 });
    await recs.listener(lb, 8082, forward(slow));
    const { ip } = startHttpd('ttt-1', { network: NETWORK });
    // The listener is in place (a reload) before the clock starts: it answers, without targets, 503.
    await waitUntil(async () => (await get(url('/', 8082)).catch(() => ({ status: 0 }))).status === 503, 'the new listener answering', { timeoutMs: 15_000, intervalMs: 100 });
    const t0 = Date.now();
    await recs.register(slow, ip, 8080);
    // The controller's part: the target is in HAProxy (its health record says so) ...
    await waitHealth(ctx, slow, (h) => h.length === 1, 'the new target in HAProxy', 10_000);
    const inHaproxy = Date.now() - t0;
    await waitUntil(async () => (await get(url('/', 8082)).catch(() => ({ body: '' }))).body.trim() === 'ttt-1', 'the first request to reach the new target', { timeoutMs: 30_000, intervalMs: 50, describe: () => stored(ctx, slow) });
    const ms = Date.now() - t0;
    // ... and HAProxy's: healthyThreshold passing checks, `interval` apart.
    t.diagnostic(`time from writing the target record to its first request through the listener: ${ms} ms (in HAProxy, health record written, after ${inHaproxy} ms; interval 5 s, healthy threshold 2)`);
    // One passing check (ELB's rule for a new target): HAProxy runs it within an interval, the
    // next controller pass (<= 1 s) puts the target up. Two intervals leave room for a loaded host.
    assert.ok(ms < 10_000, `${ms} ms`);
  });

  test('a restart of the Wharf server keeps the listener serving throughout, and the targets', async () => {
    const pid = srv.server.loadBalancers!.reconciler.supervisor.masterPid;
    let ok = 0;
    const failures: string[] = [];
    let going = true;
    const loop = (async () => {
      while (going) {
        try {
          const r = await get(url());
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
        await sleep(50);
      }
    })();
    await sleep(500);
    await srv.close({ keepLoadBalancers: true });
    await sleep(1000); // no control plane at all for a while
    srv = await startTestServer({ dataDir, dns: { listen: [{ host: gateway, port: 53 }], required: true } });
    const ctx = srv.server.ctx;
    await waitUntil(() => srv.server.loadBalancers!.controller.passes > 1, 'two controller passes after the restart');
    await sleep(1000);
    going = false;
    await loop;
    assert.deepEqual(failures, []);
    assert.ok(ok > 20, `${ok} requests answered`);
    assert.equal(srv.server.loadBalancers!.reconciler.supervisor.masterPid, pid, 'the running haproxy was adopted');
    const hs = stored(ctx, web);
    assert.deepEqual(hs.map((h) => h.State), ['healthy', 'healthy', 'healthy']);
    const bodies = new Set<string>();
    for (let i = 0; i < 3; i++) bodies.add((await get(url())).body.trim());
    assert.deepEqual([...bodies].sort(), ['web-a', 'web-b', 'web-c']);
  });

  test('HAProxy killed (kill -9 of its master) is back within seconds with the same targets', async () => {
    const sup = srv.server.loadBalancers!.reconciler.supervisor;
    const pid = sup.masterPid!;
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    await waitUntil(async () => sup.masterPid !== pid && (await get(url()).then((r) => r.status === 200).catch(() => false)), 'haproxy back', { timeoutMs: 15_000, intervalMs: 50 });
    assert.ok(Date.now() - t0 < 10_000);
    await waitUntil(async () => {
      const bodies = new Set<string>();
      for (let i = 0; i < 3; i++) bodies.add((await get(url())).body.trim());
      return bodies.size === 3 && [...bodies].sort().join() === 'web-a,web-b,web-c';
    }, 'all three web targets answering again', { timeoutMs: 15_000, intervalMs: 200 });
  });
});
