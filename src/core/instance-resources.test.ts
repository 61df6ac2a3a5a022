import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_RESERVED_PORTS,
  fits,
  readResources,
  registeredResourcesFrom,
  release,
  reserve,
  resourceList,
} from './instance-resources';
import type { Reservation } from './resources';
import type { Resource } from './shapes/ecs';
import { WharfError } from './errors';

const none: Reservation = { cpu: 0, memory: 0, ports: [], portsUdp: [], gpuIds: [] };
const host = (over: Partial<Parameters<typeof resourceList>[0]> = {}) =>
  resourceList({ cpu: 2048, memory: 3768, ports: [...DEFAULT_RESERVED_PORTS], portsUdp: [], gpuIds: [], ...over });
const byName = (list: Resource[], name: string) => list.find((r) => r.name === name);

test('resources carry every numeric member as ECS sends them', () => {
  const list = host();
  assert.deepEqual(byName(list, 'CPU'), { name: 'CPU', type: 'INTEGER', doubleValue: 0, longValue: 0, integerValue: 2048 });
  assert.deepEqual(byName(list, 'PORTS'), {
    name: 'PORTS',
    type: 'STRINGSET',
    doubleValue: 0,
    longValue: 0,
    integerValue: 0,
    stringSetValue: ['22', '2375', '2376', '51678', '51679'],
  });
  assert.equal(byName(list, 'GPU'), undefined, 'no GPU entry for a host without GPUs');
  assert.deepEqual(byName(host({ gpuIds: ['gpu0'] }), 'GPU')?.stringSetValue, ['gpu0']);
});

test('the ECS worked example: cpu 100, memory 100 and host port 80 on a 2048/3768 host', () => {
  const remaining = reserve(host(), { ...none, cpu: 100, memory: 100, ports: [80] });
  const h = readResources(remaining);
  assert.equal(h.cpu, 1948);
  assert.equal(h.memory, 3668);
  assert.deepEqual(h.ports.sort((a, b) => a - b), [22, 80, 2375, 2376, 51678, 51679]);
});

test('release gives back exactly what reserve took, and neither mutates its input', () => {
  const start = host({ gpuIds: ['gpu0', 'gpu1'] });
  const frozen = JSON.stringify(start);
  const r: Reservation = { cpu: 512, memory: 1024, ports: [8080], portsUdp: [53], gpuIds: ['gpu1'] };
  const taken = reserve(start, r);
  assert.equal(JSON.stringify(start), frozen);
  const h = readResources(taken);
  assert.deepEqual(h.gpuIds, ['gpu0'], 'a reserved GPU is no longer free');
  assert.deepEqual(h.portsUdp, [53]);
  const back = readResources(release(taken, r));
  assert.deepEqual(back, readResources(start));
});

test('fits names the first resource that is short, in ECS terms', () => {
  const remaining = reserve(host({ gpuIds: ['gpu0'] }), { ...none, ports: [80], portsUdp: [5000] });
  const cases: [string, Reservation, string | undefined][] = [
    ['everything fits', { ...none, cpu: 2048, memory: 3768, ports: [81], portsUdp: [5001], gpuIds: ['gpu0'] }, undefined],
    ['too much cpu', { ...none, cpu: 2049 }, 'RESOURCE:CPU'],
    ['too much memory', { ...none, memory: 3769 }, 'RESOURCE:MEMORY'],
    ['a host-reserved port', { ...none, ports: [22] }, 'RESOURCE:PORTS'],
    ['a port another task holds', { ...none, ports: [80] }, 'RESOURCE:PORTS'],
    ['a UDP port another task holds', { ...none, portsUdp: [5000] }, 'RESOURCE:PORTS'],
    ['the same number over the other protocol is free', { ...none, portsUdp: [80] }, undefined],
    ['a GPU the host lacks', { ...none, gpuIds: ['gpu9'] }, 'RESOURCE:GPU'],
    ['cpu is checked before memory', { ...none, cpu: 9999, memory: 9999 }, 'RESOURCE:CPU'],
  ];
  for (const [name, r, want] of cases) assert.equal(fits(remaining, r), want, name);
});

test('a GPU given to one task does not fit another', () => {
  const r: Reservation = { ...none, gpuIds: ['gpu0'] };
  const after = reserve(host({ gpuIds: ['gpu0'] }), r);
  assert.equal(fits(after, r), 'RESOURCE:GPU');
});

test('registration fills in what the agent left out and keeps extra resources', () => {
  const list = registeredResourcesFrom([
    { name: 'CPU', type: 'INTEGER', integerValue: 4096 },
    { name: 'NEURON_CORES', type: 'INTEGER', integerValue: 2 },
  ]);
  const h = readResources(list);
  assert.equal(h.cpu, 4096);
  assert.equal(h.memory, 0);
  assert.deepEqual(h.ports, [...DEFAULT_RESERVED_PORTS]);
  assert.deepEqual(h.portsUdp, []);
  assert.equal(byName(list, 'NEURON_CORES')?.integerValue, 2);
  assert.equal(byName(list, 'MEMORY')?.doubleValue, 0);
});

test('registration keeps the ports the agent reserves instead of the defaults', () => {
  const list = registeredResourcesFrom([{ name: 'PORTS', type: 'STRINGSET', stringSetValue: ['22', '9100'] }]);
  assert.deepEqual(readResources(list).ports, [22, 9100]);
});

test('registration refuses malformed resources', () => {
  const bad: [string, Resource[]][] = [
    ['negative cpu', [{ name: 'CPU', type: 'INTEGER', integerValue: -1 }]],
    ['memory as a string set', [{ name: 'MEMORY', type: 'STRINGSET', stringSetValue: ['1'] }]],
    ['a port that is not a number', [{ name: 'PORTS', type: 'STRINGSET', stringSetValue: ['ssh'] }]],
    ['a port out of range', [{ name: 'PORTS_UDP', type: 'STRINGSET', stringSetValue: ['70000'] }]],
    ['an unknown type', [{ name: 'CPU', type: 'FLOAT', integerValue: 1 }]],
    ['a duplicate', [{ name: 'CPU', type: 'INTEGER', integerValue: 1 }, { name: 'CPU', type: 'INTEGER', integerValue: 2 }]],
    ['no name', [{ type: 'INTEGER', integerValue: 1 }]],
  ];
  for (const [name, list] of bad) {
    assert.throws(() => registeredResourcesFrom(list), (e: unknown) => e instanceof WharfError && e.code === 'InvalidParameterException', name);
  }
});

test('a task needing ports on a list registered without a PORTS entry still reserves them', () => {
  const list: Resource[] = [{ name: 'CPU', type: 'INTEGER', integerValue: 100 }, { name: 'MEMORY', type: 'INTEGER', integerValue: 50 }];
  const after = reserve(list, { ...none, cpu: 10, ports: [80], memory: 5 });
  const h = readResources(after);
  assert.equal(h.cpu, 90);
  assert.equal(h.memory, 45);
  assert.deepEqual(h.ports, [80]);
  assert.equal(fits(after, { ...none, ports: [80] }), 'RESOURCE:PORTS');
});
