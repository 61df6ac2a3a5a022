/**
 * The agent channel (DESIGN.md section 7), the contract between `wharf agent` and the control
 * plane.
 *
 * 1. The agent registers with the ECS API (`RegisterContainerInstance`, SigV4-signed with the
 *    user's credentials or a cluster join token's key pair). It keeps the returned
 *    containerInstanceArn in its data dir and passes it again on restart, so it stays the same
 *    container instance.
 * 2. It opens a WebSocket to `GET /v1/agent/connect?cluster=<name>&containerInstance=<arn>`; the
 *    upgrade request is SigV4-signed like an API call (service `ecs`, empty body). While the socket
 *    is open the instance is `agentConnected`; WebSocket ping/pong is the heartbeat.
 * 3. The server sends the desired state of the instance's tasks. The FIRST message on every
 *    connection is a `DesiredStateMessage`: the full list. After it, each change comes as a
 *    `DesiredStateDeltaMessage` against what this socket received before: the tasks that are new
 *    or changed (complete records) and the ARNs of those no longer listed. The agent keeps the
 *    list it reconstructed and reconciles only the tasks a message names: starts what is desired
 *    RUNNING and not running, stops what is desired STOPPED or unlisted, adopts containers it
 *    already has (by label). The model stays level-triggered per connection: a WebSocket delivers
 *    in order or closes, so a chain of deltas on one socket is as exact as a series of full
 *    lists, and a new connection (reconnect, agent restart) always starts from a full list.
 *    Every message carries `seq` (1, 2, 3, ... per connection); a delta also carries `baseSeq`,
 *    the seq it applies on top of. An agent that sees a delta whose baseSeq is not the seq it
 *    last applied does not guess: it drops the connection and opens a new one, which starts with
 *    a full list (`DesiredStateReceiver` below decides, `Agent` reconnects). The server may send
 *    a full list instead of a delta at any time (it does when the full list is no larger).
 * 4. The agent reports every change with `SubmitTaskStateChange` / `SubmitContainerStateChange`
 *    over the ECS API. Wharf accepts the extension members marked below; real ECS ignores them.
 */
import type {
  TaskDefinition,
  TaskOverride,
  ContainerStateChange,
  SubmitContainerStateChangeRequest,
  SubmitTaskStateChangeRequest,
} from '../../core/shapes/ecs';

export const AGENT_CONNECT_PATH = '/v1/agent/connect';

/** One task as the agent must run it. */
export interface AgentTask {
  taskArn: string;
  clusterArn: string;
  desiredStatus: 'RUNNING' | 'STOPPED';
  /**
   * The full task definition as registered (the agent applies `overrides` itself). On the wire it
   * may be just `{ taskDefinitionArn }` with `taskDefinitionElided` set: the server sends each
   * definition in full once per connection (ReceivedTaskDefinitions fills the rest in).
   */
  taskDefinition: TaskDefinition;
  /** Wire only: `taskDefinition` is elided, it came earlier on this connection. */
  taskDefinitionElided?: true;
  overrides?: TaskOverride;
  /** Increments whenever anything in this record changes. */
  version: number;
  /** Registry credentials resolved by the control plane, keyed by container name. */
  registryAuth?: Record<string, { username: string; password: string; serverAddress?: string }>;
  /**
   * Values of the containers' `secrets`, resolved by the control plane from Secrets Manager:
   * container name -> environment variable name -> value. The agent injects them as environment
   * variables and never writes them anywhere else (not to its data dir, not to its logs).
   */
  secrets?: Record<string, Record<string, string>>;
  /**
   * Set instead of `secrets` and `registryAuth` when a secret or registry credential of the task
   * cannot be resolved (not found, malformed reference, missing JSON key, SSM parameter): the agent
   * fails the task to start with `ResourceInitializationError: unable to pull secrets or registry
   * auth: <secretsError>`. Names references only, never a secret's value.
   */
  secretsError?: string;
  /** For awsvpc: the Wharf-managed Docker network ("subnet") the task joins. */
  network?: AgentTaskNetwork;
  /** Set for Fargate tasks: the agent runs them with Fargate's stricter isolation. */
  launchType?: 'FARGATE';
  /** The service that started the task, if one did (the task metadata endpoint's ServiceName). */
  serviceName?: string;
  /** Container name -> its ARN, as DescribeTasks shows it (the task metadata endpoint's ContainerARN). */
  containerArns?: Record<string, string>;
}

/**
 * An awsvpc task's network as the agent needs it: the subnet's bridge (made with the subnet's
 * range, so the task's address is inside it), whether to publish its ports on the host
 * (assignPublicIp ENABLED), and what its security groups let in (agent/firewall.ts).
 */
