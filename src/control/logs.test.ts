import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, createLogger } from '../lib';
import { MemoryStore } from '../store/memory/memory-store';
import { TEST_CALLER, rejectsWith } from './control-test-context';
import { logsHandlers } from './logs';
import { sweepExpiredEvents } from './logs-events';
import { MAX_BATCHES_PER_STREAM, logKeys, logsIamRequest, type LogsContext } from './logs-records';

const DAY = 86_400_000;

function setup() {
  const clock = new FakeClock(1_750_000_000_000);
  const store = new MemoryStore();
  const lctx: LogsContext = { store, clock, partition: { region: 'eu-west-3', accountId: '123456789012' }, log: createLogger('test', 'silent') };
  const h = logsHandlers(lctx);
  const call = (op: string, input: Record<string, unknown>) => h[op]!(input, TEST_CALLER) as Promise<any>;
  return { clock, store, lctx, call };
}

async function withStream(lines: string[], opts: { group?: string; stream?: string } = {}) {
  const s = setup();
  const group = opts.group ?? '/ecs/web';
  const stream = opts.stream ?? 'web/app/abc';
  await s.call('CreateLogGroup', { logGroupName: group });
  await s.call('CreateLogStream', { logGroupName: group, logStreamName: stream });
  if (lines.length) await s.call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: lines.map((message, i) => ({ timestamp: s.clock.now() - 1000 + i, message })) });
  return { ...s, group, stream };
}

test('groups: create, duplicate, describe by prefix with paging, delete, and CloudWatch errors', async () => {
  const { call } = setup();
  for (const n of ['/ecs/a', '/ecs/b', '/ecs/c', 'other']) await call('CreateLogGroup', { logGroupName: n });
  await rejectsWith(call('CreateLogGroup', { logGroupName: '/ecs/a' }), 'ResourceAlreadyExistsException', 'The specified log group already exists');
  await rejectsWith(call('CreateLogGroup', { logGroupName: 'bad:name' }), 'InvalidParameterException', "1 validation error detected: Value 'bad:name' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+");
  const p1 = await call('DescribeLogGroups', { logGroupNamePrefix: '/ecs/', limit: 2 });
  assert.deepEqual(p1.logGroups.map((g: any) => g.logGroupName), ['/ecs/a', '/ecs/b']);
  assert.equal(p1.logGroups[0].arn, 'arn:aws:logs:eu-west-3:123456789012:log-group:/ecs/a:*');
  assert.equal(p1.logGroups[0].logGroupArn, 'arn:aws:logs:eu-west-3:123456789012:log-group:/ecs/a');
  const p2 = await call('DescribeLogGroups', { logGroupNamePrefix: '/ecs/', limit: 2, nextToken: p1.nextToken });
  assert.deepEqual(p2.logGroups.map((g: any) => g.logGroupName), ['/ecs/c']);
  assert.equal(p2.nextToken, undefined);
  await call('DeleteLogGroup', { logGroupName: '/ecs/b' });
  await rejectsWith(call('DeleteLogGroup', { logGroupName: '/ecs/b' }), 'ResourceNotFoundException', 'The specified log group does not exist.');
  await rejectsWith(call('CreateLogStream', { logGroupName: '/ecs/b', logStreamName: 's' }), 'ResourceNotFoundException', 'The specified log group does not exist.');
  assert.deepEqual((await call('DescribeLogGroups', {})).logGroups.map((g: any) => g.logGroupName), ['/ecs/a', '/ecs/c', 'other']);
  await rejectsWith(call('DescribeLogGroups', { nextToken: 'garbage' }), 'InvalidParameterException', 'The specified nextToken is invalid.');
});

