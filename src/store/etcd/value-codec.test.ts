import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeValue, encodeValue } from './value-codec';

const P = 'arn:aws:ecs:us-east-1:000000000000:';
const ID = '000899b9ce9fe189dd7466b3d05ea037';
const INSTANCE = '099cec71f9268f4303e3cababc560423';

/** A task as the bench's RunTask leaves it once RUNNING (the shape control/task-records.ts builds). */
function runningTask(): Record<string, unknown> {
  return {
    taskArn: `${P}task/bench/${ID}`,
    clusterArn: `${P}cluster/bench`,
    taskDefinitionArn: `${P}task-definition/bench-e2e:1`,
    attachments: [],
    attributes: [],
    containers: [
      {
        containerArn: `${P}container/bench/${ID}/bb4345f9-8e69-4563-8c11-0694f387a1c1`,
        taskArn: `${P}task/bench/${ID}`,
        name: 'app',
        image: 'busybox',
        lastStatus: 'RUNNING',
        networkInterfaces: [],
        healthStatus: 'UNKNOWN',
        cpu: '32',
        memory: '128',
        runtimeId: 'sim000000000000000000000000000000000000000000000000000000000000b',
        networkBindings: [],
      },
    ],
    overrides: { containerOverrides: [], inferenceAcceleratorOverrides: [] },
    lastStatus: 'RUNNING',
    desiredStatus: 'RUNNING',
    launchType: 'EC2',
    group: 'family:bench-e2e',
    createdAt: 1796589768.839,
    version: 2,
    healthStatus: 'UNKNOWN',
    enableExecuteCommand: false,
    tags: [],
    wharf: { id: ID, cluster: 'bench', clientToken: '4e6c6c8f-c292-4a43-8eae-20aeb056f84b', instanceId: INSTANCE, reservation: { cpu: 32, memory: 128, ports: [], portsUdp: [], gpuIds: [] } },
    containerInstanceArn: `${P}container-instance/bench/${INSTANCE}`,
    availabilityZone: 'us-east-1c',
    pullStartedAt: 1796589769.852,
    connectivity: 'CONNECTED',
    connectivityAt: 1796589785.807,
    startedAt: 1796589769.853,
  };
}

/** Stores and reads back: the JSON text read must be the JSON text written, byte for byte. */
function roundTrip(value: unknown): Buffer {
  const json = JSON.stringify(value);
  const stored = encodeValue(value, json);
  assert.equal(JSON.stringify(decodeValue(stored)), json);
  return stored;
}

describe('etcd value codec', () => {
  test('a placed task record is stored compact, at about half its JSON size, and reads back the same', () => {
    const t = runningTask();
    const stored = roundTrip(t);
    assert.equal(stored[0], 0x01);
    const json = Buffer.byteLength(JSON.stringify(t));
    assert.ok(stored.length < json * 0.6, `${stored.length} bytes stored for ${json} of JSON`);
    // The derived ARNs are not stored at all.
    assert.ok(!stored.toString('utf8').includes(`task/bench/${ID}`));
    assert.ok(!stored.toString('utf8').includes('container-instance/'));
  });

  test('task records of other shapes read back the same', () => {
    const cases: Record<string, unknown>[] = [];
    // Not yet placed: no instance, awsvpc attachment, overrides of its own, tags, startedBy.
    const pending = runningTask();
    delete pending.containerInstanceArn;
    delete (pending.wharf as Record<string, unknown>).instanceId;
    pending.lastStatus = 'PROVISIONING';
    pending.attachments = [{ id: 'a1', type: 'ElasticNetworkInterface', status: 'PRECREATED', details: [{ name: 'subnetId', value: 'subnet-1' }] }];
    pending.overrides = { containerOverrides: [{ name: 'app', command: ['sh'] }], inferenceAcceleratorOverrides: [], cpu: '256' };
    pending.tags = [{ key: 'team', value: 'ünïcødé ✓' }];
    pending.startedBy = 'ecs-svc/123';
    cases.push(pending);
    // A Fargate task: its instance is in another cluster.
    const fargate = runningTask();
    (fargate.wharf as Record<string, unknown>).instanceCluster = 'wharf-fargate-pool';
    fargate.containerInstanceArn = `${P}container-instance/wharf-fargate-pool/${INSTANCE}`;
    fargate.launchType = 'FARGATE';
    cases.push(fargate);
    // An instance ARN, container ARN and task definition ARN of another shape are kept as they are.
    const odd = runningTask();
    odd.containerInstanceArn = `${P}container-instance/elsewhere/${INSTANCE}`;
    (odd.containers as Record<string, unknown>[])[0]!.containerArn = 'arn:aws:ecs:eu-west-1:111111111111:container/x/y/z';
    odd.taskDefinitionArn = 'arn:aws:ecs:eu-west-1:111111111111:task-definition/other:3';
    cases.push(odd);
    // Another partition, several containers, a stopped task.
    const cn = JSON.parse(JSON.stringify(runningTask()).replaceAll('arn:aws:ecs:us-east-1:', 'arn:aws-cn:ecs:cn-north-1:')) as Record<string, unknown>;
    const c0 = (cn.containers as Record<string, unknown>[])[0]!;
    cn.containers = [c0, { ...c0, name: 'sidecar', containerArn: `${String(c0.containerArn).slice(0, -36)}5c3f3b51-9c2e-4d7c-a6a5-1f0d0b1c2d3e`, exitCode: 0 }];
    Object.assign(cn, { lastStatus: 'STOPPED', desiredStatus: 'STOPPED', stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited', stoppedAt: 1796589800 });
    (cn.wharf as Record<string, unknown>).expiresAt = 1796593400000;
    (cn.wharf as Record<string, unknown>).released = true;
    cases.push(cn);
    // Members Wharf does not know yet (a future ECS member) keep their place.
    const extra = { newMember: { a: 1 }, ...runningTask(), laterMember: 'x' };
    cases.push(extra);
    for (const c of cases) assert.equal(roundTrip(c)[0], 0x01, JSON.stringify(c).slice(0, 80));
  });

  test('a task record the compact form could not carry exactly stays plain JSON', () => {
    const aliasLike = { ...runningTask(), _1: 'a member named like an alias' };
    const zeroArn = { ...runningTask(), containerInstanceArn: 0 };
    const oddTd = { ...runningTask(), taskDefinitionArn: 'bench-e2e:1' };
    const noPrefix = { ...runningTask(), clusterArn: 'arn:aws:ecs:us-east-1:000000000000:cluster/other' };
    const withToJson = { ...runningTask(), wharf: { ...(runningTask().wharf as object), toJSON: () => ({ id: ID, cluster: 'bench' }) } };
    for (const v of [aliasLike, zeroArn, oddTd, noPrefix, withToJson]) {
      const stored = roundTrip(v);
      assert.equal(stored.toString('utf8'), JSON.stringify(v));
    }
  });

  test('other values are stored as their JSON text', () => {
    for (const v of [{ remainingResources: [] }, { taskArn: 'x' }, [1, 2], 'text', 42, null, true, {}]) {
      assert.equal(roundTrip(v).toString('utf8'), JSON.stringify(v));
    }
  });

  test('a task record stored before the compact form existed (plain JSON) reads as it did', () => {
    const t = runningTask();
    assert.deepEqual(decodeValue(Buffer.from(JSON.stringify(t))), t);
  });
});
