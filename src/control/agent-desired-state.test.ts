import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keys, type TaskDefinitionRecord, type TaskRecord } from '../core/resources';
import type { ContainerDefinition } from '../core/shapes/ecs';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory/memory-store';
import { secretKey, type SecretRecord } from './secrets';
import { agentTaskOf, subnetNetworkName, wireOf } from './agent-desired-state';

const ACCT = '123456789012';
const CLUSTER = 'c1';
const SECRET_ARN = `arn:aws:secretsmanager:us-east-1:${ACCT}:secret:db-AbCdEf`;
let family = 0;

async function fixture(containers: ContainerDefinition[]) {
  const store = new MemoryStore();
  const db: SecretRecord = { name: 'db', arn: SECRET_ARN, secretString: '{"password":"s3cr3t-value"}', versionId: 'v1', createdDate: 1, lastChangedDate: 1, tags: [] };
  await store.create(secretKey('db'), db);
  const fam = `web${++family}`;
  const td: TaskDefinitionRecord = {
    taskDefinitionArn: `arn:aws:ecs:us-east-1:${ACCT}:task-definition/${fam}:1`,
    family: fam,
    revision: 1,
    status: 'ACTIVE',
    containerDefinitions: containers,
    tags: [],
  };
  await store.create(keys.taskDefinition(fam, 1), td);
  const state = new State(store);
  await state.start();
  const task = (desiredStatus: string): TaskRecord => ({
    taskArn: `arn:aws:ecs:us-east-1:${ACCT}:task/${CLUSTER}/${'a'.repeat(32)}`,
    clusterArn: `arn:aws:ecs:us-east-1:${ACCT}:cluster/${CLUSTER}`,
    taskDefinitionArn: td.taskDefinitionArn,
    lastStatus: 'RUNNING',
    desiredStatus,
    version: 1,
    wharf: { id: 'a'.repeat(32), cluster: CLUSTER, instanceId: '1'.repeat(32), reservation: { cpu: 0, memory: 64, ports: [], portsUdp: [], gpuIds: [] } },
  });
  return { state, task };
}

test('a task to run carries its containers\' secret values; the definition keeps only the references', async () => {
  const { state, task } = await fixture([
    { name: 'app', image: 'busybox', memory: 32, secrets: [{ name: 'DB_PASSWORD', valueFrom: `${SECRET_ARN}:password::` }] },
    { name: 'side', image: 'busybox', memory: 32 },
  ]);
  const a = agentTaskOf(state, task('RUNNING'))!;
  assert.deepEqual(a.secrets, { app: { DB_PASSWORD: 's3cr3t-value' } });
  assert.equal(a.secretsError, undefined);
  assert.deepEqual(a.taskDefinition.containerDefinitions![0]!.secrets, [{ name: 'DB_PASSWORD', valueFrom: `${SECRET_ARN}:password::` }]);
  // The values go with every send, elided definition or not: they are not part of the definition.
  assert.match(wireOf(a, true), /s3cr3t-value/);

  const stopping = agentTaskOf(state, task('STOPPED'))!;
  assert.equal(stopping.secrets, undefined, 'a task to stop is not told any secret');
  state.stop();
});

test('an unresolvable secret or registry credential gives the task secretsError and no values', async () => {
  const { state, task } = await fixture([
    { name: 'app', image: 'busybox', memory: 32, secrets: [{ name: 'OK', valueFrom: SECRET_ARN }, { name: 'MISSING', valueFrom: `${SECRET_ARN}:nokey::` }] },
    { name: 'side', image: 'busybox', memory: 32, repositoryCredentials: { credentialsParameter: 'no-such-secret' } },
  ]);
  const a = agentTaskOf(state, task('RUNNING'))!;
  assert.equal(a.secrets, undefined);
  assert.equal(a.registryAuth, undefined);
  assert.match(a.secretsError!, /secret MISSING of container app: .*json-key nokey is not in the secret/);
  assert.match(a.secretsError!, /registry credentials of container side: no-such-secret: .*can't find the specified secret/);
  assert.doesNotMatch(a.secretsError!, /s3cr3t/);
  state.stop();
});

test("a task carries its service's name and its containers' ARNs (the task metadata endpoint's ServiceName, ContainerARN)", async () => {
  const { state, task } = await fixture([{ name: 'app', image: 'busybox', memory: 32 }]);
  const containerArn = `arn:aws:ecs:us-east-1:${ACCT}:container/${CLUSTER}/${'a'.repeat(32)}/0206b271-b33f-47ab-86c6-a0ba208a70a9`;
  const t = task('RUNNING');
  const a = agentTaskOf(state, { ...t, containers: [{ name: 'app', containerArn }], wharf: { ...t.wharf, serviceName: 'web-svc' } })!;
  assert.equal(a.serviceName, 'web-svc');
  assert.deepEqual(a.containerArns, { app: containerArn });
  const alone = agentTaskOf(state, t)!;
  assert.equal(alone.serviceName, undefined, 'a RunTask task names no service');
  state.stop();
});

test("a subnet's Docker network carries its range unless the range is the region's default, so two Wharfs of one account with --vpc-base of their own never share one", () => {
  assert.equal(subnetNetworkName('subnet-0123456789abcdef0', '10.132.0.0/20', 'us-east-1a'), 'wharf-subnet-subnet-0123456789abcdef0');
  assert.equal(subnetNetworkName('subnet-0123456789abcdef0', '10.203.0.0/20', 'us-east-1a'), 'wharf-subnet-subnet-0123456789abcdef0-10.203.0.0_20');
  assert.equal(subnetNetworkName('subnet-0123456789abcdef0', '10.204.0.0/20', 'us-east-1a'), 'wharf-subnet-subnet-0123456789abcdef0-10.204.0.0_20');
  assert.equal(subnetNetworkName('subnet-0123456789abcdef0'), 'wharf-subnet-subnet-0123456789abcdef0', 'no record: the plain name');
});
