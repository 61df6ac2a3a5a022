/**
 * What the agent channel tells an instance (api/agent/protocol.ts): the tasks it must run or
 * stop, each as the agent gets it, and the small record the gateway keeps per task of what a
 * socket was last told. Pure over the state cache; agent-gateway.ts does the sending.
 */
import type { AgentTask, AgentTaskNetwork, DesiredStateMessage } from '../api/agent/protocol';
import { cidrContains, defaultVpcCidr, subnetGateway, type SubnetRecord } from '../core/vpc';
import { ingressRulesOf } from './security-groups';
import { taskDefinitionRefOf } from '../core/arn';
import type { TaskDefinitionRecord, TaskRecord } from '../core/resources';
import { isTerminal } from '../core/task-status';
import { tasksOnInstance } from './container-instances';
import { resolveTaskCredentials } from './task-secrets';
import type { State } from '../state/state';
import type { SecretCipher } from '../lib';

function taskDefinitionOf(state: State, arn: string | undefined): TaskDefinitionRecord | undefined {
  const ref = arn ? taskDefinitionRefOf(arn) : undefined;
  if (!ref || ref.revision === undefined) return undefined;
  return state.taskDefinitions.get(ref.family, String(ref.revision).padStart(10, '0'))?.value;
}

/** Whether the agent must still act on a task: run it, or stop it (until it reports STOPPED). */
export function wanted(t: TaskRecord): boolean {
  if (t.desiredStatus === 'RUNNING') return true;
  return t.desiredStatus === 'STOPPED' && !isTerminal(t.lastStatus);
}

/**
 * The full desired state of one instance, in taskArn order: the tasks placed on it that are
 * desired RUNNING, and those desired STOPPED that have not reported STOPPED yet. Pure over the
 * cache: the same state gives the same list.
 */
export function desiredStateFor(state: State, cluster: string, instanceId: string, secretCipher?: SecretCipher): AgentTask[] {
  const out: AgentTask[] = [];
  for (const t of tasksOnInstance(state, instanceId)) {
    const a = agentTaskOf(state, t, secretCipher);
    if (a) out.push(a);
  }
  return out.sort((x, y) => (x.taskArn < y.taskArn ? -1 : x.taskArn > y.taskArn ? 1 : 0));
}

/**
 * One task as the agent gets it, or undefined when the agent need not hear of it. `secretCipher`
 * opens the Secrets Manager values its containers get (ControlContext.secretCipher).
 */
export function agentTaskOf(state: State, t: TaskRecord, secretCipher?: SecretCipher): AgentTask | undefined {
  if (!wanted(t)) return undefined;
  let td: AgentTask['taskDefinition'] | undefined = taskDefinitionOf(state, t.taskDefinitionArn);
  if (!td) {
    // The definition is gone (deleted after the task was stopped). A task to run cannot be
    // described without it; one to stop still must reach the agent, which stops by ARN.
    if (t.desiredStatus === 'RUNNING') return undefined;
    td = { taskDefinitionArn: t.taskDefinitionArn, containerDefinitions: [] };
  }
  const a: AgentTask = {
    taskArn: t.taskArn,
    clusterArn: t.clusterArn,
    desiredStatus: t.desiredStatus as AgentTask['desiredStatus'],
    taskDefinition: td,
    version: t.version,
  };
  if (t.overrides) a.overrides = t.overrides;
  if (t.launchType === 'FARGATE') a.launchType = 'FARGATE';
  if (t.wharf.serviceName) a.serviceName = t.wharf.serviceName;
  const containerArns = Object.fromEntries((t.containers ?? []).filter((c) => c.name && c.containerArn).map((c) => [c.name!, c.containerArn!]));
  if (Object.keys(containerArns).length > 0) a.containerArns = containerArns;
  addNetworkAndRegistryAuth(state, t, a, secretCipher);
  return a;
}

/**
 * awsvpc tasks join the Wharf-managed Docker network of their subnet (the ENI attachment's
 * `subnetId`, from RunTask's networkConfiguration). A task to run gets what its containers need
 * from Secrets Manager resolved here (`secrets` values, `repositoryCredentials`), so the agent
 * never reads secrets; if any of it cannot be resolved, only the reason (`secretsError`), on which
 * the agent fails the task to start. A task to stop needs none of it.
 */
function addNetworkAndRegistryAuth(state: State, t: TaskRecord, a: AgentTask, secretCipher: SecretCipher | undefined): void {
  const subnet = t.attachments?.find((x) => x.type === 'ElasticNetworkInterface')?.details?.find((d) => d.name === 'subnetId')?.value;
  if (subnet) {
    const record = state.network.get('subnets', subnet)?.value as SubnetRecord | undefined;
    const net: AgentTaskNetwork = { name: subnetNetworkName(subnet, record?.CidrBlock, record?.AvailabilityZone) };
    if (record) {
      net.subnet = record.CidrBlock;
      net.gateway = subnetGateway(record.CidrBlock);
    }
    if (t.wharf.assignPublicIp) net.publishPorts = true;
    if (t.wharf.securityGroups) {
      net.securityGroups = t.wharf.securityGroups;
      net.ingress = ingressRulesOf(state, t.wharf.securityGroups);
    }
    a.network = net;
  }
  if (a.desiredStatus !== 'RUNNING') return;
  const creds = resolveTaskCredentials({ state, secretCipher }, a.taskDefinition.containerDefinitions ?? []);
  if (creds.error !== undefined) a.secretsError = creds.error;
  if (creds.registryAuth) a.registryAuth = creds.registryAuth;
  if (creds.secrets) a.secrets = creds.secrets;
}

