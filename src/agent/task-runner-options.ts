/**
 * What a TaskRunner is configured with (TaskRunnerOptions, handed down by the agent), the
 * defaults it fills in, and the resolved RunnerSettings that the runner and its helpers
 * (task-starter.ts, container-observation.ts, task-stopper.ts) read.
 */
import type { WharfSubmitContainerStateChange, WharfTaskStateChange } from '../api/agent/protocol';
import { systemClock, type Clock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime, PullBehaviour } from './runtime/container-runtime';
import type { HostPolicy } from './host-policy';
import type { AwslogsShipper } from './awslogs-shipper';
import type { PausePool } from './pause-pool';
import type { TaskProgress } from './task-progress';

export interface TaskRunnerOptions {
  runtime: ContainerRuntime;
  containerInstanceArn: string;
  onTaskStateChange: (change: WharfTaskStateChange) => void;
  onContainerStateChange: (change: WharfSubmitContainerStateChange) => void;
  clock?: Clock;
  logger?: Logger;
  pullBehaviour?: PullBehaviour;
  defaultStopTimeoutSec?: number;
  /** How long a container may wait on its dependencies (ECS_CONTAINER_START_TIMEOUT, 3 min). */
  defaultStartTimeoutSec?: number;
  /**
   * Safety-net re-inspection period. Engine events wake the runner on every change of its
   * containers (die, oom, health, destroy), and a `resync` after the engine's event stream had
   * a gap; this only bounds how long a change the engine never announced goes unseen. Each pass
   * inspects every container of the task: at 5 s a host with 50 running tasks made 10
   * inspections a second for nothing, 20-22 CPU-ms/s of the agent's and 9-10 of dockerd's; at
   * 30 s, 2.5-5.5 and 1-3 (two 20 s windows each).
   */
  pollIntervalMs?: number;
  pauseImage?: string;
  /** awsvpc network used when the task names none. */
  defaultAwsvpcNetwork?: string;
  /**
   * The Docker runtime a Fargate task's containers run under: `runsc` (gVisor, a kernel of
   * their own) where the engine has it; '' = the engine's default (runc).
   */
  fargateSandbox?: string;
  /** ECS_AGENT_URI for this task's containers (the agent's task endpoint), when it serves one. */
  agentUri?: string;
  /** Resolvers for tasks whose definition names none: Wharf's DNS server (service discovery). */
  dnsServers?: string[];
  /** The host address assignPublicIp ENABLED tasks' ports are published on (default 0.0.0.0). */
  publicBindIp?: string;
  /** Security groups (agent/firewall.ts): rebuilt once a task's pause container runs. */
  firewall?: { sync(): Promise<void> };
  /** What this host refuses to run (host-policy.ts), checked before anything is created. */
  hostPolicy?: HostPolicy;
  /** Ships awslogs containers' output to the control plane's logs API. */
  awslogs?: AwslogsShipper;
  /** Pause containers started ahead (pause-pool.ts): an awsvpc task takes one when there is one. */
  pausePool?: PausePool;
  /** What an earlier run of the agent wrote down of this task (see TaskRunner.adopt). */
  restored?: TaskProgress;
  /**
   * Writes the task's progress where the next run of the agent finds it (agent-state-store.ts):
   * synchronously, and throwing when it cannot, since a container is started only once it is
   * written down as created.
   */
  persist?: (progress: TaskProgress) => void;
}

/** The options that stay optional once defaults are filled in (absent means "none"). */
type Unset = 'logger' | 'agentUri' | 'dnsServers' | 'firewall' | 'hostPolicy' | 'awslogs' | 'pausePool' | 'restored' | 'persist';

/** TaskRunnerOptions with every default filled in. */
export type RunnerSettings = Required<Omit<TaskRunnerOptions, Unset>> & Pick<TaskRunnerOptions, Unset>;

export function withDefaults(opts: TaskRunnerOptions): RunnerSettings {
  return {
    clock: systemClock,
    pullBehaviour: 'default',
    defaultStopTimeoutSec: 30,
    defaultStartTimeoutSec: 180,
    pollIntervalMs: 30_000,
    pauseImage: 'wharf/pause:latest',
    defaultAwsvpcNetwork: 'wharf-awsvpc',
    fargateSandbox: '',
    publicBindIp: '0.0.0.0',
    // An option passed as undefined keeps its default.
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  } as RunnerSettings;
}
