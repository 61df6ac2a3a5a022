/**
 * The agent's side of the task endpoint (ECS_AGENT_URI; the HTTP server is
 * task-protection-endpoint.ts): the id that names a task in its containers' URI, listening
 * (on another port when another agent on the host holds the wanted one), which task an id stands
 * for while it has a runner here, and what the task metadata and stats paths (v4, and v3 under
 * the same id with V3_ID_SUFFIX) answer for it.
 *
 * An id is an HMAC of the task ARN under a key kept with the agent's identity, so only this agent
 * can name a task, and after a restart adopted containers' URIs keep their meaning.
 */
import { createHmac } from 'node:crypto';
import type { AgentTask } from '../api/agent/protocol';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime } from './runtime/container-runtime';
import { TaskProtectionEndpoint, type EndpointTask, type TaskProtectionApi } from './task-protection-endpoint';
import { NetworkRates, statsMetadata, V3_ID_SUFFIX, type MetadataContext } from './task-metadata';
import type { TaskSnapshot } from './task-status';

export interface AgentTaskEndpointOptions {
  runtime: ContainerRuntime;
  /** The runner of a task on this agent, by ARN. */
  runnerFor(taskArn: string): { agentTask: AgentTask; snapshot(): TaskSnapshot } | undefined;
  /** This agent's container instance (undefined before it registered). */
  containerInstanceArn(): string | undefined;
  availabilityZone: string;
  logger?: Logger;
}

export class AgentTaskEndpoint {
  private key?: Buffer;
  private server?: TaskProtectionEndpoint;
  /** Endpoint id -> the task it stands for, for the tasks with a runner. */
  private readonly ids = new Map<string, EndpointTask>();
  /** The last network counters `/stats` read per container (for ECS's network_rate_stats). */
  private readonly networkRates = new NetworkRates();

  constructor(private readonly o: AgentTaskEndpointOptions) {}

  /** The key of the ids (hex), from the agent's stored identity. */
  setKey(hex: string): void {
    this.key = Buffer.from(hex, 'hex');
  }

  /** The id in a task's ECS_AGENT_URI: an HMAC of its ARN, so only this agent can name it. */
  idOf(taskArn: string): string {
    return createHmac('sha256', this.key ?? Buffer.alloc(32)).update(taskArn).digest('hex').slice(0, 32);
  }

  /** ECS_AGENT_URI of a task's containers, once the endpoint listens. */
  uriOf(taskArn: string): string | undefined {
    return this.server?.uriFor(this.idOf(taskArn));
  }

  /** Starts serving on `at` (once); a port held by another agent gives way to a free one. */
  async listen(at: { host: string; port: number; api: TaskProtectionApi }): Promise<void> {
    if (this.server) return;
    const make = (port: number) =>
      new TaskProtectionEndpoint({
        host: at.host,
        port,
        api: at.api,
        taskFor: (id) => this.ids.get(id),
        containerInstanceArn: this.o.containerInstanceArn,
        metadataFor: (id) => this.metadataWithEngine(id),
        statsFor: (id, container) => this.statsOf(id, container),
        logger: this.o.logger,
      });
    this.server = make(at.port);
    try {
      const where = await this.server.start();
      this.o.logger?.info(where, 'task endpoint (ECS_AGENT_URI) listening');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || at.port === 0) throw err;
      // Another agent on this host holds the port: take a free one. Containers this agent
      // adopts keep the ECS_AGENT_URI they were started with, which no longer answers.
      this.server = make(0);
      const where = await this.server.start();
      this.o.logger?.warn({ ...where, wanted: at.port }, 'task endpoint port in use; listening on another one');
    }
  }

  /** A task got a runner here: its id answers from now on (when the endpoint is served). */
  add(task: EndpointTask): void {
    if (this.server) this.ids.set(this.idOf(task.taskArn), { taskArn: task.taskArn, clusterArn: task.clusterArn });
  }

  /** The task's runner is gone (cleaned up). */
  remove(taskArn: string): void {
    this.ids.delete(this.idOf(taskArn));
  }

  /** Stopped containers' last network counters are no longer needed. */
  forgetContainers(dockerIds: string[]): void {
    this.networkRates.forget(dockerIds);
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  /**
   * What the task metadata endpoint answers for a task endpoint id, if this agent runs the task:
   * the id of ECS_CONTAINER_METADATA_URI_V4, or with V3_ID_SUFFIX that of ECS_CONTAINER_METADATA_URI.
   */
  private metadataOf(endpointId: string): MetadataContext | undefined {
    const v3 = endpointId.endsWith(V3_ID_SUFFIX);
    const t = this.ids.get(v3 ? endpointId.slice(0, -V3_ID_SUFFIX.length) : endpointId);
    const runner = t && this.o.runnerFor(t.taskArn);
    if (!runner) return undefined;
    return { task: runner.agentTask, snapshot: runner.snapshot(), availabilityZone: this.o.availabilityZone, version: v3 ? 3 : 4 };
  }

  /**
   * The metadata with what the engine knows of each container (image id, created and started
   * times) even before the runner's first look at a just-started container: asked right after
   * the start, its document would otherwise carry an empty ImageID and no CreatedAt/StartedAt.
   */
  private async metadataWithEngine(endpointId: string): Promise<MetadataContext | undefined> {
    const m = this.metadataOf(endpointId);
    if (!m) return undefined;
    const containers = await Promise.all(
      m.snapshot.containers.map(async (c) => {
        if (!c.dockerId || c.imageId !== undefined) return c;
        const st = await this.o.runtime.inspectContainer(c.dockerId);
        if (!st) return c;
        return { ...c, imageId: st.imageId, createdAt: c.createdAt ?? st.createdAt, startedAt: c.startedAt ?? st.startedAt };
      }),
    );
    return { ...m, snapshot: { ...m.snapshot, containers } };
  }

  /** The task metadata endpoint's `/stats` (one container) or `/task/stats` (container undefined). */
  private async statsOf(endpointId: string, container: string | undefined): Promise<Record<string, unknown> | undefined> {
    const m = this.metadataOf(endpointId);
    if (!m) return undefined;
    return statsMetadata(m, container, (id) => this.o.runtime.containerStats(id), this.networkRates);
  }
}
