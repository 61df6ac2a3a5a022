/**
 * The awslogs driver end to end, on the real Docker Engine: `wharf server` and `wharf agent` as
 * processes, a task whose container prints a numbered line every 100 ms with logConfiguration
 * awslogs. Its lines are read back with the AWS CLI v2 (`aws logs get-log-events`, `aws logs
 * tail`, `aws logs tail --follow`) and boto3 (paging GetLogEvents by token); a kill -9 of the
 * server while the container keeps printing loses no line and repeats none; another container
 * instance's credential cannot write the stream; a missing group fails the start as ECS does, and
 * awslogs-create-group=true makes it.
 *
 * Run: node --import tsx --test test/e2e/tasks-awslogs.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CreateClusterCommand, DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, type Task } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { AWS_CLI, TARGET_PREFIX, rawCall, run } from './helpers/wharf-server';
import { pythonWithBoto3 } from '../preflight/test-deps';
import { killAllSpawned, removeClusterContainers, removeDir, spawnAgent, spawnServer, waitUntil, type AgentProcess, type ServerProcess } from './helpers/processes';
import { MISSING_GROUP_REASON } from '../../src/agent/awslogs-shipper';

const skip = dockerSkipReason();
const CLUSTER = `awslogs-${process.pid}`;
const GROUP = `/ecs/awslogs-e2e-${process.pid}`;
const LOGS = 'Logs_20140328';

describe('the awslogs driver ships task output to the logs API', { skip, timeout: 300_000 }, () => {
  let srv: ServerProcess;
  let agent: AgentProcess;
  let clusterArn = '';
  let taskId = '';
  const stream = () => `web/talker/${taskId}`;

  const logs = async (args: string[], timeoutMs?: number) => {
    const r = await run(AWS_CLI, ['logs', ...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env(), undefined, timeoutMs);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };
  const describeTask = async (arn: string): Promise<Task> => (await srv.ecs().send(new DescribeTasksCommand({ cluster: CLUSTER, tasks: [arn] }))).tasks![0]!;
  /** Every line of the stream, from its head, through the CLI (which follows the forward token). */
  const allLines = async (): Promise<number[]> => {
    const out = await logs(['get-log-events', '--log-group-name', GROUP, '--log-stream-name', stream(), '--start-from-head']);
    return out.events.map((e: { message: string }) => Number(/^line-(\d+)$/.exec(e.message)?.[1] ?? NaN));
  };

  before(async () => {
    srv = await spawnServer({ agentTimeoutMs: 10_000 });
    clusterArn = (await srv.ecs().send(new CreateClusterCommand({ clusterName: CLUSTER }))).cluster!.clusterArn!;
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, extraArgs: ['--image-pull-behavior', 'prefer-cached'], env: { WHARF_LOG_LEVEL: 'warn' } });
  });
  after(async () => {
    await killAllSpawned();
    if (clusterArn) await removeClusterContainers(clusterArn);
    if (srv) removeDir(srv.dataDir);
    if (agent) removeDir(agent.dataDir);
  });

  test('a task with awslogs: get-log-events and tail show its lines', async () => {
    await logs(['create-log-group', '--log-group-name', GROUP]);
    const ecs = srv.ecs();
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'awslogs-talker',
        containerDefinitions: [
          {
            name: 'talker',
            image: 'wharf-test/busybox',
            memory: 32,
            essential: true,
            stopTimeout: 1,
            logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': GROUP, 'awslogs-region': srv.region, 'awslogs-stream-prefix': 'web' } },
            command: ['sh', '-c', 'i=0; while :; do echo "line-$i"; i=$((i+1)); sleep 0.1; done'],
          },
        ],
      }),
    );
    const arn = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'awslogs-talker' }))).tasks![0]!.taskArn!;
    taskId = arn.split('/').pop()!;
    await waitUntil(async () => (await describeTask(arn)).lastStatus === 'RUNNING', 'the task to run', { timeoutMs: 60_000 });
    // The stream ECS names: prefix/container/task id.
    const streams = await logs(['describe-log-streams', '--log-group-name', GROUP]);
    assert.deepEqual(streams.logStreams.map((s: { logStreamName: string }) => s.logStreamName), [stream()]);
    const lines = await waitUntil(async () => {
      const l = await allLines();
      return l.length >= 10 ? l : undefined;
    }, 'ten lines in the stream', { timeoutMs: 30_000 });
    assert.deepEqual(lines.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // `aws logs tail` (FilterLogEvents under the hood) prints them as "time stream message".
    const tail = await run(AWS_CLI, ['logs', 'tail', GROUP, '--since', '10m', '--endpoint-url', srv.endpoint], srv.env());
    assert.equal(tail.code, 0, tail.stderr);
    assert.match(tail.stdout, new RegExp(`${stream().replace(/\//g, '\\/')} line-0\\n`));
    assert.match(tail.stdout, /line-9\n/);
  });

  test('aws logs tail --follow shows lines printed after it started', async () => {
    const follow = spawn(AWS_CLI, ['logs', 'tail', GROUP, '--follow', '--since', '1m', '--endpoint-url', srv.endpoint], { env: srv.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    follow.stdout.on('data', (d) => (out += String(d)));
    follow.stderr.on('data', (d) => (out += String(d)));
    try {
      const highest = () => Math.max(-1, ...[...out.matchAll(/line-(\d+)/g)].map((m) => Number(m[1])));
      const first = await waitUntil(() => (highest() >= 0 ? highest() : undefined), 'the first followed line', { timeoutMs: 30_000, describe: () => out });
      // The CLI polls every 5 s: two polls later, lines printed since must have arrived.
      await waitUntil(() => highest() >= first + 50, 'fifty more lines while following', { timeoutMs: 30_000, describe: () => out });
      assert.equal(follow.exitCode, null, 'still following');
    } finally {
      follow.kill('SIGTERM');
    }
  });

  test('boto3 pages GetLogEvents by token; at the head the backward token comes back unchanged', { skip: pythonWithBoto3() ? false : 'no boto3' }, async () => {
    const python = pythonWithBoto3()!;
    const snippet = [
      'import json, sys, boto3',
      'from botocore.config import Config',
      `c = boto3.client("logs", endpoint_url=${JSON.stringify(srv.endpoint)}, config=Config(retries={"max_attempts": 1}))`,
      `kw = dict(logGroupName=${JSON.stringify(GROUP)}, logStreamName=${JSON.stringify(stream())}, startFromHead=True, limit=7)`,
      'msgs, pages, token = [], 0, None',
      'while pages < 8:',
      '    r = c.get_log_events(**kw, **({"nextToken": token} if token else {}))',
      '    pages += 1',
      '    msgs += [e["message"] for e in r["events"]]',
      '    token = r["nextForwardToken"]',
      'streams = [s["logStreamName"] for p in c.get_paginator("describe_log_streams").paginate(logGroupName=' + JSON.stringify(GROUP) + ', limit=1) for s in p["logStreams"]]',
      'print(json.dumps({"msgs": msgs, "pages": pages, "streams": streams}))',
    ].join('\n');
    const r = await run(python, ['-c', snippet], srv.env());
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(out.pages, 8);
    assert.deepEqual(out.msgs, Array.from({ length: 56 }, (_, i) => `line-${i}`), 'eight pages of seven, in order, none repeated');
    assert.deepEqual(out.streams, [stream()]);
    // The container keeps printing, so the stream's head is its fixed end: nothing lies before it,
    // and the backward token comes back unchanged (CloudWatch's "you have reached the end").
    const head = await logs(['get-log-events', '--log-group-name', GROUP, '--log-stream-name', stream(), '--start-from-head', '--limit', '1']);
    assert.deepEqual(head.events.map((e: { message: string }) => e.message), ['line-0']);
    const before = await logs(['get-log-events', '--log-group-name', GROUP, '--log-stream-name', stream(), '--next-token', head.nextBackwardToken]);
    assert.deepEqual(before.events, []);
    assert.equal(before.nextBackwardToken, head.nextBackwardToken);
  });

  test('a kill -9 of the server while the container prints loses no line and repeats none', async () => {
    const before = (await allLines()).length;
    const port = srv.port;
    const dataDir = srv.dataDir;
    await srv.kill9();
    await new Promise((r) => setTimeout(r, 4000));
    srv = await spawnServer({ dataDir, port, agentTimeoutMs: 10_000 });
    const lines = await waitUntil(async () => {
      const l = await allLines();
      // Forty lines a second for four seconds were printed while the server was away.
      return l.length >= before + 80 ? l : undefined;
    }, 'the lines printed while the server was down', { timeoutMs: 60_000 });
    assert.deepEqual(lines, lines.map((_, i) => i), 'every line from line-0 on, once each, in order');
  });

  test('an agent restart adopts the container and resumes from the end of its stream: no line lost or repeated', async () => {
    const before = (await allLines()).length;
    const dataDir = agent.dataDir;
    await agent.stop();
    await new Promise((r) => setTimeout(r, 3000));
    agent = await spawnAgent({ server: srv, cluster: CLUSTER, dataDir, extraArgs: ['--image-pull-behavior', 'prefer-cached'], env: { WHARF_LOG_LEVEL: 'warn' } });
    const lines = await waitUntil(async () => {
      const l = await allLines();
      return l.length >= before + 60 ? l : undefined;
    }, 'the lines printed while the agent was away, and after', { timeoutMs: 60_000 });
    assert.deepEqual(lines, lines.map((_, i) => i), 'every line from line-0 on, once each, in order');
  });

  test("another container instance's credential cannot write the task's stream", async () => {
    // A second instance, registered with a join token of another cluster: it gets a credential of its own.
    const other = `awslogs-other-${process.pid}`;
    await srv.ecs().send(new CreateClusterCommand({ clusterName: other }));
    const [id, secret] = srv.joinTokenFor(other).split(':');
    const reg = await rawCall(srv.endpoint, { accessKeyId: id!, secretAccessKey: secret! }, `${TARGET_PREFIX}.RegisterContainerInstance`, JSON.stringify({ cluster: other, totalResources: [{ name: 'CPU', type: 'INTEGER', integerValue: 1024 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 1024 }] }));
    assert.equal(reg.status, 200, reg.text);
    const cred = reg.json.wharfInstanceCredential;
    const put = await rawCall(srv.endpoint, cred, `${LOGS}.PutLogEvents`, JSON.stringify({ logGroupName: GROUP, logStreamName: stream(), logEvents: [{ timestamp: Date.now(), message: 'forged' }] }), { service: 'logs' });
    assert.equal(put.status, 400);
    assert.equal(put.json.__type, 'AccessDeniedException');
    assert.match(put.json.message, /is not authorized to perform: logs:PutLogEvents on resource: arn:aws:logs:us-east-1:\d+:log-group:\/ecs\/awslogs-e2e-\d+:log-stream:web\/talker\/[0-9a-f]+ because an instance credential may only write the awslogs streams of its own instance's tasks/);
    // Nor may it read (an agent key calls only what shipping needs).
    const read = await rawCall(srv.endpoint, cred, `${LOGS}.GetLogEvents`, JSON.stringify({ logGroupName: GROUP, logStreamName: stream() }), { service: 'logs' });
    assert.equal(read.json.__type, 'AccessDeniedException');
    assert.ok(!(await allLines()).some(Number.isNaN), 'no forged line got in');
  });

  test("awslogs-region naming another region writes into that region's logs", async () => {
    const ecs = srv.ecs();
    const group = `${GROUP}-abroad`;
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'awslogs-abroad',
        containerDefinitions: [
          {
            name: 'far',
            image: 'wharf-test/busybox',
            memory: 32,
            essential: true,
            logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': group, 'awslogs-region': 'eu-west-1', 'awslogs-stream-prefix': 'x', 'awslogs-create-group': 'true' } },
            command: ['sh', '-c', 'echo hello-from-abroad; sleep 1'],
          },
        ],
      }),
    );
    const arn = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'awslogs-abroad' }))).tasks![0]!.taskArn!;
    const id = arn.split('/').pop()!;
    const inRegion = async (region: string, args: string[]) => {
      const r = await run(AWS_CLI, ['logs', ...args, '--region', region, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
      return r.code === 0 ? JSON.parse(r.stdout) : { error: r.stderr };
    };
    const events = await waitUntil(async () => {
      const out = await inRegion('eu-west-1', ['get-log-events', '--log-group-name', group, '--log-stream-name', `x/far/${id}`]);
      return out.events?.length > 0 ? out.events : undefined;
    }, 'the line in eu-west-1', { timeoutMs: 60_000 });
    assert.deepEqual(events.map((e: { message: string }) => e.message), ['hello-from-abroad']);
    const home = await inRegion(srv.region, ['describe-log-groups', '--log-group-name-prefix', group]);
    assert.deepEqual(home.logGroups, [], 'nothing of it in the instance\'s own region');
  });

  test('a line over 16 KiB is one event, and a last line without a newline is shipped when the container exits', async () => {
    const ecs = srv.ecs();
    await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'awslogs-lines',
        containerDefinitions: [
          {
            name: 'lines',
            image: 'wharf-test/busybox',
            memory: 32,
            essential: true,
            logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': GROUP, 'awslogs-region': srv.region, 'awslogs-stream-prefix': 'l' } },
            command: ['sh', '-c', "echo first; head -c 40000 /dev/zero | tr '\\0' x; echo; printf last-no-newline; sleep 1"],
          },
        ],
      }),
    );
    const arn = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'awslogs-lines' }))).tasks![0]!.taskArn!;
    const id = arn.split('/').pop()!;
    const messages = await waitUntil(async () => {
      const r = await run(AWS_CLI, ['logs', 'get-log-events', '--log-group-name', GROUP, '--log-stream-name', `l/lines/${id}`, '--start-from-head', '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
      const m = r.code === 0 ? JSON.parse(r.stdout).events.map((e: { message: string }) => e.message) : [];
      return m.includes('last-no-newline') ? m : undefined;
    }, 'the last line without a newline', { timeoutMs: 60_000 });
    assert.deepEqual(messages, ['first', 'x'.repeat(40_000), 'last-no-newline']);
  });

  test('a missing group fails the start as ECS does; awslogs-create-group=true makes it', async () => {
    const ecs = srv.ecs();
    const def = (family: string, group: string, create: boolean) =>
      ecs.send(
        new RegisterTaskDefinitionCommand({
          family,
          containerDefinitions: [
            {
              name: 'once',
              image: 'wharf-test/busybox',
              memory: 32,
              essential: true,
              logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': group, 'awslogs-region': srv.region, 'awslogs-stream-prefix': 'p', ...(create ? { 'awslogs-create-group': 'true' } : {}) } },
              command: ['sh', '-c', 'echo hello-from-once; sleep 1'],
            },
          ],
        }),
      );
    await def('awslogs-missing', `${GROUP}-missing`, false);
    await def('awslogs-created', `${GROUP}-created`, true);
    const missing = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'awslogs-missing' }))).tasks![0]!.taskArn!;
    const stopped = await waitUntil(async () => {
      const t = await describeTask(missing);
      return t.lastStatus === 'STOPPED' ? t : undefined;
    }, 'the task without its group to stop', { timeoutMs: 60_000 });
    assert.equal(stopped.stopCode, 'TaskFailedToStart');
    assert.equal(stopped.stoppedReason, MISSING_GROUP_REASON);

    const created = (await ecs.send(new RunTaskCommand({ cluster: CLUSTER, taskDefinition: 'awslogs-created' }))).tasks![0]!.taskArn!;
    const id = created.split('/').pop()!;
    const events = await waitUntil(async () => {
      const r = await run(AWS_CLI, ['logs', 'get-log-events', '--log-group-name', `${GROUP}-created`, '--log-stream-name', `p/once/${id}`, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
      return r.code === 0 && JSON.parse(r.stdout).events.length > 0 ? JSON.parse(r.stdout).events : undefined;
    }, 'the created group to hold the line', { timeoutMs: 60_000 });
    assert.deepEqual(events.map((e: { message: string }) => e.message), ['hello-from-once']);
  });
});
