/**
 * The records Wharf keeps in the store, and their keys. Each record is the ECS wire shape of the
 * resource (so Describe* can answer from it directly) plus, where needed, a `wharf` member with
 * internal bookkeeping that is never sent to clients.
 */
import type {
  AutoScalingGroupProvider,
  CapacityProviderStrategyItem,
  CapacityProviderUpdateStatus,
  Cluster,
  ContainerInstance,
  DeploymentConfiguration,
  LaunchType,
  LoadBalancer,
  NetworkConfiguration,
  PlacementConstraint,
  PlacementStrategy,
  Resource,
  Service,
  ServiceDeploymentStatus,
  ServiceEvent,
  ServiceRegistry,
  Setting,
  Tag,
  Task,
  TaskDefinition,
} from './shapes/ecs';

export interface ClusterRecord extends Omit<Cluster, 'registeredContainerInstancesCount' | 'runningTasksCount' | 'pendingTasksCount' | 'activeServicesCount' | 'statistics'> {
  clusterName: string;
  clusterArn: string;
  status: 'ACTIVE' | 'INACTIVE' | 'PROVISIONING' | 'DEPROVISIONING' | 'FAILED';
  tags: Tag[];
  /** Epoch ms; used to reap INACTIVE clusters. */
  wharf: { createdAt: number; deletedAt?: number };
}

export interface TaskDefinitionRecord extends TaskDefinition {
  taskDefinitionArn: string;
  family: string;
  revision: number;
  status: 'ACTIVE' | 'INACTIVE' | 'DELETE_IN_PROGRESS';
  tags: Tag[];
}

/** One per family: the last revision number ever given, so revisions never repeat. */
export interface FamilyRecord {
  family: string;
  lastRevision: number;
}

/** Resources a placed task holds on its instance (released when it stops). */
export interface Reservation {
  cpu: number;
  memory: number;
  ports: number[];
  portsUdp: number[];
  gpuIds: string[];
}

export interface TaskRecord extends Task {
  taskArn: string;
  clusterArn: string;
  lastStatus: string;
  desiredStatus: string;
  version: number;
  tags?: Tag[];
  wharf: {
    id: string;
    cluster: string;
    /** The container instance id (32 hex) it is placed on, if any. */
    instanceId?: string;
    /** That instance's cluster when it is not the task's own: FARGATE_POOL for Fargate tasks. */
    instanceCluster?: string;
    reservation?: Reservation;
    /** True once the instance's resources were given back (so it happens exactly once). */
    released?: boolean;
    /** Epoch ms at which a STOPPED task may be reaped. */
    expiresAt?: number;
    clientToken?: string;
    serviceName?: string;
    /**
     * Task scale-in protection (UpdateTaskProtection): epoch ms until which the service scheduler
     * neither scales the task in nor replaces it in a deployment. Absent: not protected. A time in
     * the past means the protection expired; readers compare with their clock.
     */
    protectedUntil?: number;
    /**
     * A RunTask task of an Auto Scaling group capacity provider with managed scaling, waiting
     * unplaced in PROVISIONING for an instance of the group: the placement rules of its request.
     */
    waiting?: { constraints: PlacementConstraint[]; strategies: PlacementStrategy[] };
    /** awsvpc: the task's security groups (ids; the VPC's default group when the request named none). */
    securityGroups?: string[];
    /** awsvpc: assignPublicIp ENABLED, so the agent publishes the task's ports on its host. */
    assignPublicIp?: boolean;
    /**
     * DEACTIVATING (control/task-drain.ts): the stop asked for, held back while the task's load
     * balancer targets drain. `at` and `until` are epoch ms: deregistration, and when the longest
     * deregistration delay of its target groups is over.
     */
    deactivating?: Deactivation;
  };
}

/** A load balancer target a task was registered as (ELBv2 target group ARN, target id, port). */
export interface TaskTarget {
  targetGroupArn: string;
  id: string;
  port: number;
}

export interface Deactivation {
  stopCode: string;
  reason: string;
  at: number;
  until: number;
  targets: TaskTarget[];
}

/**
 * What placements change on a container instance, kept under a key of its own
 * (`keys.instanceUsage`) so that placing a task rewrites a few hundred bytes, not the instance's
 * whole registration (its built-in attributes alone are kilobytes). The state cache merges it
 * into the instance record: `remainingResources` comes from here, and `version` is the sum of
 * both records' counters. An instance without one (registered, nothing placed yet, or written
 * before this record existed) keeps the remainingResources of its own record.
 */
