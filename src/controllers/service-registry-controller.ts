/**
 * Services' `serviceRegistries`: each Cloud Map service named by an ECS service's registry holds,
 * as instances, that service's tasks that are RUNNING, still wanted and healthy, so that
 * `<service>.<namespace>` resolves to them through Wharf's DNS server (src/discovery/).
 *
 * Level-triggered, keyed by Cloud Map service id: any change to a task, an ECS service, a Cloud
 * Map service or its instances enqueues the registries concerned; reconcile(id) compares the
 * instances ECS should have registered (planRegistry, pure) with those it has and registers or
 * deregisters the difference through the Cloud Map operations. Instances registered by users
 * (without the ECS_SERVICE_NAME attribute ECS sets) are never touched.
 *
 * As on ECS: the instance id is the task id; a task leaves the registry as soon as it is told to
 * stop (ECS deregisters during DEACTIVATING), or when its health check fails. Tasks of awsvpc
 * mode register their own address (and the registry's port, or containerPort). Tasks of bridge
 * and host mode register the address where their instance's published host ports answer (the
 * one the load balancer controller sends instance targets to: `instanceHostAddress`) and the
 * host port Docker mapped for the registry's containerName/containerPort (the container's
 * networkBindings; in host mode the containerPort itself), which the registry's SRV record
 * carries (control/service-registries.ts refuses a registry without one for such tasks).
 */
import { cloudMapHandlers } from '../control/cloudmap';
import { findInstance, findService, instancesOf, type CloudMapInstanceRecord, type CloudMapServiceRecord } from '../control/cloudmap-records';
import type { ControlContext } from '../control/context';
import { findTaskDefinition } from '../control/task-definitions';
import { keys, type ServiceRecord, type TaskRecord } from '../core/resources';
import { addServiceEvents, serviceEventText } from '../core/service-events';
import { KeyedQueue, epochSeconds, uuid } from '../lib';
import { casUpdate } from '../store/store';
import type { NetworkMode, ServiceRegistry } from '../core/shapes/ecs';
import { effectiveNetworkMode } from '../core/task-definition';

export interface RegistryInstance {
  id: string;
  attributes: Record<string, string>;
}

export interface RegistryPlan {
  register: RegistryInstance[];
  deregister: string[];
}

/** The Cloud Map service id an ECS registryArn names (`…:service/srv-…`). */
export function registryServiceId(arn: string | undefined): string | undefined {
  return arn ? /:service\/(srv-[a-z0-9]+)$/.exec(arn)?.[1] : undefined;
}

/** Where a task answers for one registry; undefined while it has no address or port (yet). */
export interface RegistryEndpoint {
  ip: string;
  port?: number;
}

/**
 * The address and port a task registers with. `mode` is its task definition's network mode;
 * `hostAddress` where its instance's published host ports answer (for bridge and host tasks).
 */
export function endpointOf(t: TaskRecord, reg: ServiceRegistry, mode: NetworkMode, hostAddress: string | undefined): RegistryEndpoint | undefined {
  if (mode === 'bridge' || mode === 'host') {
    // CreateService made sure of containerName/containerPort for these modes.
    if (!hostAddress || !t.containerInstanceArn || reg.containerName === undefined || reg.containerPort === undefined) return undefined;
    const c = t.containers?.find((x) => x.name === reg.containerName);
    const bound = c?.networkBindings?.find((b) => b.containerPort === reg.containerPort && (b.protocol ?? 'tcp') === 'tcp' && b.hostPort)?.hostPort;
    // Host mode publishes nothing: the container listens on the host's port of the same number.
    const port = bound ?? (mode === 'host' && c ? reg.containerPort : undefined);
    return port === undefined ? undefined : { ip: hostAddress, port };
  }
  const ip = t.containers?.flatMap((c) => c.networkInterfaces ?? []).find((n) => n.privateIpv4Address)?.privateIpv4Address;
  if (!ip) return undefined;
  return { ip, port: reg.port ?? reg.containerPort };
}

/**
 * The instances a registry should hold for the ECS services that name it, against those it holds.
 * `eligible` says whether a task counts (RUNNING, wanted, healthy), `endpoint` where it answers
 * for a registry (endpointOf); `actual` are the registry's instances that ECS registered.
 */
