import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from './errors';
import type { ContainerDefinition, NetworkMode, TaskOverride } from './shapes/ecs';
import { validateAndNormalizeTaskDefinition } from './task-definition';
import { resolveResourceNeeds } from './task-definition-resources';
import { container, ec2Request } from './task-definition-test-helpers';

/** A registered (normalized) task definition, as the scheduler would read it from state. */
function registered(containers: ContainerDefinition[], extra: { networkMode?: NetworkMode; cpu?: string; memory?: string } = {}) {
  return validateAndNormalizeTaskDefinition(ec2Request({ containerDefinitions: containers, ...extra })).taskDefinition;
}

test('memory reserved is memoryReservation when set, else memory, summed over containers', () => {
  const needs = resolveResourceNeeds(
    registered([container({ name: 'a', memory: 256 }), container({ name: 'b', memory: 512, memoryReservation: 128 })]),
  );
  assert.equal(needs.memory, 256 + 128);
  assert.deepEqual(needs.containers.map((c) => c.reservedMemory), [256, 128]);
});

test('cpu reserved is the sum of container cpu, 0 for containers without it', () => {
  const needs = resolveResourceNeeds(registered([container({ name: 'a', cpu: 100 }), container({ name: 'b' })]));
  assert.equal(needs.cpu, 100);
});

test('task-level cpu and memory replace the container sums', () => {
  const needs = resolveResourceNeeds(registered([container({ cpu: 10, memory: 64 })], { cpu: '1 vCPU', memory: '2GB' }));
  assert.equal(needs.cpu, 1024);
  assert.equal(needs.memory, 2048);
});

const portCases: { mode: NetworkMode; mappings: ContainerDefinition['portMappings']; tcp: number[]; udp: number[] }[] = [
  { mode: 'bridge', mappings: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 53, hostPort: 53, protocol: 'udp' }], tcp: [8080], udp: [53] },
  { mode: 'bridge', mappings: [{ containerPort: 80 }, { containerPort: 81, hostPort: 0 }], tcp: [], udp: [] },
  { mode: 'host', mappings: [{ containerPort: 443 }, { containerPort: 80 }], tcp: [80, 443], udp: [] },
  { mode: 'awsvpc', mappings: [{ containerPort: 80 }], tcp: [], udp: [] },
  { mode: 'none', mappings: [], tcp: [], udp: [] },
];

for (const p of portCases) {
  test(`static host ports in ${p.mode} mode: tcp ${JSON.stringify(p.tcp)}, udp ${JSON.stringify(p.udp)}`, () => {
    const needs = resolveResourceNeeds(registered([container({ portMappings: p.mappings })], { networkMode: p.mode }));
    assert.equal(needs.networkMode, p.mode);
    assert.deepEqual(needs.portsTcp, p.tcp);
    assert.deepEqual(needs.portsUdp, p.udp);
  });
}

test('one host port number taken for TCP and UDP is reserved under each protocol', () => {
  const needs = resolveResourceNeeds(
    registered([
      container({ name: 'a', portMappings: [{ containerPort: 80, hostPort: 8080 }] }),
      container({ name: 'b', portMappings: [{ containerPort: 81, hostPort: 8080, protocol: 'udp' }, { containerPort: 82, hostPort: 8081 }] }),
    ]),
  );
  assert.deepEqual(needs.portsTcp, [8080, 8081]);
  assert.deepEqual(needs.portsUdp, [8080]);
});

test('GPUs are summed over containers', () => {
  const needs = resolveResourceNeeds(
    registered([
      container({ name: 'a', resourceRequirements: [{ type: 'GPU', value: '2' }] }),
      container({ name: 'b', resourceRequirements: [{ type: 'GPU', value: '1' }] }),
      container({ name: 'c' }),
    ]),
  );
  assert.equal(needs.gpus, 3);
});

test('a network mode left out of the definition means bridge', () => {
  assert.equal(resolveResourceNeeds(registered([container()])).networkMode, 'bridge');
});