export interface InstanceUsageRecord {
  remainingResources: Resource[];
  /** Increments with every change, so the instance's version moves with placements. */
  version: number;
}

export interface ContainerInstanceRecord extends ContainerInstance {
  containerInstanceArn: string;
  status: string;
  version: number;
  tags?: Tag[];
  wharf: {
    id: string;
    cluster: string;
    /** Epoch ms of the last agent heartbeat or connection event. */
    lastSeenAt?: number;
    /**
     * The instance credential its agent holds (control/instance-credentials.ts): what SigV4
     * verification needs, nothing more. Absent on instances registered before credentials were
     * bound to instances.
     */
    agentKey?: { accessKeyId: string; secretAccessKey: string };
  };
}

/**
 * One deployment of a service (ECS `Deployment`), as stored. The wire form adds the task counts,
 * which are always computed from the tasks themselves.
 */
export interface ServiceDeploymentRecord {
  /** `ecs-svc/<19 digits>`; also the `startedBy` of every task it launches. */
  id: string;
  /** PRIMARY: the newest, exactly one. ACTIVE: older, being drained; removed once empty. */
  status: 'PRIMARY' | 'ACTIVE';
  /** Id (digits) of the service revision this deployment runs. */
  revisionId: string;
  taskDefinition: string;
  /** PRIMARY: the service's desiredCount; ACTIVE: shrinks to the tasks it still has. */
  desiredCount: number;
  failedTasks: number;
  /** Epoch seconds. */
  createdAt: number;
  updatedAt: number;
  rolloutState: 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';
  rolloutStateReason: string;
  /** Ids of this deployment's stopped tasks already judged for failedTasks / throttling. */
  judged: string[];
  /**
   * Store revision up to which every stopped task of this deployment has been judged: a stopped
   * task whose record was last written at or before it is never judged again, however many
   * there are (`judged` only keeps the newest ids, for records rewritten after they stopped).
   */
  judgedRevision?: number;
  /** Consecutive tasks that stopped before ever reaching RUNNING (restart throttling). */
  startFailures: number;
  /** Epoch ms before which no task of this deployment is launched (restart throttling). */
  throttledUntil?: number;
  /** Epoch ms of the newest start failure (a task RUNNING after it resets startFailures). */
  lastStartFailureAt?: number;
  /** Set on a circuit-breaker rollback deployment: the id of the deployment that failed. */
  rollbackOf?: string;
}

/** An immutable snapshot of the configuration a deployment runs (ECS `ServiceRevision`). */
export interface ServiceRevisionRecord {
  /** 19 digits; the ARN is `service-revision/<cluster>/<service>/<id>`. */
  id: string;
  taskDefinition: string;
  launchType?: LaunchType;
  capacityProviderStrategy?: CapacityProviderStrategyItem[];
  platformVersion?: string;
  platformFamily?: string;
  loadBalancers: LoadBalancer[];
  serviceRegistries: ServiceRegistry[];
  networkConfiguration?: NetworkConfiguration;
  /** Epoch seconds. */
  createdAt: number;
}

/** The history entry behind ListServiceDeployments / DescribeServiceDeployments. */
export interface ServiceDeploymentHistoryRecord {
  /** The deployment id (`ecs-svc/<digits>`); the ARN ends with the digits. */
  id: string;
  status: ServiceDeploymentStatus;
  statusReason?: string;
  targetRevisionId: string;
  sourceRevisionIds: string[];
  deploymentConfiguration: DeploymentConfiguration;
  /** Epoch seconds. */
  createdAt: number;
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
  stoppedAt?: number;
  rollback?: { reason: string; startedAt: number; revisionId: string };
  circuitBreakerThreshold?: number;
  /** Its failed tasks when the circuit breaker stopped it (the live count is gone with it). */
  failedTasks?: number;
}

/**
 * A service. The stored record is the ECS `Service` without the fields that are computed when
 * it is described (`deployments` with counts, `runningCount`, `pendingCount`), plus `wharf`.
 */
