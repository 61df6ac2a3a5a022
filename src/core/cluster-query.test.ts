import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterQueryDependencies, evaluateClusterQuery, parseClusterQuery, parseQueryDate, type QuerySubject } from './cluster-query';
import { isWharfError } from './errors';

function inst(over: Partial<QuerySubject> & { attrs?: Record<string, string | undefined>; groups?: Record<string, number> } = {}): QuerySubject {
  return {
    attributes: new Map(Object.entries(over.attrs ?? { 'ecs.instance-type': 't2.small', 'ecs.availability-zone': 'us-east-1a', stack: 'prod' })),
    agentConnected: over.agentConnected ?? true,
    agentVersion: over.agentVersion ?? '1.20.1',
    ec2InstanceId: over.ec2InstanceId ?? 'i-abcd1234',
    registeredAt: over.registeredAt ?? Date.parse('2018-06-18T22:28:28Z'),
    runningTasksCount: over.runningTasksCount ?? 1,
    tasksByGroup: new Map(Object.entries(over.groups ?? { 'service:production': 1 })),
  };
}

const matches = (expr: string, s: QuerySubject = inst()) => evaluateClusterQuery(parseClusterQuery(expr), s);

test('every example of the ECS developer guide parses and selects what the guide says', () => {
  assert.equal(matches('attribute:ecs.instance-type == t2.small'), true);
  assert.equal(matches('attribute:ecs.availability-zone in [us-east-1a, us-east-1b]'), true);
  assert.equal(matches('attribute:ecs.availability-zone in [us-east-1c, us-east-1b]'), false);
  assert.equal(matches('attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d', inst({ attrs: { 'ecs.instance-type': 'g2.2xlarge', 'ecs.availability-zone': 'us-east-1a' } })), true);
  assert.equal(matches('task:group == service:production'), true);
  assert.equal(matches('not(task:group == database)'), true);
  assert.equal(matches('not(task:group == database)', inst({ groups: { database: 2 } })), false);
  assert.equal(matches('runningTasksCount == 1'), true);
  assert.equal(matches('agentVersion < 1.14.5', inst({ agentVersion: '1.9.0' })), true);
  assert.equal(matches('agentVersion < 1.14.5', inst({ agentVersion: '1.20.1' })), false);
  assert.equal(matches('registeredAt < 2018-02-13', inst({ registeredAt: Date.parse('2018-01-01T00:00:00Z') })), true);
  assert.equal(matches("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']"), true);
  assert.equal(matches('attribute:ecs.instance-type =~ t2.*'), true);
});

test('word aliases behave like the symbols', () => {
  const pairs: [string, string][] = [
    ['attribute:stack equals prod', 'attribute:stack == prod'],
    ['attribute:stack not_equals prod', 'attribute:stack != prod'],
    ['runningTasksCount greater_than 0', 'runningTasksCount > 0'],
    ['runningTasksCount greater_than_equal 2', 'runningTasksCount >= 2'],
    ['runningTasksCount less_than 2', 'runningTasksCount < 2'],
    ['runningTasksCount less_than_equal 0', 'runningTasksCount <= 0'],
    ['attribute:stack not_exists', 'attribute:stack !exists'],
    ['attribute:stack not_in [a, prod]', 'attribute:stack !in [a, prod]'],
    ['attribute:stack matches p.*', 'attribute:stack =~ p.*'],
    ['attribute:stack not_matches p.*', 'attribute:stack !~ p.*'],
    ['attribute:stack == prod and runningTasksCount == 1', 'attribute:stack == prod && runningTasksCount == 1'],
    ['attribute:stack == dev or runningTasksCount == 1', 'attribute:stack == dev || runningTasksCount == 1'],
    ['not attribute:stack == dev', '!attribute:stack == dev'],
  ];
  for (const [words, symbols] of pairs) assert.equal(matches(words), matches(symbols), words);
});

test('an absent attribute satisfies only !exists; a name-only attribute exists', () => {
  assert.equal(matches('attribute:team != blue'), false);
  assert.equal(matches('attribute:team !exists'), true);
  assert.equal(matches('attribute:team exists'), false);
  const cap = inst({ attrs: { 'ecs.capability.efs': undefined } });
  assert.equal(matches('attribute:ecs.capability.efs exists', cap), true);
});

