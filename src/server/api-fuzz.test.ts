/**
 * Fuzzes the API over HTTP: ten thousand requests generated from the models of every API Wharf
 * serves (server/request-fuzzer.ts): ECS, Secrets Manager and Cloud Map in JSON, EC2 and ELBv2
 * form-encoded; signed correctly and sent to the real HTTP server with the real handlers over an
 * in-memory store (server/api-fuzz-harness.ts), plus a slice of requests with malformed paths,
 * headers and signatures. Every answer must be a 200 or a well-formed AWS error below 500 (JSON or
 * the query protocol's XML), nothing may be logged as a server error, and a refused request must
 * leave the whole store as it was. The transport and identity attacks are in
 * api-fuzz-transport.test.ts and api-fuzz-identity.test.ts.
 *
 * The long run (RELIABILITY.md): WHARF_FUZZ_REQUESTS=100000 WHARF_FUZZ_SEED=7 node --import tsx --test --test-name-pattern=model-generated src/server/api-fuzz.test.ts
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { loadModel } from '../api/model';
import { casUpdate } from '../store/store';
import { keys, type ContainerInstanceRecord } from '../core/resources';
import { seededRandom } from '../lib/seeded-random';
import { AGENT_KEY, ECS_TARGET_PREFIX, FUZZ_ACCOUNT, FUZZ_REGION, USER_KEY, dumpStore, errorCode, malformed, startFuzzServer, storeDiff, type Answer, type FuzzServer, type SignedPost } from './api-fuzz-harness';
import { RequestFuzzer, type FuzzService } from './request-fuzzer';

const REQUESTS = Number(process.env.WHARF_FUZZ_REQUESTS ?? 10_000);
const SEED = Number(process.env.WHARF_FUZZ_SEED ?? 20261206);
const REGION = FUZZ_REGION;
const ACCOUNT = FUZZ_ACCOUNT;
const USER = USER_KEY;
const AGENT = AGENT_KEY;
const ecsPrefix = ECS_TARGET_PREFIX;
const FORM = 'application/x-www-form-urlencoded; charset=utf-8';

let fz: FuzzServer;
let port: number;

before(async () => {
  fz = await startFuzzServer();
  port = fz.port;
});

after(() => fz.close());

const post = (p: SignedPost) => fz.post(p);
const ecs = (op: string, input: unknown) => post({ target: `${ecsPrefix}.${op}`, body: JSON.stringify(input) });
const secrets = (op: string, input: unknown) => post({ target: `secretsmanager.${op}`, body: JSON.stringify(input), service: 'secretsmanager' });
const query = (service: string, params: Record<string, string>) => post({ body: new URLSearchParams(params).toString(), contentType: FORM, service });

/** Resources that exist, so that plausible requests reach the code past the lookups. */
async function seed(): Promise<string[]> {
  const ok = async (p: Promise<Answer>) => {
    const a = await p;
    assert.equal(a.status, 200, a.text);
    return a.text.startsWith('<') ? { xml: a.text } as Record<string, any> : JSON.parse(a.text) as Record<string, any>;
  };
  await ok(ecs('CreateCluster', { clusterName: 'fuzz' }));
  await ok(ecs('CreateCluster', { clusterName: 'default' }));
  const td = await ok(
    ecs('RegisterTaskDefinition', {
      family: 'fuzz-td',
      containerDefinitions: [{ name: 'web', image: 'nginx', memory: 128, portMappings: [{ containerPort: 80 }] }],
    }),
  );
  await ok(ecs('RegisterTaskDefinition', { family: 'fuzz-old', containerDefinitions: [{ name: 'web', image: 'nginx', memory: 64 }] }));
  await ok(ecs('DeregisterTaskDefinition', { taskDefinition: 'fuzz-old:1' }));
  await ok(ecs('CreateService', { cluster: 'fuzz', serviceName: 'fuzz-svc', taskDefinition: 'fuzz-td', desiredCount: 0 }));
  const secret = await ok(secrets('CreateSecret', { Name: 'fuzz-secret', SecretString: '{"username":"u","password":"p"}' }));
  // A container instance whose agent counts as connected (there is no agent in this test), so
  // that RunTask places tasks and the task operations have tasks to act on.
  const reg = await ok(
    ecs('RegisterContainerInstance', {
      cluster: 'fuzz',
      totalResources: [
        { name: 'CPU', type: 'INTEGER', integerValue: 4096 },
        { name: 'MEMORY', type: 'INTEGER', integerValue: 8192 },
        { name: 'PORTS', type: 'STRINGSET', stringSetValue: ['22'] },
      ],
    }),
  );
  const instanceArn: string = reg.containerInstance.containerInstanceArn;
  const instanceKey = keys.instance('fuzz', instanceArn.split('/').pop()!);
  const rev = await casUpdate<ContainerInstanceRecord>(fz.store, instanceKey, (cur) => ({ ...cur!.value, agentConnected: true }));
  await fz.state.waitFor(rev.revision);
  const run = await ok(ecs('RunTask', { cluster: 'fuzz', taskDefinition: 'fuzz-td', count: 2 }));
  assert.equal(run.tasks.length, 2, JSON.stringify(run));
  // The EC2 and ELBv2 side: the default VPC, a security group and a target group in it.
  const vpcs = await ok(query('ec2', { Action: 'DescribeVpcs', Version: '2016-11-15' }));
  const vpcId = /<vpcId>([^<]+)<\/vpcId>/.exec(vpcs.xml)![1]!;
  const subnets = await ok(query('ec2', { Action: 'DescribeSubnets', Version: '2016-11-15' }));
  const subnetIds = [...subnets.xml.matchAll(/<subnetId>([^<]+)<\/subnetId>/g)].map((m: RegExpMatchArray) => m[1]!);
  const sg = await ok(query('ec2', { Action: 'CreateSecurityGroup', Version: '2016-11-15', GroupName: 'fuzz-sg', GroupDescription: 'fuzz', VpcId: vpcId }));
  const sgId = /<groupId>([^<]+)<\/groupId>/.exec(sg.xml)![1]!;
  const tg = await ok(query('elasticloadbalancing', { Action: 'CreateTargetGroup', Version: '2015-12-01', Name: 'fuzz-tg', Protocol: 'HTTP', Port: '80', VpcId: vpcId, TargetType: 'ip' }));
  const tgArn = /<TargetGroupArn>([^<]+)<\/TargetGroupArn>/.exec(tg.xml)![1]!;
  return [
    'fuzz', 'default', 'fuzz-td', 'fuzz-td:1', 'fuzz-old:1', 'fuzz-svc', 'fuzz-secret', 'web',
    td.taskDefinition.taskDefinitionArn, secret.ARN,
    `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/fuzz`,
    `arn:aws:ecs:${REGION}:${ACCOUNT}:service/fuzz/fuzz-svc`,
    `arn:aws:ecs:${REGION}:${ACCOUNT}:task/fuzz/0123456789abcdef0123456789abcdef`,
    `arn:aws:ecs:${REGION}:${ACCOUNT}:container-instance/fuzz/0123456789abcdef0123456789abcdef`,
    instanceArn, instanceArn.split('/').pop()!,
    ...run.tasks.map((t: { taskArn: string }) => t.taskArn), run.tasks[0].taskArn.split('/').pop(),
    vpcId, ...subnetIds, sgId, 'fuzz-sg', tgArn, 'fuzz-tg', 'HTTP', '80', '10.0.0.1',
  ];
}

