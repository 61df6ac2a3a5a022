/**
 * What a restarted agent does with what the last run left (its data dir and the engine's
 * containers), and with containers of its tasks that are started behind its back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentTask } from '../api/agent/protocol';
import type { ContainerDefinition } from '../core/shapes/ecs';
import { Agent } from './agent';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { FakeControlPlane, testClock as clock, until } from './testdata/fake-control-plane';
import { VANISHED_REASON } from './task-status';

const runner = { pollIntervalMs: 20, clock, defaultStopTimeoutSec: 1 };
let n = 0;

function task(containers: ContainerDefinition[] = [{ name: 'app', image: 'app', memory: 64 }]): AgentTask {
  return {
    taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${(++n).toString(16).padStart(32, 'a')}`,
    clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
    desiredStatus: 'RUNNING',
    version: 1,
    taskDefinition: { family: 'web', revision: 1, containerDefinitions: containers },
  };
}

/** One data dir and one engine; agents started on them one after the other, as restarts. */
function host() {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-adopt-'));
  const rt = new SimulatedRuntime({ clock });
  const agents: Agent[] = [];
  return {
    dir,
    rt,
    async start() {
      const cp = new FakeControlPlane();
      const agent = new Agent({ client: cp, runtime: rt, region: 'us-east-1', dataDir: dir, clock, runner });
      agents.push(agent);
      await agent.start();
      return { cp, agent };
    },
    /** An agent started on the host, with `t` sent to it and RUNNING; and its first container's id. */
    async running(t: AgentTask) {
      const started = await this.start();
      started.cp.send([t], 1);
      await until(() => lastOf(started.cp, t)?.status === 'RUNNING', 'RUNNING');
      return { ...started, id: started.agent.tasks()[0]!.containers[0]!.dockerId! };
    },
    creates: (name: string) => rt.calls.filter((c) => c.op === 'create' && c.name!.includes(`-${name}-`)).length,
    async close() {
      for (const a of agents) await a.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const lastOf = (cp: FakeControlPlane, t: AgentTask) => cp.tasks.filter((r) => r.task === t.taskArn).at(-1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a container removed while the agent was down is reported STOPPED after the restart, and never created again', async () => {
  const h = host();
  try {
    const a = task();
    const first = await h.running(a);
    const id = first.id;
    await first.agent.stop(); // as a kill -9: the containers stay
    await h.rt.removeContainer(id); // docker rm -f while the agent is down

    const second = await h.start();
    await until(() => lastOf(second.cp, a)?.status === 'STOPPED', 'STOPPED after the restart');
    second.cp.send([a], 1); // the control plane still lists it RUNNING until it hears
    await sleep(200);
    const stopped = lastOf(second.cp, a)!;
    assert.equal(stopped.stopCode, 'EssentialContainerExited');
    assert.equal(stopped.containers![0]!.reason, VANISHED_REASON);
    assert.equal(stopped.containers![0]!.runtimeId, id, 'reported with the id it had');
    assert.equal(h.creates('app'), 1, 'no second container');
    assert.ok(!second.cp.tasks.some((r) => r.status === 'RUNNING'), 'never RUNNING again');
  } finally {
    await h.close();
  }
});

test('a non-essential container reported STOPPED (removed while the agent ran) stays STOPPED across a restart', async () => {
  const h = host();
  try {
    const a = task([
      { name: 'app', image: 'app', memory: 64 },
      { name: 'side', image: 'side', memory: 32, essential: false },
    ]);
    const first = await h.running(a);
    const sideId = first.agent.tasks()[0]!.containers.find((c) => c.name === 'side')!.dockerId!;
    await h.rt.removeContainer(sideId);
    await until(() => first.cp.containers.some((c) => c.containerName === 'side' && c.status === 'STOPPED'), 'side reported STOPPED');
    await first.agent.stop();

    const second = await h.start();
    second.cp.send([a], 1);
    await until(() => lastOf(second.cp, a)?.status === 'RUNNING', 'RUNNING re-reported');
    await sleep(200);
    assert.equal(h.creates('side'), 1, 'side was not made again');
    const side = lastOf(second.cp, a)!.containers!.find((c) => c.containerName === 'side')!;
    assert.deepEqual([side.status, side.runtimeId, side.reason], ['STOPPED', sideId, 'CannotInspectContainerError: container no longer exists']);
    assert.equal(second.agent.tasks()[0]!.knownStatus, 'RUNNING', 'app runs on');
  } finally {
    await h.close();
  }
});

test('a container is written down before it starts; one the engine made but the agent did not write down (a crash in between) is adopted, not made twice', async () => {
  const h = host();
  try {
    const a = task();
    const taskFile = () => join(h.dir, 'tasks', readdirSync(join(h.dir, 'tasks'))[0]!);
    const unrecordedStarts: string[] = [];
    let hold = true;
    const start = h.rt.startContainer.bind(h.rt);
    h.rt.startContainer = async (id) => {
      if (!readFileSync(taskFile(), 'utf8').includes(id)) unrecordedStarts.push(id);
      if (hold) return new Promise<void>(() => {}); // the agent dies before the start returns
      return start(id);
    };
    const first = await h.start();
    first.cp.send([a], 1);
    await until(() => h.creates('app') === 1 && h.rt.calls.length > 0 && first.agent.tasks()[0]!.containers[0]!.dockerId !== undefined, 'created');
    await sleep(50);
    await first.agent.stop();
    // As if the agent had died between the engine's create and its write.
    const file = JSON.parse(readFileSync(taskFile(), 'utf8')) as { progress: unknown };
    file.progress = { containers: {} };
    writeFileSync(taskFile(), JSON.stringify(file));

    hold = false;
    const second = await h.start();
    await until(() => lastOf(second.cp, a)?.status === 'RUNNING', 'RUNNING in the container made before the crash');
    assert.equal(h.creates('app'), 1, 'adopted by its labels, not made again');
    assert.deepEqual(unrecordedStarts, [], 'no container was started before it was written down');
    assert.match(readFileSync(taskFile(), 'utf8'), new RegExp(second.agent.tasks()[0]!.containers[0]!.dockerId!), 'written down now');
  } finally {
    await h.close();
  }
});

test('a container of a STOPPED task started behind the agent\'s back (docker start, docker restart) is stopped again, while the agent runs and at its next start', async () => {
  const h = host();
  try {
    const a = task();
    const first = await h.running(a);
    const id = first.id;
    const running = async () => (await h.rt.inspectContainer(id))?.running;

    // docker restart: the start comes before the agent has looked at the exit.
    h.rt.exitContainer(id, 137);
    await h.rt.startContainer(id);
    await until(() => lastOf(first.cp, a)?.status === 'STOPPED', 'STOPPED');
    await sleep(100);
    assert.equal(await running(), false, 'stopped again after docker restart');
    assert.equal(lastOf(first.cp, a)!.containers![0]!.exitCode, 137, 'the exit that was reported stands');

    // docker start, once the task is reported STOPPED.
    const reports = first.cp.tasks.length;
    await h.rt.startContainer(id);
    await sleep(100);
    assert.equal(await running(), false, 'stopped again after docker start');
    assert.equal(first.cp.tasks.length, reports, 'nothing new to report');
    await first.agent.stop();

    // docker start while the agent is down.
    await h.rt.startContainer(id);
    const second = await h.start();
    await until(() => lastOf(second.cp, a)?.status === 'STOPPED', 'STOPPED re-reported');
    await sleep(100);
    assert.equal(await running(), false, 'stopped at the restart');
    assert.equal(h.creates('app'), 1);
  } finally {
    await h.close();
  }
});
