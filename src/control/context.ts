import type { Partition } from '../core/arn';
import type { PolicyDocument } from '../core/iam-policy';
import type { Clock, Logger, SecretCipher } from '../lib';
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
  /**
   * Load balancer addresses in use on the host that serves this server's load balancers (other
   * Wharf servers' too), which CreateLoadBalancer does not hand out again; set by cmd/ when the
   * load balancer data plane runs here.
   */
  elbAddressesInUse?: () => Iterable<string>;
  /** The server's own URL (`http://host:port`), once it listens; DiscoverPollEndpoint's fallback. */
  endpoint?: string;
  /**
   * Seals Secrets Manager values in the store (control/secrets.ts). `wharf server` always gives
   * one (the data dir's secrets.key); without it (unit tests) values are stored as they are.
   */
  secretCipher?: SecretCipher;
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
      /**
       * Its identity policy (core/iam-policy.ts), evaluated before every call; undefined for the
       * built-in key, which is the account's root (allowed everything).
       */
      policy?: PolicyDocument;
    }
  | {
      /** A join token: may register a container instance, nothing else of consequence. */
      kind: 'agent-token';
      iamResource: string;
      /** The one cluster it may register into; undefined for a token bound to none. */
      cluster?: string;
      /** The region of that cluster; undefined: that cluster name in any region. */
      region?: string;
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
  /** The IAM unique id of the key's user (`AIDA...`), for users made with `wharf credentials create`. */
  userId?: string;
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
  /** The peer address of the connection the request came on (IAM's aws:SourceIp). */
  sourceIp?: string;
  /** Whether the request came over TLS (IAM's aws:SecureTransport). */
  secureTransport?: boolean;
  /**
   * Set when the request was signed with session credentials (STS GetSessionToken): the
   * long-term key they were issued from, whose holder the caller is, and when they began and end.
   */
  session?: { parentAccessKeyId: string; issuedAt: Date; expiration: Date };
}