export interface ServiceRecord extends Omit<Service, 'deployments' | 'runningCount' | 'pendingCount' | 'taskSets'> {
  serviceArn: string;
  serviceName: string;
  clusterArn: string;
  status: 'ACTIVE' | 'DRAINING' | 'INACTIVE';
  desiredCount: number;
  schedulingStrategy: 'REPLICA' | 'DAEMON';
  taskDefinition: string;
  deploymentConfiguration: DeploymentConfiguration;
  /** Newest first, at most 100. */
  events: ServiceEvent[];
  tags: Tag[];
  wharf: {
    cluster: string;
    /** PRIMARY first, then ACTIVE ones newest first. */
    deployments: ServiceDeploymentRecord[];
    /** Oldest first, bounded; every revision a listed deployment or history entry uses is kept. */
    revisions: ServiceRevisionRecord[];
    /** Oldest first, bounded. */
    history: ServiceDeploymentHistoryRecord[];
    /** CreateService idempotency: the token and a digest of the request without it. */
    clientToken?: string;
    fingerprint: string;
    /** Whether the service was last seen in steady state (the event is sent on entering it). */
    steady: boolean;
    /** The newest deployment that reached COMPLETED (circuit-breaker rollback target). */
    lastCompleted?: { deploymentId: string; revisionId: string };
    /** Epoch ms of DeleteService. */
    deletedAt?: number;
  };
}

/**
 * An Auto Scaling group capacity provider (FARGATE and FARGATE_SPOT are built in and have no
 * record). Its group is the Wharf instance group the ASG ARN names: the container instances whose
 * agents were started with `--capacity-provider <name>` (attribute CAPACITY_PROVIDER_ATTRIBUTE).
 */
export interface CapacityProviderRecord {
  capacityProviderArn: string;
  name: string;
  status: 'ACTIVE' | 'INACTIVE';
  type: 'EC2_AUTOSCALING';
  autoScalingGroupProvider: AutoScalingGroupProvider;
  updateStatus?: CapacityProviderUpdateStatus;
  updateStatusReason?: string;
  tags: Tag[];
  wharf: { createdAt: number; deletedAt?: number };
}

export interface AccountSettingRecord extends Setting {
  name: NonNullable<Setting['name']>;
  value: string;
  principalArn: string;
}

/** Store keys. Revisions are zero-padded so that key order is revision order. */
export const keys = {
  cluster: (name: string) => `clusters/${name}`,
  clusters: () => 'clusters/',
  family: (family: string) => `families/${family}`,
  families: () => 'families/',
  taskDefinition: (family: string, revision: number) => `taskdefs/${family}/${String(revision).padStart(10, '0')}`,
  taskDefinitions: (family?: string) => (family === undefined ? 'taskdefs/' : `taskdefs/${family}/`),
  task: (cluster: string, id: string) => `tasks/${cluster}/${id}`,
  tasks: (cluster?: string) => (cluster === undefined ? 'tasks/' : `tasks/${cluster}/`),
  instance: (cluster: string, id: string) => `instances/${cluster}/${id}`,
  instances: (cluster?: string) => (cluster === undefined ? 'instances/' : `instances/${cluster}/`),
  instanceUsage: (cluster: string, id: string) => `usage/${cluster}/${id}`,
  service: (cluster: string, name: string) => `services/${cluster}/${name}`,
  services: (cluster?: string) => (cluster === undefined ? 'services/' : `services/${cluster}/`),
  capacityProvider: (name: string) => `capacityproviders/${name}`,
  capacityProviders: () => 'capacityproviders/',
  accountSetting: (principal: string, name: string) => `settings/${encodeURIComponent(principal)}/${name}`,
  accountSettings: () => 'settings/',
  /** The region's EC2 network objects (core/vpc.ts records): `network/vpcs|subnets|groups/<id>`. */
  vpc: (id: string) => `network/vpcs/${id}`,
  subnet: (id: string) => `network/subnets/${id}`,
  securityGroup: (id: string) => `network/groups/${id}`,
  /** Idempotency tokens: `tokens/<operation>/<token>` -> what the first call created. */
  clientToken: (op: string, token: string) => `tokens/${op}/${token}`,
  /** Distributed mode: which replica holds an instance's agent channel (AgentPresenceRecord). */
  agentPresence: (instanceId: string) => `presence/${instanceId}`,
} as const;

/**
 * Distributed mode: an agent channel is open on replica `replica` (written by that replica when
 * the socket opens, removed when it closes). The leader's liveness controller reads these, since
 * the sockets of other replicas are not its own.
 */
export interface AgentPresenceRecord {
  replica: string;
  cluster: string;
  /** Epoch ms. */
  openedAt: number;
}
