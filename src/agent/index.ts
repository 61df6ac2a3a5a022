// agent/: the data plane of EC2-launch-type capacity (`wharf agent`). It registers the host,
// runs one TaskRunner per task against a ContainerRuntime (runtime/: Docker through dockerode,
// or the simulated engine for scale tests only) and reports state changes. It talks to the
// control plane only through the ECS API and the agent channel (api/agent/protocol.ts), so it
// imports lib, core and api, never server, state, store or control.
export * from './agent';
export * from './control-plane-client';
export * from './state-reporter';
export * from './task-runner';
export * from './task-status';
export * from './task-logs';
export * from './container-spec';
export * from './instance-resources';
export * from './agent-state-store';
export * from './simulated-fleet';
export * from './runtime/container-runtime';
export * from './runtime/docker-runtime';
export * from './runtime/simulated-runtime';
