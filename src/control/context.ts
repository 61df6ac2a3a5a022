import type { Partition } from '../core/arn';
import type { Clock, Logger } from '../lib';
import type { Store } from '../store/store';
import type { State } from '../state/state';
import type { PlacementView } from '../state/placement-view';

/** What every control operation works with. cmd/ builds one and hands it to the API table. */
export interface ControlContext {
  store: Store;
  state: State;
  /** The scheduler's per-cluster snapshots, kept beside the cache. */
  placement: PlacementView;
  partition: Partition;
  clock: Clock;
  log: Logger;
  /** The range of the region's default VPC when first made (core/vpc.ts defaultVpcCidr otherwise). */
  vpcCidr?: string;
  /** The server's own URL (`http://host:port`), once it listens; DiscoverPollEndpoint's fallback. */
  endpoint?: string;
}

/** Waits until the cache reflects a write, so the caller's next read sees it. */
export async function committed(ctx: ControlContext, revision: number): Promise<void> {
  await ctx.state.waitFor(revision);
}

/**
 * Who holds an access key, as the server's key table knows it. server/ authenticates a request to
 * one of these; the authorisation of users (IAM identity policies) and of agents (bound to a
 * cluster, then to one container instance) reads it.
 */
export type Principal =
  | {
      kind: 'user';
      /** The IAM resource part of its ARN: `root` (the built-in key) or `user/<name>`. */
      iamResource: string;
      /** Its identity policy; undefined for the built-in key, which is the account's root (admin). */
      policy?: unknown;
    }
  | {
      /** A join token: may register a container instance, nothing else of consequence. */
      kind: 'agent-token';
      iamResource: string;
      /** The one cluster it may register into; undefined for a token bound to none. */
      cluster?: string;
    }
  | {
      /** The credential a registered agent holds: bound to its own container instance. */
      kind: 'instance';
      iamResource: string;
      cluster: string;
      containerInstanceArn: string;
    };

/** Who made a request, as the transport authenticated it. */
export interface Caller {
  requestId: string;
  /** The access key id that signed the request. */
  accessKeyId: string;
  /** Principal ARN used for per-user settings (account settings). */
  principalArn: string;
  /** Whether the key is an agent's (join token or instance credential) rather than a user's. */
  isAgent: boolean;
  /** The key's holder (set by server/ on every request; tests may leave it out). */
  principal?: Principal;
  /** The region of the request's SigV4 credential scope: the region whose state it reads and writes. */
  region: string;
  /**
   * The container instance an agent's request speaks for (the signed `x-wharf-container-instance`
   * header), when it names one. Operations on tasks that an agent may call (task protection)
   * restrict it to that instance's tasks.
   */
  containerInstanceArn?: string;
  /** The Host the request was sent to (signed), which is how the caller reaches this server. */
  host?: string;
}
