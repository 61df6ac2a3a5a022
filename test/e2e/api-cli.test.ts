/**
 * Wharf's own CLI: `wharf task-definition register --file examples/webserver.json` registers the
 * example exactly as written (trailing commas, numbers as strings), says what it normalised, and
 * the result is what ECS would store; the API itself stays strict about the same text.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeTaskDefinitionCommand } from '@aws-sdk/client-ecs';
import { REPO, TARGET_PREFIX, rawCall, run, startTestServer, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
const EXAMPLE = path.join(REPO, 'examples', 'webserver.json');
const wharf = (args: string[], env = srv.env()) => run(process.execPath, ['--import', 'tsx', 'src/cmd/main.ts', ...args], env);

before(async () => {
  srv = await startTestServer();
});
after(() => srv.close());

test('registers examples/webserver.json as written and reports each normalisation', async () => {
  const text = fs.readFileSync(EXAMPLE, 'utf8');
  assert.throws(() => JSON.parse(text), 'the example is not strict JSON (that is the point)');
  const r = await wharf(['task-definition', 'register', '--file', EXAMPLE, '--endpoint', srv.endpoint]);
  assert.equal(r.code, 0, r.stderr);
  const notes = r.stderr.split('\n').filter((l) => l.startsWith('normalised:'));
  assert.ok(notes.some((n) => /trailing comma/i.test(n)), `mentions the trailing commas: ${r.stderr}`);
  assert.ok(notes.some((n) => /memory/.test(n) && /100/.test(n)), `mentions memory "100": ${r.stderr}`);
  assert.ok(notes.some((n) => /cpu/.test(n) && /99/.test(n)), `mentions cpu "99": ${r.stderr}`);

  const out = JSON.parse(r.stdout);
  assert.equal(out.taskDefinition.family, 'webserver');
  assert.equal(out.taskDefinition.revision, 1);
  const d = await srv.ecs().send(new DescribeTaskDefinitionCommand({ taskDefinition: 'webserver:1' }));
  const td = d.taskDefinition!;
  assert.equal(td.containerDefinitions![0]!.memory, 100, 'container memory became the integer ECS wants');
  assert.equal(td.containerDefinitions![0]!.cpu, 99);
  assert.equal(td.cpu, '256', 'task-level cpu stays a string');
  assert.equal(td.memory, '512');
  assert.equal(td.networkMode, 'awsvpc');
  assert.deepEqual(td.requiresCompatibilities, ['FARGATE']);
  assert.ok(td.compatibilities!.includes('FARGATE'));
});

test('the API refuses the same text: it stays as strict as ECS', async () => {
  const text = fs.readFileSync(EXAMPLE, 'utf8');
  const raw = await rawCall(srv.endpoint, srv.keys, `${TARGET_PREFIX}.RegisterTaskDefinition`, text);
  assert.equal(raw.status, 400);
  assert.equal(raw.json.__type, 'SerializationException');
  const noCommas = text.replace(/,\s*([}\]])/g, '$1');
  const raw2 = await rawCall(srv.endpoint, srv.keys, `${TARGET_PREFIX}.RegisterTaskDefinition`, noCommas);
  assert.equal(raw2.status, 400, 'numbers as strings are refused by the API');
  assert.equal(raw2.json.__type, 'SerializationException');
});

test('a definition ECS would refuse is refused through the CLI too, with the error code, exit 1', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-cli-'));
  try {
    const f = path.join(dir, 'bad.json');
    fs.writeFileSync(f, '{"family": "bad", "containerDefinitions": [{"name": "a", "image": "busybox", "essential": false, "memory": "64",},],}');
    const r = await wharf(['task-definition', 'register', '--file', f, '--endpoint', srv.endpoint]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ClientException|InvalidParameterException/);
    const broken = path.join(dir, 'broken.json');
    fs.writeFileSync(broken, '{"family": "x", "containerDefinitions": [ {"name": "a" "image": "b"} ]}');
    const b = await wharf(['task-definition', 'register', '--file', broken, '--endpoint', srv.endpoint]);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /line 1 col \d+/, 'a real syntax error says where');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without AWS_* variables the CLI finds the local server credentials in --data-dir', async () => {
  const env = { ...srv.env() };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  const r = await wharf(['task-definition', 'register', '--file', EXAMPLE, '--endpoint', srv.endpoint, '--data-dir', srv.dataDir], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).taskDefinition.revision, 2);
  const wrong = await wharf(['task-definition', 'register', '--file', EXAMPLE, '--endpoint', srv.endpoint], { ...env, AWS_ACCESS_KEY_ID: 'AKIANOTAKEY000000000', AWS_SECRET_ACCESS_KEY: 'x' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /UnrecognizedClientException/);
});
