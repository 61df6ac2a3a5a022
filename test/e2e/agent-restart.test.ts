/**
 * kill -9 of a real agent process, then restart: it adopts its containers by label (no
 * duplicates), a container that died while it was down is reported STOPPED with its exit code,
 * and one removed behind its back (while it was down, or up) is reported STOPPED and never made
 * again. A container of a STOPPED task that `docker restart` runs again is stopped again.
 * Run: npx tsx --test test/e2e/agent-restart.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { AgentTask } from '../../src/api/agent/protocol';
import { hexId } from '../../src/lib/ids';
import { dockerSkipReason } from '../images/docker-test-env';

const skip = dockerSkipReason();
const docker = new Docker();

function startAgent(dir: string, arn: string): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', '..', 'src', 'agent', 'testdata', 'agent-child.ts'), join(dir, 'data'), join(dir, 'desired.json'), join(dir, 'reports.jsonl'), arn], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, WHARF_LOG_LEVEL: 'silent' },
  });
}

interface Report {
  kind: string;
  pid: number;
  status?: string;
  stopCode?: string;
  containerName?: string;
  containers?: { containerName?: string; exitCode?: number; runtimeId?: string; reason?: string }[];
}

function reports(dir: string): Report[] {
  const f = join(dir, 'reports.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

test('kill -9 and restart: containers adopted without duplicates; a container that died meanwhile is reported', { skip, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-restart-'));
  const taskArn = `arn:aws:ecs:us-east-1:123456789012:task/default/${hexId()}`;
  const arn = `arn:aws:ecs:us-east-1:123456789012:container-instance/default/${hexId()}`;
  const containersOfTask = async () => docker.listContainers({ all: true, filters: JSON.stringify({ label: [`com.amazonaws.ecs.task-arn=${taskArn}`] }) });
  const desired: AgentTask[] = [
    {
      taskArn,
      clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
      desiredStatus: 'RUNNING',
      version: 1,
      taskDefinition: {
        family: 'restart',
        revision: 1,
        containerDefinitions: [{ name: 'app', image: 'wharf-test/busybox', command: ['sleep', '3600'], memory: 32, stopTimeout: 1 }],
      },
    },
  ];
  writeFileSync(join(dir, 'desired.json'), JSON.stringify(desired));
  let child = startAgent(dir, arn);
  try {
    await until(() => reports(dir).some((r) => r.kind === 'task' && r.status === 'RUNNING'), 'RUNNING');
    const before = await containersOfTask();
    assert.equal(before.length, 1);
    await kill9(child);
    assert.equal((await docker.getContainer(before[0]!.Id).inspect()).State.Running, true, 'the task keeps running without its agent');

    child = startAgent(dir, arn);
    const pid2 = child.pid;
    await until(() => reports(dir).some((r) => r.pid === pid2 && r.kind === 'task' && r.status === 'RUNNING'), 'RUNNING re-reported after restart');
    await new Promise((r) => setTimeout(r, 1500)); // give a wrong implementation time to duplicate
    const after = await containersOfTask();
    assert.deepEqual(after.map((c) => c.Id), before.map((c) => c.Id), 'same container, no duplicate');
    const reg = reports(dir).filter((r) => r.kind === 'register') as unknown as { arn?: string }[];
    assert.equal(reg[1]!.arn, arn, 're-registered with the same containerInstanceArn');

    await kill9(child);
    await docker.getContainer(before[0]!.Id).kill({ signal: 'SIGKILL' });
    child = startAgent(dir, arn);
    const pid3 = child.pid;
    await until(() => reports(dir).some((r) => r.pid === pid3 && r.kind === 'task' && r.status === 'STOPPED'), 'STOPPED reported after restart');
    const stopped = reports(dir).find((r) => r.pid === pid3 && r.status === 'STOPPED')!;
    assert.equal(stopped.stopCode, 'EssentialContainerExited');
    assert.equal(stopped.containers![0]!.exitCode, 137);
    assert.equal(stopped.containers![0]!.runtimeId, before[0]!.Id);
    assert.equal((await containersOfTask()).length, 1, 'nothing new was created');
  } finally {
    await kill9(child);
    for (const c of await containersOfTask()) await docker.getContainer(c.Id).remove({ force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A task of `containers` written as the desired state of a fresh agent dir, and what a test needs of it. */
