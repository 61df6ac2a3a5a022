/**
 * Input validation against the shipped models: each case is a class of input that reached a
 * handler and crashed it (found by the API fuzz test, server/api-fuzz.test.ts), or a constraint
 * of the model that ECS enforces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from '../core/errors';
import { loadModel, validateInput } from './model';

const ecs = loadModel('ecs');
const sm = loadModel('secretsmanager');
const sd = loadModel('servicediscovery');
const logs = loadModel('logs');

function refused(model: typeof ecs, op: string, input: unknown): WharfError {
  try {
    validateInput(model, op, input);
  } catch (e) {
    assert.ok(e instanceof WharfError, String(e));
    return e;
  }
  assert.fail(`${op} ${JSON.stringify(input)} was accepted`);
}

const cases: { name: string; op: string; input: unknown; code: string; message: RegExp; model?: typeof ecs }[] = [
  { name: 'a null list item', op: 'DescribeTasks', input: { tasks: [null] }, code: 'SerializationException', message: /^tasks\[0\]: null is not a valid list item\.$/ },
  { name: 'a null member', op: 'RunTask', input: { taskDefinition: 'web', startedBy: null }, code: 'SerializationException', message: /^startedBy: null is not a valid value/ },
  { name: 'a null required member', op: 'DescribeTasks', input: { tasks: null }, code: 'SerializationException', message: /^tasks: null/ },
  { name: 'a null nested member', op: 'RunTask', input: { taskDefinition: 'web', overrides: { containerOverrides: [{ name: null }] } }, code: 'SerializationException', message: /^overrides\.containerOverrides\[0\]\.name: null/ },
  { name: 'a null map value', op: 'RegisterTaskDefinition', input: { family: 'f', containerDefinitions: [{ name: 'a', dockerLabels: { k: null } }] }, code: 'SerializationException', message: /dockerLabels\.k: null is not a valid map value/ },
  { name: 'a null item of a list of structures', op: 'TagResource', input: { resourceArn: 'arn', tags: [null] }, code: 'SerializationException', message: /^tags\[0\]: null/ },
  { name: 'a string where a list goes', op: 'DeleteTaskDefinitions', input: { taskDefinitions: 'web:1' }, code: 'SerializationException', message: /expected a list, found a string/ },
  { name: 'an integer beyond 32 bits', op: 'RunTask', input: { taskDefinition: 'web', count: 2 ** 31 }, code: 'SerializationException', message: /out of range for a 32-bit integer/ },
  { name: 'a fraction where an integer goes', op: 'RunTask', input: { taskDefinition: 'web', count: 1.5 }, code: 'SerializationException', message: /expected an integer/ },
  { name: 'an infinite number (1e400 in JSON)', op: 'CreateService', input: JSON.parse('{"serviceName":"s","deploymentConfiguration":{"bakeTimeInMinutes":1e400}}'), code: 'SerializationException', message: /expected an integer/ },
  { name: 'a lone surrogate', op: 'DescribeClusters', input: JSON.parse('{"clusters":["\\ud800"]}'), code: 'SerializationException', message: /not valid Unicode/ },
  { name: 'a tag key over the model\'s 128 characters', op: 'TagResource', input: { resourceArn: 'arn', tags: [{ key: 'k'.repeat(129), value: 'v' }] }, code: 'InvalidParameterException', message: /at 'tags\[0\]\.key' failed to satisfy constraint: Member must have length less than or equal to 128/ },
  { name: 'an empty tag key', op: 'TagResource', input: { resourceArn: 'arn', tags: [{ key: '', value: 'v' }] }, code: 'InvalidParameterException', message: /Member must have length greater than or equal to 1/ },
  { name: 'more than 50 tags', op: 'TagResource', input: { resourceArn: 'arn', tags: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: 'v' })) }, code: 'InvalidParameterException', message: /at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50/ },
  { name: 'a Service Connect port beyond 65535', op: 'CreateService', input: { serviceName: 's', serviceConnectConfiguration: { enabled: true, services: [{ portName: 'web', clientAliases: [{ port: 70000 }] }] } }, code: 'InvalidParameterException', message: /at 'serviceConnectConfiguration\.services\[0\]\.clientAliases\[0\]\.port' failed to satisfy constraint: Member must have value less than or equal to 65535/ },
  { name: 'a capacity provider weight beyond 1000', op: 'RunTask', input: { taskDefinition: 'web', capacityProviderStrategy: [{ capacityProvider: 'p', weight: 1001 }] }, code: 'InvalidParameterException', message: /Member must have value less than or equal to 1000/ },
  { name: 'a timestamp as a string', op: 'SubmitTaskStateChange', input: { pullStartedAt: 'yesterday' }, code: 'SerializationException', message: /^pullStartedAt: expected a timestamp in epoch seconds, found a string\.$/ },
  { name: 'a missing required member', op: 'DescribeTasks', input: {}, code: 'InvalidParameterException', message: /^tasks is required\.$/ },
  { name: 'a Secrets Manager null member', model: sm, op: 'CreateSecret', input: { Name: 'n', Description: null }, code: 'SerializationException', message: /^Description: null/ },
  { name: 'a Secrets Manager name over 512 characters', model: sm, op: 'CreateSecret', input: { Name: 'n'.repeat(513) }, code: 'InvalidParameterException', message: /Member must have length less than or equal to 512/ },
  { name: 'a Secrets Manager MaxResults of 0', model: sm, op: 'ListSecrets', input: { MaxResults: 0 }, code: 'InvalidParameterException', message: /Member must have value greater than or equal to 1/ },
  { name: 'a Secrets Manager binary over 64 KiB', model: sm, op: 'CreateSecret', input: { Name: 'n', SecretBinary: Buffer.alloc(65537).toString('base64') }, code: 'InvalidParameterException', message: /Member must have length less than or equal to 65536/ },
  { name: 'a Secrets Manager SecretId of the wrong type', model: sm, op: 'GetSecretValue', input: { SecretId: 7 }, code: 'SerializationException', message: /SecretId: expected a string, found a number/ },
  // The model's patterns, matched against the whole value as AWS does.
  { name: 'a Cloud Map service name with a space', model: sd, op: 'CreateService', input: { Name: 'bad name' }, code: 'InvalidParameterException', message: /^1 validation error detected: Value 'bad name' at 'Name' failed to satisfy constraint: Member must satisfy regular expression pattern: \(\(\?=\^\.\{1,127\}\$\)/ },
  { name: 'a Cloud Map instance id with a space', model: sd, op: 'RegisterInstance', input: { ServiceId: 'srv-1', InstanceId: 'bad id/with space', Attributes: {} }, code: 'InvalidParameterException', message: /Value 'bad id\/with space' at 'InstanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: \^\[0-9a-zA-Z_\/:\.@-\]\+\$$/ },
  { name: 'a Cloud Map HTTP namespace named like an ARN', model: sd, op: 'CreateHttpNamespace', input: { Name: 'arn:bar' }, code: 'InvalidParameterException', message: /Value 'arn:bar' at 'Name' failed to satisfy constraint: Member must satisfy regular expression pattern: \^\(\?!arn:\)/ },
  { name: 'a Cloud Map attribute value starting with a space', model: sd, op: 'RegisterInstance', input: { ServiceId: 'srv-1', InstanceId: 'i', Attributes: { color: ' blue' } }, code: 'InvalidParameterException', message: /at 'Attributes\.color' failed to satisfy constraint: Member must satisfy regular expression pattern/ },
  { name: 'a log group name with a space (an unanchored pattern still spans the value)', model: logs, op: 'CreateLogGroup', input: { logGroupName: 'my group' }, code: 'InvalidParameterException', message: /at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: \[\\\.\\-_\/#A-Za-z0-9\]\+$/ },
];

for (const c of cases) {
  test(`refused: ${c.name}`, () => {
    const e = refused(c.model ?? ecs, c.op, c.input);
    assert.equal(e.code, c.code, e.message);
    assert.match(e.message, c.message);
  });
}

test('a plausible request passes, unknown members included (AWS ignores them)', () => {
  validateInput(ecs, 'RunTask', { cluster: 'c', taskDefinition: 'web:1', count: 10, startedBy: 'me', tags: [{ key: 'a', value: '' }], somethingNew: null });
  validateInput(ecs, 'RegisterTaskDefinition', { family: 'f', containerDefinitions: [{ name: 'a', image: 'nginx', portMappings: [{ containerPort: 65535 }], dockerLabels: { k: 'v' } }] });
  validateInput(sm, 'CreateSecret', { Name: 'db/creds', SecretString: '{"u":1}', ClientRequestToken: 'a'.repeat(32) });
});

test('names the model\'s patterns allow pass, Java-only escapes included', () => {
  validateInput(sd, 'CreateService', { Name: '_http._tcp.web', NamespaceId: 'ns-1' });
  validateInput(sd, 'RegisterInstance', { ServiceId: 'srv-1', InstanceId: 'i-1/a:b@c.d', Attributes: { AWS_INSTANCE_IPV4: '10.0.0.1', note: 'a b\tc' } });
  validateInput(sd, 'CreatePrivateDnsNamespace', { Name: 'svc.local', Vpc: 'vpc-1' });
  // Secrets Manager's filter pattern escapes '!', '=' and ' ' (`\!`, `\=`), which JavaScript's
  // unicode mode refuses as written.
  validateInput(sm, 'ListSecrets', { Filters: [{ Key: 'name', Values: ['!prod db=1'] }] });
  assert.throws(() => validateInput(sm, 'ListSecrets', { Filters: [{ Key: 'name', Values: ['a#b'] }] }), /Member must satisfy regular expression pattern/);
  validateInput(ecs, 'TagResource', { resourceArn: 'arn', tags: [{ key: 'team:a/b=c+d-e@f', value: 'Zürich 1' }] });
});
