/**
 * The identity policies `wharf credentials create --policy` knows by name.
 *
 * - readonly: Describe*, List* and Get* of ECS, ELBv2, Cloud Map, EC2 and CloudWatch Logs, the
 *   reading of log events (FilterLogEvents, which `aws logs tail` and the console's log panel
 *   use, and Live Tail, as AWS's CloudWatchLogsReadOnlyAccess grants), and the metadata of
 *   Secrets Manager secrets (DescribeSecret, ListSecrets) but never their values
 *   (GetSecretValue is not granted).
 * - operator: runs workloads. Everything on ECS clusters, services, tasks and task definitions,
 *   ELBv2, Cloud Map and the CloudWatch Logs of its tasks (log groups, retention), plus what
 *   readonly reads; denied what belongs to whoever runs the
 *   platform: deleting clusters, the agent's operations (registering, deregistering and reporting
 *   for container instances, DiscoverPollEndpoint, opening the agent channel (ecs:Poll),
 *   UpdateContainerAgent), capacity providers, the
 *   account's default settings, and secret values.
 * - admin: everything (as the built-in key of `wharf up`, which is the account's root).
 */
export type BuiltinPolicyName = 'readonly' | 'operator' | 'admin';

const READ_SERVICES = ['ecs', 'elasticloadbalancing', 'servicediscovery', 'ec2', 'logs'];
const READ_ACTIONS = [
  ...READ_SERVICES.flatMap((s) => [`${s}:Describe*`, `${s}:List*`, `${s}:Get*`]),
  'logs:FilterLogEvents',
  'logs:StartLiveTail',
  'logs:StopLiveTail',
  'secretsmanager:DescribeSecret',
  'secretsmanager:ListSecrets',
];

export const BUILTIN_POLICIES: Record<BuiltinPolicyName, unknown> = {
  readonly: {
    Version: '2012-10-17',
    Statement: [{ Sid: 'ReadOnly', Effect: 'Allow', Action: READ_ACTIONS, Resource: '*' }],
  },
  operator: {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Read', Effect: 'Allow', Action: READ_ACTIONS, Resource: '*' },
      { Sid: 'Workloads', Effect: 'Allow', Action: ['ecs:*', 'elasticloadbalancing:*', 'servicediscovery:*', 'logs:*'], Resource: '*' },
      {
        Sid: 'Platform',
        Effect: 'Deny',
        Action: [
          'ecs:DeleteCluster',
          'ecs:RegisterContainerInstance',
          'ecs:DeregisterContainerInstance',
          'ecs:Submit*',
          'ecs:DiscoverPollEndpoint',
          'ecs:Poll',
          'ecs:StartTelemetrySession',
          'ecs:UpdateContainerAgent',
          'ecs:*CapacityProvider',
          'ecs:PutClusterCapacityProviders',
          'ecs:PutAccountSettingDefault',
          'secretsmanager:GetSecretValue',
        ],
        Resource: '*',
      },
    ],
  },
  admin: {
    Version: '2012-10-17',
    Statement: [{ Sid: 'Admin', Effect: 'Allow', Action: '*', Resource: '*' }],
  },
};
