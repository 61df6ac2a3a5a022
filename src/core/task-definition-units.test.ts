import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTaskCpu, parseTaskMemory } from './task-definition-units';

const cpuCases: [string, number | undefined][] = [
  ['1024', 1024],
  ['256', 256],
  ['1 vCPU', 1024],
  ['1 vcpu', 1024],
  ['2vCPU', 2048],
  ['0.25 vcpu', 256],
  ['.5 vCPU', 512],
  ['4 vcpus', 4096],
  [' 512 ', 512],
  ['0.1 vcpu', undefined], // 102.4 units is not a whole number
  ['1.5', undefined],
  ['one', undefined],
  ['', undefined],
  ['-256', undefined],
  ['1 GB', undefined],
];

for (const [input, expected] of cpuCases) {
  test(`task cpu ${JSON.stringify(input)} is ${expected === undefined ? 'rejected' : `${expected} units`}`, () => {
    assert.equal(parseTaskCpu(input), expected);
  });
}

const memoryCases: [string, number | undefined][] = [
  ['512', 512],
  ['1 GB', 1024],
  ['1GB', 1024],
  ['2GB', 2048],
  ['2 gb', 2048],
  ['0.5 GB', 512],
  ['1.5 GB', 1536],
  ['3 GiB', 3072],
  ['512 MiB', 512],
  ['512MB', 512],
  ['0.3 GB', undefined], // 307.2 MiB
  ['1 TB', undefined],
  ['lots', undefined],
  ['1 vCPU', undefined],
];

for (const [input, expected] of memoryCases) {
  test(`task memory ${JSON.stringify(input)} is ${expected === undefined ? 'rejected' : `${expected} MiB`}`, () => {
    assert.equal(parseTaskMemory(input), expected);
  });
}
