/**
 * The JSON APIs Wharf serves, given their handlers: ECS (validated against the ECS model) and the
 * Secrets Manager and Cloud Map subsets (each validated against its own model). `wharf server` and the
 * API fuzz test build their HTTP server from this one table, so what the fuzzer checks is what
 * users reach.
 */
import { loadModel, validateInput } from '../api/model';
import { WharfError } from '../core/errors';
import { CLOUDMAP_SIGNING_NAME, CLOUDMAP_TARGET_PREFIX } from '../control/cloudmap';
import { AGENT_OPERATIONS, EC2_SIGNING_NAME, ELBV2_SIGNING_NAME } from '../control';
import { LOGS_AGENT_OPERATIONS, LOGS_SIGNING_NAME, LOGS_TARGET_PREFIX } from '../control/logs';
import { logsIamRequest } from '../control/logs-records';
import { SECRETS_SIGNING_NAME, SECRETS_TARGET_PREFIX } from '../control/secrets';
import { ecsIamRequest, serviceIamRequest, type IamLookups } from '../control/iam-resources';
import { STS_SIGNING_NAME } from '../control/sts-api';
import type { Handler, JsonServiceApi, QueryServiceApi } from './api-registry';
import { EC2_AUTH_FAILURES, QUERY_AUTH_FAILURES } from './session-auth';

/**
 * What the IAM check reads of a region's state (latest task definition revisions, secrets' ARNs);
 * undefined for a region not up yet, whose state is empty (a refused call must not start it).
 */
export type IamLookupsByRegion = (region: string) => IamLookups | undefined;

export function wharfApis(
  handlers: { ecs: Record<string, Handler>; secrets: Record<string, Handler>; cloudMap: Record<string, Handler>; logs?: Record<string, Handler> },
  iam: IamLookupsByRegion = () => undefined,
): JsonServiceApi[] {
  const ecs = loadModel('ecs');
  const logs = loadModel('logs');
  const secrets = loadModel('secretsmanager');
  const cloudMap = loadModel('servicediscovery');
  return [
    {
      targetPrefix: ecs.metadata.targetPrefix!,
      signingName: 'ecs',
      modelOperations: Object.keys(ecs.operations),
      handlers: handlers.ecs,
      agentOperations: AGENT_OPERATIONS,
      validate: (op, input) => validateInput(ecs, op, input),
      authorize: (op, input, p) => ecsIamRequest(p, op, input, iam(p.region)),
    },
    // The Secrets Manager subset that tasks' secrets and registry credentials need (control/secrets.ts).
    {
      targetPrefix: SECRETS_TARGET_PREFIX,
      signingName: SECRETS_SIGNING_NAME,
      modelOperations: Object.keys(secrets.operations),
      handlers: handlers.secrets,
      validate: (op, input) => validateInput(secrets, op, input),
      authorize: (op, input, p) => serviceIamRequest('secretsmanager', op, input, iam(p.region)),
    },
    // The Cloud Map subset of services' serviceRegistries (control/cloudmap.ts). Cloud Map calls a
    // request that breaks its model's constraints InvalidInput.
    {
      targetPrefix: CLOUDMAP_TARGET_PREFIX,
      signingName: CLOUDMAP_SIGNING_NAME,
      modelOperations: Object.keys(cloudMap.operations),
      handlers: handlers.cloudMap,
      authorize: (op, input) => serviceIamRequest(CLOUDMAP_SIGNING_NAME, op, input),
      validate: (op, input) => {
        try {
          validateInput(cloudMap, op, input);
        } catch (e) {
          if (e instanceof WharfError && e.code === 'InvalidParameterException') throw new WharfError('InvalidInput', e.message);
          throw e;
        }
      },
    },
    // CloudWatch Logs (control/logs*.ts): task output of the awslogs driver, which agents ship with
    // their instance credential (control/logs-agent-authorization.ts judges each call).
    ...(handlers.logs
      ? [{
          targetPrefix: LOGS_TARGET_PREFIX,
          signingName: LOGS_SIGNING_NAME,
          modelOperations: Object.keys(logs.operations),
          handlers: handlers.logs,
          agentOperations: LOGS_AGENT_OPERATIONS,
          validate: (op: string, input: unknown) => validateInput(logs, op, input),
          authorize: (op: string, input: Record<string, unknown>, p: Parameters<typeof logsIamRequest>[2]) => logsIamRequest(op, input, p),
        }]
      : []),
  ];
}

/**
 * The query-protocol APIs Wharf serves: the EC2 subset of VPCs, subnets and security groups,
 * ELBv2 (validated against its model; ELB calls a request it cannot accept a ValidationError),
 * and STS's GetCallerIdentity and GetSessionToken.
 */
export function wharfQueryApis(handlers: { ec2: Record<string, Handler>; elbv2: Record<string, Handler>; sts?: Record<string, Handler> }): QueryServiceApi[] {
  const elbv2 = loadModel('elbv2');
  return [
    { signingName: EC2_SIGNING_NAME, model: loadModel('ec2'), handlers: handlers.ec2, authorize: (op, input) => serviceIamRequest(EC2_SIGNING_NAME, op, input), deniedErrorCode: 'UnauthorizedOperation', authFailureCodes: EC2_AUTH_FAILURES },
    {
      signingName: ELBV2_SIGNING_NAME,
      model: elbv2,
      handlers: handlers.elbv2,
      validate: (op, input) => validateInput(elbv2, op, input),
      authorize: (op, input) => serviceIamRequest(ELBV2_SIGNING_NAME, op, input),
      validationErrorCode: 'ValidationError',
      deniedErrorCode: 'AccessDenied',
      authFailureCodes: QUERY_AUTH_FAILURES,
    },
    // GetCallerIdentity and GetSessionToken need no permission, as in STS: even an explicit Deny
    // does not stop them ("You cannot use policies to control authentication operations").
    ...(handlers.sts
      ? [{ signingName: STS_SIGNING_NAME, model: loadModel('sts'), handlers: handlers.sts, authorize: () => undefined, validationErrorCode: 'ValidationError' as const, deniedErrorCode: 'AccessDenied' as const, authFailureCodes: QUERY_AUTH_FAILURES }]
      : []),
  ];
}
