// controllers/: the control plane's reconcile loops (instance liveness, task reaper, and later
// services, deployments, daemons, load-balancer targets). Each is level-triggered: an event only
// enqueues a key, `reconcile(key)` re-reads desired and actual state, a pure `plan*` function
// decides, and a separate step writes the plan with compare-and-swap (throwing to retry).
// Imports control, state, store, scheduler, api, core, lib; never server/ or cmd/.
export * from './instance-liveness-controller';
export * from './task-reaper-controller';
export * from './capacity-provider-controller';