export function planRegistry(
  registryArn: string,
  region: string,
  services: { service: ServiceRecord; tasks: TaskRecord[] }[],
  eligible: (t: TaskRecord) => boolean,
  endpoint: (t: TaskRecord, reg: ServiceRegistry) => RegistryEndpoint | undefined,
  actual: CloudMapInstanceRecord[],
  customHealth: boolean,
): RegistryPlan {
  const want = new Map<string, RegistryInstance>();
  for (const { service, tasks } of services) {
    for (const reg of service.serviceRegistries ?? []) {
      if (reg.registryArn !== registryArn) continue;
      for (const t of tasks) {
        if (!eligible(t)) continue;
        const ep = endpoint(t, reg);
        if (!ep) continue;
        const attributes: Record<string, string> = {
          AWS_INSTANCE_IPV4: ep.ip,
          ECS_CLUSTER_NAME: service.wharf.cluster,
          ECS_SERVICE_NAME: service.serviceName,
          ECS_TASK_DEFINITION_FAMILY: (t.taskDefinitionArn ?? '').split('/').pop()!.split(':')[0]!,
          REGION: region,
        };
        if (ep.port !== undefined) attributes.AWS_INSTANCE_PORT = String(ep.port);
        if (t.availabilityZone) attributes.AVAILABILITY_ZONE = t.availabilityZone;
        if (customHealth) attributes.AWS_INIT_HEALTH_STATUS = 'HEALTHY';
        want.set(t.wharf.id, { id: t.wharf.id, attributes });
      }
    }
  }
  const have = new Map(actual.filter((i) => i.Attributes.ECS_SERVICE_NAME !== undefined).map((i) => [i.Id, i]));
  const register = [...want.values()].filter((w) => {
    const h = have.get(w.id);
    return !h || JSON.stringify(h.Attributes) !== JSON.stringify(w.attributes);
  });
  const deregister = [...have.keys()].filter((id) => !want.has(id));
  return { register, deregister };
}

export interface ServiceRegistryControllerOptions {
  /**
   * Where a container instance's published host ports answer, for bridge and host tasks: the
   * same address the load balancer controller sends instance targets to (cmd/host-address.ts).
   * Undefined: such tasks are not registered.
   */
  instanceHostAddress?: string;
}

export class ServiceRegistryController {
  private readonly queue: KeyedQueue;
  private unsubscribe?: () => void;
  private readonly cloudMap: ReturnType<typeof cloudMapHandlers>;
  /** `<service ARN>|<registry id>` pairs already told their registry is missing. */
  private readonly reportedMissing = new Set<string>();

  constructor(
    private readonly ctx: ControlContext,
    private readonly o: ServiceRegistryControllerOptions = {},
  ) {
    this.cloudMap = cloudMapHandlers(ctx);
    this.queue = new KeyedQueue(async (id) => void (await this.reconcile(id)), ctx.clock, {
      concurrency: 4,
      onError: (key, err) => ctx.log.warn({ registry: key, err }, 'service registry reconcile failed; will retry'),
    });
  }

  start(): void {
    const { state } = this.ctx;
    this.unsubscribe = state.subscribe((c) => {
      if (c.kind === 'tasks') {
        const t = (c.current?.value ?? c.previous?.value) as TaskRecord | undefined;
        const svc = t?.wharf.serviceName && state.services.get(c.parent, t.wharf.serviceName)?.value;
        if (svc) this.enqueueService(svc);
      } else if (c.kind === 'services') {
        for (const v of [c.previous?.value, c.current?.value] as (ServiceRecord | undefined)[]) if (v) this.enqueueService(v);
      } else if (c.kind === 'sdservices') {
        const s = (c.current?.value ?? c.previous?.value) as CloudMapServiceRecord | undefined;
        if (s) this.queue.add(s.Id);
      } else if (c.kind === 'sdinstances') {
        this.queue.add(c.parent);
      }
    });
    for (const e of state.services.all()) this.enqueueService(e.value);
  }

