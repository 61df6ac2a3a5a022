/**
 * The FARGATE launch type on capacity Wharf manages: the seed's own example task definition
 * (examples/webserver.json, with a local image in place of nginx) registered by
 * `wharf task-definition register` runs through the unmodified AWS CLI in a cluster that has no
 * container instances, on a host of the region's Fargate pool (`wharf agent --fargate`), with
 * its own network namespace and IP; ECS's Fargate rules are enforced on the request; a full pool
 * answers as Fargate does; services run FARGATE tasks too.
 *
 * Run: npx tsx --test test/e2e/fargate-tasks.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, type AgentProcess, type ServerProcess } from './helpers/processes';
import { awsCli, defaultSubnets, run, REPO } from './helpers/wharf-server';

const skip = dockerSkipReason();
const CLUSTER = `fargate-${process.pid}`;
/** All three default subnets: the task lands in the pool host's zone (b) and that zone's subnet. */
let NETWORK: string[] = [];
let SUBNETS: Record<string, { id: string; cidr: string }> = {};
const CAPACITY = 'Capacity is unavailable at this time. Please try again later or in a different availability zone';

describe('FARGATE launch type', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let pool: AgentProcess;
  let clusterArn = '';
  // Waiters poll every 6 s (tasks) or 15 s (services): give them time.
  const cli = (args: string[]) => awsCli(srv, args, {}, args[0] === 'wait' ? 180_000 : undefined);
  const describeTask = async (arn: string) => (await cli(['describe-tasks', '--cluster', CLUSTER, '--tasks', arn])).json.tasks[0];

  before(async () => {
    srv = await spawnServer();
    // One pool host with room for three 256 CPU / 512 MiB tasks.
    pool = await spawnAgent({ server: srv, fargate: true, availabilityZone: 'us-east-1b', resources: 'cpu=1024,memory=1536' });
    const made = await cli(['create-cluster', '--cluster-name', CLUSTER]);
    assert.equal(made.code, 0, made.stderr);
    clusterArn = made.json.cluster.clusterArn;
    SUBNETS = await defaultSubnets(srv);
    NETWORK = ['--network-configuration', `awsvpcConfiguration={subnets=[${Object.values(SUBNETS).map((s) => s.id).join(',')}],assignPublicIp=DISABLED}`];
    // The seed's example as a user has it, lenient JSON and all; only the image is local.
    const seed = fs.readFileSync(path.join(REPO, 'examples', 'webserver.json'), 'utf8');
    const local = seed.replace('"image": "nginx"', '"image": "wharf-test/busybox", "command": ["httpd", "-f", "-p", "80", "-h", "/etc"], "stopTimeout": 2, "portMappings": [{"containerPort": 80}]');
    assert.notEqual(local, seed, 'the example still names nginx');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-fg-')), 'webserver.json');
    fs.writeFileSync(file, local);
    const reg = await run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', 'task-definition', 'register', '--file', file, '--endpoint', srv.endpoint], srv.env());
    assert.equal(reg.code, 0, reg.stderr);
    assert.deepEqual(JSON.parse(reg.stdout).taskDefinition.requiresCompatibilities, ['FARGATE']);
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (pool) removeDir(pool.dataDir);
  });

  test('the seed example runs as FARGATE through the AWS CLI, in a cluster with no container instances', async () => {
    const out = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'webserver', ...NETWORK]);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.json.failures, []);
    const arn = out.json.tasks[0].taskArn;
    const wait = await cli(['wait', 'tasks-running', '--cluster', CLUSTER, '--tasks', arn]);
    assert.equal(wait.code, 0, wait.stderr);

    const t = await describeTask(arn);
    assert.equal(t.lastStatus, 'RUNNING');
    assert.equal(t.launchType, 'FARGATE');
    assert.equal(t.platformVersion, '1.4.0');
    assert.equal(t.platformFamily, 'Linux');
    assert.equal(t.cpu, '256');
    assert.equal(t.memory, '512');
    assert.deepEqual(t.ephemeralStorage, { sizeInGiB: 20 });
    assert.equal(t.availabilityZone, 'us-east-1b');
    const eniDetails = Object.fromEntries(t.attachments[0].details.map((d: { name: string; value: string }) => [d.name, d.value]));
    assert.equal(eniDetails.subnetId, SUBNETS['us-east-1b']!.id, "the ENI is in the subnet of the host's zone");
    assert.equal(t.containerInstanceArn, undefined, 'a Fargate task names no container instance');
    assert.deepEqual((await cli(['list-container-instances', '--cluster', CLUSTER])).json.containerInstanceArns, []);
    const cluster = (await cli(['describe-clusters', '--clusters', CLUSTER])).json.clusters[0];
    assert.equal(cluster.registeredContainerInstancesCount, 0);
    assert.equal(cluster.runningTasksCount, 1);

    // Its own network namespace and IP, reachable from the host; the Fargate environment.
    const eni = t.attachments.find((a: { type: string }) => a.type === 'ElasticNetworkInterface');
    const ip = eni.details.find((d: { name: string }) => d.name === 'privateIPv4Address').value;
    assert.equal(t.containers[0].networkInterfaces[0].privateIpv4Address, ip);
    // busybox httpd forks per request, which under gVisor in a quarter of a CPU now and then
    // answers nothing: ask again (each try bounded) rather than wait on one request for minutes.
    let status = 0;
    for (let i = 0; i < 5 && status !== 200; i++) {
      status = await fetch(`http://${ip}:80/hostname`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.status, () => 0);
    }
    assert.equal(status, 200);
    const inspect = JSON.parse(execFileSync('docker', ['inspect', t.containers[0].runtimeId], { encoding: 'utf8' }))[0];
    assert.match(inspect.HostConfig.NetworkMode, /^container:/);
    assert.ok(inspect.Config.Env.includes('AWS_EXECUTION_ENV=AWS_ECS_FARGATE'));
    assert.ok(inspect.Config.Env.includes('AWS_REGION=us-east-1'));
    assert.ok(inspect.Config.Env.includes('AWS_DEFAULT_REGION=us-east-1'));
    assert.equal(inspect.HostConfig.PidsLimit, 4096);
    // The task metadata endpoint v4, read from inside the task as Fargate code does. With nc:
    // busybox's wget fails under this gVisor release (EAGAIN from its socket), nc does not.
    const fetchInside = [
      'u=${ECS_CONTAINER_METADATA_URI_V4#http://}; hp=${u%%/*}; p=/${u#*/}',
      'printf "GET %s/task HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$p" "$hp" | nc -w 10 "${hp%:*}" "${hp#*:}"',
    ].join('; ');
    const answer = execFileSync('docker', ['exec', t.containers[0].runtimeId, 'sh', '-c', fetchInside], { encoding: 'utf8' });
    assert.match(answer, /^HTTP\/1\.[01] 200/);
    const meta = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.equal(meta.TaskARN, arn);
    assert.equal(meta.LaunchType, 'FARGATE');
    assert.deepEqual(meta.Limits, { CPU: 0.25, Memory: 512 });
    assert.equal(meta.AvailabilityZone, 'us-east-1b');
    assert.deepEqual(meta.Containers[0].Networks[0].IPv4Addresses, [ip]);
    // What the engine and the control plane know of the task and its container, in ECS's forms.
    const goTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
    assert.match(meta.PullStartedAt, goTime);
    assert.match(meta.PullStoppedAt, goTime);
    assert.equal(meta.ServiceName, undefined, 'not a service task, and Fargate documents none');
    const mc = meta.Containers[0];
    assert.equal(mc.ImageID, inspect.Image, "the image's sha256 id");
    assert.match(mc.ImageID, /^sha256:[0-9a-f]{64}$/);
    assert.equal(mc.DockerName, inspect.Name.replace(/^\//, ''));
    assert.equal(mc.ContainerARN, t.containers[0].containerArn);
    assert.equal(Date.parse(mc.CreatedAt), Date.parse(inspect.Created.replace(/(\.\d{3})\d*Z$/, '$1Z')));
    assert.equal(Date.parse(mc.StartedAt), Date.parse(inspect.State.StartedAt.replace(/(\.\d{3})\d*Z$/, '$1Z')));
    // ECS_CONTAINER_METADATA_URI is the v3 endpoint, a URI of its own beside the v4 one.
    const envOf = (name: string) => inspect.Config.Env.find((e: string) => e.startsWith(`${name}=`))?.slice(name.length + 1);
    assert.match(envOf('ECS_CONTAINER_METADATA_URI'), /-v3\/[^/]+$/);
    assert.notEqual(envOf('ECS_CONTAINER_METADATA_URI'), envOf('ECS_CONTAINER_METADATA_URI_V4'));
    assert.equal(inspect.Config.Labels['io.wharf.container-instance'], pool.instanceArns[0], 'it runs on the pool host');

    // Kernel isolation: under gVisor where the engine has runsc (CI's dockerd does: the test
    // preflight starts it with the runtime), and the task says which it got.
    const sandbox = t.attributes.find((a: { name: string }) => a.name === 'wharf.fargate-sandbox')?.value;
    const engineHasRunsc = /runsc/.test(execFileSync('docker', ['info', '--format', '{{json .Runtimes}}'], { encoding: 'utf8' }));
    assert.equal(sandbox, engineHasRunsc ? 'gvisor' : 'runc');
    if (process.env.CI) assert.equal(sandbox, 'gvisor', 'CI runs Fargate tasks under gVisor');
    const kernel = execFileSync('docker', ['exec', t.containers[0].runtimeId, 'cat', '/proc/version'], { encoding: 'utf8' });
    if (sandbox === 'gvisor') {
      assert.equal(inspect.HostConfig.Runtime, 'runsc');
      assert.notEqual(kernel, fs.readFileSync('/proc/version', 'utf8'), "the task's kernel is not the host's");
      assert.match(execFileSync('docker', ['exec', t.containers[0].runtimeId, 'dmesg'], { encoding: 'utf8' }), /gVisor/);
    } else {
      assert.equal(kernel, fs.readFileSync('/proc/version', 'utf8'));
    }

    await cli(['stop-task', '--cluster', CLUSTER, '--task', arn]);
    assert.equal((await cli(['wait', 'tasks-stopped', '--cluster', CLUSTER, '--tasks', arn])).code, 0);
  });

  test("Fargate's rules: platform versions, no placement options, compatible definitions only", async () => {
    const bad = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'webserver', '--platform-version', '1.3.0', ...NETWORK]);
    assert.match(bad.stderr, /PlatformUnknownException/);
    const latest = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'webserver', '--platform-version', 'LATEST', '--count', '1', ...NETWORK]);
    assert.equal(latest.code, 0, latest.stderr);
    await cli(['stop-task', '--cluster', CLUSTER, '--task', latest.json.tasks[0].taskArn]);
    assert.equal((await cli(['wait', 'tasks-stopped', '--cluster', CLUSTER, '--tasks', latest.json.tasks[0].taskArn])).code, 0);
    const strategy = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'webserver', '--placement-strategy', 'type=binpack,field=memory', ...NETWORK]);
    assert.match(strategy.stderr, /InvalidParameterException.*placement strategies are not supported/i);
    const noNetwork = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'webserver']);
    assert.match(noNetwork.stderr, /InvalidParameterException.*Network Configuration must be provided/);
    const ec2Only = await cli(['register-task-definition', '--family', 'ec2-only', '--requires-compatibilities', 'EC2', '--network-mode', 'bridge', '--container-definitions', '[{"name":"a","image":"wharf-test/busybox","memory":32}]']);
    assert.equal(ec2Only.code, 0, ec2Only.stderr);
    const mismatch = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'ec2-only']);
    assert.match(mismatch.stderr, /Task definition does not support launch_type FARGATE/);
  });

  test('a full pool answers as Fargate does, and never overbooks its host', async () => {
    const out = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', 'webserver', '--count', '4', ...NETWORK]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.json.tasks.length, 3, '1536 MiB hold three 512 MiB tasks');
    assert.deepEqual(out.json.failures, [{ reason: CAPACITY }]);
    for (const t of out.json.tasks) await cli(['stop-task', '--cluster', CLUSTER, '--task', t.taskArn]);
    assert.equal((await cli(['wait', 'tasks-stopped', '--cluster', CLUSTER, '--tasks', ...out.json.tasks.map((t: { taskArn: string }) => t.taskArn)])).code, 0);
  });

  test('a FARGATE service keeps its tasks running on the pool', async () => {
    const made = await cli(['create-service', '--cluster', CLUSTER, '--service-name', 'web', '--launch-type', 'FARGATE', '--task-definition', 'webserver', '--desired-count', '2', ...NETWORK]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(made.json.service.launchType, 'FARGATE');
    assert.equal(made.json.service.platformVersion, 'LATEST');
    const stable = await cli(['wait', 'services-stable', '--cluster', CLUSTER, '--services', 'web']);
    assert.equal(stable.code, 0, stable.stderr);
    const svc = (await cli(['describe-services', '--cluster', CLUSTER, '--services', 'web'])).json.services[0];
    assert.equal(svc.runningCount, 2);
    const tasks = (await cli(['describe-tasks', '--cluster', CLUSTER, '--tasks', ...(await cli(['list-tasks', '--cluster', CLUSTER, '--service-name', 'web'])).json.taskArns])).json.tasks;
    assert.deepEqual(tasks.map((t: { launchType: string }) => t.launchType), ['FARGATE', 'FARGATE']);
    const daemon = await cli(['create-service', '--cluster', CLUSTER, '--service-name', 'd', '--launch-type', 'FARGATE', '--scheduling-strategy', 'DAEMON', '--task-definition', 'webserver', ...NETWORK]);
    assert.match(daemon.stderr, /InvalidParameterException.*DAEMON/);
    assert.equal((await cli(['delete-service', '--cluster', CLUSTER, '--service', 'web', '--force'])).code, 0);
  });
});
