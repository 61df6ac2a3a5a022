/** DescribeTasks and ListTasks, answered from the cache. */
import { idOf, taskArn } from '../core/arn';
import { WharfError, invalidParameter } from '../core/errors';
import type { TaskRecord } from '../core/resources';
import type { DescribeTasksRequest, DescribeTasksResponse, Failure, ListTasksRequest, ListTasksResponse, Task } from '../core/shapes/ecs';
import { requireActiveCluster } from './clusters';
import type { ControlContext } from './context';
import { paginate } from './pagination';
import { taskToWire, wireDesiredStatus } from './task-records';

export async function describeTasks(ctx: ControlContext, input: DescribeTasksRequest): Promise<DescribeTasksResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  if (input.tasks.length === 0) throw invalidParameter('Tasks cannot be empty.');
  // ECS's own words (the request member is `tasks`, the message says taskIds).
  if (input.tasks.length > 100) throw invalidParameter('taskIds can have at most 100 items.');
  const includeTags = input.include?.includes('TAGS') ?? false;
  const tasks: Task[] = [];
  const failures: Failure[] = [];
  for (const ref of input.tasks) {
    const { id, cluster: named } = idOf(ref, 'task');
    const t = !named || named === cluster.clusterName ? ctx.state.tasks.get(cluster.clusterName, id)?.value : undefined;
    if (t) tasks.push(taskToWire(t, includeTags));
    else failures.push({ arn: ref.startsWith('arn:') ? ref : taskArn(ctx.partition, cluster.clusterName, id), reason: 'MISSING' });
  }
  return { tasks, failures };
}

export async function listTasks(ctx: ControlContext, input: ListTasksRequest): Promise<ListTasksResponse> {
  // Filter combinations ECS refuses. desiredStatus is still taken with startedBy: whether ECS
  // counts it among the "other arguments" is not documented.
  const others = [input.family, input.containerInstance, input.serviceName, input.launchType];
  if (input.startedBy !== undefined && others.some((v) => v !== undefined)) {
    throw invalidParameter('cannot specify startedBy with other arguments');
  }
  if (input.family !== undefined && input.serviceName !== undefined) throw invalidParameter('cannot specify family with serviceName');
  const cluster = requireActiveCluster(ctx, input.cluster);
  const name = cluster.clusterName;
  const desired = input.desiredStatus ?? 'RUNNING';
  let instanceId: string | undefined;
  if (input.containerInstance !== undefined) {
    const ref = idOf(input.containerInstance, 'container-instance');
    if (ref.cluster && ref.cluster !== name) throw invalidParameter('The referenced container instance is not in the given cluster.');
    instanceId = ref.id;
  }
  if (input.serviceName !== undefined) {
    const svc = ctx.state.services.get(name, input.serviceName.split('/').pop()!);
    if (!svc) throw new WharfError('ServiceNotFoundException', 'Service not found.');
  }
  const service = input.serviceName?.split('/').pop();
  const keep = (t: TaskRecord) =>
    wireDesiredStatus(t) === desired &&
    (instanceId === undefined || t.wharf.instanceId === instanceId) &&
    (input.family === undefined || t.taskDefinitionArn?.split('/').pop()?.replace(/:\d+$/, '') === input.family) &&
    (input.startedBy === undefined || t.startedBy === input.startedBy) &&
    (service === undefined || t.wharf.serviceName === service) &&
    (input.launchType === undefined || t.launchType === input.launchType);
  const arns: string[] = [];
  for (const e of ctx.state.tasks.children(name).values()) if (keep(e.value)) arns.push(e.value.taskArn);
  const { page, nextToken } = paginate(arns, (a) => a, input, { default: 100, max: 100, operation: 'ListTasks' });
  return { taskArns: page, nextToken };
}

