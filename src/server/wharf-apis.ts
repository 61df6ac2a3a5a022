/**
 * The JSON APIs Wharf serves, given their handlers: ECS (validated against the ECS model) and the
 * Secrets Manager subset (validated against the Secrets Manager model). `wharf server` and the
 * API fuzz test build their HTTP server from this one table, so what the fuzzer checks is what
 * users reach.
 */
import { loadModel, validateInput } from '../api/model';
import { AGENT_OPERATIONS, EC2_SIGNING_NAME } from '../control';
import { SECRETS_SIGNING_NAME, SECRETS_TARGET_PREFIX } from '../control/secrets';
import type { Handler, JsonServiceApi, QueryServiceApi } from './api-registry';

export function wharfApis(handlers: { ecs: Record<string, Handler>; secrets: Record<string, Handler> }): JsonServiceApi[] {
  const ecs = loadModel('ecs');
  const secrets = loadModel('secretsmanager');
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
  ];
}

/** The query-protocol APIs Wharf serves: the EC2 subset of VPCs, subnets and security groups. */
export function wharfQueryApis(handlers: { ec2: Record<string, Handler> }): QueryServiceApi[] {
  return [{ signingName: EC2_SIGNING_NAME, model: loadModel('ec2'), handlers: handlers.ec2 }];
}