function taskSetup(containers: NonNullable<AgentTask['taskDefinition']['containerDefinitions']>) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-restart-'));
  const taskArn = `arn:aws:ecs:us-east-1:123456789012:task/default/${hexId()}`;
  const arn = `arn:aws:ecs:us-east-1:123456789012:container-instance/default/${hexId()}`;
  const task: AgentTask = { taskArn, clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default', desiredStatus: 'RUNNING', version: 1, taskDefinition: { family: 'restart', revision: 1, containerDefinitions: containers } };
  writeFileSync(join(dir, 'desired.json'), JSON.stringify([task]));
  const containersOfTask = async () => docker.listContainers({ all: true, filters: JSON.stringify({ label: [`com.amazonaws.ecs.task-arn=${taskArn}`] }) });
  const idOf = async (name: string) => (await containersOfTask()).find((c) => c.Labels['com.amazonaws.ecs.container-name'] === name)!.Id;
  const taskReport = (pid: number | undefined, status: string) => reports(dir).find((r) => r.pid === pid && r.kind === 'task' && r.status === status);
  const cleanup = async () => {
    for (const c of await containersOfTask()) await docker.getContainer(c.Id).remove({ force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, arn, containersOfTask, idOf, taskReport, cleanup };
}

test('containers removed behind the agent (while it runs, or while it is down) are reported STOPPED and never made again', { skip, timeout: 180_000 }, async () => {
  const t = taskSetup([
    { name: 'app', image: 'wharf-test/busybox', command: ['sleep', '3600'], memory: 32, stopTimeout: 1 },
    { name: 'side', image: 'wharf-test/busybox', command: ['sleep', '3600'], memory: 32, stopTimeout: 1, essential: false },
  ]);
  let child = startAgent(t.dir, t.arn);
  try {
    await until(() => !!t.taskReport(child.pid, 'RUNNING'), 'RUNNING');
    const app = await t.idOf('app');
    const side = await t.idOf('side');
    await docker.getContainer(side).remove({ force: true });
    await until(() => reports(t.dir).some((r) => r.kind === 'container' && r.containerName === 'side' && r.status === 'STOPPED'), 'side reported STOPPED');

    await kill9(child);
    child = startAgent(t.dir, t.arn);
    const pid2 = child.pid;
    await until(() => !!t.taskReport(pid2, 'RUNNING'), 'RUNNING re-reported after restart');
    await new Promise((r) => setTimeout(r, 1500)); // give a wrong implementation time to make side again
    assert.deepEqual((await t.containersOfTask()).map((c) => c.Id), [app], 'side was not made again');
    assert.equal(t.taskReport(pid2, 'RUNNING')!.containers!.find((c) => c.containerName === 'side')!.reason, 'CannotInspectContainerError: container no longer exists');

    await kill9(child);
    await docker.getContainer(app).remove({ force: true }); // docker rm -f while the agent is down
    child = startAgent(t.dir, t.arn);
    const pid3 = child.pid;
    await until(() => !!t.taskReport(pid3, 'STOPPED'), 'STOPPED after restart');
    const stopped = t.taskReport(pid3, 'STOPPED')!;
    assert.equal(stopped.stopCode, 'EssentialContainerExited');
    assert.deepEqual(
      stopped.containers!.map((c) => [c.containerName, c.runtimeId, c.reason]),
      [
        ['app', app, 'ContainerVanishedError: No container matching saved ID found'],
        ['side', side, 'CannotInspectContainerError: container no longer exists'],
      ],
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await t.containersOfTask(), [], 'nothing was made again');
    assert.ok(!reports(t.dir).some((r) => r.pid === pid3 && r.kind === 'task' && r.status === 'RUNNING'));
  } finally {
    await kill9(child);
    await t.cleanup();
  }
});

test('docker restart of a container whose task went STOPPED: the agent stops it again', { skip, timeout: 180_000 }, async () => {
  const t = taskSetup([{ name: 'app', image: 'wharf-test/busybox', command: ['sleep', '3600'], memory: 32, stopTimeout: 1 }]);
  const child = startAgent(t.dir, t.arn);
  try {
    await until(() => !!t.taskReport(child.pid, 'RUNNING'), 'RUNNING');
    const app = docker.getContainer(await t.idOf('app'));
    await app.restart({ t: 1 }); // sleep ignores SIGTERM as pid 1: killed after 1 s, then started
    await until(() => !!t.taskReport(child.pid, 'STOPPED'), 'STOPPED');
    await until(async () => !(await app.inspect()).State.Running, 'the restarted container stopped again', 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await app.inspect()).State.Running, false, 'and it stays stopped');
    assert.equal(t.taskReport(child.pid, 'STOPPED')!.containers![0]!.exitCode, 137);
  } finally {
    await kill9(child);
    await t.cleanup();
  }
});
