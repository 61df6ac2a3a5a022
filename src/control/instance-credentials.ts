/**
 * Instance credentials: the key pair a registered agent holds, bound to its one container
 * instance (issue 12). RegisterContainerInstance with a join token (or a user's key) makes one
 * and hands it back once; the agent keeps it in its data dir and signs every later call and its
 * channel with it, so what it may do is decided by which instance it is, not by what it claims.
 *
 * Where it is kept: in the instance's own record (`wharf.agentKey`, never sent on the wire). The
 * store is the one place that survives a server restart and that replicas share, and a record
 * that goes away takes its key with it. SigV4 verification needs the secret itself (the signing
 * key is derived from it per day, region and service), so the secret is what is stored, with
 * nothing else: the binding is the record it sits in.
 *
 * The server's key table finds a key by its id, synchronously, on every request of every
 * region, so this index keeps id -> (secret, principal) for the instances of every region that
 * is up, fed by each region's state cache.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerInstanceRecord } from '../core/resources';
import type { State } from '../state/state';
import type { Principal } from './context';

/** The prefix of instance credential key ids (20 characters in all, as AWS key ids). */
export const INSTANCE_KEY_PREFIX = 'AKIAWINST';

export interface InstanceKey {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What RegisterContainerInstance answers besides the ECS shape (a Wharf extension AWS tools ignore). */
export const INSTANCE_CREDENTIAL_MEMBER = 'wharfInstanceCredential';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function newInstanceKey(): InstanceKey {
  const n = 20 - INSTANCE_KEY_PREFIX.length;
  const id = INSTANCE_KEY_PREFIX + [...randomBytes(n)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64url') };
}

/** The principal an instance credential stands for. */
export function instancePrincipal(rec: Pick<ContainerInstanceRecord, 'containerInstanceArn' | 'wharf'>): Extract<Principal, { kind: 'instance' }> {
  return {
    kind: 'instance',
    // An IAM role path naming the instance, so a refusal's "User: <arn>" says which agent it was.
    iamResource: `role/wharf-container-instance/${rec.wharf.cluster}/${rec.wharf.id}`,
    cluster: rec.wharf.cluster,
    containerInstanceArn: rec.containerInstanceArn,
  };
}

type Entry = { secret: string; principal: Principal };

export class InstanceCredentialIndex {
  private readonly byId = new Map<string, Entry>();

  lookup(accessKeyId: string): Entry | undefined {
    if (!accessKeyId.startsWith(INSTANCE_KEY_PREFIX)) return undefined;
    return this.byId.get(accessKeyId);
  }

  /** Follows one region's instances (call once per region as it comes up); returns the unsubscribe. */
  attach(state: State): () => void {
    const unsubscribe = state.subscribe((c) => {
      if (c.kind !== 'instances') return;
      const before = (c.previous?.value as ContainerInstanceRecord | undefined)?.wharf.agentKey;
      const after = c.current?.value as ContainerInstanceRecord | undefined;
      if (before && before.accessKeyId !== after?.wharf.agentKey?.accessKeyId) this.byId.delete(before.accessKeyId);
      if (after) this.add(after);
    });
    for (const e of state.instances.all()) this.add(e.value);
    return unsubscribe;
  }

  private add(rec: ContainerInstanceRecord): void {
    const key = rec.wharf.agentKey;
    // A deregistered instance keeps its key: its agent must still be able to ask, and be told
    // it is INACTIVE (the cue to clean up), rather than be answered "unknown key" forever.
    if (key) this.byId.set(key.accessKeyId, { secret: key.secretAccessKey, principal: instancePrincipal(rec) });
  }
}