/** Counts by a label, printed in the test's diagnostics and RELIABILITY.md. */
function tally(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}
const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);

test(`${REQUESTS} model-generated requests (seed ${SEED}) to ECS, Secrets Manager, Cloud Map, EC2 and ELBv2: no 5xx, every error well-formed, refused requests change nothing`, async (t) => {
  const known = await seed();
  const [ecsApi, smApi, cmApi] = fz.apis;
  const [ec2Api, elbApi] = fz.queryApis;
  const services: FuzzService[] = [
    { targetPrefix: ecsPrefix, signingName: 'ecs', model: loadModel('ecs'), operations: Object.keys(ecsApi!.handlers) },
    { targetPrefix: 'secretsmanager', signingName: 'secretsmanager', model: loadModel('secretsmanager'), operations: Object.keys(smApi!.handlers) },
    { targetPrefix: 'Route53AutoNaming_v20170314', signingName: 'servicediscovery', model: loadModel('servicediscovery'), operations: Object.keys(cmApi!.handlers) },
    { protocol: 'query', targetPrefix: '', signingName: ec2Api!.signingName, model: ec2Api!.model, operations: Object.keys(ec2Api!.handlers) },
    { protocol: 'query', targetPrefix: '', signingName: elbApi!.signingName, model: elbApi!.model, operations: Object.keys(elbApi!.handlers) },
  ];
  const fuzzer = new RequestFuzzer(services, SEED, known);
  const rnd = seededRandom(SEED ^ 0x5eed);
  const failures: string[] = [];
  const byStatus = new Map<string, number>();
  const byCode = new Map<string, number>();
  let refused = 0;
  // The store as it is before the next request: a refused request must leave it exactly so (every
  // key, value and revision); an accepted one moves it on. The memory store keeps values as JSON
  // text and changes only through revisioned writes, so while its revision stands still the dump
  // cannot differ and is not taken again.
  let dump = await dumpStore(fz.store);
  let dumpRevision = await fz.store.revision();
  const started = Date.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) {
    const r = fuzzer.next();
    const isQuery = r.service.protocol === 'query';
    // A few requests come from an agent's key, which may call only the agent's operations.
    const keys = rnd() < 0.05 ? AGENT : USER;
    const a = await post(isQuery
      ? { body: r.body, contentType: FORM, keys, service: r.service.signingName }
      : { target: `${r.service.targetPrefix}.${r.operation}`, body: r.body, keys, service: r.service.signingName });
    tally(byStatus, String(a.status));
    tally(byCode, errorCode(a) ?? 'OK');
    const revision = await fz.store.revision();
    const after = revision === dumpRevision ? dump : await dumpStore(fz.store);
    dumpRevision = revision;
    // Deep nests shown shortened, so that the report shows where they are.
    const shown = r.body.replace(/\[{10,}/g, '[[...').replace(/\]{10,}/g, '...]]').replace(/(\{"a":){10,}/g, '{"a":...').replace(/\}{10,}/g, '...}');
    const what = `#${i} ${r.service.signingName}:${r.operation} (${r.mutation}${keys === AGENT ? ', agent key' : ''}) ${shown.slice(0, 600)}`;
    const bad = malformed(a, isQuery ? 'query' : 'json');
    if (bad) failures.push(`${what}\n  -> ${bad}: ${a.text.slice(0, 300)}`);
    if (a.status !== 200) {
      refused++;
      const changed = storeDiff(dump, after);
      if (after !== dump) changed.push(`revision moved to ${revision}`);
      if (changed.length) failures.push(`${what}\n  -> refused (${a.text.slice(0, 200)}) but the store changed: ${changed.slice(0, 5).join(', ')}`);
    }
    dump = after;
  }
  const seconds = (Date.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  t.diagnostic(`${REQUESTS} requests in ${seconds.toFixed(1)} s (${Math.round(REQUESTS / seconds)}/s; ${((used.user + used.system) / 1e6).toFixed(1)} s of CPU for client and server together), seed ${SEED}, ${dump.size} keys in the store at the end`);
  t.diagnostic(`by status: ${JSON.stringify(sorted(byStatus))}`);
  t.diagnostic(`by code: ${JSON.stringify(sorted(byCode))}`);
  const serverErrors = fz.serverErrors();
  assert.deepEqual(failures.slice(0, 15), [], `${failures.length} bad answers of ${REQUESTS}; logged:\n${serverErrors.slice(0, 3).join('\n')}`);
  assert.deepEqual(serverErrors.slice(0, 5), [], 'nothing is logged as an error');
  // The run exercised both outcomes, so the checks above were not vacuous.
  assert.ok((byStatus.get('200') ?? 0) > REQUESTS / 20, `enough requests succeeded: ${JSON.stringify([...byStatus])}`);
  assert.ok(refused > REQUESTS / 4, `enough requests were refused: ${JSON.stringify([...byStatus])}`);
});

