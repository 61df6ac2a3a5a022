/**
 * The agent-facing odds and ends of the ECS API:
 *
 * - DiscoverPollEndpoint: where the agent polls. Wharf's agent channel (a WebSocket at
 *   `/v1/agent/connect`), its telemetry and everything else are this one server, so all three
 *   endpoints are this server's base URL, as the caller reached it (the signed Host header), or
 *   the URL the server listens on.
 * - UpdateContainerAgent: Wharf ships the agent with the server and has no agent update to
 *   stage, so a connected instance is told what ECS tells an agent already on its newest
 *   version (NoUpdateAvailableException); an instance without its agent cannot be updated.
 * - SubmitAttachmentStateChanges: the agent confirms the state of a task's attachment (its
 *   awsvpc network interface): the task's `attachments[].status` takes the reported status.
 */
import { parseArn } from '../core/arn';
import { WharfError, clientError, invalidParameter } from '../core/errors';
import { keys, type TaskRecord } from '../core/resources';
import type {
  DiscoverPollEndpointRequest,
  DiscoverPollEndpointResponse,
  SubmitAttachmentStateChangesRequest,
  SubmitAttachmentStateChangesResponse,
  UpdateContainerAgentRequest,
  UpdateContainerAgentResponse,
} from '../core/shapes/ecs';
import { casUpdate } from '../store/store';
import { requireActiveCluster } from './clusters';
import { findInstance } from './container-instances';
import { committed, type Caller, type ControlContext } from './context';

export const NO_UPDATE_AVAILABLE = 'There is no update available for your container agent.';

/** The statuses an attachment can have (the model's Attachment.status documentation). */
export const ATTACHMENT_STATUSES = ['PRECREATED', 'CREATED', 'ATTACHING', 'ATTACHED', 'DETACHING', 'DETACHED', 'DELETED', 'FAILED'] as const;

export async function discoverPollEndpoint(ctx: ControlContext, _input: DiscoverPollEndpointRequest, caller?: Caller): Promise<DiscoverPollEndpointResponse> {
  const base = caller?.host ? `http://${caller.host}` : ctx.endpoint;
  if (!base) throw new WharfError('ServerException', 'The server does not know its own endpoint yet.');
  const url = base.endsWith('/') ? base : `${base}/`;
  return { endpoint: url, telemetryEndpoint: url, serviceConnectEndpoint: url };
}

export async function updateContainerAgent(ctx: ControlContext, input: UpdateContainerAgentRequest): Promise<UpdateContainerAgentResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  if (!input.containerInstance) throw invalidParameter('containerInstance is required.');
  const inst = findInstance(ctx, cluster, input.containerInstance)?.value;
  if (!inst) throw invalidParameter(`Container instance not found: ${input.containerInstance}`);
  if (inst.status === 'INACTIVE') throw clientError('The referenced container instance is inactive.');
  if (!inst.agentConnected) throw clientError(`The container agent on ${inst.containerInstanceArn} is not connected.`);
  throw new WharfError('NoUpdateAvailableException', NO_UPDATE_AVAILABLE);
}

/** `arn:...:attachment/<id>`, `arn:...:attachment/<cluster>/<id>` or the bare id. */
function attachmentIdOf(ref: string): string {
  const a = parseArn(ref);
  return a ? a.resource.split('/').pop()! : ref;
}

export async function submitAttachmentStateChanges(ctx: ControlContext, input: SubmitAttachmentStateChangesRequest): Promise<SubmitAttachmentStateChangesResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster).clusterName;
  if (input.attachments.length === 0) throw invalidParameter('attachments cannot be empty.');
  // Validate everything first: a report that is partly wrong changes nothing.
  const wanted = new Map<string, string>();
  for (const a of input.attachments) {
    if (!(ATTACHMENT_STATUSES as readonly string[]).includes(a.status)) {
      throw invalidParameter(`Invalid attachment status '${a.status}'. Valid values: ${ATTACHMENT_STATUSES.join(', ')}.`);
    }
    wanted.set(attachmentIdOf(a.attachmentArn), a.status);
  }
  const owners = new Map<string, TaskRecord>();
  for (const e of ctx.state.tasks.children(cluster).values()) {
    for (const a of e.value.attachments ?? []) if (a.id && wanted.has(a.id)) owners.set(a.id, e.value);
  }
  for (const a of input.attachments) {
    if (!owners.has(attachmentIdOf(a.attachmentArn))) throw invalidParameter(`Attachment not found: ${a.attachmentArn}`);
  }
  let last = 0;
  for (const t of new Set(owners.values())) {
    const { revision } = await casUpdate<TaskRecord>(ctx.store, keys.task(cluster, t.wharf.id), (cur) => {
      if (!cur) return undefined;
      let changed = false;
      const attachments = (cur.value.attachments ?? []).map((a) => {
        const status = a.id ? wanted.get(a.id) : undefined;
        if (status === undefined || status === a.status) return a;
        changed = true;
        return { ...a, status };
      });
      return changed ? { ...cur.value, attachments, version: cur.value.version + 1 } : undefined;
    });
    last = Math.max(last, revision);
  }
  if (last > 0) await committed(ctx, last);
  return { acknowledgment: 'true' };
}
