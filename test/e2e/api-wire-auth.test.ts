/**
 * The wire and its guard: SigV4 on every request (unsigned, unknown key, wrong signature, wrong
 * scope, stale date: refused and nothing changes), AWS JSON 1.1 details (X-Amz-Target dispatch,
 * error bodies and statuses, request ids, numbers for timestamps, no nulls, long ARNs with the
 * configured region and account), bad input (malformed JSON, oversized bodies, unknown
 * operations), and observability (/healthz, /metrics, structured request logs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ListClustersCommand } from '@aws-sdk/client-ecs';
import { signRequest } from '../../src/lib';
import { TARGET_PREFIX, awsCli, ecsCall, rawCall, simpleTaskDefinition, startTestServer, type TestServer } from './helpers/wharf-server';
import { ensureAgentToken } from '../../src/cmd/agent-tokens';

let srv: TestServer;
const logLines: any[] = [];
const T = (op: string) => `${TARGET_PREFIX}.${op}`;

before(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logLines.push(JSON.parse(line));
      cb();
    },
  });
  srv = await startTestServer({ log: pino({ level: 'debug' }, sink) });
});
after(() => srv.close());

async function clusterNames(): Promise<string[]> {
  const r = await ecsCall(srv, 'ListClusters', {});
  return r.json.clusterArns.map((a: string) => a.split('/').pop());
}

/** Asserts the AWS JSON error form: status, __type, a message, and nothing null. */
function assertError(r: { status: number; json: any; headers: Headers }, status: number, type: string) {
  assert.equal(r.status, status, `status for ${type}: ${JSON.stringify(r.json)}`);
  assert.equal(r.json.__type, type);
  assert.equal(typeof r.json.message, 'string');
  assert.ok(r.json.message.length > 0);
  assert.ok(r.headers.get('x-amzn-requestid'), 'errors carry a request id too');
}

