/**
 * Attacks on identity, over HTTP to the real server: malformed signatures, signed requests
 * replayed with another body, operation, date, path or host, keys that do not exist or are not
 * the signer's, and keys calling what their kind may not. Each attack is a row of a table
 * ({ key, request, expected error }); a new kind of key (an IAM user with a policy, an instance's
 * own credential) is one more entry in PRINCIPALS with what it may call. Every refusal must be the
 * expected AWS error, and the store must be exactly as before all of them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_OPERATIONS } from '../control';
import { LOGS_AGENT_OPERATIONS } from '../control/logs';
import { signRequest } from '../lib';
import {
  AGENT_KEY,
  ECS_TARGET_PREFIX,
  INSTANCE_KEY,
  FUZZ_REGION,
  USER_KEY,
  dumpStore,
  errorCode,
  malformed,
  startFuzzServer,
  storeDiff,
  type Answer,
  type FuzzKey,
  type FuzzServer,
  type SignedPost,
} from './api-fuzz-harness';

let fz: FuzzServer;
let dumpBefore: Map<string, string>;

before(async () => {
  fz = await startFuzzServer();
  for (const clusterName of ['identity-a', 'identity-b']) {
    const a = await fz.post({ target: `${ECS_TARGET_PREFIX}.CreateCluster`, body: JSON.stringify({ clusterName }) });
    assert.equal(a.status, 200, a.text);
  }
  dumpBefore = await dumpStore(fz.store);
});

after(() => fz.close());

const FORM = 'application/x-www-form-urlencoded; charset=utf-8';
const MINUTE = 60_000;

interface Attack {
  name: string;
  request: SignedPost;
  status: number;
  /** The AWS error code expected, or undefined for a request that must be accepted. */
  code: string | undefined;
  /** The message expected, where the text matters. */
  message?: RegExp;
}

/** A request that would change the store if it got through. */
const createCluster = (clusterName: string, extra: Partial<SignedPost> = {}): SignedPost => ({ target: `${ECS_TARGET_PREFIX}.CreateCluster`, body: JSON.stringify({ clusterName }), ...extra });
/** The Authorization header of `p` as the signer makes it, for tampering. */
function authorizationOf(p: SignedPost, key: FuzzKey = USER_KEY): string {
  const headers: Record<string, string> = { 'content-type': p.contentType ?? 'application/x-amz-json-1.1', ...(p.target ? { 'x-amz-target': p.target } : {}) };
  return signRequest({ method: 'POST', url: `http://127.0.0.1:${fz.port}${p.path ?? '/'}`, headers, body: p.body }, { ...key, region: p.region ?? FUZZ_REGION, service: p.service ?? 'ecs' }).authorization!;
}

async function play(attacks: Attack[]): Promise<void> {
  for (const a of attacks) {
    const answer: Answer = await fz.post(a.request);
    assert.equal(malformed(answer, answer.text.startsWith('<') ? 'query' : 'json'), undefined, `${a.name}: ${answer.status} ${answer.text}`);
    assert.equal(answer.status, a.status, `${a.name}: ${answer.text}`);
    assert.equal(errorCode(answer), a.code, `${a.name}: ${answer.text}`);
    if (a.message) assert.match(/<Message>([^<]*)<\/Message>/.exec(answer.text)?.[1] ?? JSON.parse(answer.text).message, a.message, a.name);
  }
}

