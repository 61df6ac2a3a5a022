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
import { SECRETS_SIGNING_NAME, SECRETS_TARGET_PREFIX } from '../control/secrets';
import type { Handler, JsonServiceApi, QueryServiceApi } from './api-registry';

export function wharfApis(handlers: { ecs: Record<string, Handler>; secrets: Record<string, Handler>; cloudMap: Record<string, Handler> }): JsonServiceApi[] {
  const ecs = loadModel('ecs');
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
    },
    // The Secrets Manager subset that tasks' secrets and registry credentials need (control/secrets.ts).
    {
      targetPrefix: SECRETS_TARGET_PREFIX,
      signingName: SECRETS_SIGNING_NAME,
      modelOperations: Object.keys(secrets.operations),
      handlers: handlers.secrets,
      validate: (op, input) => validateInput(secrets, op, input),
    },
    // The Cloud Map subset of services' serviceRegistries (control/cloudmap.ts). Cloud Map calls a
    // request that breaks its model's constraints InvalidInput.
    {
      targetPrefix: CLOUDMAP_TARGET_PREFIX,
      signingName: CLOUDMAP_SIGNING_NAME,
      modelOperations: Object.keys(cloudMap.operations),
      handlers: handlers.cloudMap,
      validate: (op, input) => {
        try {
          validateInput(cloudMap, op, input);
        } catch (e) {
          if (e instanceof WharfError && e.code === 'InvalidParameterException') throw new WharfError('InvalidInput', e.message);
          throw e;
        }
      },
    },
  ];
}

/**
 * The query-protocol APIs Wharf serves: the EC2 subset of VPCs, subnets and security groups, and
 * ELBv2 (validated against its model; ELB calls a request it cannot accept a ValidationError).
 */
export function wharfQueryApis(handlers: { ec2: Record<string, Handler>; elbv2: Record<string, Handler> }): QueryServiceApi[] {
  const elbv2 = loadModel('elbv2');
  return [
    { signingName: EC2_SIGNING_NAME, model: loadModel('ec2'), handlers: handlers.ec2 },
    { signingName: ELBV2_SIGNING_NAME, model: elbv2, handlers: handlers.elbv2, validate: (op, input) => validateInput(elbv2, op, input), validationErrorCode: 'ValidationError' },
  ];
}
