/**
 * Joining the cluster, the first thing the agent does: refuse a data dir that belongs to another
 * region, call RegisterContainerInstance with the stored ARN (retried with backoff until the
 * control plane answers), and keep the identity, with the task endpoint's key, in the data dir.
 * When the stored instance turns out to be deregistered, leave instead (leaveDeregistered).
 */
import { randomBytes } from 'node:crypto';
import { parseArn } from '../core/arn';
import { LABELS } from '../api/agent/protocol';
import type { Clock } from '../lib/clock';
import { backoffMs } from '../lib/backoff';
import type { Logger } from '../lib/logger';
import type { ContainerRuntime, EngineInfo } from './runtime/container-runtime';
import type { ControlPlaneClient } from './control-plane-client';
import type { AgentStateStore } from './agent-state-store';
import { instanceAttributes, totalResources, type InstanceConfig } from './instance-resources';

export const AGENT_VERSION = '0.1.0';

/** The agent's stored instance was deregistered (see leaveDeregistered). */
export class AgentDeregisteredError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = 'AgentDeregisteredError';
  }
}

export interface RegistrationOptions {
  client: Pick<ControlPlaneClient, 'registerContainerInstance'>;
  runtime: ContainerRuntime;
  store: AgentStateStore;
  /** Cluster name or ARN. */
  cluster: string;
  config: InstanceConfig & { tags?: { key: string; value: string }[] };
  /** The engine as `runtime.info()` described it. */
  info: EngineInfo;
  clock?: Clock;
  logger?: Logger;
  /** The agent was stopped while registration was being retried: give up. */
  stopped(): boolean;
}

export interface Registration {
  containerInstanceArn: string;
  /** Hex key of the task endpoint's ids (kept with the identity). */
  endpointKey: string;
}

/** RegisterContainerInstance refusing a stored ARN because that instance is INACTIVE. */
function isDeregistration(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === 'ClientException' && /\bderegistered\b|\bINACTIVE\b/.test(e.message ?? '');
}

/** Registers (retrying until the control plane answers) and stores the identity. */
export async function registerInstance(r: RegistrationOptions): Promise<Registration> {
  const known = r.store.getIdentity();
  const knownRegion = known && parseArn(known.containerInstanceArn)?.region;
  if (knownRegion && knownRegion !== r.config.region) {
    // Registering into another region would make a second instance of this host and orphan the
    // first one's containers: refuse, and say how to go on.
    throw new Error(
      `this data dir belongs to container instance ${known.containerInstanceArn} in region ${knownRegion}, not ${r.config.region}: ` +
        `start the agent with --region ${knownRegion}, or give the new region its own --data-dir`,
    );
  }
  let arn: string;
  let attempt = 0;
  for (;;) {
    try {
      const out = await r.client.registerContainerInstance({
        cluster: r.cluster,
        containerInstanceArn: known?.containerInstanceArn,
        totalResources: totalResources(r.info, r.config),
        attributes: instanceAttributes(r.info, r.config),
        versionInfo: { agentVersion: AGENT_VERSION, agentHash: 'wharf', dockerVersion: `DockerVersion: ${r.info.serverVersion}` },
        tags: r.config.tags,
      });
      arn = out.containerInstanceArn;
      break;
    } catch (err) {
      if (known && isDeregistration(err)) throw await leaveDeregistered(r, known.containerInstanceArn);
      if ((err as { permanent?: boolean }).permanent || r.stopped()) throw err;
      const ms = backoffMs(attempt++, 500, 60_000);
      r.logger?.warn({ err: (err as Error).message, retryInMs: ms }, 'registration failed; retrying');
      // Not systemClock's timer: it is unref'd, and while the agent registers nothing else keeps
      // the process alive (no channel, no runner yet), so an agent started before its server would
      // end here with status 0 instead of waiting for it.
      await new Promise<void>((done) => (r.clock ? r.clock.setTimeout(done, ms) : setTimeout(done, ms)));
    }
  }
  // The same key after a restart gives adopted containers' ECS_AGENT_URI the same meaning.
  const key = known?.containerInstanceArn === arn && known.endpointKey ? known.endpointKey : randomBytes(32).toString('hex');
  r.store.setIdentity({ containerInstanceArn: arn, cluster: r.cluster, endpointKey: key });
  return { containerInstanceArn: arn, endpointKey: key };
}

/**
 * The instance this agent was is deregistered: its containers belong to no task anyone tracks
 * (ECS calls them orphaned) and nothing can adopt them again, so they are removed, with the
 * stored identity, and the agent refuses to go on. Joining again as a new instance is one more
 * start away: a host that was removed from a cluster on purpose does not rejoin by itself
 * (ECS's agent also refuses to start until its data is cleared).
 */
async function leaveDeregistered(r: RegistrationOptions, arn: string): Promise<Error> {
  const orphans = await r.runtime.listContainers({ [LABELS.containerInstance]: arn });
  for (const c of orphans) {
    await r.runtime.stopContainer(c.id, { timeoutSec: 10 }).catch(() => undefined);
    await r.runtime.removeContainer(c.id).catch(() => undefined);
  }
  r.store.forget();
  r.logger?.warn({ containerInstanceArn: arn, removedContainers: orphans.length }, 'container instance was deregistered; removed its orphaned containers');
  return new AgentDeregisteredError(
    `container instance ${arn} was deregistered from cluster ${r.cluster}; removed its ${orphans.length} orphaned container(s) ` +
      'and forgot its identity. Start the agent again to join as a new container instance.',
  );
}