test('malformed signatures are refused with the error AWS gives, before anything else happens', async () => {
  const good = createCluster('identity-should-not-exist-1');
  const auth = () => authorizationOf(good);
  const flipped = () => auth().replace(/Signature=([0-9a-f])/, (_, c: string) => `Signature=${c === '0' ? '1' : '0'}`);
  const incomplete = { status: 400, code: 'IncompleteSignatureException' };
  const invalid = { status: 403, code: 'InvalidSignatureException' };
  await play([
    { name: 'no Authorization header', request: { ...good, unsigned: true }, status: 403, code: 'MissingAuthenticationTokenException' },
    { name: 'an empty Authorization header', request: { ...good, tamper: { authorization: '' } }, status: 403, code: 'MissingAuthenticationTokenException' },
    { name: 'another algorithm', request: { ...good, tamper: { authorization: auth().replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA1') } }, ...incomplete },
    { name: 'a SigV2-style header', request: { ...good, tamper: { authorization: `AWS ${USER_KEY.accessKeyId}:c2lnbmF0dXJl` } }, ...incomplete },
    { name: 'a signature that is not hex', request: { ...good, tamper: { authorization: auth().replace(/Signature=.*/, `Signature=${'z'.repeat(64)}`) } }, ...incomplete },
    { name: 'a signature one digit short', request: { ...good, tamper: { authorization: auth().slice(0, -1) } }, ...incomplete },
    { name: 'a signature in upper case', request: { ...good, tamper: { authorization: auth().replace(/Signature=(.*)/, (_, s: string) => `Signature=${s.toUpperCase()}`) } }, ...incomplete },
    { name: 'a signature with one digit changed', request: { ...good, tamper: { authorization: flipped() } }, ...invalid },
    { name: 'a credential of four parts', request: { ...good, tamper: { authorization: auth().replace(/\/aws4_request/, '') } }, ...incomplete },
    { name: 'a credential of six parts', request: { ...good, tamper: { authorization: auth().replace(/\/aws4_request/, '/x/aws4_request') } }, ...incomplete },
    { name: 'host left out of the signed headers', request: { ...good, tamper: { authorization: auth().replace(/SignedHeaders=[^,]*/, 'SignedHeaders=content-type;x-amz-date;x-amz-target') } }, ...incomplete },
    { name: 'a signed header that is not sent', request: { ...good, tamper: { authorization: auth().replace(/SignedHeaders=([^,]*)/, 'SignedHeaders=$1;x-amz-missing') } }, ...invalid },
    { name: 'no X-Amz-Date', request: { ...good, tamper: { 'x-amz-date': '' } }, ...incomplete },
    { name: 'an X-Amz-Date of another day than the scope', request: { ...good, tamper: { 'x-amz-date': '20200101T000000Z' } }, ...incomplete },
    { name: 'a scope of another service', request: { ...good, service: 'sqs' }, ...invalid },
    { name: 'a scope of a region not served', request: { ...good, region: 'eu-west-1' }, ...invalid },
    // AWS's words: 'Signature expired: 20170111T204052Z is now earlier than 20170111T205553Z (20170111T211053Z - 15 min.)'.
    { name: 'signed 16 minutes ago', request: { ...good, date: new Date(Date.now() - 16 * MINUTE) }, ...invalid, message: /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/ },
    { name: 'signed 16 minutes ahead', request: { ...good, date: new Date(Date.now() + 16 * MINUTE) }, ...invalid, message: /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 15 min\.\)$/ },
    // The edge of the window, on the right side of it (a read, so the store stays as it was).
    { name: 'signed 14 minutes ago', request: { target: `${ECS_TARGET_PREFIX}.ListClusters`, body: '{}', date: new Date(Date.now() - 14 * MINUTE) }, status: 200, code: undefined },
  ]);
});

test('a captured request replayed with anything changed fails its signature', async () => {
  const captured = createCluster('identity-should-not-exist-2');
  const invalid = { status: 403, code: 'InvalidSignatureException', message: /^The request signature we calculated does not match/ };
  const later = new Date(Date.now() + 5 * MINUTE).toISOString().replace(/[:-]|\.\d{3}/g, '');
  await play([
    { name: 'another body', request: { ...captured, sentBody: JSON.stringify({ clusterName: 'identity-replayed' }) }, ...invalid },
    { name: 'the same body with a byte more', request: { ...captured, sentBody: `${captured.body as string} ` }, ...invalid },
    { name: 'another X-Amz-Target (CreateCluster signed, DeleteCluster sent)', request: { ...captured, body: JSON.stringify({ cluster: 'identity-a' }), tamper: { 'x-amz-target': `${ECS_TARGET_PREFIX}.DeleteCluster` } }, ...invalid },
    { name: 'another service in X-Amz-Target', request: { ...captured, tamper: { 'x-amz-target': 'secretsmanager.CreateSecret' } }, status: 403, code: 'InvalidSignatureException' },
    { name: 'another X-Amz-Date', request: { ...captured, tamper: { 'x-amz-date': later } }, ...invalid },
    { name: 'another Host', request: { ...captured, tamper: { host: 'attacker.example' } }, ...invalid },
    { name: 'another Content-Type', request: { ...captured, tamper: { 'content-type': 'application/json' } }, ...invalid },
    { name: 'the signature of another request', request: { ...captured, tamper: { authorization: authorizationOf(createCluster('identity-other')) } }, ...invalid },
  ]);
  // A path or query added after signing: the signature covers both.
  const auth = authorizationOf(captured);
  for (const path of ['/x', '/?Action=CreateCluster', '//']) {
    const a = await fz.post({ ...captured, path, tamper: { authorization: auth, 'x-amz-date': '' } });
    assert.ok(a.status === 400 || a.status === 403, `${path}: ${a.text}`);
    assert.ok(['InvalidSignatureException', 'IncompleteSignatureException'].includes(errorCode(a)!), `${path}: ${a.text}`);
  }
});

test('keys that do not exist, or are not the signer\'s, are refused', async () => {
  const req = createCluster('identity-should-not-exist-3');
  await play([
    { name: 'an unknown key id', request: { ...req, keys: { accessKeyId: 'AKIANOBODY0000000000', secretAccessKey: 'x' } }, status: 400, code: 'UnrecognizedClientException' },
    { name: 'an empty key id', request: { ...req, tamper: { authorization: authorizationOf(req).replace(/Credential=[^/]*/, 'Credential=') } }, status: 400, code: 'UnrecognizedClientException' },
    { name: 'the user key id signed with the agent secret', request: { ...req, keys: { accessKeyId: USER_KEY.accessKeyId, secretAccessKey: AGENT_KEY.secretAccessKey } }, status: 403, code: 'InvalidSignatureException' },
    { name: 'the agent key id signed with the user secret', request: { ...req, keys: { accessKeyId: AGENT_KEY.accessKeyId, secretAccessKey: USER_KEY.secretAccessKey } }, status: 403, code: 'InvalidSignatureException' },
    { name: 'a key id differing only in case', request: { ...req, keys: { accessKeyId: USER_KEY.accessKeyId.toLowerCase(), secretAccessKey: USER_KEY.secretAccessKey } }, status: 400, code: 'UnrecognizedClientException' },
    { name: 'a key id with a prototype name', request: { ...req, keys: { accessKeyId: '__proto__', secretAccessKey: 'x' } }, status: 400, code: 'UnrecognizedClientException' },
    { name: 'a key id with a prototype name (constructor)', request: { ...req, keys: { accessKeyId: 'constructor', secretAccessKey: 'x' } }, status: 400, code: 'UnrecognizedClientException' },
  ]);
});

/**
 * The kinds of key and what each may call. The user key of this server is all-powerful (what
 * `wharf up` makes); the others are limited. IAM users with policies (issue 12 part 1) are each one
 * more entry here. What an agent's keys may do within the agent operations (its own instance and
 * tasks only) is part 2's, tested beside it.
 */
/** What the transport lets agent keys through to (each call is then judged on what it names). */
const agentMayCall = (service: string, op: string) =>
  (service === 'ecs' && (AGENT_OPERATIONS as readonly string[]).includes(op)) || (service === 'logs' && (LOGS_AGENT_OPERATIONS as readonly string[]).includes(op));
const PRINCIPALS: { name: string; key: FuzzKey; mayCall: (signingName: string, operation: string) => boolean }[] = [
  { name: 'a cluster join token', key: AGENT_KEY, mayCall: agentMayCall },
  { name: 'an instance credential', key: INSTANCE_KEY, mayCall: agentMayCall },
];

test('agent keys writing log events of no task of theirs are refused with AccessDeniedException', async () => {
  const body = JSON.stringify({ logGroupName: 'g', logStreamName: 'p/app/0123', logEvents: [{ timestamp: Date.now(), message: 'forged' }] });
  await play(
    PRINCIPALS.flatMap((p) => [
      { name: `${p.name} calling logs:PutLogEvents`, request: { target: 'Logs_20140328.PutLogEvents', body, keys: p.key, service: 'logs' }, status: 400, code: 'AccessDeniedException', message: /is not authorized to perform: logs:PutLogEvents\b/ },
      { name: `${p.name} calling logs:CreateLogGroup`, request: { target: 'Logs_20140328.CreateLogGroup', body: JSON.stringify({ logGroupName: 'g' }), keys: p.key, service: 'logs' }, status: 400, code: 'AccessDeniedException', message: /is not authorized to perform: logs:CreateLogGroup\b/ },
    ]),
  );
});

test('a key calling what its kind may not is refused with AccessDeniedException, for every operation of every API', async () => {
  const attacks: Attack[] = [];
  for (const p of PRINCIPALS) {
    for (const api of fz.apis) {
      for (const op of Object.keys(api.handlers)) {
        if (p.mayCall(api.signingName, op)) continue;
        attacks.push({
          name: `${p.name} calling ${api.signingName}:${op}`,
          request: { target: `${api.targetPrefix}.${op}`, body: '{}', keys: p.key, service: api.signingName },
          status: 400,
          code: 'AccessDeniedException',
          message: new RegExp(`is not authorized to perform: ${api.signingName}:${op}\\b`),
        });
      }
    }
    for (const api of fz.queryApis) {
      for (const op of Object.keys(api.handlers)) {
        if (p.mayCall(api.signingName, op)) continue;
        attacks.push({
          name: `${p.name} calling ${api.signingName}:${op}`,
          request: { body: `Action=${op}&Version=${api.model.metadata.apiVersion}`, contentType: FORM, keys: p.key, service: api.signingName },
          // In each query API's own code: STS and ELBv2 AccessDenied, EC2 UnauthorizedOperation.
          status: 403,
          code: api.deniedErrorCode ?? 'AccessDeniedException',
          message: new RegExp(`is not authorized to perform: ${api.signingName}:${op}\\b`),
        });
      }
    }
  }
  assert.ok(attacks.length > 60, `${attacks.length} operations attacked`);
  await play(attacks);
});

test('after every attack: nothing logged as an error, and the store is exactly as before', async () => {
  assert.deepEqual(fz.serverErrors(), []);
  assert.deepEqual(storeDiff(dumpBefore, await dumpStore(fz.store)), []);
});
