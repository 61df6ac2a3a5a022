/**
 * Isolation of FARGATE tasks on a pool host, end to end through the AWS CLI/SDK against a real
 * Docker Engine, under the sandbox the engine has (gVisor where it has a `runsc` runtime, as
 * under CI; else runc, and the gVisor-only facts are then said to be skipped):
 *
 *   - two tasks of one definition: each container pair shares localhost, a task volume and
 *     nothing else; neither sees the other's processes, files or loopback services, and the
 *     task volume goes with its task;
 *   - the task metadata endpoint's /stats and /task/stats, read from inside a task;
 *   - task memory is a hard limit for the whole task: a hog is OOM-killed with ECS's reason while
 *     its neighbour runs on, and an essential hog takes its task down;
 *   - task cpu is a hard limit: a burner in a 256-unit task stays near a quarter of a CPU;
 *   - what Fargate forbids (privileged, host network, host paths, added capabilities, devices,
 *     pidMode host) is refused at registration.
 *
 * The tasks all start at once in `before` so the slow parts (gVisor allocating 700 MiB) overlap.
 *
 * Run: npx tsx --test test/e2e/fargate-isolation.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { DescribeTasksCommand, RegisterTaskDefinitionCommand, type RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, type AgentProcess, type ServerProcess } from './helpers/processes';
import { awsCli, defaultSubnetsNetwork } from './helpers/wharf-server';

const skip = dockerSkipReason();
const CLUSTER = `fg-iso-${process.pid}`;
/** The region's default subnets (set once the server runs). */
let NETWORK: string[] = [];
const OOM_REASON = 'OutOfMemoryError: Container killed due to memory usage';
const BUSYBOX = 'wharf-test/busybox';
/** 700 MiB in one buffer: over a 512 MiB task at once, and quick to fill even under gVisor. */
const HOG = ['sh', '-c', 'sleep 2; exec dd if=/dev/zero of=/dev/null bs=700M count=1'];

type Task = { taskArn: string; lastStatus: string; stopCode?: string; attributes?: { name: string; value?: string }[]; containers: { name: string; runtimeId?: string; lastStatus: string; exitCode?: number; reason?: string; networkInterfaces?: { privateIpv4Address: string }[] }[] };

const docker = (args: string[]) => execFileSync('docker', args, { encoding: 'utf8' });
const sh = (id: string, script: string) => execFileSync('docker', ['exec', id, 'sh', '-c', script], { encoding: 'utf8' });