test('and binds tighter than or; parentheses and not regroup', () => {
  assert.equal(matches('attribute:stack == dev and runningTasksCount == 5 or runningTasksCount == 1'), true);
  assert.equal(matches('attribute:stack == dev and (runningTasksCount == 5 or runningTasksCount == 1)'), false);
  assert.equal(matches('!(attribute:stack == dev || attribute:stack == qa)'), true);
});

test('ordered comparisons are numeric for numbers, semantic for versions, by instant for dates', () => {
  const s = inst({ attrs: { disk: '80' }, agentVersion: '1.10.0', registeredAt: Date.parse('2018-06-18T22:28:28Z') });
  assert.equal(matches('attribute:disk < 100', s), true); // "80" < "100" as strings would be false
  assert.equal(matches('agentVersion > 1.9.9', s), true);
  assert.equal(matches('registeredAt == 2018-06-18T22:28:28+00:00', s), true);
  assert.equal(matches('registeredAt == 2018-06-18T22:28:28Z', s), true);
  assert.equal(matches('registeredAt == 2018-06-18T22:28:28', s), true);
  assert.equal(matches('registeredAt > 2018-06-18', s), true);
  assert.equal(matches('registeredAt < 2018-06-19T00:28:28+02:00', s), false);
  assert.equal(parseQueryDate('2018-02-30'), undefined);
});

test('regular expressions must match the whole value, as Java does', () => {
  assert.equal(matches('attribute:ecs.instance-type =~ t2'), false);
  assert.equal(matches("attribute:ecs.instance-type =~ 't2\\.(small|medium)'"), true);
});

test('agentConnected and task:group compare against every group on the instance', () => {
  assert.equal(matches('agentConnected == true'), true);
  assert.equal(matches('agentConnected == false', inst({ agentConnected: false })), true);
  const two = inst({ groups: { a: 1, b: 1 } });
  assert.equal(matches('task:group in [b, c]', two), true);
  assert.equal(matches('task:group =~ service:.*', two), false);
});

function positionOf(expr: string): string {
  try {
    parseClusterQuery(expr);
  } catch (e) {
    assert.ok(isWharfError(e, 'InvalidParameterException'), String(e));
    return (e as Error).message;
  }
  assert.fail(`'${expr}' parsed`);
}

test('syntax errors are InvalidParameterExceptions that point at the position and say what was expected', () => {
  assert.match(positionOf('attribute:stack prod'), /position 17: expected an operator/);
  assert.match(positionOf('attribute:stack == '), /position 20: expected a value/);
  assert.match(positionOf('(attribute:stack == prod'), /position 25: expected '\)'/);
  assert.match(positionOf('attribute:stack in prod'), /position 20: expected '\['/);
  assert.match(positionOf('attribute:stack in [a b]'), /position 23: expected ',' or '\]'/);
  assert.match(positionOf('instanceType == x'), /position 1: unknown subject/);
  assert.match(positionOf('agentVersion exists'), /position 14: operator 'exists' cannot be used with agentVersion/);
  assert.match(positionOf('runningTasksCount > many'), /position 21: expected a whole number/);
  assert.match(positionOf('registeredAt < yesterday'), /position 16: expected a date/);
  assert.match(positionOf("attribute:x == 'open"), /position 16: unterminated/);
  assert.match(positionOf('attribute:x =~ a['), /position 17: expected 'and', 'or'/);
  assert.match(positionOf('attribute:x == a b'), /position 18: expected 'and', 'or'/);
  assert.match(positionOf(''), /position 1/);
  assert.match(positionOf('attribute:x = a'), /position 13: unexpected character '='/);
});

test('dependencies name the attributes read and whether tasks matter', () => {
  const d = clusterQueryDependencies(parseClusterQuery('attribute:a == 1 and not(task:group == x) or attribute:b exists'));
  assert.deepEqual([...d.attributes].sort(), ['a', 'b']);
  assert.equal(d.dependsOnTasks, true);
  assert.equal(clusterQueryDependencies(parseClusterQuery('attribute:a == 1')).dependsOnTasks, false);
});
