import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeRequiresAttributes } from '../core/task-definition-attributes';
import { instanceAttributes } from './instance-resources';

const info = { cpus: 2, memoryBytes: 4 << 30, serverVersion: '24.0.0', apiVersion: '1.43', os: 'linux', architecture: 'x86_64', loggingDrivers: ['json-file'], cgroupDriver: 'cgroupfs', cgroupVersion: '2', runtimes: ['runc'] };

test('an agent can be placed a definition with Secrets Manager secrets or env files, never one with SSM parameters', () => {
  const have = new Set(instanceAttributes(info, { region: 'us-east-1' }).map((a) => a.name));
  const needs = (c: Parameters<typeof computeRequiresAttributes>[0]['containerDefinitions'][number]) =>
    computeRequiresAttributes({ containerDefinitions: [{ name: 'app', image: 'app', memory: 32, ...c }] }).map((a) => a.name);
  const placeable = (names: string[]) => names.every((n) => have.has(n));
  assert.ok(placeable(needs({ secrets: [{ name: 'A', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password::' }] })));
  assert.ok(placeable(needs({ environmentFiles: [{ value: 'arn:aws:s3:::b/k.env', type: 's3' }] })), 'placed, then failed to start with the reason');
  assert.ok(!placeable(needs({ secrets: [{ name: 'A', valueFrom: 'arn:aws:ssm:us-east-1:123456789012:parameter/db' }] })), 'SSM: ATTRIBUTE at placement');
});

test('definitions using what the agent implements are placeable: task role, pid/ipc task namespaces, port ranges, awslogs with an execution role', () => {
  const have = new Set(instanceAttributes(info, { region: 'us-east-1' }).map((a) => a.name));
  const missing = (td: Partial<Parameters<typeof computeRequiresAttributes>[0]>, c: Record<string, unknown> = {}) =>
    computeRequiresAttributes({ containerDefinitions: [{ name: 'app', image: 'app', memory: 32, ...c }], ...td }).map((a) => a.name).filter((n) => !have.has(n));
  // The AWS developer guide's Fargate web server example: awslogs with an execution role.
  const awslogs = { logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': 'web' } } };
  assert.deepEqual(missing({ executionRoleArn: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole' }, awslogs), []);
  assert.deepEqual(missing({ taskRoleArn: 'arn:aws:iam::123456789012:role/app' }), []);
  assert.deepEqual(missing({ taskRoleArn: 'arn:aws:iam::123456789012:role/app', networkMode: 'host' }), []);
  assert.deepEqual(missing({ pidMode: 'task', ipcMode: 'task' }), []);
  assert.deepEqual(missing({ networkMode: 'awsvpc' }, { portMappings: [{ containerPortRange: '8000-8010', protocol: 'tcp' }] }), []);
  // What Wharf does not have stays unplaceable (ATTRIBUTE), rather than started and failed.
  assert.deepEqual(missing({}, { logConfiguration: { logDriver: 'awsfirelens' } }).length > 0, true);
});

test('a pool host isolates Fargate tasks with gVisor where the engine has runsc, unless told to use runc', () => {
  const sandbox = (runtimes: string[], fargateSandbox?: 'gvisor' | 'runc') =>
    instanceAttributes({ ...info, runtimes }, { region: 'us-east-1', fargateSandbox }).find((a) => a.name === 'wharf.fargate-sandbox')?.value;
  assert.equal(sandbox(['runc', 'runsc']), 'gvisor');
  assert.equal(sandbox(['runc']), 'runc');
  assert.equal(sandbox(['runc', 'runsc'], 'runc'), 'runc', '--fargate-sandbox runc');
  assert.equal(sandbox(['runc'], 'gvisor'), 'runc', 'gVisor cannot be had without runsc');
});
