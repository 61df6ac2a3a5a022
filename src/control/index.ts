// control/: what each API operation means: validate, default, write desired state through the
// store, answer from state. One file per resource. Imports core, api, store, state, scheduler, lib.
export * from './context';
export { AGENT_OPERATIONS, ecsHandlers, type EcsHandler } from './ecs-api';
export { EC2_SIGNING_NAME, ec2Handlers, type Ec2Handler } from './ec2-api';
export { ELBV2_SIGNING_NAME, elbv2Handlers, type ElbHandler } from './elbv2-api';
