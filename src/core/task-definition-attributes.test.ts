import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Compatibility, RegisterTaskDefinitionRequest } from './shapes/ecs';
import { validateAndNormalizeTaskDefinition } from './task-definition';
import { container, ec2Request, fargateRequest } from './task-definition-test-helpers';

const compat = (req: RegisterTaskDefinitionRequest) => validateAndNormalizeTaskDefinition(req).taskDefinition.compatibilities;
const attrs = (req: RegisterTaskDefinitionRequest) =>
  validateAndNormalizeTaskDefinition(req).taskDefinition.requiresAttributes.map((a) => a.name);

const compatCases: { name: string; req: RegisterTaskDefinitionRequest; expected: Compatibility[] }[] = [
  { name: 'a bridge definition is EC2 only', req: ec2Request(), expected: ['EC2'] },
  {
    name: 'a bridge definition with a valid Fargate size is still EC2 only (Fargate needs awsvpc)',
    req: ec2Request({ cpu: '256', memory: '512' }),
    expected: ['EC2'],
  },
  {
    name: 'an awsvpc definition with a Fargate size gains FARGATE without asking',
    req: ec2Request({ networkMode: 'awsvpc', cpu: '1024', memory: '3072' }),
    expected: ['EC2', 'FARGATE', 'MANAGED_INSTANCES'],
  },
  {
    name: 'an awsvpc definition with an off-table size is not FARGATE',
    req: ec2Request({ networkMode: 'awsvpc', cpu: '512', memory: '717' }),
    expected: ['EC2', 'MANAGED_INSTANCES'],
  },
  { name: 'a definition requiring FARGATE', req: fargateRequest(), expected: ['EC2', 'FARGATE', 'MANAGED_INSTANCES'] },
  {
    name: 'an awsvpc definition with a privileged container is not FARGATE',
    req: ec2Request({ networkMode: 'awsvpc', cpu: '256', memory: '512', containerDefinitions: [container({ privileged: true })] }),
    expected: ['EC2', 'MANAGED_INSTANCES'],
  },
  { name: 'EXTERNAL is added when requested', req: ec2Request({ requiresCompatibilities: ['EXTERNAL'] }), expected: ['EC2', 'EXTERNAL'] },
  { name: 'host mode fits managed instances', req: ec2Request({ networkMode: 'host' }), expected: ['EC2', 'MANAGED_INSTANCES'] },
];

for (const c of compatCases) {
  test(`compatibilities: ${c.name}`, () => assert.deepEqual(compat(c.req), c.expected));
}

const DOCKER = (v: string) => `com.amazonaws.ecs.capability.docker-remote-api.${v}`;
const awslogs = { logDriver: 'awslogs' as const, options: { 'awslogs-group': 'g', 'awslogs-region': 'us-east-1' } };
const ecrImage = '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1';
const execRole = 'arn:aws:iam::123456789012:role/exec';

