/**
 * CreateService/UpdateService's `serviceRegistries`, validated as ECS does;
 * controllers/service-registry-controller.ts registers the tasks.
 *
 * Bridge and host tasks share their instance's address, so a registry can tell them apart only
 * by port: ECS wants the container and port whose mapped host port to register (containerName +
 * containerPort), and a Cloud Map service with an SRV record to carry it (A records alone would
 * name the same address for every task). An awsvpc task has an address of its own, but an SRV
 * record still needs a port: `port`, or containerName + containerPort (not both).
 */
import { invalidParameter } from '../core/errors';
import type { TaskDefinitionRecord } from '../core/resources';
import type { ServiceRegistry } from '../core/shapes/ecs';
import { effectiveNetworkMode } from '../core/task-definition';
import { findService } from './cloudmap-records';
import type { ControlContext } from './context';

const REGISTRY_ARN = /^arn:aws[a-z-]*:servicediscovery:[a-z0-9-]+:\d{12}:service\/[A-Za-z0-9_-]+$/;

export function containerPortExists(td: TaskDefinitionRecord, containerName: string, containerPort: number): boolean {
  const c = (td.containerDefinitions ?? []).find((d) => d.name === containerName);
  return !!c && (c.portMappings ?? []).some((p) => p.containerPort === containerPort);
}

export function validateRegistries(ctx: ControlContext, list: ServiceRegistry[] | undefined, td: TaskDefinitionRecord): ServiceRegistry[] {
  const regs = list ?? [];
  if (regs.length > 1) throw invalidParameter('A service can have at most one service registry.');
  const mode = effectiveNetworkMode(td);
  const sharesHost = mode === 'bridge' || mode === 'host';
  for (const r of regs) {
    // ECS's wording (quoted in terraform-provider-aws#4373, for a namespace's ARN given here).
    if (typeof r.registryArn !== 'string' || !REGISTRY_ARN.test(r.registryArn)) throw invalidParameter(`The format of the supplied service registry ARN is invalid: ${String(r.registryArn)}.`);
    if (sharesHost && (r.containerName === undefined || r.containerPort === undefined)) {
      throw invalidParameter(`When specifying 'host' or 'bridge' for networkMode, values for 'containerName' and 'containerPort' must be specified from the task definition. Registry: ${r.registryArn}`);
    }
    if ((r.containerName === undefined) !== (r.containerPort === undefined)) throw invalidParameter('containerName and containerPort must be given together for a service registry.');
    if (r.containerName !== undefined && !containerPortExists(td, r.containerName, r.containerPort!)) {
      throw invalidParameter(`The container ${r.containerName} did not have a container port ${r.containerPort} defined.`);
    }
    if (r.port !== undefined && (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535)) throw invalidParameter('serviceRegistries[].port must be between 0 and 65535.');
    if (r.port !== undefined && r.containerName !== undefined) throw invalidParameter("Specify a value for either 'port' or the 'containerName' and 'containerPort' combination, but not both. Remove one and retry.");
    // A DNS registry without an SRV record cannot say which host port is whose. (An HTTP
    // namespace's service has no DnsConfig: its instances carry the port as an attribute.)
    const records = findService(ctx, r.registryArn)?.svc.DnsConfig?.DnsRecords;
    const hasSrv = !!records?.some((d) => d.Type === 'SRV');
    // An awsvpc task's A record is its own address: a port would be registered nowhere. (ECS's
    // wordings, as users quote them: terraform-provider-aws#4025, terraform-aws-ecs-fargate#25.)
    if (mode === 'awsvpc' && records && !hasSrv) {
      if (r.port !== undefined) throw invalidParameter(`A port was provided but is not required by the specified service registry. Registry: ${r.registryArn}`);
      if (r.containerName !== undefined) throw invalidParameter(`The values specified for serviceRegistries do not require a value for 'containerPort'. Remove the value and retry. Registry: ${r.registryArn}`);
    }
    if (sharesHost && records && !hasSrv) {
      throw invalidParameter(`serviceRegistries value is configured to use a type 'A' DNS record, which is not supported when specifying 'host' or 'bridge' for networkMode. Registry: ${r.registryArn}`);
    }
    // An SRV record carries a port, and an awsvpc task has as many as its containers map: Cloud
    // Map would refuse every instance registered without one.
    if (mode === 'awsvpc' && hasSrv && r.port === undefined && r.containerName === undefined) {
      throw invalidParameter(`When specifying 'awsvpc' for networkMode with a type 'SRV' DNS record, a value for either 'port' or 'containerName' and 'containerPort' must be specified. Registry: ${r.registryArn}`);
    }
  }
  return regs.map((r) => ({ ...r }));
}
