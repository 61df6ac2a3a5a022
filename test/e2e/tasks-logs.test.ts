/**
 * `wharf up` (control plane + local agent, cluster `default`) as a user runs it, a task with a
 * json-file logConfiguration started with the AWS CLI, and its output read back with
 * `wharf logs TASK [CONTAINER]`, once and with --follow.
 *
 * Run: npx tsx --test test/e2e/tasks-logs.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dockerSkipReason } from '../images/docker-test-env';
import { AWS_CLI, REPO, childEnv, run } from './helpers/wharf-server';
import { removeClusterContainers, waitUntil } from './helpers/processes';

const skip = dockerSkipReason();
const MAIN = path.join(REPO, 'src', 'cmd', 'main.ts');
// An account id of this run's own, so the `default` cluster's ARN (the containers' label) is too.
const ACCOUNT = String(100000000000 + (process.pid % 899999999999)).padStart(12, '1');

function wharf(args: string[]): ChildProcess & { out: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WHARF_LOG_LEVEL: 'warn' } });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  return Object.assign(child, { out: () => out });
}

describe('wharf up and wharf logs', { skip, timeout: 240_000 }, () => {
  let up: ReturnType<typeof wharf>;
  let dataDir: string;
  let endpoint: string;
  let env: NodeJS.ProcessEnv;
  let taskArn: string;

  const aws = async (args: string[]) => {
    const r = await run(AWS_CLI, ['ecs', ...args, '--endpoint-url', endpoint, '--output', 'json'], env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-up-'));
    up = wharf(['up', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--account-id', ACCOUNT, '--sync', 'normal', '--image-pull-behavior', 'prefer-cached']);
    await waitUntil(() => up.exitCode === null && /Local agent: 1 container instance/.test(up.out()), 'wharf up to start', {
      timeoutMs: 90_000,
      describe: () => up.out(),
    });
    endpoint = /Endpoint:\s+(http:\/\/\S+)/.exec(up.out())![1]!;
    const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json'), 'utf8'));
    env = childEnv(creds.user);
  });
  after(async () => {
    if (up && up.exitCode === null) {
      const gone = new Promise((r) => up.once('exit', r));
      up.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (up.exitCode === null) up.kill('SIGKILL');
    }
    await removeClusterContainers(`arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/default`);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('up registers its host in the default cluster and runs a task from the AWS CLI', async () => {
    const ci = await aws(['list-container-instances', '--cluster', 'default']);
    assert.equal(ci.containerInstanceArns.length, 1);
    const d = await aws(['describe-container-instances', '--cluster', 'default', '--container-instances', ci.containerInstanceArns[0]]);
    assert.equal(d.containerInstances[0].agentConnected, true);
    await aws([
      'register-task-definition',
      '--family',
      'logs-demo',
      '--container-definitions',
      JSON.stringify([
        {
          name: 'talker',
          image: 'wharf-test/busybox',
          memory: 32,
          essential: true,
          stopTimeout: 1,
          logConfiguration: { logDriver: 'json-file', options: { 'max-size': '1m' } },
          command: ['sh', '-c', 'i=0; while :; do echo "line-$i"; i=$((i+1)); sleep 0.2; done'],
        },
      ]),
    ]);
    const r = await aws(['run-task', '--task-definition', 'logs-demo']);
    taskArn = r.tasks[0].taskArn;
    await aws(['wait', 'tasks-running', '--tasks', taskArn]);
    const t = (await aws(['describe-tasks', '--tasks', taskArn])).tasks[0];
    const cfg = JSON.parse((await run('docker', ['inspect', t.containers[0].runtimeId], process.env)).stdout)[0].HostConfig.LogConfig;
    assert.deepEqual(cfg, { Type: 'json-file', Config: { 'max-size': '1m' } });
  });

  test('wharf logs prints what the container wrote, and --follow keeps streaming', async () => {
    assert.ok(taskArn, 'the previous test started the task');
    const id = taskArn.split('/').pop()!;
    await waitUntil(async () => {
      const once = await run(process.execPath, ['--import', 'tsx', MAIN, 'logs', id, 'talker', '--endpoint', endpoint, '--data-dir', dataDir], { ...process.env, WHARF_LOG_LEVEL: 'silent' });
      return once.code === 0 && /line-0\n/.test(once.stdout) && /line-3\n/.test(once.stdout);
    }, 'wharf logs to print the first lines', { timeoutMs: 30_000 });

    const follow = wharf(['logs', taskArn, '--follow', '--endpoint', endpoint, '--data-dir', dataDir]);
    try {
      // Lines written after `logs --follow` started reach it.
      const highest = () => Math.max(-1, ...[...follow.out().matchAll(/line-(\d+)/g)].map((m) => Number(m[1])));
      const first = await waitUntil(() => (highest() >= 0 ? highest() : undefined), 'the first followed line', { timeoutMs: 30_000, describe: () => follow.out() });
      await waitUntil(() => highest() >= first + 5, 'five more lines while following', { timeoutMs: 30_000, describe: () => follow.out() });
      assert.equal(follow.exitCode, null, 'still following');
    } finally {
      follow.kill('SIGTERM');
    }
  });
  test("up's agents refuse a task that bind-mounts the server's data dir, or a directory above it, and the banner names the console", async () => {
    assert.match(up.out(), new RegExp(`Console:\\s+${endpoint.replace(/\./g, '\\.')}/console/`));
    for (const [family, sourcePath] of [['peek-data', dataDir], ['peek-parent', path.dirname(dataDir)]] as const) {
      await aws([
        'register-task-definition',
        '--family',
        family,
        '--volumes',
        JSON.stringify([{ name: 'h', host: { sourcePath } }]),
        '--container-definitions',
        JSON.stringify([{ name: 'peek', image: 'wharf-test/busybox', memory: 32, essential: true, command: ['cat', '/h/credentials.json'], mountPoints: [{ sourceVolume: 'h', containerPath: '/h' }] }]),
      ]);
      const arn = (await aws(['run-task', '--task-definition', family])).tasks[0].taskArn;
      await aws(['wait', 'tasks-stopped', '--tasks', arn]);
      const t = (await aws(['describe-tasks', '--tasks', arn])).tasks[0];
      assert.equal(t.stopCode, 'TaskFailedToStart');
      assert.equal(
        t.stoppedReason,
        `CannotStartContainerError: container peek mounts host path ${sourcePath} (volume h), which would expose the Wharf server's data directory ${path.resolve(dataDir)} (Wharf protects it on this host)`,
      );
      assert.ok(t.containers.every((c: { runtimeId?: string }) => !c.runtimeId), 'no container was created');
    }
  });
});
