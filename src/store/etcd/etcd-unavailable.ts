/**
 * What a user is told when etcd cannot serve a request, in Wharf's words. The etcd3 client's own
 * errors speak of its machinery ("Execution prevented because the circuit breaker is open": after
 * three failed calls to a member it stops calling it for 5 s, then lets one call through), which
 * says neither what is wrong nor what to do.
 *
 * The answer is AWS's common 503 (ServiceUnavailableException, which SDKs retry), its message
 * AWS's sentence for it followed by what is wrong with the store, since when, and that the replica
 * keeps trying. For example:
 *
 *   The request has failed due to a temporary failure of the server: its store (etcd) has no
 *   quorum or cannot be reached (no member has answered this replica's last calls), for 12 s now.
 *   This replica keeps trying to reach it, at least every 5 s; retry the request then.
 */
import { GRPCDeadlineExceededError, GRPCUnavailableError, isRecoverableError } from 'etcd3';

/** How long the etcd3 client leaves a member alone after three failed calls (its circuit breaker's halfOpenAfter). */
export const ETCD_CLIENT_RETRY_MS = 5000;

/** Thrown by the replica itself when etcd does not answer a read in time (cmd/regions.ts). */
export class StoreReadTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`etcd did not answer within ${timeoutMs} ms`);
    this.name = 'StoreReadTimeoutError';
  }
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The client gave up on every member for a while (cockatiel's BrokenCircuitError, by its marker). */
const circuitOpen = (e: unknown) => e instanceof Error && ('isBrokenCircuitError' in e || /circuit breaker is open/i.test(e.message));

/** etcd answered, but cannot commit or serve linearizable reads: fewer than a quorum of members run. */
const noQuorum = (e: unknown) => /etcdserver: (no leader|request timed out|leader changed|too many requests)/i.test(message(e));

/** Whether err says that etcd cannot serve now (as opposed to a refusal of this request). */
export function isEtcdUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err instanceof StoreReadTimeoutError || circuitOpen(err) || noQuorum(err) || isRecoverableError(err);
}

/** What is wrong, as a clause. */
export function etcdUnavailableReason(err: unknown): string {
  if (err instanceof StoreReadTimeoutError) return `it did not answer within ${Math.round(err.timeoutMs / 100) / 10} s`;
  if (circuitOpen(err)) return "no member has answered this replica's last calls";
  if (noQuorum(err)) return 'it has no leader (fewer than a quorum of its members are up)';
  if (err instanceof GRPCUnavailableError) return 'no member can be reached';
  if (err instanceof GRPCDeadlineExceededError) return 'it did not answer in time';
  // Something else the client could retry: keep its words, without grpc-js's empty note.
  return `a call failed (${message(err).replace(/\.?\s*Resolution note:\s*$/, '')})`;
}

/**
 * The message of the 503 a request gets while etcd cannot serve: `unavailableForMs` is how long
 * this replica has been failing to reach it (0 for the first failure).
 */
export function storeUnavailableMessage(err: unknown, unavailableForMs: number): string {
  const since = unavailableForMs >= 1000 ? `, for ${Math.round(unavailableForMs / 1000)} s now` : '';
  return (
    `The request has failed due to a temporary failure of the server: its store (etcd) has no quorum or cannot be reached (${etcdUnavailableReason(err)})${since}. ` +
    `This replica keeps trying to reach it, at least every ${ETCD_CLIENT_RETRY_MS / 1000} s; retry the request then.`
  );
}
