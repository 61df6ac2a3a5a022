/**
 * Request builders shared by the task-definition tests. Each returns a request that registers
 * cleanly, so a test changes only the field it is about.
 */
import type { ContainerDefinition, RegisterTaskDefinitionRequest } from './shapes/ecs';

export function container(over: Partial<ContainerDefinition> = {}): ContainerDefinition {
  return { name: 'web', image: 'nginx', memory: 128, ...over };
}

/** An EC2-style (bridge, per-container memory) request. */
export function ec2Request(over: Partial<RegisterTaskDefinitionRequest> = {}): RegisterTaskDefinitionRequest {
  return { family: 'webserver', containerDefinitions: [container()], ...over };
}

/** A request that requires FARGATE and satisfies every Fargate rule. */
export function fargateRequest(over: Partial<RegisterTaskDefinitionRequest> = {}): RegisterTaskDefinitionRequest {
  return {
    family: 'webserver',
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: '256',
    memory: '512',
    containerDefinitions: [{ name: 'web', image: 'nginx' }],
    ...over,
  };
}

/** A Fargate request whose single container is `container({...over})` without memory. */
export function fargateWith(over: Partial<ContainerDefinition>): RegisterTaskDefinitionRequest {
  return fargateRequest({ containerDefinitions: [{ name: 'web', image: 'nginx', ...over }] });
}
