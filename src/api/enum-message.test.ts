import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { enumMessage } from './enum-message';
import { loadModel, validateInput } from './model';

const rejected = (operation: string, input: unknown): WharfError => {
  try {
    validateInput(loadModel('ecs'), operation, input);
  } catch (e) {
    assert.ok(e instanceof WharfError);
    return e;
  }
  assert.fail(`${operation} accepted ${JSON.stringify(input)}`);
};

test('a value outside an enum is worded as ECS words it', () => {
  const e = rejected('RunTask', { taskDefinition: 'web', launchType: 'SPOT' });
  assert.equal(e.code, 'InvalidParameterException');
  assert.equal(e.message, 'launch type should be one of [EC2,FARGATE,EXTERNAL,MANAGED_INSTANCES]');
  assert.equal(rejected('CreateService', { serviceName: 's', schedulingStrategy: 'ALL' }).message, 'scheduling strategy should be one of [REPLICA,DAEMON]');
  assert.equal(
    rejected('RegisterTaskDefinition', { family: 'f', containerDefinitions: [{ name: 'a', logConfiguration: { logDriver: 'stdout' } }] }).message,
    'log driver should be one of [json-file,syslog,journald,gelf,fluentd,awslogs,splunk,awsfirelens]',
  );
});

test('member names become lower-case words, list positions are dropped', () => {
  assert.equal(enumMessage('requiresCompatibilities[1]', ['EC2', 'FARGATE']), 'requires compatibilities should be one of [EC2,FARGATE]');
  assert.equal(enumMessage('include[0]', ['TAGS']), 'include should be one of [TAGS]');
  assert.equal(enumMessage('containerDefinitions[0].healthCheck.command', ['x']), 'command should be one of [x]');
  assert.equal(enumMessage('ipcMode', ['host', 'task', 'none']), 'ipc mode should be one of [host,task,none]');
});
