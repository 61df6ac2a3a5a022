/**
 * What an agent's instance credential may do with CloudWatch Logs: ship the output of the
 * `awslogs` containers of the tasks placed on its own instance, and nothing else. The streams a
 * task may write are the ones ECS names for it, `<awslogs-stream-prefix>/<container>/<task id>`
 * in the container's `awslogs-group`, in the region its `awslogs-region` names (which may not be
 * the instance's own: the check reads the instance's own region's state, handed in by cmd/).
 *
 *   CreateLogGroup       only a group one of those containers names with awslogs-create-group=true
 *   CreateLogStream,     only such a stream
 *   PutLogEvents
 *   DescribeLogStreams   only with such a stream as logStreamNamePrefix (the agent's resume point)
 *
 * A join token may call none of them. Refusals are AccessDeniedException in IAM's words and a
 * warn log, as for the ECS operations (agent-authorization.ts).
 */
import { idOf, parseArn } from '../core/arn';
import { WharfError } from '../core/errors';
import { awslogsCreatesGroup, awslogsStreamName } from '../core/awslogs-options';
import type { TaskRecord } from '../core/resources';
import type { Caller, ControlContext } from './context';
import { logGroupArn, logStreamArn } from './logs-records';
import { findTaskDefinition } from './task-definitions';

/** One awslogs stream a task of the instance may write. */
export interface AwslogsTarget {
  group: string;
  stream: string;
  region: string;
  createGroup: boolean;
}

/** A Docker container id: the stream name ECS gives an awslogs container without a stream prefix (EC2 only). */
const DOCKER_ID = /^[0-9a-f]{64}$/;

/**
 * The awslogs streams of one task, as ECS names them: `prefix/container/task id`, or, without a
 * prefix, the container's Docker id. The agent makes that stream between creating the container
 * and starting it, before it has reported the id, so `dockerId` (the stream asked for) is accepted
 * for a prefix-less container whose id is not known yet, or is that id.
 */
export function awslogsTargetsOf(ctx: ControlContext, t: TaskRecord, dockerId?: string): AwslogsTarget[] {
  const td = findTaskDefinition(ctx, t.taskDefinitionArn ?? '');
  const out: AwslogsTarget[] = [];
  for (const c of td?.containerDefinitions ?? []) {
    const lc = c.logConfiguration;
    const o = lc?.options ?? {};
    if (lc?.logDriver !== 'awslogs' || !o['awslogs-group']) continue;
    const known = t.containers?.find((x) => x.name === c.name)?.runtimeId;
    const stream = awslogsStreamName(o, c.name ?? '', t.wharf.id, known ?? (dockerId && DOCKER_ID.test(dockerId) ? dockerId : undefined));
    if (!stream) continue;
    out.push({
      group: o['awslogs-group'],
      stream,
      region: o['awslogs-region'] ?? ctx.partition.region,
      createGroup: awslogsCreatesGroup(o),
    });
  }
  return out;
}

/**
 * Throws AccessDeniedException unless the agent behind `caller` may make this logs call in
 * `logsRegion`. `home(region)` is a region's context when it is up (an instance's own region is:
 * its agent is connected to it).
 */
export function authorizeAgentLogs(home: (region: string) => ControlContext | undefined, operation: string, input: Record<string, unknown>, caller: Caller, logsRegion: string): void {
  const p = caller.principal;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const group = str(input.logGroupName) ?? '';
  const stream = operation === 'DescribeLogStreams' ? str(input.logStreamNamePrefix) : str(input.logStreamName);
  const partition = { region: logsRegion, accountId: caller.principalArn.split(':')[4] ?? '' };
  const resource = stream !== undefined ? logStreamArn(partition, group, stream) : logGroupArn(partition, group);
  const deny = (why: string): never => {
    home(logsRegion)?.log.warn({ principal: caller.principalArn, accessKeyId: caller.accessKeyId, containerInstanceArn: p?.kind === 'instance' ? p.containerInstanceArn : undefined, operation: `logs:${operation}`, resource }, `agent refused: ${why}`);
    throw new WharfError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: logs:${operation} on resource: ${resource} because ${why}`);
  };
  if (p?.kind !== 'instance') return deny('only a container instance credential ships task logs');
  const ownRegion = parseArn(p.containerInstanceArn)?.region ?? '';
  const ctx = home(ownRegion);
  if (!ctx) return deny(`the instance's region ${ownRegion} is not up`);
  const ownId = idOf(p.containerInstanceArn, 'container-instance').id;
  // The stream names its task (its last part); a task still counts once stopped, so the last
  // lines of a container that has exited can still be shipped.
  const taskId = stream?.includes('/') ? stream.slice(stream.lastIndexOf('/') + 1) : undefined;
  const tasks: TaskRecord[] = [];
  if (taskId) {
    for (const cluster of ctx.state.tasks.byParent.keys()) {
      const t = ctx.state.tasks.get(cluster, taskId)?.value;
      if (t) tasks.push(t);
    }
  } else {
    for (const [id, cluster] of ctx.state.tasksByInstance.get(ownId) ?? []) {
      const t = ctx.state.tasks.get(cluster, id)?.value;
      if (t) tasks.push(t);
    }
  }
  const own = tasks.filter((t) => t.wharf.instanceId === ownId && (t.wharf.instanceCluster ?? t.wharf.cluster) === p.cluster);
  const targets = own.flatMap((t) => awslogsTargetsOf(ctx, t, stream)).filter((x) => x.region === logsRegion && x.group === group);
  switch (operation) {
    case 'CreateLogGroup':
      if (targets.some((x) => x.createGroup)) return;
      return deny('no task on this container instance names this log group with awslogs-create-group=true');
    case 'CreateLogStream':
    case 'PutLogEvents':
    case 'DescribeLogStreams':
      if (targets.some((x) => x.stream === stream)) return;
      return deny("an instance credential may only write the awslogs streams of its own instance's tasks");
    default:
      return deny(`an instance credential may not call logs:${operation}`);
  }
}
