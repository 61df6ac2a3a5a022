import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RegisterContainerInstanceRequest } from '../core/shapes/ecs';
import type { AgentTask, WharfTaskStateChange } from '../api/agent/protocol';
import type { Clock } from '../lib/clock';
import { Agent } from './agent';
import type { AgentChannel, ChannelHandlers, ControlPlaneClient } from './control-plane-client';
import { newContainerRun } from './container-run';
import type { ContainerSpec } from './runtime/container-runtime';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { AWSVPC_NETWORK_LABELS, publishedPorts, removeUnusedTaskNetworks, startPauseContainer, startPooledPause } from './task-resources';

const clock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
const CLUSTER = 'arn:aws:ecs:us-east-1:123456789012:cluster/default';
const INSTANCE = 'arn:aws:ecs:us-east-1:123456789012:container-instance/default/0123456789abcdef';

/** Just enough control plane for an Agent: registration, task reports, a channel to push desired state. */
class FakeControlPlane implements ControlPlaneClient {
  tasks: WharfTaskStateChange[] = [];
  private handlers?: ChannelHandlers;
  private seq = 0;
  async registerContainerInstance(_req: RegisterContainerInstanceRequest) {
    return { containerInstanceArn: INSTANCE };
  }
  async submitTaskStateChange(req: WharfTaskStateChange) {
    this.tasks.push(req);
  }
  async submitContainerStateChange() {}
  connect(_p: unknown, handlers: ChannelHandlers): AgentChannel {
    this.handlers = handlers;
    return { connected: true, close: () => (this.handlers = undefined) };
  }
  send(tasks: AgentTask[]) {
    this.handlers!.onMessage({ type: 'desiredState', seq: ++this.seq, containerInstanceArn: INSTANCE, tasks });
  }
  status(t: AgentTask): string | undefined {
    return this.tasks.filter((x) => x.task === t.taskArn).at(-1)?.status;
  }
}