describe('SigV4', () => {
  test('unsigned, unknown-key, wrong-signature, wrong-scope and stale requests are refused and change nothing', async () => {
    const body = JSON.stringify({ clusterName: 'intruder' });
    const create = T('CreateCluster');
    assertError(await rawCall(srv.endpoint, undefined, create, body), 403, 'MissingAuthenticationTokenException');
    assertError(await rawCall(srv.endpoint, { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: 'x' }, create, body), 400, 'UnrecognizedClientException');
    assertError(await rawCall(srv.endpoint, { accessKeyId: srv.keys.accessKeyId, secretAccessKey: 'wrong-secret' }, create, body), 403, 'InvalidSignatureException');
    // Signed for one body, sent with another.
    const url = srv.endpoint + '/';
    const headers: Record<string, string> = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': create };
    Object.assign(headers, signRequest({ method: 'POST', url, headers, body: JSON.stringify({ clusterName: 'harmless' }) }, { ...srv.keys, region: 'us-east-1', service: 'ecs' }));
    delete headers.host;
    const swapped = await fetch(url, { method: 'POST', headers, body });
    assertError({ status: swapped.status, json: await swapped.json(), headers: swapped.headers }, 403, 'InvalidSignatureException');
    // Signed as another service (e.g. a client misconfigured for s3).
    assertError(await rawCall(srv.endpoint, srv.keys, create, body, { service: 's3' }), 403, 'InvalidSignatureException');
    // A replay of a signature made an hour ago.
    const old = await rawCall(srv.endpoint, undefined, create, body, {
      tamper: (h) => Object.assign(h, signRequest({ method: 'POST', url, headers: { ...h }, body }, { ...srv.keys, region: 'us-east-1', service: 'ecs', date: new Date(Date.now() - 3600_000) })),
    });
    assert.equal(old.status >= 400 && old.status < 500, true);
    assert.match(old.json.__type, /InvalidSignatureException|IncompleteSignatureException/);
    // A garbled Authorization header.
    assertError(await rawCall(srv.endpoint, undefined, create, body, { headers: { authorization: 'AWS4-HMAC-SHA256 nonsense' } }), 400, 'IncompleteSignatureException');

    assert.ok(!(await clusterNames()).includes('intruder'), 'no refused request created anything');
  });

  test('an unsigned X-Amz-Target is refused: a signed body cannot be replayed against another operation', async () => {
    assert.equal((await ecsCall(srv, 'CreateCluster', { clusterName: 'replay-victim' })).status, 200);
    const body = JSON.stringify({ cluster: 'replay-victim' });
    // Signed without a target (so the signature covers the body only), then sent as a delete.
    const r = await rawCall(srv.endpoint, srv.keys, undefined, body, { tamper: (h) => (h['x-amz-target'] = T('DeleteCluster')) });
    assertError(r, 400, 'IncompleteSignatureException');
    assert.equal(r.json.message, "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.");
    // The same for Secrets Manager, the other JSON protocol API that holds something to steal.
    const sm = await rawCall(srv.endpoint, srv.keys, undefined, JSON.stringify({ SecretId: 'x' }), { service: 'secretsmanager', tamper: (h) => (h['x-amz-target'] = 'secretsmanager.GetSecretValue') });
    assertError(sm, 400, 'IncompleteSignatureException');
    const described = await ecsCall(srv, 'DescribeClusters', { clusters: ['replay-victim'] });
    assert.equal(described.json.clusters[0]?.status, 'ACTIVE', 'the refused delete changed nothing');
  });

  test('the AWS CLI with a wrong secret gets InvalidSignatureException', async () => {
    const r = await awsCli(srv, ['list-clusters'], { AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /InvalidSignatureException/);
  });
});

describe('cluster join tokens', () => {
  test("an agent's key may do what an agent does and nothing else", async () => {
    const agent = ensureAgentToken(srv.dataDir, 'default');
    const reg = await rawCall(srv.endpoint, agent, T('RegisterContainerInstance'), JSON.stringify({ cluster: 'default', totalResources: [] }));
    assert.equal(reg.status, 200, JSON.stringify(reg.json));
    const arn = reg.json.containerInstance.containerInstanceArn;
    // Registration hands back the instance credential; the join token itself reports on nothing,
    // and the instance credential only on the tasks placed on its instance (none here).
    const instanceKey = reg.json.wharfInstanceCredential;
    assert.match(instanceKey.accessKeyId, /^AKIAWINST/);
    const unknownTask = JSON.stringify({ cluster: 'default', task: 'arn:aws:ecs:us-east-1:000000000000:task/default/' + 'a'.repeat(32), status: 'RUNNING' });
    for (const key of [agent, instanceKey]) {
      const report = await rawCall(srv.endpoint, key, T('SubmitTaskStateChange'), unknownTask);
      assertError(report, 400, 'AccessDeniedException');
    }

    for (const [op, body] of [
      ['RunTask', { cluster: 'default', taskDefinition: 'x' }],
      ['ListClusters', {}],
      ['DeleteCluster', { cluster: 'default' }],
      ['RegisterTaskDefinition', simpleTaskDefinition('from-an-agent-key')],
    ] as const) {
      for (const key of [agent, instanceKey]) {
        const r = await rawCall(srv.endpoint, key, T(op), JSON.stringify(body));
        assertError(r, 400, 'AccessDeniedException');
        assert.match(r.json.message, new RegExp(`not authorized to perform: ecs:${op}`));
      }
    }
    // Secrets are resolved by the control plane; an agent's key cannot read them.
    const secret = await rawCall(srv.endpoint, agent, 'secretsmanager.GetSecretValue', JSON.stringify({ SecretId: 'any' }), { service: 'secretsmanager' });
    assertError(secret, 400, 'AccessDeniedException');
    // The user's key still does everything, and nothing the agent's key tried happened.
    const described = await ecsCall(srv, 'DescribeContainerInstances', { cluster: 'default', containerInstances: [arn] });
    assert.equal(described.json.containerInstances[0].containerInstanceArn, arn);
    assert.ok((await clusterNames()).includes('default'));
    const defs = await ecsCall(srv, 'ListTaskDefinitionFamilies', {});
    assert.ok(!defs.json.families.includes('from-an-agent-key'));
  });
});

describe('AWS JSON 1.1', () => {
  test('dispatches on X-Amz-Target; unknown and missing targets get UnknownOperationException', async () => {
    assertError(await rawCall(srv.endpoint, srv.keys, T('LaunchRockets'), '{}'), 400, 'UnknownOperationException');
    assertError(await rawCall(srv.endpoint, srv.keys, 'SomeOtherService_2020.ListClusters', '{}'), 400, 'UnknownOperationException');
    assertError(await rawCall(srv.endpoint, srv.keys, undefined, '{}'), 400, 'UnknownOperationException');
    // The path is irrelevant: the target decides.
    const r = await rawCall(srv.endpoint, srv.keys, T('ListClusters'), '{}');
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.json.clusterArns));
  });

  test('malformed JSON and non-object bodies get SerializationException; an empty body means {}', async () => {
    assertError(await rawCall(srv.endpoint, srv.keys, T('CreateCluster'), '{"clusterName": "half'), 400, 'SerializationException');
    assertError(await rawCall(srv.endpoint, srv.keys, T('CreateCluster'), '["clusterName"]'), 400, 'SerializationException');
    assertError(await rawCall(srv.endpoint, srv.keys, T('CreateCluster'), JSON.stringify({ clusterName: 42 })), 400, 'SerializationException');
    const empty = await rawCall(srv.endpoint, srv.keys, T('ListClusters'), '');
    assert.equal(empty.status, 200);
  });

  test('bodies over 1 MiB are refused (declared or streamed), one just under is served, and the server keeps going', async () => {
    const over = JSON.stringify({ clusterName: 'big', pad: 'x'.repeat(1024 * 1024) });
    const r = await rawCall(srv.endpoint, srv.keys, T('CreateCluster'), over);
    assert.ok(r.status === 413 || r.status === 400, `status ${r.status}`);
    assert.ok(r.json.__type, 'an AWS-style error body');
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 24; i++) c.enqueue(chunk);
        c.close();
      },
    });
    const res = await fetch(srv.endpoint + '/', {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': T('ListClusters') },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.ok(res.status === 413 || res.status === 400, `streamed status ${res.status}`);
    assert.ok(((await res.json()) as { __type?: string }).__type);
    const under = JSON.stringify({ pad: 'y'.repeat(1024 * 1024 - 100) });
    const ok = await rawCall(srv.endpoint, srv.keys, T('ListClusters'), under);
    assert.equal(ok.status, 200, 'unknown members are ignored; size under the limit is fine');
    assert.ok(!(await clusterNames()).includes('big'));
  });

  test('answers carry x-amzn-RequestId and the JSON 1.1 content type; errors are 400 with __type and message', async () => {
    const a = await ecsCall(srv, 'ListClusters', {});
    const b = await ecsCall(srv, 'ListClusters', {});
    assert.equal(a.headers.get('content-type'), 'application/x-amz-json-1.1');
    assert.match(a.headers.get('x-amzn-requestid')!, /^[0-9a-f-]{36}$/);
    assert.notEqual(a.headers.get('x-amzn-requestid'), b.headers.get('x-amzn-requestid'));
    const e = await ecsCall(srv, 'DescribeTaskDefinition', { taskDefinition: 'nothing-here' });
    assertError(e, 400, 'ClientException');
    const missingRequired = await ecsCall(srv, 'DescribeTaskDefinition', {});
    assert.equal(missingRequired.status, 400);
    // The SDK surfaces the same request id.
    const out = await srv.ecs().send(new ListClustersCommand({}));
    assert.match(out.$metadata.requestId!, /^[0-9a-f-]{36}$/);
  });

  test('timestamps are epoch-second numbers, absent members are omitted (no null anywhere)', async () => {
    const reg = await ecsCall(srv, 'RegisterTaskDefinition', simpleTaskDefinition('wire'));
    assert.equal(reg.status, 200);
    const at = reg.json.taskDefinition.registeredAt;
    assert.equal(typeof at, 'number');
    assert.ok(Math.abs(at - Date.now() / 1000) < 60, 'seconds, not milliseconds');
    const texts = [
      reg.text,
      (await ecsCall(srv, 'CreateCluster', { clusterName: 'wire' })).text,
      (await ecsCall(srv, 'DescribeClusters', { clusters: ['wire', 'nope'], include: ['SETTINGS', 'TAGS', 'STATISTICS', 'CONFIGURATIONS', 'ATTACHMENTS'] })).text,
      (await ecsCall(srv, 'DescribeTaskDefinition', { taskDefinition: 'wire', include: ['TAGS'] })).text,
      (await ecsCall(srv, 'ListAccountSettings', { effectiveSettings: true })).text,
      (await ecsCall(srv, 'DeregisterTaskDefinition', { taskDefinition: 'wire:1' })).text,
    ];
    for (const t of texts) assert.ok(!/:\s*null\b/.test(t), `no null member in ${t.slice(0, 200)}`);
    const dereg = JSON.parse(texts[5]!);
    assert.equal(typeof dereg.taskDefinition.deregisteredAt, 'number');
    const desc = JSON.parse(texts[2]!);
    assert.equal(desc.clusters[0].configuration, undefined, 'a section the cluster does not have is omitted');
  });

  test('ARNs are long and carry the configured region and account id', async () => {
    const other = await startTestServer({ region: 'eu-west-3', accountId: '111122223333' });
    try {
      const c = await ecsCall(other, 'CreateCluster', { clusterName: 'paris' });
      assert.equal(c.status, 200, c.text);
      assert.equal(c.json.cluster.clusterArn, 'arn:aws:ecs:eu-west-3:111122223333:cluster/paris');
      const r = await awsCli(other, ['register-task-definition', '--family', 'fam', '--container-definitions', '[{"name":"a","image":"busybox","memory":32}]']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.taskDefinition.taskDefinitionArn, 'arn:aws:ecs:eu-west-3:111122223333:task-definition/fam:1');
    } finally {
      await other.close();
    }
  });
});