export interface AgentTaskNetwork {
  /** The Docker network standing for the subnet on every host (`wharf-subnet-<subnet id>`). */
  name: string;
  /** The subnet's IPv4 range and router address: the bridge's IPAM subnet and gateway. */
  subnet?: string;
  gateway?: string;
  /** assignPublicIp ENABLED: the task's container ports are published on the host. */
  publishPorts?: boolean;
  /** The task's security groups (ids). */
  securityGroups?: string[];
  /** The union of its groups' ingress rules, as they were when the task was sent. */
  ingress?: IngressRule[];
}

/** One source of an ingress rule: a range, or the members of a security group. */
export interface IngressRule {
  /** tcp, udp, icmp, or -1 (every protocol). */
  protocol: string;
  /** Port range for tcp/udp (inclusive); absent: every port. */
  fromPort?: number;
  toPort?: number;
  cidr?: string;
  group?: string;
}

/** The complete desired state: replaces whatever the agent had. Always first on a connection. */
export interface DesiredStateMessage {
  type: 'desiredState';
  /** Increases by one with every desired-state message on a connection; the agent may drop an older one. */
  seq: number;
  containerInstanceArn: string;
  /** Every task the agent must run or stop; order carries no meaning. */
  tasks: AgentTask[];
}

/**
 * A change to the desired state last sent on this connection. Tasks it does not name are as
 * before. Task definitions are elided exactly as in full lists (the first task in a message that
 * needs a definition the connection has not carried yet carries it in full).
 */
export interface DesiredStateDeltaMessage {
  type: 'desiredStateDelta';
  seq: number;
  /** The seq of the message this delta applies on top of: always the previous one on the socket. */
  baseSeq: number;
  containerInstanceArn: string;
  /** Tasks new to the list, or whose record changed: the complete record, replacing the old one. */
  upsert: AgentTask[];
  /** ARNs of tasks no longer listed (the agent stops them if they still run). */
  remove: string[];
}

export interface ServerErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type ServerToAgentMessage = DesiredStateMessage | DesiredStateDeltaMessage | ServerErrorMessage;

/** Wharf's extension members on a container state change. */
export interface WharfContainerStateChange extends ContainerStateChange {
  /** Container health (HEALTHY | UNHEALTHY | UNKNOWN); real ECS reports this through telemetry. */
  healthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
}

/** Wharf's extension members on a task state change. */
export interface WharfTaskStateChange extends Omit<SubmitTaskStateChangeRequest, 'containers'> {
  containers?: WharfContainerStateChange[];
  /** PENDING is reported when pulling starts; RUNNING / STOPPED as in ECS. */
  status?: string;
  /** Why the task stopped, in ECS's terms (e.g. EssentialContainerExited, TaskFailedToStart). */
  stopCode?: string;
  /** awsvpc: the task's address on its network. */
  privateIpv4Address?: string;
  /** awsvpc: the MAC address of the task's interface on its network. */
  macAddress?: string;
  /** Epoch seconds. */
  startedAt?: number;
  /** Task health from its essential containers (HEALTHY | UNHEALTHY | UNKNOWN). */
  healthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
}

/** Wharf's extension members on SubmitContainerStateChange (a container-only change). */
export interface WharfSubmitContainerStateChange extends SubmitContainerStateChangeRequest {
  imageDigest?: string;
  /** Container health (HEALTHY | UNHEALTHY | UNKNOWN). */
  healthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
  /** The task's health after this change, so a health flip needs no task-level report. */
  taskHealthStatus?: 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';
}

/**
 * A signed header of the agent's API calls naming the container instance it speaks for. The
 * control plane lets a join token act on a task (task protection) only when the task is placed
 * on that instance.
 */
export const CONTAINER_INSTANCE_HEADER = 'x-wharf-container-instance';

/** Labels Wharf puts on every container, as the ECS agent does. */
export const LABELS = {
  taskArn: 'com.amazonaws.ecs.task-arn',
  containerName: 'com.amazonaws.ecs.container-name',
  cluster: 'com.amazonaws.ecs.cluster',
  family: 'com.amazonaws.ecs.task-definition-family',
  revision: 'com.amazonaws.ecs.task-definition-version',
  /** Wharf's own: marks the per-task pause container of awsvpc tasks. */
  pause: 'io.wharf.pause',
  /** Wharf's own: the container instance that owns the container. */
  containerInstance: 'io.wharf.container-instance',
  /**
   * Wharf's own, on an awsvpc task's pause container: its security groups and their ingress rules
   * (JSON `{ groups, ingress }`), which every agent on the engine enforces (agent/firewall.ts).
   */
  securityGroups: 'io.wharf.security-groups',
  /**
   * Wharf's own, on a pause container an agent started ahead of any task (agent/pause-pool.ts):
   * the id of the parent cgroup it was put in, which the task that takes it then uses.
   */
  pausePool: 'io.wharf.pause-pool',
  /**
   * Wharf's own, on the containers of an awsvpc task whose pause container came from the pool:
   * that pause container's id. With LABELS.securityGroups beside it, it is how the task's groups
   * reach the firewall (a pool pause container was made before its task was known, and a
   * container's labels cannot change).
   */
  pauseId: 'io.wharf.pause-id',
} as const;