test('container overrides change cpu, memory, memoryReservation, command, environment and GPUs', () => {
  const td = registered([
    container({ name: 'app', cpu: 100, memory: 512, memoryReservation: 128, command: ['serve'], environment: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }),
    container({ name: 'side', memory: 64 }),
  ]);
  const overrides: TaskOverride = {
    containerOverrides: [
      {
        name: 'app',
        cpu: 300,
        memoryReservation: 64,
        command: ['migrate'],
        environment: [{ name: 'B', value: 'two' }, { name: 'C', value: '3' }],
        resourceRequirements: [{ type: 'GPU', value: '1' }],
      },
    ],
  };
  const needs = resolveResourceNeeds(td, overrides);
  const app = needs.containers[0]!;
  assert.equal(app.cpu, 300);
  assert.equal(app.memory, 512);
  assert.equal(app.memoryReservation, 64);
  assert.deepEqual(app.command, ['migrate']);
  assert.deepEqual(app.environment, [{ name: 'A', value: '1' }, { name: 'B', value: 'two' }, { name: 'C', value: '3' }]);
  assert.equal(needs.cpu, 300);
  assert.equal(needs.memory, 64 + 64);
  assert.equal(needs.gpus, 1);
  // The container without an override keeps its definition.
  assert.deepEqual(needs.containers[1]!.command, undefined);
  assert.equal(needs.containers[1]!.reservedMemory, 64);
});

test('task-level overrides replace the definition cpu and memory, in any supported unit', () => {
  const td = registered([container()], { cpu: '256', memory: '512' });
  const needs = resolveResourceNeeds(td, { cpu: '0.5 vcpu', memory: '1 GB' });
  assert.equal(needs.cpu, 512);
  assert.equal(needs.memory, 1024);
});

const badOverrides: { name: string; overrides: TaskOverride; message: string }[] = [
  {
    name: 'an override for a container the definition lacks',
    overrides: { containerOverrides: [{ name: 'ghost', cpu: 1 }] },
    message: "Override for container named 'ghost' is not a container in the TaskDefinition.",
  },
  {
    name: 'an override without a container name',
    overrides: { containerOverrides: [{ cpu: 1 }] },
    message: 'name cannot be blank.',
  },
  {
    name: 'two overrides for one container',
    overrides: { containerOverrides: [{ name: 'web' }, { name: 'web' }] },
    message: "Duplicate override for container named 'web'.",
  },
  {
    name: 'a memory override not above the reservation',
    overrides: { containerOverrides: [{ name: 'web', memory: 64, memoryReservation: 64 }] },
    message: "Invalid overrides for container 'web'. 'memory' must be greater than 'memoryReservation'.",
  },
  { name: 'a negative cpu override', overrides: { containerOverrides: [{ name: 'web', cpu: -1 }] }, message: "Invalid 'cpu' override for container 'web'." },
  { name: 'a task memory override that is not a size', overrides: { memory: 'big' }, message: "Invalid task 'memory' value 'big'." },
  {
    name: 'a memory override below 6 MiB',
    overrides: { containerOverrides: [{ name: 'web', memory: 5 }] },
    message: "Invalid 'memory' override for container 'web'. The minimum is 6 MiB.",
  },
  {
    name: 'a memoryReservation override below 6 MiB',
    overrides: { containerOverrides: [{ name: 'web', memoryReservation: 5 }] },
    message: "Invalid 'memoryReservation' override for container 'web'. The minimum is 6 MiB.",
  },
  {
    name: "a task memory override below a container's memory",
    overrides: { memory: '64' },
    message: "Invalid 'memory' setting for container 'web'. A container's 'memory' cannot be greater than the task 'memory'.",
  },
  {
    name: 'a container memory override above the task memory override',
    overrides: { memory: '256', containerOverrides: [{ name: 'web', memory: 512 }] },
    message: "Invalid 'memory' setting for container 'web'. A container's 'memory' cannot be greater than the task 'memory'.",
  },
  {
    name: "a task cpu override below the containers' cpu",
    overrides: { cpu: '256', containerOverrides: [{ name: 'web', cpu: 512 }] },
    message: "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.",
  },
];

for (const b of badOverrides) {
  test(`rejects ${b.name} with InvalidParameterException`, () => {
    assert.throws(
      () => resolveResourceNeeds(registered([container()]), b.overrides),
      (e: unknown) => e instanceof WharfError && e.code === 'InvalidParameterException' && e.message === b.message,
    );
  });
}

test("container memory overrides whose sum exceeds the task memory are refused, as at registration", () => {
  const td = registered([container({ name: 'a', memory: 200 }), container({ name: 'b', memory: 200 })], { memory: '512' });
  assert.equal(resolveResourceNeeds(td, { containerOverrides: [{ name: 'b', memory: 300 }] }).memory, 512);
  assert.throws(
    () => resolveResourceNeeds(td, { containerOverrides: [{ name: 'b', memory: 400 }] }),
    (e: unknown) =>
      e instanceof WharfError &&
      e.code === 'InvalidParameterException' &&
      e.message === "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'.",
  );
});
