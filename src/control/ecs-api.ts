/**
 * The ECS operations Wharf implements, by name. server/ dispatches X-Amz-Target to this table;
 * an operation of the ECS model that is missing here is refused with UnsupportedFeatureException.
 */
import { foreignArn } from '../core/arn';
import { WharfError, invalidParameter } from '../core/errors';
import type { OperationName } from '../core/shapes/ecs';
import * as accountSettings from './account-settings';
import * as capacityProviders from './capacity-providers';
import * as clusters from './clusters';
import * as containerAgent from './container-agent';
import { serviceHandlers } from './services';
import { listServicesByNamespace } from './services-by-namespace';
import { containerInstanceHandlers } from './container-instances';
import type { Caller, ControlContext } from './context';
import * as tags from './tags';
import * as taskDefinitions from './task-definitions';
import * as taskQueries from './task-queries';
import * as taskStateChanges from './task-state-changes';
import { authorizeAgent } from './agent-authorization';
import * as taskProtection from './task-protection';
import * as tasks from './tasks';

export type EcsHandler = (input: any, caller: Caller) => Promise<unknown>;

/**
 * What an agent's key (a join token, `wharf credentials --agent --cluster C`, or the instance
 * credential registration hands back) may call at most: the ECS container instance role's
 * operations (AmazonEC2ContainerServiceforEC2Role), nothing a user does with tasks or services.
 * Within this list, agent-authorization.ts decides per request on the resources named: a join
 * token may only register into its cluster, an instance credential may only act on its own
 * instance and its tasks, and neither may create a cluster (CreateCluster stays listed so that
 * its refusal is judged, and logged, there).
 */
export const AGENT_OPERATIONS: readonly OperationName[] = [
  'CreateCluster',
  'DeregisterContainerInstance',
  'DiscoverPollEndpoint',
  // Only for the tasks of the instance the agent speaks for (control/task-protection.ts): how a
  // container protects itself through $ECS_AGENT_URI.
  'GetTaskProtection',
  'RegisterContainerInstance',
  'SubmitAttachmentStateChanges',
  'SubmitContainerStateChange',
  'SubmitTaskStateChange',
  'UpdateContainerInstancesState',
  'UpdateTaskProtection',
];

export function ecsHandlers(ctx: ControlContext): Partial<Record<OperationName, EcsHandler>> {
  const table = operations(ctx);
  for (const [op, handler] of Object.entries(table) as [OperationName, EcsHandler][]) {
    table[op] = async (input, caller) => {
      const foreign = foreignArn(input, ctx.partition);
      if (foreign?.differs === 'region') throw invalidParameter('Invalid Region in ARN');
      if (foreign) {
        // IAM's words for a resource of another account, as AWS answers them.
        throw new WharfError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: ecs:${op} on resource: ${foreign.arn} because no resource-based policy allows the ecs:${op} action`);
      }
      authorizeAgent(ctx, op, input ?? {}, caller);
      return handler(input, caller);
    };
  }
  return table;
}

function operations(ctx: ControlContext): Partial<Record<OperationName, EcsHandler>> {
  return {
    CreateCluster: (i, caller) => clusters.createCluster(ctx, i, caller),
    DescribeClusters: (i) => clusters.describeClusters(ctx, i),
    ListClusters: (i) => clusters.listClusters(ctx, i),
    DeleteCluster: (i) => clusters.deleteCluster(ctx, i),
    UpdateCluster: (i) => clusters.updateCluster(ctx, i),
    UpdateClusterSettings: (i) => clusters.updateClusterSettings(ctx, i),
    PutClusterCapacityProviders: (i) => clusters.putClusterCapacityProviders(ctx, i),
    CreateCapacityProvider: (i) => capacityProviders.createCapacityProvider(ctx, i),
    DescribeCapacityProviders: (i) => capacityProviders.describeCapacityProviders(ctx, i),
    UpdateCapacityProvider: (i) => capacityProviders.updateCapacityProvider(ctx, i),
    DeleteCapacityProvider: (i) => capacityProviders.deleteCapacityProvider(ctx, i),

    RegisterTaskDefinition: (i, c) => taskDefinitions.registerTaskDefinition(ctx, i, c),
    DescribeTaskDefinition: (i) => taskDefinitions.describeTaskDefinition(ctx, i),
    ListTaskDefinitions: (i) => taskDefinitions.listTaskDefinitions(ctx, i),
    ListTaskDefinitionFamilies: (i) => taskDefinitions.listTaskDefinitionFamilies(ctx, i),
    DeregisterTaskDefinition: (i) => taskDefinitions.deregisterTaskDefinition(ctx, i),
    DeleteTaskDefinitions: (i) => taskDefinitions.deleteTaskDefinitions(ctx, i),

    RunTask: (i) => tasks.runTask(ctx, i),
    StartTask: (i) => tasks.startTask(ctx, i),
    StopTask: (i) => tasks.stopTask(ctx, i),
    DescribeTasks: (i) => taskQueries.describeTasks(ctx, i),
    ListTasks: (i) => taskQueries.listTasks(ctx, i),
    SubmitTaskStateChange: (i) => taskStateChanges.submitTaskStateChange(ctx, i),
    SubmitContainerStateChange: (i) => taskStateChanges.submitContainerStateChange(ctx, i),
    SubmitAttachmentStateChanges: (i) => containerAgent.submitAttachmentStateChanges(ctx, i),
    DiscoverPollEndpoint: (i, c) => containerAgent.discoverPollEndpoint(ctx, i, c),
    UpdateContainerAgent: (i) => containerAgent.updateContainerAgent(ctx, i),
    UpdateTaskProtection: (i, c) => taskProtection.updateTaskProtection(ctx, i, c),
    GetTaskProtection: (i, c) => taskProtection.getTaskProtection(ctx, i, c),

    TagResource: (i) => tags.tagResource(ctx, i),
    UntagResource: (i) => tags.untagResource(ctx, i),
    ListTagsForResource: (i) => tags.listTagsForResource(ctx, i),

    ...containerInstanceHandlers(ctx),
    ...serviceHandlers(ctx),
    ListServicesByNamespace: (i) => listServicesByNamespace(ctx, i),

    PutAccountSetting: (i, c) => accountSettings.putAccountSetting(ctx, i, c),
    PutAccountSettingDefault: (i) => accountSettings.putAccountSettingDefault(ctx, i),
    DeleteAccountSetting: (i, c) => accountSettings.deleteAccountSetting(ctx, i, c),
    ListAccountSettings: (i, c) => accountSettings.listAccountSettings(ctx, i, c),
  };
}