const attributeCases: { name: string; req: RegisterTaskDefinitionRequest; includes: string[]; excludes?: string[] }[] = [
  { name: 'a plain bridge container needs nothing', req: ec2Request(), includes: [], excludes: ['ecs.capability.task-eni'] },
  { name: 'awsvpc needs task ENIs', req: ec2Request({ networkMode: 'awsvpc' }), includes: ['ecs.capability.task-eni', DOCKER('1.18')] },
  { name: 'memoryReservation needs Docker API 1.21', req: ec2Request({ containerDefinitions: [container({ memory: undefined, memoryReservation: 64 })] }), includes: [DOCKER('1.21')] },
  { name: 'task-level cpu or memory needs Docker API 1.29', req: ec2Request({ memory: '512' }), includes: [DOCKER('1.29')] },
  { name: 'a health check needs container health checks', req: ec2Request({ containerDefinitions: [container({ healthCheck: { command: ['CMD', 'true'] } })] }), includes: ['ecs.capability.container-health-check'] },
  {
    name: 'dependsOn needs container ordering',
    req: ec2Request({ containerDefinitions: [container({ dependsOn: [{ containerName: 'b', condition: 'START' }] }), container({ name: 'b' })] }),
    includes: ['ecs.capability.container-ordering'],
  },
  { name: 'stopTimeout needs container ordering', req: ec2Request({ containerDefinitions: [container({ stopTimeout: 10 })] }), includes: ['ecs.capability.container-ordering'] },
  {
    name: 'awslogs needs the logging driver and Docker API 1.19',
    req: ec2Request({ containerDefinitions: [container({ logConfiguration: awslogs })] }),
    includes: ['com.amazonaws.ecs.capability.logging-driver.awslogs', DOCKER('1.19')],
    excludes: ['ecs.capability.execution-role-awslogs'],
  },
  {
    name: 'awslogs with an execution role needs execution-role-awslogs',
    req: ec2Request({ executionRoleArn: execRole, containerDefinitions: [container({ logConfiguration: awslogs })] }),
    includes: ['ecs.capability.execution-role-awslogs'],
  },
  { name: 'json-file needs its driver and Docker API 1.18', req: ec2Request({ containerDefinitions: [container({ logConfiguration: { logDriver: 'json-file' } })] }), includes: ['com.amazonaws.ecs.capability.logging-driver.json-file', DOCKER('1.18')] },
  {
    name: 'an ECR image with an execution role needs ECR auth and execution-role pulls',
    req: ec2Request({ executionRoleArn: execRole, containerDefinitions: [container({ image: ecrImage })] }),
    includes: ['com.amazonaws.ecs.capability.ecr-auth', 'ecs.capability.execution-role-ecr-pull'],
  },
  { name: 'a Docker Hub image needs no ECR auth', req: ec2Request(), includes: [], excludes: ['com.amazonaws.ecs.capability.ecr-auth'] },
  { name: 'a task role needs task IAM roles', req: ec2Request({ taskRoleArn: 'arn:aws:iam::123456789012:role/app' }), includes: ['com.amazonaws.ecs.capability.task-iam-role'] },
  {
    name: 'a task role in host mode also needs the host-network variant',
    req: ec2Request({ networkMode: 'host', taskRoleArn: 'arn:aws:iam::123456789012:role/app' }),
    includes: ['com.amazonaws.ecs.capability.task-iam-role', 'com.amazonaws.ecs.capability.task-iam-role-network-host'],
  },
  {
    name: 'SSM and Secrets Manager secrets need their capabilities',
    req: ec2Request({
      containerDefinitions: [
        container({
          secrets: [
            { name: 'A', valueFrom: 'arn:aws:ssm:us-east-1:123456789012:parameter/a' },
            { name: 'B', valueFrom: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:b' },
          ],
        }),
      ],
    }),
    includes: ['ecs.capability.secrets.ssm.environment-variables', 'ecs.capability.secrets.asm.environment-variables'],
  },
  { name: 'dockerLabels need Docker API 1.18', req: ec2Request({ containerDefinitions: [container({ dockerLabels: { a: 'b' } })] }), includes: [DOCKER('1.18')] },
  { name: 'environment files need S3 env files', req: ec2Request({ containerDefinitions: [container({ environmentFiles: [{ value: 'arn:aws:s3:::b/x.env', type: 's3' }] })] }), includes: ['ecs.capability.env-files.s3'] },
  { name: 'a privileged container needs privileged-container', req: ec2Request({ containerDefinitions: [container({ privileged: true })] }), includes: ['com.amazonaws.ecs.capability.privileged-container'] },
  { name: 'host networking needs a host that allows it (Wharf)', req: ec2Request({ networkMode: 'host' }), includes: ['wharf.capability.host-network'] },
  { name: 'bridge networking needs no host-network attribute', req: ec2Request(), includes: [], excludes: ['wharf.capability.host-network', 'wharf.capability.linux-capabilities-add'] },
  {
    name: 'adding Linux capabilities needs a host that allows it (Wharf); dropping them does not',
    req: ec2Request({ containerDefinitions: [container({ linuxParameters: { capabilities: { add: ['NET_ADMIN'] } } }), container({ name: 'b', linuxParameters: { capabilities: { drop: ['ALL'] } } })] }),
    includes: ['wharf.capability.linux-capabilities-add'],
  },
  { name: 'dropping capabilities only needs nothing', req: ec2Request({ containerDefinitions: [container({ linuxParameters: { capabilities: { drop: ['ALL'], add: [] } } })] }), includes: [], excludes: ['wharf.capability.linux-capabilities-add'] },
  {
    name: 'a shared docker volume needs the local volume plugin',
    req: ec2Request({ volumes: [{ name: 'data', dockerVolumeConfiguration: { scope: 'shared', autoprovision: true } }] }),
    includes: ['ecs.capability.docker-plugin.local'],
  },
  {
    name: 'a firelens router needs firelens and the awsfirelens driver',
    req: ec2Request({
      containerDefinitions: [
        container({ logConfiguration: { logDriver: 'awsfirelens' } }),
        container({ name: 'router', firelensConfiguration: { type: 'fluentbit' } }),
      ],
    }),
    includes: ['ecs.capability.firelens.fluentbit', 'com.amazonaws.ecs.capability.logging-driver.awsfirelens'],
  },
];

for (const c of attributeCases) {
  test(`requiresAttributes: ${c.name}`, () => {
    const names = attrs(c.req);
    for (const n of c.includes) assert.ok(names.includes(n), `${n} missing from ${JSON.stringify(names)}`);
    for (const n of c.excludes ?? []) assert.ok(!names.includes(n), `${n} unexpected in ${JSON.stringify(names)}`);
  });
}

test('requiresAttributes lists each attribute once, as objects with only a name', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(
    ec2Request({
      networkMode: 'awsvpc',
      containerDefinitions: [
        container({ name: 'a', dockerLabels: { x: 'y' }, logConfiguration: { logDriver: 'json-file' } }),
        container({ name: 'b', ulimits: [{ name: 'nofile', softLimit: 1, hardLimit: 1 }] }),
      ],
    }),
  );
  const names = taskDefinition.requiresAttributes.map((a) => a.name);
  assert.equal(new Set(names).size, names.length);
  for (const a of taskDefinition.requiresAttributes) assert.deepEqual(Object.keys(a), ['name']);
});

test('the result keeps tags apart from the task definition', () => {
  const tags = [{ key: 'team', value: 'web' }];
  const result = validateAndNormalizeTaskDefinition(ec2Request({ tags }));
  assert.deepEqual(result.tags, tags);
  assert.equal('tags' in result.taskDefinition, false);
});

test('the result carries no fields the caller owns (arn, revision, status, registeredAt/By)', () => {
  const { taskDefinition } = validateAndNormalizeTaskDefinition(fargateRequest());
  for (const k of ['taskDefinitionArn', 'revision', 'status', 'registeredAt', 'registeredBy']) {
    assert.equal(k in taskDefinition, false, k);
  }
});

test('the request is not modified', () => {
  const req = fargateRequest({ cpu: '0.25 vCPU' });
  const before = JSON.stringify(req);
  validateAndNormalizeTaskDefinition(req);
  assert.equal(JSON.stringify(req), before);
});
