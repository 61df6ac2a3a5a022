import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ecsIamRequest, serviceIamRequest, type IamLookups } from './iam-resources';

const p = { region: 'eu-west-1', accountId: '123456789012' };
const E = 'arn:aws:ecs:eu-west-1:123456789012';
const lookups: IamLookups = { latestRevision: (f) => (f === 'web' ? 7 : undefined), secretArn: (id) => (id === 'db' ? 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf' : undefined) };

test('ECS operations map to the resources and ecs:cluster context of the Service Authorization Reference', () => {
  const cases: { op: string; input: Record<string, unknown>; resources: string[]; cluster?: string }[] = [
    { op: 'RunTask', input: { cluster: 'a', taskDefinition: 'web:3' }, resources: [`${E}:task-definition/web:3`], cluster: `${E}:cluster/a` },
    { op: 'RunTask', input: { taskDefinition: 'web' }, resources: [`${E}:task-definition/web:7`], cluster: `${E}:cluster/default` },
    { op: 'RunTask', input: { cluster: `${E}:cluster/b`, taskDefinition: `${E}:task-definition/web:2` }, resources: [`${E}:task-definition/web:2`], cluster: `${E}:cluster/b` },
    { op: 'RunTask', input: { cluster: 'a', taskDefinition: 'nosuch' }, resources: [`${E}:task-definition/nosuch`], cluster: `${E}:cluster/a` },
    { op: 'StartTask', input: { cluster: 'a', taskDefinition: 'web:1', containerInstances: ['x'] }, resources: [`${E}:task-definition/web:1`], cluster: `${E}:cluster/a` },
    { op: 'StopTask', input: { cluster: 'a', task: 'abc' }, resources: [`${E}:task/a/abc`], cluster: `${E}:cluster/a` },
    { op: 'DescribeTasks', input: { cluster: 'a', tasks: ['t1', `${E}:task/a/t2`] }, resources: [`${E}:task/a/t1`, `${E}:task/a/t2`], cluster: `${E}:cluster/a` },
    { op: 'CreateService', input: { cluster: 'a', serviceName: 'api' }, resources: [`${E}:service/a/api`], cluster: `${E}:cluster/a` },
    { op: 'UpdateService', input: { cluster: 'a', service: `${E}:service/a/api` }, resources: [`${E}:service/a/api`], cluster: `${E}:cluster/a` },
    { op: 'DeleteService', input: { service: 'api' }, resources: [`${E}:service/default/api`], cluster: `${E}:cluster/default` },
    { op: 'DescribeServices', input: { cluster: 'b', services: ['x', 'y'] }, resources: [`${E}:service/b/x`, `${E}:service/b/y`], cluster: `${E}:cluster/b` },
    { op: 'ListTasks', input: { cluster: 'a' }, resources: ['*'], cluster: `${E}:cluster/a` },
    { op: 'ListTasks', input: { cluster: 'a', containerInstance: 'i1' }, resources: [`${E}:container-instance/a/i1`], cluster: `${E}:cluster/a` },
    { op: 'ListServices', input: { cluster: 'b' }, resources: ['*'], cluster: `${E}:cluster/b` },
    { op: 'DescribeContainerInstances', input: { cluster: 'a', containerInstances: ['i1'] }, resources: [`${E}:container-instance/a/i1`], cluster: `${E}:cluster/a` },
    { op: 'DescribeClusters', input: { clusters: ['a', `${E}:cluster/b`] }, resources: [`${E}:cluster/a`, `${E}:cluster/b`] },
    { op: 'DescribeClusters', input: {}, resources: [`${E}:cluster/default`] },
    { op: 'CreateCluster', input: { clusterName: 'a' }, resources: [`${E}:cluster/a`] },
    { op: 'DeleteCluster', input: { cluster: 'a' }, resources: [`${E}:cluster/a`] },
    { op: 'ListContainerInstances', input: { cluster: 'a' }, resources: [`${E}:cluster/a`] },
    { op: 'DeleteCapacityProvider', input: { capacityProvider: 'cp' }, resources: [`${E}:capacity-provider/cp`] },
    { op: 'TagResource', input: { resourceArn: `${E}:cluster/a`, tags: [] }, resources: [`${E}:cluster/a`] },
    { op: 'RegisterTaskDefinition', input: { family: 'web' }, resources: ['*'] },
    { op: 'ListClusters', input: {}, resources: ['*'] },
  ];
  for (const c of cases) {
    const r = ecsIamRequest(p, c.op, c.input, lookups);
    assert.equal(r.action, `ecs:${c.op}`);
    assert.deepEqual(r.resources, c.resources, c.op + ' ' + JSON.stringify(c.input));
    assert.equal(r.context['ecs:cluster'], c.cluster, `${c.op} ecs:cluster`);
  }
});

test('other services: the action, against the ARNs the input names or *', () => {
  const lb = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/x/1';
  const tg = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/t/2';
  assert.deepEqual(serviceIamRequest('elasticloadbalancing', 'DeleteLoadBalancer', { LoadBalancerArn: lb }), { action: 'elasticloadbalancing:DeleteLoadBalancer', resources: [lb], context: {} });
  assert.deepEqual(serviceIamRequest('elasticloadbalancing', 'DescribeTargetGroups', { TargetGroupArns: [tg], LoadBalancerArn: lb }).resources, [lb, tg]);
  assert.deepEqual(serviceIamRequest('elasticloadbalancing', 'DescribeLoadBalancers', {}).resources, ['*']);
  assert.deepEqual(serviceIamRequest('secretsmanager', 'GetSecretValue', { SecretId: 'db' }, lookups).resources, ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf']);
  assert.deepEqual(serviceIamRequest('secretsmanager', 'GetSecretValue', { SecretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone' }, lookups).resources, ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone']);
  assert.deepEqual(serviceIamRequest('secretsmanager', 'CreateSecret', { Name: 'new' }, lookups).resources, ['*']);
  assert.deepEqual(serviceIamRequest('ec2', 'DescribeSubnets', {}), { action: 'ec2:DescribeSubnets', resources: ['*'], context: {} });
});

test('a create carrying tags also needs ecs:TagResource on what it creates, with ecs:CreateAction', () => {
  const tags = [{ key: 'team', value: 'a' }];
  const also = (op: string, input: Record<string, unknown>) => ecsIamRequest(p, op, input, lookups).alsoRequires;
  const tagging = (resource: string, op: string) => [{ action: 'ecs:TagResource', resources: [resource], context: { 'ecs:CreateAction': op } }];
  assert.deepEqual(also('CreateCluster', { clusterName: 'a', tags }), tagging(`${E}:cluster/a`, 'CreateCluster'));
  assert.deepEqual(also('CreateService', { cluster: 'a', serviceName: 'api', tags }), tagging(`${E}:service/a/api`, 'CreateService'));
  assert.deepEqual(also('CreateCapacityProvider', { name: 'cp', tags }), tagging(`${E}:capacity-provider/cp`, 'CreateCapacityProvider'));
  assert.deepEqual(also('RegisterTaskDefinition', { family: 'web', tags }), tagging(`${E}:task-definition/web`, 'RegisterTaskDefinition'));
  assert.deepEqual(also('RunTask', { cluster: 'a', taskDefinition: 'web', tags }), tagging(`${E}:task/a/*`, 'RunTask'));
  assert.deepEqual(also('StartTask', { taskDefinition: 'web', containerInstances: ['i'], tags }), tagging(`${E}:task/default/*`, 'StartTask'));
  assert.deepEqual(also('RegisterContainerInstance', { cluster: 'a', tags }), tagging(`${E}:container-instance/a/*`, 'RegisterContainerInstance'));
  // No tags, or an empty list: nothing more is asked.
  assert.equal(also('CreateCluster', { clusterName: 'a' }), undefined);
  assert.equal(also('RunTask', { taskDefinition: 'web', tags: [] }), undefined);
  // TagResource itself carries no ecs:CreateAction, so a policy allowing it only on create refuses direct tagging.
  assert.deepEqual(ecsIamRequest(p, 'TagResource', { resourceArn: `${E}:cluster/a`, tags }).context, {});
});
