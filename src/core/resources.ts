/**
 * The records Wharf keeps in the store, and their keys. Each record is the ECS wire shape of the
 * resource (so Describe* can answer from it directly) plus, where needed, a `wharf` member with
 * internal bookkeeping that is never sent to clients.
 */
import type {
  Cluster,
  ContainerInstance,
  Service,
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
    reservation?: Reservation;
    /** True once the instance's resources were given back (so it happens exactly once). */
    released?: boolean;
    /** Epoch ms at which a STOPPED task may be reaped. */
    expiresAt?: number;
    clientToken?: string;
    serviceName?: string;
  };
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
  };
}

export interface ServiceRecord extends Service {
  serviceArn: string;
  serviceName: string;
  clusterArn: string;
  status: string;
  tags?: Tag[];
  wharf: Record<string, unknown>;
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
  service: (cluster: string, name: string) => `services/${cluster}/${name}`,
  services: (cluster?: string) => (cluster === undefined ? 'services/' : `services/${cluster}/`),
  accountSetting: (principal: string, name: string) => `settings/${encodeURIComponent(principal)}/${name}`,
  accountSettings: () => 'settings/',
  /** Idempotency tokens: `tokens/<operation>/<token>` -> what the first call created. */
  clientToken: (op: string, token: string) => `tokens/${op}/${token}`,
} as const;