describe('observability', () => {
  test('/healthz answers, /metrics counts requests, errors and latency per operation', async () => {
    const h = await fetch(srv.endpoint + '/healthz');
    assert.equal(h.status, 200);
    const scrape = async () => (await fetch(srv.endpoint + '/metrics')).text();
    const count = (text: string, op: string, code: string) => {
      const m = new RegExp(`^wharf_api_requests_total\\{[^}]*operation="${op}"[^}]*code="${code}"[^}]*\\} (\\d+)`, 'm').exec(text)
        ?? new RegExp(`^wharf_api_requests_total\\{[^}]*code="${code}"[^}]*operation="${op}"[^}]*\\} (\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = await scrape();
    for (let i = 0; i < 3; i++) await ecsCall(srv, 'DescribeClusters', { clusters: ['wire'] });
    await ecsCall(srv, 'DescribeTaskDefinition', { taskDefinition: 'no-such-family' });
    const after = await scrape();
    assert.equal(count(after, 'DescribeClusters', 'OK') - count(before, 'DescribeClusters', 'OK'), 3);
    assert.equal(count(after, 'DescribeTaskDefinition', 'ClientException') - count(before, 'DescribeTaskDefinition', 'ClientException'), 1);
    assert.match(after, /^wharf_api_request_duration_seconds_bucket\{[^}]*operation="DescribeClusters"[^}]*\} \d+/m);
    assert.match(after, /^wharf_api_request_duration_seconds_count\{[^}]*operation="DescribeClusters"[^}]*\} \d+/m);
  });

  test('each request is logged as structured JSON with its request id and operation', async () => {
    const r = await ecsCall(srv, 'ListClusters', {});
    const id = r.headers.get('x-amzn-requestid');
    const line = logLines.find((l) => l.requestId === id);
    assert.ok(line, 'a log line carries the request id the client saw');
    assert.equal(line.operation, 'ListClusters');
    const e = await ecsCall(srv, 'DescribeTaskDefinition', { taskDefinition: 'absent' });
    const eline = logLines.find((l) => l.requestId === e.headers.get('x-amzn-requestid'));
    assert.equal(eline?.code, 'ClientException', 'the error code is logged');
  });
});

describe('signature scope', () => {
  test('a request signed for a name that is not a region is refused, names the regions, and changes nothing', async () => {
    const r = await rawCall(srv.endpoint, srv.keys, `${TARGET_PREFIX}.CreateCluster`, JSON.stringify({ clusterName: 'wrong-region' }), { region: 'us-east1' });
    assert.equal(r.status, 403);
    assert.equal(r.json.__type, 'InvalidSignatureException');
    assert.match(r.json.message, /'us-east1' is not an AWS region/);
    assert.match(r.json.message, /eu-west-1, eu-west-2/);
    const d = await ecsCall(srv, 'DescribeClusters', { clusters: ['wrong-region'] });
    assert.equal(d.json.failures[0].reason, 'MISSING');
  });
});