test('streams: duplicate, prefix, order by LastEventTime descending, paging, and the prefix/LastEventTime conflict', async () => {
  const { call, clock } = setup();
  await call('CreateLogGroup', { logGroupName: 'g' });
  for (const s of ['b', 'a', 'c']) await call('CreateLogStream', { logGroupName: 'g', logStreamName: `p/${s}` });
  await call('CreateLogStream', { logGroupName: 'g', logStreamName: 'q' });
  await rejectsWith(call('CreateLogStream', { logGroupName: 'g', logStreamName: 'q' }), 'ResourceAlreadyExistsException', 'The specified log stream already exists');
  // Last events: c oldest, then a, then b.
  for (const [s, dt] of [['p/c', 3000], ['p/a', 2000], ['p/b', 1000]] as const) {
    await call('PutLogEvents', { logGroupName: 'g', logStreamName: s, logEvents: [{ timestamp: clock.now() - dt, message: s }] });
  }
  const byName = await call('DescribeLogStreams', { logGroupName: 'g', logStreamNamePrefix: 'p/' });
  assert.deepEqual(byName.logStreams.map((s: any) => s.logStreamName), ['p/a', 'p/b', 'p/c']);
  assert.equal(byName.logStreams[0].lastEventTimestamp, clock.now() - 2000);
  assert.equal(byName.logStreams[0].arn, 'arn:aws:logs:eu-west-3:123456789012:log-group:g:log-stream:p/a');
  const first = await call('DescribeLogStreams', { logGroupName: 'g', orderBy: 'LastEventTime', descending: true, limit: 2 });
  assert.deepEqual(first.logStreams.map((s: any) => s.logStreamName), ['p/b', 'p/a']);
  const second = await call('DescribeLogStreams', { logGroupName: 'g', orderBy: 'LastEventTime', descending: true, limit: 2, nextToken: first.nextToken });
  assert.deepEqual(second.logStreams.map((s: any) => s.logStreamName), ['p/c', 'q']);
  assert.equal(second.nextToken, undefined);
  await rejectsWith(call('DescribeLogStreams', { logGroupName: 'g', orderBy: 'LastEventTime', logStreamNamePrefix: 'p' }), 'InvalidParameterException', 'Cannot order by LastEventTime with a logStreamNamePrefix.');
  await rejectsWith(call('DescribeLogStreams', { logGroupName: 'nope' }), 'ResourceNotFoundException', 'The specified log group does not exist.');
  await call('DeleteLogStream', { logGroupName: 'g', logStreamName: 'p/a' });
  await rejectsWith(call('DeleteLogStream', { logGroupName: 'g', logStreamName: 'p/a' }), 'ResourceNotFoundException', 'The specified log stream does not exist.');
  await rejectsWith(call('GetLogEvents', { logGroupName: 'g', logStreamName: 'p/a' }), 'ResourceNotFoundException', 'The specified log stream does not exist.');
  // A group named by its ARN (logGroupIdentifier), as the console and newer SDKs do.
  const byArn = await call('DescribeLogStreams', { logGroupIdentifier: 'arn:aws:logs:eu-west-3:123456789012:log-group:g:*' });
  assert.equal(byArn.logStreams.length, 3);
});

test('PutLogEvents keeps one store key per call and refuses batches out of order or spanning a day', async () => {
  const { call, store, group, stream, clock } = await withStream(['one', 'two', 'three']);
  await call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now(), message: 'four' }] });
  assert.equal((await store.list(logKeys.batchesOfStream(group, stream))).length, 2);
  await rejectsWith(
    call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now() - 1, message: 'b' }, { timestamp: clock.now() - 2, message: 'a' }] }),
    'InvalidParameterException',
    'Log events in a single PutLogEvents request must be in chronological order.',
  );
  await rejectsWith(
    call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now() - 2 * DAY, message: 'a' }, { timestamp: clock.now(), message: 'b' }] }),
    'InvalidParameterException',
    'The batch of log events in a single PutLogEvents request cannot span more than 24 hours.',
  );
  await rejectsWith(call('PutLogEvents', { logGroupName: group, logStreamName: 'none', logEvents: [{ timestamp: clock.now(), message: 'x' }] }), 'ResourceNotFoundException', 'The specified log stream does not exist.');
  // Too far ahead: the rest is kept and the refused ones are named by index.
  const out = await call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now(), message: 'ok' }, { timestamp: clock.now() + 3 * 3_600_000, message: 'future' }] });
  assert.deepEqual(out.rejectedLogEventsInfo, { tooNewLogEventStartIndex: 1 });
  const all = await call('GetLogEvents', { logGroupName: group, logStreamName: stream, startFromHead: true });
  assert.deepEqual(all.events.map((e: any) => e.message), ['one', 'two', 'three', 'four', 'ok']);
});

