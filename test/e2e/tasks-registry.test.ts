/**
 * Images from a private registry: the registry credentials live in a Secrets Manager secret made
 * with the unmodified AWS CLI against Wharf, the task definition names it in
 * `repositoryCredentials`, and RunTask pulls from a local registry behind basic auth (Debian's
 * docker-registry on 127.0.0.1). Also the Secrets Manager subset itself, through the CLI.
 *
 * Run: npx tsx --test test/e2e/tasks-registry.test.ts
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { dockerSkipReason } from '../images/docker-test-env';
import { pushToRegistry, startLocalRegistry, type LocalRegistry } from '../images/local-registry';
import { AWS_CLI, run } from './helpers/wharf-server';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';

const skip = dockerSkipReason();

describe('private registries through repositoryCredentials', { skip, timeout: 300_000 }, () => {
  let h: TasksHarness;
  let registry: LocalRegistry;
  let image: string;
  const docker = new Docker();

  const sm = async (args: string[]) => {
    const r = await run(AWS_CLI, ['secretsmanager', ...args, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env());
    let json: any;
    try {
      json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    } catch {
      json = undefined;
    }
    return { ...r, json };
  };

  before(async () => {
    registry = await startLocalRegistry({ auth: true });
    image = await pushToRegistry(docker, 'wharf-test/busybox:latest', registry, `private/busybox-${process.pid}:v1`);
    // `default` pull behaviour: the agent really goes to the registry.
    h = await startTasksHarness('tasks-reg', { pullBehaviour: 'default' });
  });
  after(async () => {
    await h?.close();
    await registry?.stop();
    await docker.getImage(image).remove({ force: true }).catch(() => undefined);
  });

  test('the AWS CLI creates, reads, lists, updates and deletes secrets', async () => {
    const c = await sm(['create-secret', '--name', 'e2e/plain', '--secret-string', 'one', '--description', 'for tests']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.json.ARN, new RegExp(`^arn:aws:secretsmanager:${h.srv.region}:\\d{12}:secret:e2e/plain-[A-Za-z0-9]{6}$`));
    const g = await sm(['get-secret-value', '--secret-id', c.json.ARN]);
    assert.equal(g.code, 0, g.stderr);
    assert.equal(g.json.SecretString, 'one');
    const dup = await sm(['create-secret', '--name', 'e2e/plain', '--secret-string', 'x']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /ResourceExistsException/);
    const p = await sm(['put-secret-value', '--secret-id', 'e2e/plain', '--secret-string', 'two']);
    assert.equal(p.code, 0, p.stderr);
    assert.equal((await sm(['get-secret-value', '--secret-id', 'e2e/plain'])).json.SecretString, 'two');
    const d = await sm(['describe-secret', '--secret-id', 'e2e/plain']);
    assert.equal(d.json.Description, 'for tests');
    const l = await sm(['list-secrets']);
    assert.ok(l.json.SecretList.some((s: { Name: string }) => s.Name === 'e2e/plain'));
    const del = await sm(['delete-secret', '--secret-id', 'e2e/plain', '--force-delete-without-recovery']);
    assert.equal(del.code, 0, del.stderr);
    const gone = await sm(['get-secret-value', '--secret-id', 'e2e/plain']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /ResourceNotFoundException/);
  });

  test('RunTask pulls from a registry with basic auth using the secret the definition names', async () => {
    const c = await sm(['create-secret', '--name', 'registry-creds', '--secret-string', JSON.stringify({ username: registry.auth!.username, password: registry.auth!.password })]);
    assert.equal(c.code, 0, c.stderr);
    await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    const td = await h.register('reg-private', [
      { name: 'app', image, memory: 32, essential: true, stopTimeout: 1, command: ['sleep', '3600'], repositoryCredentials: { credentialsParameter: c.json.ARN } },
    ]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'RUNNING' || x.lastStatus === 'STOPPED', 'RUNNING');
    assert.equal(t.lastStatus, 'RUNNING', t.stoppedReason);
    assert.ok(t.pullStartedAt && t.pullStoppedAt);
    assert.match(t.containers![0]!.imageDigest ?? '', /^sha256:/);
    const img = await docker.getImage(image).inspect();
    assert.ok(img.Id, 'the image was pulled into the engine');
    await h.ecs.send(new StopTaskCommand({ cluster: h.cluster, task: arn }));
    await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
  });

  test('wrong credentials fail the task with CannotPullContainerError', async () => {
    const c = await sm(['create-secret', '--name', 'bad-creds', '--secret-string', JSON.stringify({ username: 'wharf', password: 'wrong' })]);
    assert.equal(c.code, 0, c.stderr);
    await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    const td = await h.register('reg-bad', [
      // By name this time (ECS accepts the name or the ARN).
      { name: 'app', image, memory: 32, essential: true, command: ['sleep', '3600'], repositoryCredentials: { credentialsParameter: 'bad-creds' } },
    ]);
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td }))).tasks![0]!.taskArn!;
    const t = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'STOPPED');
    assert.equal(t.stopCode, 'TaskFailedToStart');
    assert.match(t.stoppedReason!, /^CannotPullContainerError: .*(unauthorized|authentication|no basic auth)/i);
  });
});
