import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WharfError } from '../../core/errors';
import { validateAndNormalizeTaskDefinition } from '../../core/task-definition';
import { parseLenientTaskDefinition } from './lenient-json';

const WEBSERVER =
  '{"family": "webserver", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": "100", "cpu": "99"},], "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "memory": "512", "cpu": "256",}';

/** Column (1-based) of the n-th occurrence of `needle` in a one-line text. */
function colOf(text: string, needle: string, nth = 1): number {
  let at = -1;
  for (let i = 0; i < nth; i++) at = text.indexOf(needle, at + 1);
  return at + 1;
}

test('examples/webserver.json holds exactly the documented text', () => {
  const file = readFileSync(join(__dirname, '..', '..', '..', 'examples', 'webserver.json'), 'utf8');
  assert.equal(file, WEBSERVER);
});

test('the webserver example parses, with a note for each repair, and registers as FARGATE compatible', () => {
  const { value, notes } = parseLenientTaskDefinition(WEBSERVER);
  assert.deepEqual(value, {
    family: 'webserver',
    containerDefinitions: [{ name: 'web', image: 'nginx', memory: 100, cpu: 99 }],
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    memory: '512',
    cpu: '256',
  });
  assert.deepEqual(notes, [
    `removed trailing comma at line 1 col ${colOf(WEBSERVER, '},]') + 1}`,
    `removed trailing comma at line 1 col ${colOf(WEBSERVER, ',}')}`,
    'containerDefinitions[0].memory: string "100" -> 100',
    'containerDefinitions[0].cpu: string "99" -> 99',
  ]);
  const { taskDefinition } = validateAndNormalizeTaskDefinition(value);
  assert.ok(taskDefinition.compatibilities.includes('FARGATE'));
  assert.equal(taskDefinition.containerDefinitions[0]!.memory, 100);
});

test('comments are removed and noted with their position', () => {
  const text = '{\n  // the family\n  "family": "a", /* inline */ "containerDefinitions": []\n}';
  const { value, notes } = parseLenientTaskDefinition(text);
  assert.deepEqual(value, { family: 'a', containerDefinitions: [] });
  assert.deepEqual(notes, ['removed comment at line 2 col 3', 'removed comment at line 3 col 18']);
});

test('strict JSON passes through without notes', () => {
  const req = { family: 'a', containerDefinitions: [{ name: 'w', image: 'nginx', memory: 64, essential: true }] };
  const { value, notes } = parseLenientTaskDefinition(JSON.stringify(req, null, 2));
  assert.deepEqual(value, req);
  assert.deepEqual(notes, []);
});

const coercions: { name: string; text: string; expected: unknown; note: string }[] = [
  {
    name: 'a hostPort written as a string',
    text: '{"family":"a","containerDefinitions":[{"portMappings":[{"containerPort":80,"hostPort":"8080"}]}]}',
    expected: { family: 'a', containerDefinitions: [{ portMappings: [{ containerPort: 80, hostPort: 8080 }] }] },
    note: 'containerDefinitions[0].portMappings[0].hostPort: string "8080" -> 8080',
  },
  {
    name: 'essential written as a string',
    text: '{"family":"a","containerDefinitions":[{"essential":"false"}]}',
    expected: { family: 'a', containerDefinitions: [{ essential: false }] },
    note: 'containerDefinitions[0].essential: string "false" -> false',
  },
  {
    name: 'task cpu written as a number',
    text: '{"family":"a","cpu":256,"containerDefinitions":[]}',
    expected: { family: 'a', cpu: '256', containerDefinitions: [] },
    note: 'cpu: number 256 -> "256"',
  },
  {
    name: 'an environment value written as a number',
    text: '{"family":"a","containerDefinitions":[{"environment":[{"name":"PORT","value":8080}]}]}',
    expected: { family: 'a', containerDefinitions: [{ environment: [{ name: 'PORT', value: '8080' }] }] },
    note: 'containerDefinitions[0].environment[0].value: number 8080 -> "8080"',
  },
  {
    name: 'a health-check interval written as a string',
    text: '{"family":"a","containerDefinitions":[{"healthCheck":{"command":["CMD","true"],"interval":"10"}}]}',
    expected: { family: 'a', containerDefinitions: [{ healthCheck: { command: ['CMD', 'true'], interval: 10 } }] },
    note: 'containerDefinitions[0].healthCheck.interval: string "10" -> 10',
  },
  {
    name: 'ephemeral storage written as a string',
    text: '{"family":"a","containerDefinitions":[],"ephemeralStorage":{"sizeInGiB":"30"}}',
    expected: { family: 'a', containerDefinitions: [], ephemeralStorage: { sizeInGiB: 30 } },
    note: 'ephemeralStorage.sizeInGiB: string "30" -> 30',
  },
];

for (const c of coercions) {
  test(`converts ${c.name}`, () => {
    const { value, notes } = parseLenientTaskDefinition(c.text);
    assert.deepEqual(value, c.expected);
    assert.deepEqual(notes, [c.note]);
  });
}

test('a string that is not a whole number is left for validation to reject', () => {
  const { value, notes } = parseLenientTaskDefinition('{"family":"a","containerDefinitions":[{"memory":"lots"}]}');
  assert.equal(value.containerDefinitions[0]!.memory as unknown, 'lots');
  assert.deepEqual(notes, []);
});

test('strings keep their escapes', () => {
  const { value } = parseLenientTaskDefinition('{"family":"a\\u0062","containerDefinitions":[{"command":["echo \\"hi\\"\\n"]}]}');
  assert.equal(value.family, 'ab');
  assert.deepEqual(value.containerDefinitions[0]!.command, ['echo "hi"\n']);
});

const malformed: { name: string; text: string; message: string }[] = [
  { name: 'a missing closing brace', text: '{"family": "a"', message: "Invalid JSON at line 1 col 15: expected ',' or '}'." },
  { name: 'an unquoted member name', text: '{family: "a"}', message: 'Invalid JSON at line 1 col 2: expected a quoted member name or }.' },
  { name: 'an unterminated string', text: '{"family": "a}', message: 'Invalid JSON at line 1 col 12: unterminated string.' },
  { name: 'two commas in a row', text: '[1,,2]', message: "Invalid JSON at line 1 col 4: unexpected character ','." },
  { name: 'text after the document', text: '{} {}', message: 'Invalid JSON at line 1 col 4: unexpected text after the end of the document.' },
  { name: 'an unterminated comment', text: '{} /* ', message: 'Invalid JSON at line 1 col 4: unterminated comment.' },
  { name: 'an error on a later line', text: '{\n  "family": "a",\n  "x": tru\n}', message: "Invalid JSON at line 3 col 8: unexpected character 't'." },
  { name: 'a document that is not an object', text: '[1, 2]', message: 'A task definition file must contain a JSON object.' },
];

for (const m of malformed) {
  test(`rejects ${m.name} with its position`, () => {
    assert.throws(
      () => parseLenientTaskDefinition(m.text),
      (e: unknown) => e instanceof WharfError && e.code === 'SerializationException' && e.message === m.message,
    );
  });
}