/**
 * The agent's side of task-definition elision: remembers every definition a connection carried
 * in full and puts it back into tasks that name it by ARN only. `reset()` on every new
 * connection (the server starts sending in full again). Pure, no I/O.
 */
export class ReceivedTaskDefinitions {
  private readonly byArn = new Map<string, TaskDefinition>();

  reset(): void {
    this.byArn.clear();
  }

  /** The message's tasks with every definition in full; throws if one was never received. */
  resolve(tasks: AgentTask[]): AgentTask[] {
    return tasks.map((t) => {
      const arn = t.taskDefinition.taskDefinitionArn;
      if (!t.taskDefinitionElided) {
        if (arn && (t.taskDefinition.containerDefinitions?.length ?? 0) > 0) this.byArn.set(arn, t.taskDefinition);
        return t;
      }
      const td = arn ? this.byArn.get(arn) : undefined;
      if (!td) throw new Error(`desired state names task definition ${arn} that this connection never carried`);
      const { taskDefinitionElided: _e, ...rest } = t;
      return { ...rest, taskDefinition: td };
    });
  }
}

/** What one desired-state message means for the agent (DesiredStateReceiver.receive). */
export type DesiredStateUpdate =
  /** Reconcile against this complete list (level-triggered, as on a fresh start). */
  | { kind: 'full'; tasks: AgentTask[] }
  /** Reconcile only these: start or update the upserted tasks, stop the removed ones. */
  | { kind: 'delta'; upsert: AgentTask[]; remove: string[] }
  /** Older than what was applied already: do nothing. */
  | { kind: 'stale'; reason: string }
  /** A full list naming a definition never carried (a server fault): do nothing, keep the last state. */
  | { kind: 'invalid'; reason: string }
  /**
   * The chain is broken (a delta that does not follow the last applied message, or one naming a
   * definition this connection never carried): the receiver has reset itself, and the caller must
   * open a new connection, whose first message is a full list.
   */
  | { kind: 'resync'; reason: string };

/**
 * The agent's side of the desired-state chain on one connection: checks seq and baseSeq, fills
 * in elided definitions, and keeps the list it reconstructed, so a delta costs the agent work in
 * proportion to the tasks it names. `reset()` on every new connection. Pure, no I/O.
 */
export class DesiredStateReceiver {
  private readonly definitions = new ReceivedTaskDefinitions();
  /** The reconstructed list by taskArn; kept across reset() as the best knowledge until the next full list. */
  private readonly tasks = new Map<string, AgentTask>();
  private applied = -1;

  /** A new connection: seq numbering and definitions start again; the next message must be full. */
  reset(): void {
    this.applied = -1;
    this.definitions.reset();
  }

  /** The seq last applied on this connection (-1 before the first full list). */
  get lastSeq(): number {
    return this.applied;
  }

  /** The desired state as last reconstructed, every definition in full. */
  current(): AgentTask[] {
    return [...this.tasks.values()];
  }

  receive(m: DesiredStateMessage | DesiredStateDeltaMessage): DesiredStateUpdate {
    if (m.type === 'desiredState') {
      // Resolve before the staleness check: a stale message may still carry definitions.
      let tasks: AgentTask[];
      try {
        tasks = this.definitions.resolve(m.tasks);
      } catch (err) {
        return { kind: 'invalid', reason: (err as Error).message };
      }
      if (m.seq <= this.applied) return { kind: 'stale', reason: `stale seq ${m.seq} (applied ${this.applied})` };
      this.applied = m.seq;
      this.tasks.clear();
      for (const t of tasks) this.tasks.set(t.taskArn, t);
      return { kind: 'full', tasks };
    }
    if (m.seq <= this.applied) return { kind: 'stale', reason: `stale seq ${m.seq} (applied ${this.applied})` };
    if (m.baseSeq !== this.applied || this.applied < 0) {
      const reason = `delta ${m.seq} is based on ${m.baseSeq}, but ${this.applied < 0 ? 'no full list was received on this connection' : `${this.applied} was applied last`}`;
      this.reset();
      return { kind: 'resync', reason };
    }
    let upsert: AgentTask[];
    try {
      upsert = this.definitions.resolve(m.upsert);
    } catch (err) {
      this.reset();
      return { kind: 'resync', reason: (err as Error).message };
    }
    this.applied = m.seq;
    for (const arn of m.remove) this.tasks.delete(arn);
    for (const t of upsert) this.tasks.set(t.taskArn, t);
    return { kind: 'delta', upsert, remove: m.remove };
  }
}

/**
 * Distributed mode: every API answer lists the live control-plane replicas (comma-separated base
 * URLs, the answering one first), so an agent can move to another when its own goes away.
 */
export const REPLICAS_HEADER = 'x-wharf-replicas';