test('GetLogEvents: tail by default, paging forward and backward, and the same token back at either end', async () => {
  const lines = Array.from({ length: 7 }, (_, i) => `line ${i}`);
  const { call, group, stream, clock } = await withStream(lines);
  const g = (extra: Record<string, unknown>) => call('GetLogEvents', { logGroupName: group, logStreamName: stream, ...extra });
  const tail = await g({ limit: 3 });
  assert.deepEqual(tail.events.map((e: any) => e.message), ['line 4', 'line 5', 'line 6']);
  assert.match(tail.nextForwardToken, /^f\/\d{56}\/s$/);
  const back = await g({ limit: 3, nextToken: tail.nextBackwardToken });
  assert.deepEqual(back.events.map((e: any) => e.message), ['line 1', 'line 2', 'line 3']);
  const back2 = await g({ limit: 3, nextToken: back.nextBackwardToken });
  assert.deepEqual(back2.events.map((e: any) => e.message), ['line 0']);
  const atStart = await g({ limit: 3, nextToken: back2.nextBackwardToken });
  assert.deepEqual(atStart.events, []);
  assert.equal(atStart.nextBackwardToken, back2.nextBackwardToken, 'the same backward token at the start');

  const head = await g({ startFromHead: true, limit: 4 });
  assert.deepEqual(head.events.map((e: any) => e.message), ['line 0', 'line 1', 'line 2', 'line 3']);
  const rest = await g({ nextToken: head.nextForwardToken });
  assert.deepEqual(rest.events.map((e: any) => e.message), ['line 4', 'line 5', 'line 6']);
  const atEnd = await g({ nextToken: rest.nextForwardToken });
  assert.deepEqual(atEnd.events, []);
  assert.equal(atEnd.nextForwardToken, rest.nextForwardToken, 'the same forward token at the end');
  // A follower holding that token sees exactly what is put next.
  await call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now(), message: 'new' }] });
  const followed = await g({ nextToken: atEnd.nextForwardToken });
  assert.deepEqual(followed.events.map((e: any) => e.message), ['new']);
  assert.notEqual(followed.nextForwardToken, atEnd.nextForwardToken);
  // startTime inclusive, endTime exclusive.
  const t0 = clock.now() - 1000;
  const window = await g({ startFromHead: true, startTime: t0 + 2, endTime: t0 + 4 });
  assert.deepEqual(window.events.map((e: any) => e.message), ['line 2', 'line 3']);
  await rejectsWith(g({ nextToken: 'x/1' }), 'InvalidParameterException', 'The specified nextToken is invalid.');
});

test('retention hides and then removes expired events; PutLogEvents refuses events already expired', async () => {
  const { call, store, group, stream, clock } = await withStream(['old']);
  clock.advance(2 * DAY);
  await call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now(), message: 'fresh' }] });
  assert.equal((await store.list(logKeys.batchesOfStream(group, stream))).length, 2);
  await call('PutRetentionPolicy', { logGroupName: group, retentionInDays: 1 });
  assert.equal((await store.list(logKeys.batchesOfStream(group, stream))).length, 1, 'the expired batch is deleted');
  const got = await call('GetLogEvents', { logGroupName: group, logStreamName: stream, startFromHead: true });
  assert.deepEqual(got.events.map((e: any) => e.message), ['fresh']);
  assert.equal((await call('DescribeLogGroups', {})).logGroups[0].retentionInDays, 1);
  const refused = await call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now() - DAY - 60_000, message: 'late' }, { timestamp: clock.now() - 3_600_000, message: 'now' }] });
  assert.deepEqual(refused.rejectedLogEventsInfo, { expiredLogEventEndIndex: 1 });
  // Time passes: the read hides what expired before any sweep, and the sweep removes it.
  clock.advance(2 * DAY);
  assert.deepEqual((await call('GetLogEvents', { logGroupName: group, logStreamName: stream })).events, []);
  assert.equal(await sweepExpiredEvents(setupFor(store, clock)), 2);
  assert.equal((await store.list(logKeys.batchesOfStream(group, stream))).length, 0);
  await rejectsWith(call('PutRetentionPolicy', { logGroupName: group, retentionInDays: 2 }), 'InvalidParameterException', "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]");
  await call('DeleteRetentionPolicy', { logGroupName: group });
  assert.equal((await call('DescribeLogGroups', {})).logGroups[0].retentionInDays, undefined);
});

function setupFor(store: MemoryStore, clock: FakeClock): LogsContext {
  return { store, clock, partition: { region: 'eu-west-3', accountId: '123456789012' }, log: createLogger('test', 'silent') };
}

