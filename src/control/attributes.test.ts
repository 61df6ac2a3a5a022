import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deleteAttributes, listAttributes, putAttributes } from './attributes';
import { createCluster } from './clusters';
import { registerContainerInstance } from './container-instances';
import { controlTestContext, rejectsWith } from './control-test-context';

test("PutAttributes and DeleteAttributes refuse the agent's attributes, leaving them as the agent set them; custom ones still change", async () => {
  const ctx = await controlTestContext();
  await createCluster(ctx, { clusterName: 'c' });
  const agentSet = [
    { name: 'ecs.os-type', value: 'linux' },
    { name: 'ecs.cpu-architecture', value: 'x86_64' },
    { name: 'com.amazonaws.ecs.capability.logging-driver.json-file' },
    { name: 'wharf.capability.host-network' },
  ];
  const arn = (await registerContainerInstance(ctx, { cluster: 'c', attributes: agentSet })).containerInstance!.containerInstanceArn!;
  const on = (name: string, value?: string) => ({ name, value, targetType: 'container-instance' as const, targetId: arn });
  const agentMessage = (name: string, op: string) =>
    `Attribute '${name}' is set by the container agent and cannot be changed with ${op}: names beginning with 'ecs.' or 'com.amazonaws.ecs.' are reserved.`;

  await rejectsWith(putAttributes(ctx, { cluster: 'c', attributes: [on('stack', 'prod'), on('ecs.cpu-architecture', 'arm64')] }), 'InvalidParameterException', agentMessage('ecs.cpu-architecture', 'PutAttributes'));
  await rejectsWith(putAttributes(ctx, { cluster: 'c', attributes: [on('com.amazonaws.ecs.capability.logging-driver.fluentd')] }), 'InvalidParameterException', agentMessage('com.amazonaws.ecs.capability.logging-driver.fluentd', 'PutAttributes'));
  await rejectsWith(putAttributes(ctx, { cluster: 'c', attributes: [on('ecs.capability.secrets.ssm.environment-variables')] }), 'InvalidParameterException', agentMessage('ecs.capability.secrets.ssm.environment-variables', 'PutAttributes'));
  await rejectsWith(deleteAttributes(ctx, { cluster: 'c', attributes: [on('ecs.os-type')] }), 'InvalidParameterException', agentMessage('ecs.os-type', 'DeleteAttributes'));
  await rejectsWith(putAttributes(ctx, { cluster: 'c', attributes: [on('wharf.fargate-sandbox', 'gvisor')] }), 'InvalidParameterException', "Attribute 'wharf.fargate-sandbox' is set by Wharf's agent and cannot be changed with PutAttributes.");
  await rejectsWith(deleteAttributes(ctx, { cluster: 'c', attributes: [on('wharf.capability.host-network')] }), 'InvalidParameterException', "Attribute 'wharf.capability.host-network' is set by Wharf's agent and cannot be changed with DeleteAttributes.");

  const all = async () => (await listAttributes(ctx, { cluster: 'c', targetType: 'container-instance' })).attributes!.map((a) => [a.name, a.value]).sort();
  assert.deepEqual(await all(), agentSet.map((a) => [a.name, a.value]).sort(), 'nothing changed, not even the valid custom attribute of a refused batch');

  await putAttributes(ctx, { cluster: 'c', attributes: [on('stack', 'prod'), on('ecs-like.but.custom', 'x')] });
  await deleteAttributes(ctx, { cluster: 'c', attributes: [on('ecs-like.but.custom')] });
  assert.deepEqual((await all()).filter(([n]) => n === 'stack' || n === 'ecs-like.but.custom'), [['stack', 'prod']]);
});
