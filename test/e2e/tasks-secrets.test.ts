/**
 * Container `secrets` from Wharf's Secrets Manager, end to end on a real Docker Engine: secrets
 * made with the unmodified AWS CLI, a task definition naming them (whole secret, a JSON key), the
 * busybox container printing what it got. The values reach the container's environment (and so
 * `docker inspect`, as on ECS) and nowhere else a user can read them: not DescribeTasks, not the
 * agent's data dir, also across an agent restart. A missing secret fails the task to start as ECS
 * does; SSM parameters are refused at placement; S3 environment files fail to start with the reason.
 *
 * Run: node scripts/run-tests.js --e2e tasks-secrets
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { DescribeTaskDefinitionCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { AWS_CLI, run } from './helpers/wharf-server';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';
import { sleep } from './helpers/processes';

const skip = dockerSkipReason();

/** Every file under the agents' temp data dirs (the harness makes them as wharf-agent-*). */
function agentDataDirText(): string {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    else out.push(fs.readFileSync(p, 'utf8'));
  };
  for (const d of fs.readdirSync(os.tmpdir())) if (d.startsWith('wharf-agent-')) walk(path.join(os.tmpdir(), d));
  return out.join('\n');
}

describe('container secrets from Secrets Manager', { skip, timeout: 300_000 }, () => {
  let h: TasksHarness;
  const docker = new Docker();
  // Random per run, so finding them anywhere cannot be a coincidence.
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const token = `tok-${randomBytes(8).toString('hex')}`;
  let dbArn = '';
  let tokenArn = '';

  const sm = async (args: string[]) => {
    const r = await run(AWS_CLI, ['secretsmanager', ...args, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env());
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  const containerOf = async (taskArn: string) => {
    const [c] = await docker.listContainers({ all: true, filters: { label: [`com.amazonaws.ecs.task-arn=${taskArn}`] } });
    assert.ok(c, `no container for ${taskArn}`);
    return docker.getContainer(c.Id);
  };

  const logsOf = async (taskArn: string, want: RegExp): Promise<string> => {
    const c = await containerOf(taskArn);
    const end = Date.now() + 20_000;
    for (;;) {
      const text = (await c.logs({ stdout: true, stderr: true, follow: false })).toString('utf8');
      if (want.test(text) || Date.now() > end) return text;
      await sleep(100);
    }
  };

  const runTask = async (td: string) => {
    const out = await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }));
    assert.deepEqual(out.failures, [], JSON.stringify(out.failures));
    return out.tasks![0]!.taskArn!;
  };

  before(async () => {
    h = await startTasksHarness('tasks-sec');
    dbArn = (await sm(['create-secret', '--name', `e2e/db-${process.pid}`, '--secret-string', JSON.stringify({ username: 'app', password })])).ARN;
    tokenArn = (await sm(['create-secret', '--name', `e2e/token-${process.pid}`, '--secret-string', token])).ARN;
  });
  after(async () => {
    await h?.close();
  });

  test('secret values reach the container environment, win over environment, and are shown nowhere else', async () => {
    const td = await h.register('sec-ok', [
      {
        name: 'app',
        image: 'wharf-test/busybox:latest',
        memory: 32,
        essential: true,
        stopTimeout: 1,
        command: ['sh', '-c', 'echo "DB_PASSWORD=$DB_PASSWORD TOKEN=$TOKEN USER=$DB_USER"; exec sleep 3600'],
        environment: [{ name: 'DB_PASSWORD', value: 'not-the-secret' }],
        secrets: [
          { name: 'DB_PASSWORD', valueFrom: `${dbArn}:password::` },
          { name: 'DB_USER', valueFrom: `${dbArn}:username:AWSCURRENT:` },
          { name: 'TOKEN', valueFrom: tokenArn },
        ],
      },
    ]);
    const described = await h.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: td }));
    assert.ok(
      described.taskDefinition!.requiresAttributes!.some((a) => a.name === 'ecs.capability.secrets.asm.environment-variables'),
      'the definition needs the capability the agent now has',
    );
    const arn = await runTask(td);
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING' || x.lastStatus === 'STOPPED', 'RUNNING');
    assert.equal(t.lastStatus, 'RUNNING', t.stoppedReason);

    const logs = await logsOf(arn, /TOKEN=/);
    assert.match(logs, new RegExp(`DB_PASSWORD=${password} TOKEN=${token} USER=app`), logs);
    // docker inspect shows a container's environment: unavoidable for env vars, as on ECS.
    const env = (await (await containerOf(arn)).inspect()).Config.Env;
    assert.ok(env.includes(`DB_PASSWORD=${password}`) && !env.includes('DB_PASSWORD=not-the-secret'), env.join(' '));

    const apiText = JSON.stringify(await h.describe(arn)) + JSON.stringify(described);
    assert.ok(!apiText.includes(password) && !apiText.includes(token), 'DescribeTasks / DescribeTaskDefinition carry references only');
    let disk = agentDataDirText();
    assert.ok(disk.includes(arn.slice(arn.lastIndexOf('/') + 1)), 'the agent did keep the task in its data dir');
    assert.ok(!disk.includes(password) && !disk.includes(token), 'but not the secret values');

    // An agent restart reads the task back without its secrets and adopts the running container.
    const before = (await containerOf(arn)).id;
    await h.restartAgent();
    // The restarted agent's runner waits for the control plane's copy of the task (its own has no
    // secrets), then finishes adopting: RUNNING again on the agent's side.
    const runner = () => h.agents.agents[0]!.runnerFor(arn);
    for (const end = Date.now() + 20_000; runner()?.knownStatus !== 'RUNNING'; await sleep(50)) {
      assert.ok(Date.now() < end, `the restarted agent did not take the task back: ${runner()?.knownStatus}`);
    }
    const again = await h.describe(arn);
    assert.equal(again.lastStatus, 'RUNNING');
    assert.equal((await containerOf(arn)).id, before, 'the same container, adopted');
    disk = agentDataDirText();
    assert.ok(!disk.includes(password) && !disk.includes(token), 'nor after the restart');

    // A task started after the restart still gets its values: the control plane re-sent them.
    const second = await runTask(td);
    const t2 = await h.waitTask(second, (x) => x.lastStatus === 'RUNNING' || x.lastStatus === 'STOPPED', 'RUNNING');
    assert.equal(t2.lastStatus, 'RUNNING', t2.stoppedReason);
    assert.match(await logsOf(second, /TOKEN=/), new RegExp(`TOKEN=${token}`));

    for (const a of [arn, second]) await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: a }));
    for (const a of [arn, second]) await h.waitTask(a, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
  });

  test('a missing secret or JSON key fails the task to start with ResourceInitializationError', async () => {
    const missing = dbArn.replace(/secret:.*$/, `secret:e2e/nope-${process.pid}`);
    for (const [family, valueFrom, why] of [
      ['sec-missing', missing, /can't find the specified secret/],
      ['sec-nokey', `${dbArn}:nokey::`, /json-key nokey is not in the secret/],
      ['sec-stage', `${dbArn}:password:AWSPREVIOUS:`, /staging label: AWSPREVIOUS/],
    ] as const) {
      const td = await h.register(family, [
        { name: 'app', image: 'wharf-test/busybox:latest', memory: 32, essential: true, command: ['sleep', '3600'], secrets: [{ name: 'X', valueFrom }] },
      ]);
      const arn = await runTask(td);
      const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
      assert.equal(t.stopCode, 'TaskFailedToStart');
      assert.match(t.stoppedReason!, /^ResourceInitializationError: unable to pull secrets or registry auth: secret X of container app: /);
      assert.match(t.stoppedReason!, why);
      assert.ok(!t.stoppedReason!.includes(password));
      const containers = await docker.listContainers({ all: true, filters: { label: [`com.amazonaws.ecs.task-arn=${arn}`] } });
      assert.deepEqual(containers, [], 'no container was created');
    }
  });

  test('SSM parameters are refused at placement; S3 environment files fail to start saying why', async () => {
    const ssm = await h.register('sec-ssm', [
      { name: 'app', image: 'wharf-test/busybox:latest', memory: 32, secrets: [{ name: 'X', valueFrom: `arn:aws:ssm:${h.srv.region}:123456789012:parameter/db` }] },
    ]);
    const out = await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: ssm }));
    assert.deepEqual(out.tasks, []);
    assert.equal(out.failures![0]!.reason, 'ATTRIBUTE');

    const files = await h.register('sec-envfiles', [
      { name: 'app', image: 'wharf-test/busybox:latest', memory: 32, command: ['sleep', '3600'], environmentFiles: [{ value: 'arn:aws:s3:::bucket/app.env', type: 's3' }] },
    ]);
    const arn = await runTask(files);
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    assert.equal(t.stopCode, 'TaskFailedToStart');
    assert.match(t.stoppedReason!, /^ResourceInitializationError: failed to download env files: environment files from S3 are not supported by Wharf/);
  });
});
