/**
 * A whole control plane in memory for service tests: MemoryStore, State, PlacementView, a fake
 * clock, the ServiceController, and a fake agent that reports what the control plane asks for
 * through SubmitTaskStateChange (RUNNING for placed tasks, STOPPED for tasks told to stop).
 */
import type { ControlContext, Caller } from '../control/context';
import { createCluster } from '../control/clusters';
import { registerContainerInstance } from '../control/container-instances';
import { findTaskDefinition, registerTaskDefinition } from '../control/task-definitions';
import { ensureDefaultNetwork } from '../control/vpc';
import { submitTaskStateChange } from '../control/task-state-changes';
import { keys, type ContainerInstanceRecord, type TaskRecord } from '../core/resources';
import type { RegisterTaskDefinitionRequest } from '../core/shapes/ecs';
import { isTerminal } from '../core/task-status';
import { FakeClock, createLogger } from '../lib';
import { PlacementView } from '../state/placement-view';
import { State } from '../state/state';
import { MemoryStore } from '../store/memory';
import { casUpdate } from '../store/store';
import { ServiceController, type ServiceControllerOptions } from './service-controller';
import { ServiceLoadBalancerController } from './service-load-balancer-controller';
import type { WharfTaskStateChange } from '../api/agent/protocol';

export const CALLER: Caller = { requestId: 'r', accessKeyId: 'AKID', principalArn: 'arn:aws:iam::123456789012:root', isAgent: false, region: 'us-east-1' };

export interface Harness {
  ctx: ControlContext;
  clock: FakeClock;
  controller: ServiceController;
  /** Services' load balancer registration and draining (started with the service controller). */
  targets: ServiceLoadBalancerController;
  /** Extra members of the fake agent's RUNNING report (an awsvpc address, network bindings). */
  runningReport?: (t: TaskRecord) => Partial<WharfTaskStateChange>;
  /** Runs the controller and the fake agent until nothing changes. `failing` decides per task
   * whether the agent reports it as failing to start instead of RUNNING. */
  settle(opts?: { failing?: (t: TaskRecord) => boolean; onStep?: () => void }): Promise<void>;
  /** A connected instance; `forTaskDefinition` (an ARN) adds every attribute that definition requires. */
  addInstance(opts?: { az?: string; cpu?: number; memory?: number; ec2InstanceId?: string; forTaskDefinition?: string }): Promise<string>;
  setConnected(id: string, connected: boolean): Promise<void>;
  registerTd(family: string, extra?: Partial<RegisterTaskDefinitionRequest>): Promise<string>;
  tasks(filter?: (t: TaskRecord) => boolean): TaskRecord[];
  close(): Promise<void>;
}

export async function harness(opts: Partial<ServiceControllerOptions> = {}): Promise<Harness> {
  const store = new MemoryStore();
  const state = new State(store);
  await state.start();
  const placement = new PlacementView(state);
  const clock = new FakeClock();
  const ctx: ControlContext = { store, state, placement, partition: { region: 'us-east-1', accountId: '123456789012' }, clock, log: createLogger('test', 'silent') };
  await createCluster(ctx, { clusterName: 'c' });
  // As a region's start makes it (cmd/regions.ts): the default VPC awsvpc services name.
  await ensureDefaultNetwork(ctx);
  const controller = new ServiceController({ ctx, healthyAfterRunningMs: 1000, placementRetryMs: 5000, pace: 0, ...opts });
  controller.start();
  const targets = new ServiceLoadBalancerController(ctx);
  targets.start();
  const disconnected = new Set<string>();
  const h: Harness = {
    ctx,
    clock,
    controller,
    targets,
    async settle(o = {}) {
      for (let round = 0; round < 200; round++) {
        await controller.idle();
        await targets.idle();
        let acted = false;
        for (const t of h.tasks()) {
          if (isTerminal(t.lastStatus) || (t.wharf.instanceId && disconnected.has(t.wharf.instanceId))) continue;
          const base = { cluster: 'c', task: t.taskArn };
          if (t.desiredStatus === 'STOPPED') {
            await submitTaskStateChange(ctx, { ...base, status: 'STOPPED', ...(t.startedAt !== undefined ? {} : { stopCode: 'TaskFailedToStart' }) });
            acted = true;
          } else if (t.lastStatus !== 'RUNNING' && t.lastStatus !== 'DEACTIVATING') {
            if (o.failing?.(t)) await submitTaskStateChange(ctx, { ...base, status: 'STOPPED', stopCode: 'TaskFailedToStart', reason: 'CannotPullContainerError: pull access denied' });
            else await submitTaskStateChange(ctx, { ...base, status: 'RUNNING', ...h.runningReport?.(t) });
            acted = true;
          }
        }
        o.onStep?.();
        if (!acted) {
          await controller.idle();
          await targets.idle();
          await controller.idle();
          return;
        }
      }
      throw new Error('did not settle');
    },
    async addInstance(o = {}) {
      const r = await registerContainerInstance(ctx, {
        cluster: 'c',
        totalResources: [
          { name: 'CPU', type: 'INTEGER', integerValue: o.cpu ?? 4096 },
          { name: 'MEMORY', type: 'INTEGER', integerValue: o.memory ?? 4096 },
        ],
        attributes: [
          { name: 'ecs.availability-zone', value: o.az ?? 'us-east-1a' },
          ...((o.forTaskDefinition && findTaskDefinition(ctx, o.forTaskDefinition)?.requiresAttributes) || []).map((a) => ({ name: a.name })),
        ],
        ...(o.ec2InstanceId ? { instanceIdentityDocument: JSON.stringify({ instanceId: o.ec2InstanceId }) } : {}),
      });
      const id = r.containerInstance!.containerInstanceArn!.split('/').pop()!;
      await h.setConnected(id, true);
      return id;
    },
    async setConnected(id, connected) {
      if (connected) disconnected.delete(id);
      else disconnected.add(id);
      const { revision } = await casUpdate<ContainerInstanceRecord>(store, keys.instance('c', id), (cur) => ({ ...cur!.value, agentConnected: connected, version: cur!.value.version + 1 }));
      await state.waitFor(revision);
    },
    async registerTd(family, extra = {}) {
      const r = await registerTaskDefinition(ctx, { family, containerDefinitions: [{ name: 'app', image: 'busybox', memory: 256, essential: true }], ...extra }, CALLER);
      return r.taskDefinition!.taskDefinitionArn!;
    },
    tasks(filter = () => true) {
      return [...state.tasks.children('c').values()].map((e) => e.value).filter(filter);
    },
    async close() {
      controller.stop();
      targets.stop();
      placement.stop();
      state.stop();
      await store.close();
    },
  };
  return h;
}