let n = 0;
function awsvpcTask(network: string): AgentTask {
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${(++n).toString(16).padStart(32, '0')}`,
    clusterArn: CLUSTER,
    desiredStatus: 'RUNNING',
    version: 1,
    network: { name: network },
    taskDefinition: { family: 'web', revision: 1, networkMode: 'awsvpc', containerDefinitions: [{ name: 'app', image: 'app', memory: 32 }] },
  };
}
const stopped = (t: AgentTask): AgentTask => ({ ...t, desiredStatus: 'STOPPED', version: t.version + 1 });

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs `body` with a started Agent on `rt`, and stops both even when an assertion fails. */
async function withAgent(rt: SimulatedRuntime, taskCleanupWaitMs: number, body: (agent: Agent, cp: FakeControlPlane) => Promise<void>): Promise<void> {
  const cp = new FakeControlPlane();
  const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', clock, runner: { pollIntervalMs: 20, clock }, taskCleanupWaitMs });
  try {
    await agent.start();
    await body(agent, cp);
  } finally {
    await agent.stop();
    rt.close();
  }
}

test('the last task cleaned up on a subnet takes its network with it; networks still used stay', async () => {
  const rt = new SimulatedRuntime({ clock });
  await rt.ensureNetwork('not-ours', { owner: 'ops' });
  await withAgent(rt, 30, async (agent, cp) => {
    const [a1, a2, b] = [awsvpcTask('wharf-subnet-a'), awsvpcTask('wharf-subnet-a'), awsvpcTask('wharf-subnet-b')];
    cp.send([a1, a2, b]);
    await until(() => [a1, a2, b].every((t) => cp.status(t) === 'RUNNING'), 'all RUNNING');
    assert.deepEqual(rt.networkNames().sort(), ['not-ours', 'wharf-subnet-a', 'wharf-subnet-b']);

    // a1 goes, a2 still runs on subnet a.
    cp.send([stopped(a1), a2, b]);
    await until(() => agent.runnerFor(a1.taskArn) === undefined, 'a1 cleaned up');
    await until(async () => (await rt.listContainers({})).length === 4, 'a1 containers removed');
    await new Promise((r) => setTimeout(r, 50)); // room for a (wrong) sweep to happen
    assert.deepEqual(rt.networkNames().sort(), ['not-ours', 'wharf-subnet-a', 'wharf-subnet-b']);

    // a2 was the last task on subnet a.
    cp.send([stopped(a2), b]);
    await until(() => !rt.networkNames().includes('wharf-subnet-a'), 'subnet a removed');
    assert.deepEqual(rt.networkNames().sort(), ['not-ours', 'wharf-subnet-b'], 'subnet b is still used by b; not-ours is never touched');
    const lastRemove = rt.calls.filter((c) => c.op === 'remove').at(-1)!;
    const netRemove = rt.calls.find((c) => c.op === 'removeNetwork' && c.name === 'wharf-subnet-a')!;
    assert.ok(rt.calls.indexOf(netRemove) > rt.calls.indexOf(lastRemove), 'the network goes after the last container on it');
    assert.equal(agent.runnerFor(a2.taskArn), undefined);

    cp.send([stopped(b)]);
    await until(() => rt.networkNames().length === 1, 'subnet b removed');
    assert.deepEqual(rt.networkNames(), ['not-ours']);
  });
});

test('a stopped task not cleaned up yet keeps its network', async () => {
  const rt = new SimulatedRuntime({ clock });
  await withAgent(rt, 3_600_000, async (_agent, cp) => {
    const [a, other] = [awsvpcTask('wharf-subnet-a'), awsvpcTask('wharf-subnet-x')];
    cp.send([a, other]);
    await until(() => cp.status(a) === 'RUNNING' && cp.status(other) === 'RUNNING', 'RUNNING');
    cp.send([stopped(a), stopped(other)]);
    await until(() => cp.status(a) === 'STOPPED' && cp.status(other) === 'STOPPED', 'STOPPED');
    // Whatever triggers a sweep now (here: an explicit one) must leave both networks alone, since
    // their exited pause containers are still there.
    assert.deepEqual(await removeUnusedTaskNetworks(rt), []);
    assert.deepEqual(rt.networkNames().sort(), ['wharf-subnet-a', 'wharf-subnet-x']);
  });
});

test('networks a crash left without containers are removed once the restarted agent prepares a task', async () => {
  const rt = new SimulatedRuntime({ clock });
  await rt.ensureNetwork('wharf-subnet-left', AWSVPC_NETWORK_LABELS);
  await rt.ensureNetwork('wharf-subnet-kept', AWSVPC_NETWORK_LABELS);
  // A container (not Wharf's) still on one of them keeps it.
  const stranger = await rt.createContainer({ name: 'stranger', image: 'x', labels: {}, host: { networkMode: 'wharf-subnet-kept' } });
  await rt.startContainer(stranger);
  await withAgent(rt, 30, async (_agent, cp) => {
    const bridge: AgentTask = { ...awsvpcTask(''), network: undefined, taskDefinition: { family: 'b', revision: 1, containerDefinitions: [{ name: 'app', image: 'app', memory: 32 }] } };
    cp.send([bridge]);
    await until(() => !rt.networkNames().includes('wharf-subnet-left'), 'leftover network removed');
    assert.deepEqual(rt.networkNames(), ['wharf-subnet-kept']);
    // Once the stranger goes, so does its network: the agent keeps watching while Wharf networks exist.
    await rt.removeContainer(stranger);
    await until(() => rt.networkNames().length === 0, 'kept network removed after its container');
  });
});

test('removeUnusedTaskNetworks: created and exited containers count as users; an engine refusal is "in use", not an error', async () => {
  /** Reports no containers at all, so only the engine's refusal keeps the network. */
  class Blind extends SimulatedRuntime {
    override async listNetworks(labels: Record<string, string>) {
      return (await super.listNetworks(labels)).map((x) => ({ ...x, containerIds: [] }));
    }
  }
  const rt = new SimulatedRuntime();
  const spec = (name: string, net: string): ContainerSpec => ({ name, image: 'x', labels: {}, host: { networkMode: net } });
  for (const net of ['wharf-created', 'wharf-exited', 'wharf-empty']) await rt.ensureNetwork(net, AWSVPC_NETWORK_LABELS);
  await rt.ensureNetwork('unlabelled-empty', {});
  await rt.createContainer(spec('c1', 'wharf-created'));
  const e = await rt.createContainer(spec('c2', 'wharf-exited'));
  await rt.startContainer(e);
  rt.exitContainer(e, 0);
  assert.deepEqual(await removeUnusedTaskNetworks(rt), ['wharf-empty']);
  assert.deepEqual(rt.networkNames().sort(), ['unlabelled-empty', 'wharf-created', 'wharf-exited']);

  const blind = new Blind();
  await blind.ensureNetwork('wharf-busy', AWSVPC_NETWORK_LABELS);
  await blind.startContainer(await blind.createContainer(spec('c3', 'wharf-busy')));
  assert.deepEqual(await removeUnusedTaskNetworks(blind), []);
  assert.deepEqual(blind.networkNames(), ['wharf-busy']);
});

function pauseFor(task: AgentTask) {
  return newContainerRun({ name: '~internal~ecs~pause', image: 'pause' }, true, true, `pause-${task.taskArn.slice(-6)}`);
}

test('a sweep never removes a network while a task is putting its pause container on it', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let creating!: () => void;
  const atCreate = new Promise<void>((r) => (creating = r));
  /** Holds the pause container's creation: the network exists but has no container yet. */
  class SlowCreate extends SimulatedRuntime {
    override async createContainer(spec: ContainerSpec) {
      creating();
      await gate;
      return super.createContainer(spec);
    }
  }
  const rt = new SlowCreate();
  const task = awsvpcTask('wharf-subnet-race');
  const started = startPauseContainer(rt, { task, pause: pauseFor(task), containerInstanceArn: INSTANCE, image: 'pause', network: 'wharf-subnet-race' });
  await atCreate;
  assert.deepEqual(rt.networkNames(), ['wharf-subnet-race']);
  const sweep = removeUnusedTaskNetworks(rt);
  await new Promise((r) => setTimeout(r, 20));
  release();
  assert.match((await started).ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.deepEqual(await sweep, []);
  assert.deepEqual(rt.networkNames(), ['wharf-subnet-race']);
});

test('a network removed by someone else between create and start is made again', async () => {
  /** Another agent on the same engine sweeps the network just before our pause container starts. */
  class Interloper extends SimulatedRuntime {
    swept = 0;
    override async startContainer(id: string) {
      if (this.swept++ === 0) await this.removeNetwork('wharf-subnet-shared');
      return super.startContainer(id);
    }
  }
  const rt = new Interloper();
  const task = awsvpcTask('wharf-subnet-shared');
  const pause = pauseFor(task);
  const { ip } = await startPauseContainer(rt, { task, pause, containerInstanceArn: INSTANCE, image: 'pause', network: 'wharf-subnet-shared' });
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.deepEqual(rt.networkNames(), ['wharf-subnet-shared']);
  assert.equal((await rt.inspectContainer(pause.dockerId!))!.running, true);
  assert.equal(rt.calls.filter((c) => c.op === 'createNetwork').length, 2);
});

test('an awsvpc pause container, own or pooled, runs without NET_RAW (a task container tracing it gains no raw sockets)', async () => {
  const specs: ContainerSpec[] = [];
  class Recording extends SimulatedRuntime {
    override async createContainer(spec: ContainerSpec) {
      specs.push(spec);
      return super.createContainer(spec);
    }
  }
  const rt = new Recording();
  const task = awsvpcTask('wharf-subnet-caps');
  await startPauseContainer(rt, { task, pause: pauseFor(task), containerInstanceArn: INSTANCE, image: 'pause', network: 'wharf-subnet-caps' });
  await startPooledPause(rt, { name: 'pooled', image: 'pause', network: 'wharf-subnet-caps', labels: {} });
  assert.deepEqual(specs.map((s) => s.host.capDrop), [['NET_RAW'], ['NET_RAW']]);
  rt.close();
});

test('assignPublicIp publishes only the ports its security groups open to 0.0.0.0/0 (the host address hides who connects)', () => {
  const task = {
    taskArn: 'arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef',
    taskDefinition: { containerDefinitions: [{ name: 'app', portMappings: [{ containerPort: 80 }, { containerPort: 9000 }, { containerPort: 53, protocol: 'udp' }] }] },
    network: {
      publishPorts: true,
      securityGroups: ['sg-1'],
      ingress: [
        { protocol: 'tcp', fromPort: 80, toPort: 80, cidr: '0.0.0.0/0' },
        { protocol: 'tcp', fromPort: 9000, toPort: 9000, cidr: '10.0.0.0/16' },
        { protocol: 'udp', fromPort: 50, toPort: 60, cidr: '0.0.0.0/0' },
      ],
    },
  } as unknown as AgentTask;
  const free = () => true;
  assert.deepEqual(Object.keys(publishedPorts(task, '127.0.0.1', free)).sort(), ['53/udp', '80/tcp']);
  // A group with no ingress: nothing published; every protocol from anywhere: everything.
  assert.deepEqual(publishedPorts({ ...task, network: { ...task.network!, ingress: [] } }, '127.0.0.1', free), {});
  const all = { ...task, network: { ...task.network!, ingress: [{ protocol: '-1', cidr: '0.0.0.0/0' }] } };
  assert.equal(Object.keys(publishedPorts(all, '127.0.0.1', free)).length, 3);
  // No groups at all (no firewall on this agent): every port, as before.
  const none = { ...task, network: { name: 'n', publishPorts: true } } as AgentTask;
  assert.deepEqual(publishedPorts(none, '127.0.0.1', free)['9000/tcp'], [{ hostIp: '127.0.0.1', hostPort: '9000' }]);
});
