import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { StoreReadTimeoutError, isEtcdUnavailable, storeUnavailableMessage } from './etcd-unavailable';

/** What cockatiel (the etcd3 client's retry library) throws while its circuit breaker is open. */
const brokenCircuit = () => Object.assign(new Error('Execution prevented because the circuit breaker is open'), { isBrokenCircuitError: true });

const AWS_503 = /^The request has failed due to a temporary failure of the server: its store \(etcd\) has no quorum or cannot be reached \(/;

test("etcd's failures are told in Wharf's words: what is wrong, for how long, and that the replica keeps trying", () => {
  const cases: [unknown, number, RegExp][] = [
    [brokenCircuit(), 12_400, /\(no member has answered this replica's last calls\), for 12 s now\. This replica keeps trying to reach it, at least every 5 s; retry the request then\.$/],
    [new StoreReadTimeoutError(2000), 0, /\(it did not answer within 2 s\)\. This replica keeps trying/],
    [new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: '), 3000, /\(no member can be reached\), for 3 s now\./],
    [new GRPCUnavailableError('etcdserver: request timed out'), 7000, /\(it has no leader \(fewer than a quorum of its members are up\)\), for 7 s now\./],
    [new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded'), 0, /\(it did not answer in time\)\./],
  ];
  for (const [err, ms, expected] of cases) {
    assert.equal(isEtcdUnavailable(err), true, String(err));
    const m = storeUnavailableMessage(err, ms);
    assert.match(m, AWS_503, m);
    assert.match(m, expected, m);
    assert.doesNotMatch(m, /circuit breaker|Execution prevented|Resolution note|UNAVAILABLE|DEADLINE_EXCEEDED/, m);
  }
});

test("a refusal of the request itself is not taken for the store's being unavailable", () => {
  assert.equal(isEtcdUnavailable(new EtcdLeaseInvalidError('123')), false);
  assert.equal(isEtcdUnavailable(new Error('ConditionalCheckFailed')), false);
  assert.equal(isEtcdUnavailable('a string'), false);
});