/** GET a task metadata endpoint path from inside a container, with nc (busybox wget fails under gVisor). */
function metadata(id: string, path: string): any {
  const script = [
    'u=${ECS_CONTAINER_METADATA_URI_V4#http://}; hp=${u%%/*}; p=/${u#*/}',
    `printf "GET %s${path} HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$p" "$hp" | nc "\${hp%:*}" "\${hp#*:}"`,
  ].join('; ');
  const answer = sh(id, script);
  assert.match(answer, /^HTTP\/1\.[01] 200/, answer.slice(0, 200));
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

/** Share of one CPU a container used over about a second, as `docker stats` measures it. */
function cpuShare(nameOrId: string): number {
  return Number(docker(['stats', '--no-stream', '--format', '{{.CPUPerc}}', nameOrId]).trim().replace('%', '')) / 100;
}

describe('FARGATE task isolation', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let pool: AgentProcess;
  let clusterArn = '';
  let sandbox = '';
  const arns: Record<string, string> = {};
  // Waiters poll every 6 s; and on a loaded machine even run-task can take more than the 30 s default.
  const cli = (args: string[]) => awsCli(srv, args, {}, args[0] === 'wait' ? 180_000 : 90_000);
  const describeTask = async (arn: string): Promise<Task> => (await cli(['describe-tasks', '--cluster', CLUSTER, '--tasks', arn])).json.tasks[0];
  const container = (t: Task, name: string) => t.containers.find((c) => c.name === name)!;
  async function until(arn: string, what: string, ok: (t: Task) => boolean, ms = 150_000): Promise<Task> {
    const end = Date.now() + ms;
    for (;;) {
      const t = await describeTask(arn);
      if (ok(t)) return t;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(t)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  async function register(input: Omit<RegisterTaskDefinitionCommandInput, 'requiresCompatibilities' | 'networkMode' | 'cpu' | 'memory'> & Partial<RegisterTaskDefinitionCommandInput>) {
    return srv.ecs().send(new RegisterTaskDefinitionCommand({ requiresCompatibilities: ['FARGATE'], networkMode: 'awsvpc', cpu: '256', memory: '512', ...input }));
  }
  async function runTask(family: string, overrides?: object): Promise<string> {
    const out = await cli(['run-task', '--cluster', CLUSTER, '--launch-type', 'FARGATE', '--task-definition', family, ...NETWORK, ...(overrides ? ['--overrides', JSON.stringify(overrides)] : [])]);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.json.failures, []);
    return out.json.tasks[0].taskArn;
  }

  before(async () => {
    srv = await spawnServer();
    NETWORK = await defaultSubnetsNetwork(srv);
    // Room for five 512 MiB tasks; stopped tasks are cleaned up (containers, task volumes) after 2 s.
    pool = await spawnAgent({ server: srv, fargate: true, resources: 'cpu=2048,memory=4096', env: { ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION: '2s' } });
    const made = await cli(['create-cluster', '--cluster-name', CLUSTER]);
    assert.equal(made.code, 0, made.stderr);
    clusterArn = made.json.cluster.clusterArn;

    const scratch = [{ sourceVolume: 'scratch', containerPath: '/scratch' }];
    await register({
      family: 'iso-pair',
      volumes: [{ name: 'scratch' }],
      containerDefinitions: [
        // Serves the task volume on the task's loopback only.
        { name: 'web', image: BUSYBOX, command: ['sh', '-c', 'echo "$TAG" > /scratch/owner; exec httpd -f -p 127.0.0.1:7000 -h /scratch'], mountPoints: scratch, stopTimeout: 2 },
        { name: 'client', image: BUSYBOX, command: ['sleep', '3600'], mountPoints: scratch, stopTimeout: 2 },
      ],
    });
    await register({
      family: 'iso-oom',
      containerDefinitions: [
        { name: 'hog', image: BUSYBOX, essential: false, command: HOG },
        { name: 'neighbour', image: BUSYBOX, command: ['sleep', '3600'], stopTimeout: 2 },
      ],
    });
    await register({
      family: 'iso-oom-essential',
      containerDefinitions: [
        { name: 'hog', image: BUSYBOX, command: HOG },
        { name: 'neighbour', image: BUSYBOX, essential: false, command: ['sleep', '3600'], stopTimeout: 2 },
      ],
    });
    await register({
      family: 'iso-burn',
      containerDefinitions: [
        { name: 'burner', image: BUSYBOX, command: ['sh', '-c', 'while :; do :; done'], stopTimeout: 2 },
        { name: 'probe', image: BUSYBOX, command: ['sleep', '3600'], stopTimeout: 2 },
      ],
    });
    const tag = (t: string, sleep: string) => ({ containerOverrides: [{ name: 'web', environment: [{ name: 'TAG', value: t }] }, { name: 'client', command: ['sleep', sleep] }] });
    [arns.a, arns.b, arns.oom, arns.oomEssential, arns.burn] = await Promise.all([
      runTask('iso-pair', tag('task-a', '3600')),
      runTask('iso-pair', tag('task-b', '4242')),
      runTask('iso-oom'),
      runTask('iso-oom-essential'),
      runTask('iso-burn'),
    ]);
    const wait = await cli(['wait', 'tasks-running', '--cluster', CLUSTER, '--tasks', arns.a!, arns.b!, arns.burn!]);
    assert.equal(wait.code, 0, wait.stderr);
    sandbox = (await describeTask(arns.a!)).attributes?.find((a) => a.name === 'wharf.fargate-sandbox')?.value ?? '';
    if (sandbox !== 'gvisor') console.log(`# this engine has no runsc runtime: the tasks run under runc (${sandbox}); the gVisor-only checks are skipped`);
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    // Tasks still running when the agent went down keep their task volumes: remove this cluster's.
    const left = docker(['volume', 'ls', '--filter', 'label=com.amazonaws.ecs.task-arn', '--format', '{{.Name}} {{.Label "com.amazonaws.ecs.task-arn"}}'])
      .split('\n')
      .filter((l) => l.includes(`:task/${CLUSTER}/`))
      .map((l) => l.split(' ')[0]!);
    if (left.length) docker(['volume', 'rm', '-f', ...left]);
    if (srv) removeDir(srv.dataDir);
    if (pool) removeDir(pool.dataDir);
  });

  test("a task's containers share its localhost and task volume; another task sees none of it, nor its processes", async () => {
    const [a, b] = [await describeTask(arns.a!), await describeTask(arns.b!)];
    const aClient = container(a, 'client').runtimeId!;
    const bClient = container(b, 'client').runtimeId!;
    const bIp = container(b, 'web').networkInterfaces![0]!.privateIpv4Address;
    assert.notEqual(container(a, 'web').networkInterfaces![0]!.privateIpv4Address, bIp, 'each task has its own IP');

    // localhost is the task's: A's client reaches A's web on 127.0.0.1 and gets A's file.
    const get = 'printf "GET /owner HTTP/1.0\\r\\n\\r\\n" | nc -w 10 ';
    // httpd forks per request, slow under gVisor in a quarter of a CPU: ask again while it answers nothing.
    const owner = async (id: string) => {
      let out = '';
      for (let i = 0; i < 5 && !out; i++) out = sh(id, `${get} 127.0.0.1 7000`) || (await new Promise((r) => setTimeout(r, 1000)), '');
      return out;
    };
    assert.match(await owner(aClient), /\r\n\r\ntask-a\n$/);
    assert.match(await owner(bClient), /\r\n\r\ntask-b\n$/);
    // B's loopback service is not reachable from A, even at B's address.
    assert.throws(() => sh(aClient, `${get} ${bIp} 7000`), /Connection refused|can't connect/);

    // Files: the task volume holds only the task's own file, and B's writes never show in A.
    sh(bClient, 'echo b-secret > /scratch/b-only; echo b-root > /tmp/b-root');
    assert.equal(sh(aClient, 'ls /scratch').trim(), 'owner');
    assert.equal(sh(aClient, 'cat /scratch/owner').trim(), 'task-a');
    assert.equal(sh(aClient, 'test -e /scratch/b-only || test -e /tmp/b-root || echo absent').trim(), 'absent');
    assert.equal(sh(bClient, 'cat /scratch/b-only').trim(), 'b-secret');

    // Processes: B's client runs `sleep 4242`; nothing in A shows it.
    assert.match(sh(bClient, 'ps'), /sleep 4242/);
    for (const c of a.containers) {
      const ps = sh(c.runtimeId!, 'ps; cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "');
      assert.doesNotMatch(ps, /4242/, `task A's ${c.name} sees no process of task B`);
    }

    // A pids limit the host kernel enforces on each container's cgroup (below the task's).
    // Under gVisor it counts the sandbox's host threads, not the processes inside it.
    // The task's cgroup is `wharf/<task id>`, or the pool's when its pause container came from
    // the agent's pool (`wharf/pool-<hex>`): read it from the container.
    const parent = JSON.parse(docker(['inspect', aClient]))[0].HostConfig.CgroupParent as string;
    assert.match(parent, /^\/wharf\/[0-9a-z-]+$/, 'the task container sits in a task cgroup of its own');
    const pidsMax = [`/sys/fs/cgroup/pids${parent}/${aClient}/pids.max`, `/sys/fs/cgroup${parent}/${aClient}/pids.max`].find((f) => fs.existsSync(f));
    if (pidsMax) assert.equal(fs.readFileSync(pidsMax, 'utf8').trim(), '4096');
    else console.log('# no task cgroup visible on this host (agent and engine apart?): pids.max not checked');

    // No raw sockets (Fargate has no NET_RAW): no forged sources or ARP answers on the subnet
    // bridge, neither in the task's containers nor in its pause container (which they could trace).
    const capEff = BigInt('0x' + /CapEff:\s*([0-9a-f]+)/.exec(sh(aClient, 'cat /proc/self/status'))![1]);
    assert.equal(capEff & (1n << 13n), 0n, 'CAP_NET_RAW is not effective in a Fargate container');
    const pauseId = JSON.parse(docker(['inspect', aClient]))[0].HostConfig.NetworkMode.replace(/^container:/, '');
    const pauseDrop: string[] = JSON.parse(docker(['inspect', pauseId]))[0].HostConfig.CapDrop ?? [];
    assert.ok(pauseDrop.some((c) => /^(CAP_)?NET_RAW$/.test(c)), `the pause container drops NET_RAW: ${pauseDrop}`);

    // No link-local address (a cloud VM's instance metadata and role credentials) for a Fargate
    // task, forwarded or to the host itself; DNS there excepted. The rules, not traffic: nothing
    // may be sent to a real metadata service.
    let linkLocal = '';
    try {
      linkLocal = execFileSync('iptables', ['-w', '-S', 'WHARF-LINK-LOCAL'], { encoding: 'utf8' });
    } catch {
      console.log('# no iptables on this host: the link-local rules are not checked');
    }
    if (linkLocal) {
      const aIp = container(a, 'web').networkInterfaces![0]!.privateIpv4Address;
      assert.ok(linkLocal.includes(`-A WHARF-LINK-LOCAL -s ${aIp}/32 -j DROP`), linkLocal);
      assert.match(execFileSync('iptables', ['-w', '-S', 'INPUT'], { encoding: 'utf8' }), /^-A INPUT -j WHARF-LINK-LOCAL$/m);
      assert.match(execFileSync('iptables', ['-w', '-S', 'WHARF-SG'], { encoding: 'utf8' }), /^-A WHARF-SG -j WHARF-LINK-LOCAL$/m);
    }

    // Kernel isolation where the host has gVisor: each container sees gVisor's kernel, not the host's.
    if (sandbox === 'gvisor') {
      assert.match(sh(aClient, 'dmesg'), /gVisor/);
      assert.notEqual(sh(aClient, 'cat /proc/version'), docker(['run', '--rm', '--runtime', 'runc', BUSYBOX, 'cat', '/proc/version']));
    }

    // The task volume is a Docker volume of the task's own, removed with the task.
    const volumesOf = (arn: string) => docker(['volume', 'ls', '-q', '--filter', `label=com.amazonaws.ecs.task-arn=${arn}`]).trim();
    assert.match(volumesOf(arns.b!), /^wharf-[0-9a-f]+-scratch$/);
    assert.notEqual(volumesOf(arns.a!), volumesOf(arns.b!));
    // Through the SDK: this AWS CLI's model predates fargateEphemeralStorage and drops it.
    const desc = (await srv.ecs().send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [arns.b!] }))).tasks![0]!;
    assert.deepEqual(desc.ephemeralStorage, { sizeInGiB: 20 });
    assert.deepEqual(desc.fargateEphemeralStorage, { sizeInGiB: 20 });
    await cli(['stop-task', '--cluster', CLUSTER, '--task', arns.b!]);
    assert.equal((await cli(['wait', 'tasks-stopped', '--cluster', CLUSTER, '--tasks', arns.b!])).code, 0);
    const end = Date.now() + 30_000;
    while (volumesOf(arns.b!) !== '' && Date.now() < end) await new Promise((r) => setTimeout(r, 500));
    assert.equal(volumesOf(arns.b!), '', "the stopped task's volume is removed at its cleanup");
    assert.match(volumesOf(arns.a!), /scratch$/, "the other task's volume stays");
  });

  test('the task metadata endpoint serves /stats and /task/stats: the engine documents, read from inside the task', async () => {
    const a = await describeTask(arns.a!);
    const client = container(a, 'client').runtimeId!;
    const web = container(a, 'web').runtimeId!;
    const first = metadata(client, '/stats');
    assert.equal(first.id, client);
    assert.match(first.name, /^\/ecs-iso-pair-\d+-client-/);
    assert.ok(first.memory_stats.usage > 0, 'memory usage is reported');
    assert.ok(first.cpu_stats.cpu_usage.total_usage > 0, 'cpu usage is reported');
    assert.ok(first.pids_stats.current >= 1);
    assert.ok(first.networks && Object.keys(first.networks).length > 0, "the task's interface counters");
    const second = metadata(client, '/stats');
    assert.equal(typeof second.network_rate_stats.rx_bytes_per_sec, 'number');
    assert.equal(typeof second.network_rate_stats.tx_bytes_per_sec, 'number');
    const all = metadata(client, '/task/stats');
    assert.deepEqual(Object.keys(all).sort(), [client, web].sort());
    assert.equal(all[web].id, web);
    assert.ok(all[web].memory_stats.usage > 0);
  });

  test('task memory is a hard limit: a hog is OOM-killed with ECS reason, its neighbour runs on; an essential hog stops the task', async () => {
    const survived = await until(arns.oom!, 'the hog OOM-killed', (t) => container(t, 'hog').lastStatus === 'STOPPED');
    assert.equal(container(survived, 'hog').reason, OOM_REASON);
    assert.equal(container(survived, 'hog').exitCode, 137);
    assert.equal(survived.lastStatus, 'RUNNING', 'a non-essential hog does not stop the task');
    assert.equal(container(survived, 'neighbour').lastStatus, 'RUNNING');
    assert.equal(sh(container(survived, 'neighbour').runtimeId!, 'echo alive').trim(), 'alive');

    const stopped = await until(arns.oomEssential!, 'the task stopped by its hog', (t) => t.lastStatus === 'STOPPED');
    assert.equal(stopped.stopCode, 'EssentialContainerExited');
    assert.equal(container(stopped, 'hog').reason, OOM_REASON);
    assert.equal(container(stopped, 'hog').exitCode, 137);
  });

  test('task cpu is a hard limit: a burner in a 256-unit task stays near a quarter of a CPU, unlike an uncapped one', async () => {
    const t = await describeTask(arns.burn!);
    const burner = container(t, 'burner').runtimeId!;
    const capped = Math.max(cpuShare(burner), cpuShare(burner));
    assert.ok(capped < 0.4, `the capped burner used ${capped} of a CPU`);
    // The same loop outside any task: only the machine's load bounds it.
    const name = `iso-uncapped-${process.pid}`;
    docker(['run', '-d', '--rm', '--name', name, '--label', `com.amazonaws.ecs.cluster=${clusterArn}`, ...(sandbox === 'gvisor' ? ['--runtime', 'runsc'] : []), BUSYBOX, 'sh', '-c', 'while :; do :; done']);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const uncapped = Math.max(cpuShare(name), cpuShare(name));
      assert.ok(uncapped > capped, `uncapped ${uncapped} vs capped ${capped}`);
    } finally {
      docker(['rm', '-f', name]);
    }
  });

  test("what Fargate forbids is refused at registration with ECS's messages", async () => {
    const c = { name: 'a', image: BUSYBOX };
    const cases: [string, Partial<RegisterTaskDefinitionCommandInput>, RegExp][] = [
      ['privileged', { containerDefinitions: [{ ...c, privileged: true }] }, /do not support 'privileged' for container 'a'/],
      ['host network', { networkMode: 'host', containerDefinitions: [c] }, /Fargate only supports network mode .awsvpc./],
      ['host bind mount', { volumes: [{ name: 'h', host: { sourcePath: '/etc' } }], containerDefinitions: [{ ...c, mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }] }] }, /do not support host volumes with a sourcePath/],
      ['added capability', { containerDefinitions: [{ ...c, linuxParameters: { capabilities: { add: ['NET_ADMIN'] } } }] }, /do not support adding the capability 'NET_ADMIN'/],
      ['devices', { containerDefinitions: [{ ...c, linuxParameters: { devices: [{ hostPath: '/dev/kmsg' }] } }] }, /do not support 'linuxParameters.devices'/],
      ['pidMode host', { pidMode: 'host', containerDefinitions: [c] }, /do not support pidMode 'host'/],
    ];
    for (const [what, input, message] of cases) {
      await assert.rejects(register({ family: 'iso-forbidden', containerDefinitions: [c], ...input }), (e: Error) => e.name === 'ClientException' && message.test(e.message), what);
    }
    const listed = await cli(['list-task-definitions', '--family-prefix', 'iso-forbidden']);
    assert.deepEqual(listed.json.taskDefinitionArns, [], 'nothing was registered');
  });
});