  stop(): void {
    this.unsubscribe?.();
    this.queue.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * A registry that names no Cloud Map service (never made, or deleted under the ECS service):
   * its tasks cannot be registered. Each ECS service using it is told once, in its events, until
   * the registry exists again.
   */
  private async reportMissing(registryId: string): Promise<void> {
    for (const e of this.ctx.state.services.all()) {
      const s = e.value;
      if (s.status !== 'ACTIVE') continue;
      const reg = (s.serviceRegistries ?? []).find((r) => registryServiceId(r.registryArn) === registryId);
      if (!reg) continue;
      const k = `${s.serviceArn}|${registryId}`;
      if (this.reportedMissing.has(k)) continue;
      this.reportedMissing.add(k);
      const text = serviceEventText.registryNotFound(s.serviceName, reg.registryArn!);
      this.ctx.log.warn({ service: s.serviceArn, registry: reg.registryArn }, 'service registry not found: its tasks are not registered');
      const { revision } = await casUpdate<ServiceRecord>(this.ctx.store, keys.service(s.wharf.cluster, s.serviceName), (cur) => {
        if (!cur || cur.value.status === 'INACTIVE') return undefined;
        const next = addServiceEvents(cur.value.events, [text], epochSeconds(this.ctx.clock.now()), uuid);
        return next === cur.value.events ? undefined : { ...cur.value, events: next };
      });
      await this.ctx.state.waitFor(revision);
    }
  }

  private enqueueService(s: ServiceRecord): void {
    for (const r of s.serviceRegistries ?? []) {
      const id = registryServiceId(r.registryArn);
      if (id) this.queue.add(id);
    }
  }

  /** Whether a task belongs in its service's registries now. */
  private eligible(t: TaskRecord): boolean {
    if (t.lastStatus !== 'RUNNING' || t.desiredStatus !== 'RUNNING') return false;
    if (t.healthStatus === 'UNHEALTHY') return false;
    // With a container health check, only once it passes (ECS counts such a task healthy then).
    const td = t.taskDefinitionArn ? findTaskDefinition(this.ctx, t.taskDefinitionArn) : undefined;
    const checked = (td?.containerDefinitions ?? []).some((c) => c.healthCheck && c.essential !== false);
    return !checked || t.healthStatus === 'HEALTHY';
  }

  async reconcile(registryId: string): Promise<RegistryPlan | undefined> {
    const found = findService(this.ctx, registryId);
    if (!found) {
      await this.reportMissing(registryId);
      return undefined;
    }
    for (const k of this.reportedMissing) if (k.endsWith(`|${registryId}`)) this.reportedMissing.delete(k);
    const registry = found.svc;
    const services: { service: ServiceRecord; tasks: TaskRecord[] }[] = [];
    for (const e of this.ctx.state.services.all()) {
      const s = e.value;
      if (!(s.serviceRegistries ?? []).some((r) => r.registryArn === registry.Arn)) continue;
      const tasks = [...this.ctx.state.tasks.children(s.wharf.cluster).values()].map((t) => t.value).filter((t) => t.wharf.serviceName === s.serviceName);
      services.push({ service: s, tasks });
    }
    const actual = instancesOf(this.ctx, registry.Id).map((e) => e.inst);
    const endpoint = (t: TaskRecord, reg: ServiceRegistry) => {
      const td = t.taskDefinitionArn ? findTaskDefinition(this.ctx, t.taskDefinitionArn) : undefined;
      return td ? endpointOf(t, reg, effectiveNetworkMode(td), this.o.instanceHostAddress) : undefined;
    };
    const plan = planRegistry(registry.Arn, this.ctx.partition.region, services, (t) => this.eligible(t), endpoint, actual, registry.HealthCheckCustomConfig !== undefined);
    for (const r of plan.register) {
      try {
        await this.cloudMap.RegisterInstance!({ ServiceId: registry.Id, InstanceId: r.id, Attributes: r.attributes });
      } catch (err) {
        // A registry whose records the task cannot fill (an SRV record and no port): said once
        // per pass, and the other tasks are still registered.
        this.ctx.log.warn({ registry: registry.Arn, task: r.id, err }, 'cannot register the task in its service registry');
      }
    }
    for (const id of plan.deregister) {
      if (findInstance(this.ctx, registry.Id, id)) await this.cloudMap.DeregisterInstance!({ ServiceId: registry.Id, InstanceId: id });
    }
    return plan;
  }
}