test('FilterLogEvents: terms, quoted phrases, exclusions, streams by name or prefix, interleaved by time, paged', async () => {
  const { call, clock } = setup();
  await call('CreateLogGroup', { logGroupName: 'g' });
  const t = clock.now() - 10_000;
  const put = async (stream: string, events: [number, string][]) => {
    await call('CreateLogStream', { logGroupName: 'g', logStreamName: stream }).catch(() => undefined);
    await call('PutLogEvents', { logGroupName: 'g', logStreamName: stream, logEvents: events.map(([dt, message]) => ({ timestamp: t + dt, message })) });
  };
  await put('app/a', [[1, 'ERROR disk full'], [3, 'INFO all good'], [5, 'ERROR "Connection lost" debug']]);
  await put('app/b', [[2, 'ERROR Connection lost now'], [4, 'WARN slow']]);
  await put('other', [[6, 'ERROR elsewhere']]);
  const f = (extra: Record<string, unknown>) => call('FilterLogEvents', { logGroupName: 'g', ...extra });
  const msgs = (r: any) => r.events.map((e: any) => `${e.logStreamName}:${e.message}`);
  assert.deepEqual(msgs(await f({ filterPattern: 'ERROR' })), ['app/a:ERROR disk full', 'app/b:ERROR Connection lost now', 'app/a:ERROR "Connection lost" debug', 'other:ERROR elsewhere']);
  assert.deepEqual(msgs(await f({ filterPattern: '"Connection lost" -debug' })), ['app/b:ERROR Connection lost now']);
  assert.deepEqual(msgs(await f({ filterPattern: '?WARN ?INFO' })), ['app/a:INFO all good', 'app/b:WARN slow']);
  // endTime is inclusive in FilterLogEvents ("events with a timestamp later than this time are not returned").
  assert.deepEqual(msgs(await f({ logStreamNamePrefix: 'app/', startTime: t + 2, endTime: t + 5 })), ['app/b:ERROR Connection lost now', 'app/a:INFO all good', 'app/b:WARN slow', 'app/a:ERROR "Connection lost" debug']);
  assert.deepEqual(msgs(await f({ logStreamNames: ['other'], startTime: t + 6, endTime: t + 6 })), ['other:ERROR elsewhere'], 'a stream whose only event is at endTime');
  assert.deepEqual(msgs(await f({ filterPattern: '%^[EW][RA][RN]%' })), ['app/a:ERROR disk full', 'app/b:ERROR Connection lost now', 'app/b:WARN slow', 'app/a:ERROR "Connection lost" debug', 'other:ERROR elsewhere']);
  await rejectsWith(f({ filterPattern: '%(ERR|WARN)%' }), 'InvalidParameterException', 'Invalid filter pattern: %(ERR|WARN)%: a regular expression between % may use only letters, digits, the symbols : _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \\ * + . (no parentheses, spaces or multibyte characters).');
  assert.deepEqual(msgs(await f({ logStreamNames: ['other'] })), ['other:ERROR elsewhere']);
  // Paging: two at a time covers everything once, in order.
  const seen: string[] = [];
  let token: string | undefined;
  do {
    const page = await f({ limit: 2, ...(token ? { nextToken: token } : {}) });
    seen.push(...msgs(page));
    token = page.nextToken;
  } while (token);
  assert.equal(seen.length, 6);
  assert.deepEqual(seen, msgs(await f({})));
  const ids = (await f({})).events.map((e: any) => e.eventId);
  assert.equal(new Set(ids).size, 6, 'event ids are unique');
  assert.deepEqual((await f({})).events.map((e: any) => e.eventId), ids, 'and stable');
  await rejectsWith(f({ filterPattern: '{ $.level = "x" }' }), 'InvalidParameterException', 'Invalid filter pattern: JSON and space-delimited filter patterns are not supported by Wharf; use terms and quoted phrases.');
  await rejectsWith(f({ logStreamNames: ['a'], logStreamNamePrefix: 'a' }), 'InvalidParameterException', 'You cannot specify both logStreamNames and logStreamNamePrefix.');
});

test(`a stream keeps its newest ${MAX_BATCHES_PER_STREAM} batches`, async () => {
  const { call, store, group, stream, clock } = await withStream([]);
  for (let i = 0; i < MAX_BATCHES_PER_STREAM + 3; i++) {
    await call('PutLogEvents', { logGroupName: group, logStreamName: stream, logEvents: [{ timestamp: clock.now(), message: `b${i}` }] });
  }
  assert.equal((await store.list(logKeys.batchesOfStream(group, stream))).length, MAX_BATCHES_PER_STREAM);
  const head = await call('GetLogEvents', { logGroupName: group, logStreamName: stream, startFromHead: true, limit: 1 });
  assert.deepEqual(head.events.map((e: any) => e.message), ['b3']);
  const s = (await call('DescribeLogStreams', { logGroupName: group })).logStreams[0];
  let expected = 0;
  for (let i = 3; i < MAX_BATCHES_PER_STREAM + 3; i++) expected += `b${i}`.length + 26;
  assert.equal(s.storedBytes, expected, 'the dropped batches no longer count');
});