test('malformed paths, headers and signatures get an auth or client error, never a 5xx', async () => {
  const before = await fz.store.revision();
  const body = JSON.stringify({ clusterName: 'fuzz-should-not-exist' });
  const target = `${ecsPrefix}.CreateCluster`;
  const wrongSecret = { ...USER, secretAccessKey: 'not-the-secret' };
  const cases: { name: string; answer: Promise<Answer>; status: number; type: string }[] = [];
  for (const path of ['//', '//a/b', '///', '/x/../..', '/%zz', '/%ff%fe', '/?a=%zz', '/a?b', '/%C3%A9', '/*']) {
    cases.push({ name: `POST ${path} with a wrong secret`, answer: post({ path, target, body, keys: wrongSecret }), status: 403, type: 'InvalidSignatureException' });
    cases.push({ name: `POST ${path} with an unknown key`, answer: post({ path, target, body, keys: { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' } }), status: 400, type: 'UnrecognizedClientException' });
  }
  cases.push({ name: 'a signature scoped to another service', answer: post({ target, body, service: 'sqs' }), status: 403, type: 'InvalidSignatureException' });
  cases.push({ name: 'no X-Amz-Target, wrong secret', answer: post({ body, keys: wrongSecret }), status: 403, type: 'InvalidSignatureException' });
  cases.push({ name: 'an unsigned request', answer: post({ target, body, unsigned: true }), status: 403, type: 'MissingAuthenticationTokenException' });
  cases.push({ name: 'a garbled Authorization header', answer: post({ target, body, unsigned: true, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=, Signature=zz' } }), status: 400, type: 'IncompleteSignatureException' });
  for (const [name, t] of [['an empty target', ''], ['a target with no operation', `${ecsPrefix}.`], ['a target with no service', '.CreateCluster'], ['a target of dots', '...']]) {
    cases.push({ name, answer: post({ target: t!, body }), status: 400, type: 'UnknownOperationException' });
  }
  // Nesting deeper than any parser's recursion, under the body size limit.
  const deep = `{"clusterName":"fuzz-deep","x":${'['.repeat(400_000)}${']'.repeat(400_000)}}`;
  const nested = await post({ target: `${ecsPrefix}.DescribeClusters`, body: deep });
  assert.equal(malformed(nested), undefined, `deep nesting: ${nested.status} ${nested.text.slice(0, 200)}`);
  assert.equal(nested.status, 400);
  assert.equal(JSON.parse(nested.text).__type, 'SerializationException');
  for (const c of cases) {
    const a = await c.answer;
    assert.equal(malformed(a), undefined, `${c.name}: ${a.status} ${a.text}`);
    assert.equal(a.status, c.status, `${c.name}: ${a.text}`);
    assert.equal(JSON.parse(a.text).__type, c.type, `${c.name}: ${a.text}`);
  }
  assert.equal(await fz.store.revision(), before, 'no refused request changed the store');
});

test('requests the HTTP parser refuses get a 400 answer, not a reset connection', async () => {
  const raw = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.end(text));
      let got = '';
      s.on('data', (d) => (got += String(d)));
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
  for (const text of [
    'POST / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'GARBAGE\r\n\r\n',
  ]) {
    const got = await raw(text);
    assert.match(got, /^HTTP\/1\.1 400 /, JSON.stringify(text));
  }
});

test('a client that disconnects before its answer is neither logged as an error nor counted as a server error', async () => {
  const errorsBefore = fz.logged.filter((l) => /"level":50/.test(l)).length;
  const count = async (code: string) => {
    const line = (await fz.server.metrics.metrics()).split('\n').find((l) => l.startsWith('wharf_api_requests_total{') && l.includes(`code="${code}"`) && l.includes('operation="unknown"'));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const serverErrorsBefore = await count('ServerException');
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      // Declares a body it never sends, then goes away.
      s.write(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n{"clusterName":`);
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 50);
    });
    s.on('error', reject);
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(fz.logged.filter((l) => /"level":50/.test(l)).length, errorsBefore, fz.logged.slice(errorsBefore).join('\n'));
  assert.equal(await count('ServerException'), serverErrorsBefore);
  assert.equal(await count('ClientClosedRequest'), 1);
});

test('regressions found by fuzzing: nulls are refused before any handler runs, and change nothing', async () => {
  const before = await fz.store.revision();
  const refusals: [string, unknown, RegExp][] = [
    ['DescribeTasks', { cluster: 'fuzz', tasks: [null] }, /^tasks\[0\]: null is not a valid list item/],
    ['RunTask', { cluster: 'fuzz', taskDefinition: 'fuzz-td', startedBy: null }, /^startedBy: null/],
    ['DeleteTaskDefinitions', { taskDefinitions: ['fuzz-old:1', null] }, /^taskDefinitions\[1\]: null/],
    ['UntagResource', { resourceArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/fuzz`, tagKeys: [null] }, /^tagKeys\[0\]: null/],
    ['CreateCluster', { clusterName: 'fuzz-null', tags: [null] }, /^tags\[0\]: null/],
    ['StopTask', { cluster: 'fuzz', task: 'x', reason: null }, /^reason: null/],
  ];
  for (const [op, input, message] of refusals) {
    const a = await ecs(op, input);
    assert.equal(a.status, 400, `${op}: ${a.text}`);
    const e = JSON.parse(a.text);
    assert.equal(e.__type, 'SerializationException', `${op}: ${a.text}`);
    assert.match(e.message, message);
  }
  // An unknown member nested deep inside a known one passed validation and overflowed the
  // stack in RunTask's clientToken fingerprint (JSON.stringify).
  const deepTag = `{"cluster":"fuzz","taskDefinition":"fuzz-td","tags":[{"a":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}]}`;
  const d = await post({ target: `${ecsPrefix}.RunTask`, body: deepTag });
  assert.equal(d.status, 400, d.text);
  assert.deepEqual(JSON.parse(d.text), { __type: 'SerializationException', message: 'The request body is nested more than 64 levels deep.' });
  const s = await secrets('GetSecretValue', { SecretId: '\ud800' });
  assert.equal(s.status, 400, s.text);
  assert.equal(JSON.parse(s.text).__type, 'SerializationException');
  assert.equal(await fz.store.revision(), before);
});

test('DeleteTaskDefinitions is per item: the valid items are deleted and each other one is a failure', async () => {
  const reg = async (family: string) => {
    const a = await ecs('RegisterTaskDefinition', { family, containerDefinitions: [{ name: 'a', image: 'nginx', memory: 32 }] });
    assert.equal(a.status, 200, a.text);
  };
  await reg('fuzz-del');
  await reg('fuzz-keep');
  assert.equal((await ecs('DeregisterTaskDefinition', { taskDefinition: 'fuzz-del:1' })).status, 200);
  const a = await ecs('DeleteTaskDefinitions', { taskDefinitions: ['fuzz-del:1', 'fuzz-keep:1', 'fuzz-nothing:1', 'fuzz-del'] });
  assert.equal(a.status, 200, a.text);
  const out = JSON.parse(a.text) as { taskDefinitions: { family: string; status: string }[]; failures: { arn: string; reason: string }[] };
  assert.deepEqual(out.taskDefinitions.map((t) => [t.family, t.status]), [['fuzz-del', 'DELETE_IN_PROGRESS']]);
  assert.deepEqual(out.failures.map((f) => f.reason), [
    'The specified task definition is still in ACTIVE status. Please deregister the target and try again.',
    'The specified task definition does not exist. Specify a valid account, family, revision and try again.',
    'The specified task definition identifier is invalid. Specify a valid name or ARN and try again.',
  ]);
  const keep = JSON.parse((await ecs('DescribeTaskDefinition', { taskDefinition: 'fuzz-keep:1' })).text);
  assert.equal(keep.taskDefinition.status, 'ACTIVE');
});