/**
 * The Docker network that stands for a subnet on every host: `wharf-subnet-<id>`, and, when the
 * subnet is not in its region's range under the default --vpc-base, its range too
 * (`wharf-subnet-<id>-10.171.0.0_20`). Subnet ids are a hash of account, region and zone, so
 * two Wharfs of one account on one Docker engine name the same subnets; given ranges of their
 * own (--vpc-base), they get networks of their own instead of joining whichever made it first.
 * The default range keeps the plain name, which networks made before this have.
 */
export function subnetNetworkName(subnetId: string, cidr?: string, zone?: string): string {
  const plain = `wharf-subnet-${subnetId}`;
  if (!cidr || !zone) return plain;
  const region = zone.replace(/[a-z]$/, '');
  const base = defaultVpcCidr(region);
  const [ip] = cidr.split('/');
  return cidrContains(base, ip!) ? plain : `${plain}-${cidr.replace('/', '_')}`;
}

/** Whether a task change can change what some agent is told (overrides never change after RunTask). */
export function concernsAgent(prev: TaskRecord | undefined, cur: TaskRecord | undefined): boolean {
  if (!prev || !cur) return true;
  return (
    prev.wharf.instanceId !== cur.wharf.instanceId ||
    prev.wharf.released !== cur.wharf.released ||
    prev.desiredStatus !== cur.desiredStatus ||
    wanted(prev) !== wanted(cur) ||
    prev.taskDefinitionArn !== cur.taskDefinitionArn
  );
}

/**
 * What a socket was last told about one task: only what the agent acts on (not `version`, which
 * moves with reports; overrides are fixed when the task is created, so its ARN stands for them),
 * and the size of its elided JSON. Its strings are the task record's own, so keeping one per
 * listed task costs a few dozen bytes, not a copy of the task's JSON.
 */
export interface SentTask {
  taskArn: string;
  desiredStatus: string;
  taskDefinitionArn?: string;
  /** How many container definitions it carried (none: a stop-only entry without its definition). */
  definitions: number;
  /** Length of its JSON with the definition elided: what re-listing it in a full list costs. */
  chars: number;
  /** Its definition changed after it was sent: send it again even though nothing else did. */
  resend?: boolean;
}

/** Whether the definition can go as `{ taskDefinitionArn }` to a socket that has carried it. */
export function elidable(a: AgentTask): boolean {
  return a.taskDefinition.taskDefinitionArn !== undefined && (a.taskDefinition.containerDefinitions?.length ?? 0) > 0;
}

/** The task's JSON for a socket: the definition in full, or elided (see ReceivedTaskDefinitions). */
export function wireOf(a: AgentTask, elide: boolean): string {
  return JSON.stringify(elide ? { ...a, taskDefinition: { taskDefinitionArn: a.taskDefinition.taskDefinitionArn }, taskDefinitionElided: true } : a);
}

export function sentTaskOf(a: AgentTask, chars: number): SentTask {
  return {
    taskArn: a.taskArn,
    desiredStatus: a.desiredStatus,
    taskDefinitionArn: a.taskDefinition.taskDefinitionArn,
    definitions: a.taskDefinition.containerDefinitions?.length ?? 0,
    chars,
  };
}

/** Whether the agent, told `sent`, needs to hear of `a` again. */
export function changedForAgent(sent: SentTask, a: AgentTask): boolean {
  return (
    sent.resend === true ||
    sent.desiredStatus !== a.desiredStatus ||
    sent.taskDefinitionArn !== a.taskDefinition.taskDefinitionArn ||
    sent.definitions !== (a.taskDefinition.containerDefinitions?.length ?? 0)
  );
}

/** A DesiredStateMessage assembled from prepared task JSON. */
export function fullText(seq: number, containerInstanceArn: string, parts: string[]): string {
  const head: Omit<DesiredStateMessage, 'tasks'> = { type: 'desiredState', seq, containerInstanceArn };
  return `${JSON.stringify(head).slice(0, -1)},"tasks":[${parts.join(',')}]}`;
}

/**
 * What the agent gateway sends instance `instanceId` about task `taskId`: the task as the agent
 * gets it (secrets resolved), or null when the instance should not list it. Listed iff
 * State.tasksByInstance holds it (placed there and not released) and the agent must still act on
 * it. The gateway is transport only: it keeps what each socket was told and diffs against this.
 */
export function instanceTask(state: State, instanceId: string, taskId: string, secretCipher?: SecretCipher): { id: string; task: AgentTask } | null {
  const cluster = state.tasksByInstance.get(instanceId)?.get(taskId);
  const t = cluster !== undefined ? state.tasks.get(cluster, taskId)?.value : undefined;
  if (!t) return null;
  const a = agentTaskOf(state, t, secretCipher);
  // Keyed by the record's own id string, not the caller's (a slice that would pin its key).
  return a ? { id: t.wharf.id, task: a } : null;
}

/** Ids of the tasks placed on an instance: the candidates for its full list. */
export function instanceTaskIds(state: State, instanceId: string): Iterable<string> {
  return state.tasksByInstance.get(instanceId)?.keys() ?? [];
}