test('log group names starting with aws/ are CloudWatch’s own', async () => {
  const { call } = setup();
  for (const name of ['aws/foo', 'AWS/Lambda']) {
    await rejectsWith(call('CreateLogGroup', { logGroupName: name }), 'InvalidParameterException', 'Log groups starting with AWS/ are reserved for AWS.');
  }
  await call('CreateLogGroup', { logGroupName: '/aws/ecs/containerinsights' });
});

test('tags: given at creation, listed, added, replaced and removed, by group name or ARN', async () => {
  const { call } = setup();
  const arn = 'arn:aws:logs:eu-west-3:123456789012:log-group:/ecs/web';
  await call('CreateLogGroup', { logGroupName: '/ecs/web', tags: { team: 'a', env: 'dev' } });
  assert.deepEqual(await call('ListTagsLogGroup', { logGroupName: '/ecs/web' }), { tags: { team: 'a', env: 'dev' } });
  assert.deepEqual(await call('ListTagsForResource', { resourceArn: arn }), { tags: { team: 'a', env: 'dev' } });
  await call('TagResource', { resourceArn: arn, tags: { env: 'prod', owner: 'me' } });
  await call('UntagResource', { resourceArn: arn, tagKeys: ['team'] });
  assert.deepEqual((await call('ListTagsForResource', { resourceArn: `${arn}:*` })).tags, { env: 'prod', owner: 'me' });
  await call('TagLogGroup', { logGroupName: '/ecs/web', tags: { x: '1' } });
  await call('UntagLogGroup', { logGroupName: '/ecs/web', tags: ['owner', 'env'] });
  assert.deepEqual((await call('ListTagsLogGroup', { logGroupName: '/ecs/web' })).tags, { x: '1' });
  await rejectsWith(call('ListTagsForResource', { resourceArn: 'arn:aws:logs:eu-west-3:123456789012:log-group:nope' }), 'ResourceNotFoundException', 'The specified log group does not exist.');
  await rejectsWith(call('TagLogGroup', { logGroupName: 'nope', tags: { a: 'b' } }), 'ResourceNotFoundException', 'The specified log group does not exist.');
  await rejectsWith(
    call('TagResource', { resourceArn: 'arn:aws:logs:eu-west-3:123456789012:destination:d', tags: { a: 'b' } }),
    'InvalidParameterException',
    "Wharf tags only log groups: 'arn:aws:logs:eu-west-3:123456789012:destination:d' is not a log group ARN (arn:aws:logs:<region>:<account>:log-group:<name>).",
  );
  const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
  await rejectsWith(call('TagResource', { resourceArn: arn, tags: many }), 'TooManyTagsException', 'A log group can have at most 50 tags.');
});

test('agents are refused every logs call when no agent check is wired', async () => {
  const { lctx } = setup();
  const h = logsHandlers(lctx);
  await rejectsWith(h.CreateLogGroup!({ logGroupName: 'x' }, { ...TEST_CALLER, isAgent: true }) as Promise<unknown>, 'AccessDeniedException', `User: ${TEST_CALLER.principalArn} is not authorized to perform: logs:CreateLogGroup`);
});

test("IAM sees a logs call as logs:<Operation> on the group's or the stream's ARN", () => {
  const p = { region: 'eu-west-3', accountId: '123456789012' };
  const group = 'arn:aws:logs:eu-west-3:123456789012:log-group:/ecs/web';
  assert.deepEqual(logsIamRequest('PutLogEvents', { logGroupName: '/ecs/web', logStreamName: 'a/b/c' }, p), { action: 'logs:PutLogEvents', resources: [`${group}:log-stream:a/b/c`], context: {} });
  assert.deepEqual(logsIamRequest('DescribeLogStreams', { logGroupIdentifier: `${group}:*` }, p).resources, [group]);
  assert.deepEqual(logsIamRequest('FilterLogEvents', { logGroupName: '/ecs/web' }, p).resources, [group]);
  assert.deepEqual(logsIamRequest('DescribeLogGroups', { logGroupNamePrefix: '/ecs' }, p).resources, ['*']);
  assert.deepEqual(logsIamRequest('TagResource', { resourceArn: `${group}:*` }, p).resources, [group]);
});
