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
 * 3. The server sends `DesiredStateMessage`s: always the FULL desired state of the instance's
 *    tasks (level-triggered). The agent reconciles: starts what is desired RUNNING and not
 *    running, stops what is desired STOPPED, adopts containers it already has (by label).
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
  /** For awsvpc: the Wharf-managed Docker network ("subnet") the task joins. */
  network?: { name: string };
}

export interface DesiredStateMessage {
  type: 'desiredState';
  /** Increases with every message on a connection; the agent may drop an older one. */
  seq: number;
  containerInstanceArn: string;
  tasks: AgentTask[];
}

export interface ServerErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type ServerToAgentMessage = DesiredStateMessage | ServerErrorMessage;

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
