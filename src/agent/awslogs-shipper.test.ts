import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { systemClock } from '../lib/clock';
import { AwslogsShipper, MAX_EVENT_BYTES, MISSING_GROUP_REASON, awslogsTargetOf, splitEventMessage, type AwslogsTarget } from './awslogs-shipper';
import type { ContainerRuntime } from './runtime/container-runtime';

class ApiError extends Error {
  constructor(readonly code: string) {
    super(`${code}: refused`);
  }
}

/** A logs API that records calls and fails while `down` (as an unreachable control plane). */
function fakeApi(o: { missingGroup?: boolean; lastEventTimestamp?: number } = {}) {
  const calls: { op: string; body: any; region: string }[] = [];
  const api = {
    down: false,
    calls,
    async logsCall<T>(op: string, body: unknown, region: string): Promise<T> {
      if (api.down) throw new ApiError('NetworkError');
      calls.push({ op, body, region });
      if (op === 'CreateLogStream' && o.missingGroup) throw new ApiError('ResourceNotFoundException');
      if (op === 'CreateLogGroup') throw new ApiError('ResourceAlreadyExistsException');
      if (op === 'DescribeLogStreams') return { logStreams: o.lastEventTimestamp !== undefined ? [{ logStreamName: (body as { logStreamNamePrefix: string }).logStreamNamePrefix, lastEventTimestamp: o.lastEventTimestamp }] : [] } as T;
      return {} as T;
    },
  };
  return api;
}

/** A runtime whose follow stream is `out`; a read without following gives `stored` (Docker's log file), or fails (the container is gone). */
function fakeRuntime(o: { stored?: string } = {}) {
  const out = new PassThrough();
  const asked: unknown[] = [];
  const runtime = {
    logs: async (_id: string, opts: { follow?: boolean }) => {
      asked.push(opts);
      if (opts.follow) return out;
      if (o.stored === undefined) throw new Error('no such container');
      const again = new PassThrough();
      again.end(o.stored);
      return again;
    },
  } as unknown as ContainerRuntime;
  return { runtime, out, asked };
}

const target: AwslogsTarget = { group: 'g', stream: 'web/app/t1', region: 'eu-west-1', createGroup: true };
const line = (i: number) => `2026-12-06T10:00:00.${String(100 + i).padStart(9, '0')}Z line-${i}\n`;
const put = (calls: { op: string; body: any }[]) => calls.filter((c) => c.op === 'PutLogEvents').flatMap((c) => c.body.logEvents.map((e: { message: string }) => e.message));

test('the stream ECS names, and the region awslogs-region names', () => {
  const def = { name: 'app', logConfiguration: { logDriver: 'awslogs' as const, options: { 'awslogs-group': 'g', 'awslogs-stream-prefix': 'web', 'awslogs-region': 'eu-west-1' } } };
  assert.deepEqual(awslogsTargetOf(def, 't1', 'abc', 'us-east-1'), { group: 'g', stream: 'web/app/t1', region: 'eu-west-1', createGroup: false });
  const noPrefix = { name: 'app', logConfiguration: { logDriver: 'awslogs' as const, options: { 'awslogs-group': 'g', 'awslogs-create-group': 'true' } } };
  assert.deepEqual(awslogsTargetOf(noPrefix, 't1', 'abc', 'us-east-1'), { group: 'g', stream: 'abc', region: 'us-east-1', createGroup: true });
  assert.equal(awslogsTargetOf({ name: 'app' }, 't1', 'abc', 'us-east-1'), undefined);
  // awslogs-stream names the stream, as Docker's driver takes it; a prefix wins, as the ECS agent sets it over it.
  const named = (o: Record<string, string>) => awslogsTargetOf({ name: 'app', logConfiguration: { logDriver: 'awslogs' as const, options: { 'awslogs-group': 'g', ...o } } }, 't1', 'abc', 'us-east-1')!.stream;
  assert.equal(named({ 'awslogs-stream': 'fixed' }), 'fixed');
  assert.equal(named({ 'awslogs-stream': 'fixed', 'awslogs-stream-prefix': 'web' }), 'web/app/t1');
  // awslogs-create-group is read as Docker reads it (Go's booleans).
  const created = (v: string) => awslogsTargetOf({ name: 'app', logConfiguration: { logDriver: 'awslogs' as const, options: { 'awslogs-group': 'g', 'awslogs-create-group': v } } }, 't1', 'abc', 'us-east-1')!.createGroup;
  assert.deepEqual(['True', '1', 'false', '0'].map(created), [true, true, false, false]);
});

test('prepare makes the group (when asked) and the stream, and a missing group is ECS’s start failure', async () => {
  const api = fakeApi();
  const shipper = new AwslogsShipper({ api, runtime: fakeRuntime().runtime, clock: systemClock });
  assert.equal(await shipper.prepare(target), undefined, 'an existing group is fine');
  assert.deepEqual(api.calls.map((c) => `${c.op}@${c.region}`), ['CreateLogGroup@eu-west-1', 'CreateLogStream@eu-west-1']);
  const missing = new AwslogsShipper({ api: fakeApi({ missingGroup: true }), runtime: fakeRuntime().runtime, clock: systemClock });
  assert.equal(await missing.prepare({ ...target, createGroup: false }), MISSING_GROUP_REASON);
});

test('lines are batched in order; while the API is away they are kept, then all go once, in order; the end flushes', async () => {
  const api = fakeApi();
  const rt = fakeRuntime();
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20, maxBatchEvents: 5 });
  shipper.follow('c1', target);
  for (let i = 0; i < 7; i++) rt.out.write(line(i));
  await waitFor(() => put(api.calls).length === 7);
  assert.deepEqual(rt.asked, [{ follow: true, timestamps: true }], 'from the start of a stream with no events');
  api.down = true;
  for (let i = 7; i < 20; i++) rt.out.write(line(i));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(put(api.calls).length, 7, 'nothing got through while away');
  api.down = false;
  // A partial last line (no newline yet) goes out once the stream ends.
  rt.out.end('2026-12-06T10:00:01Z last');
  await waitFor(() => put(api.calls).includes('last'), 10_000);
  assert.deepEqual(put(api.calls), [...Array.from({ length: 20 }, (_, i) => `line-${i}`), 'last']);
  for (const c of api.calls.filter((x) => x.op === 'PutLogEvents')) {
    assert.ok(c.body.logEvents.length <= 5, 'batches of at most maxBatchEvents');
    assert.equal(c.body.logStreamName, 'web/app/t1');
  }
  shipper.close();
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a last line without a newline, which Docker’s follow stream missed, is read from the stored log at the end', async () => {
  const api = fakeApi();
  const stored = '2026-12-06T10:00:00.100000000Z first\n2026-12-06T10:00:02.200000000Z last-no-newline';
  const rt = fakeRuntime({ stored });
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20 });
  shipper.follow('c1', target);
  rt.out.end('2026-12-06T10:00:00.100000000Z first\n');
  await waitFor(() => put(api.calls).includes('last-no-newline'));
  assert.deepEqual(put(api.calls), ['first', 'last-no-newline'], 'each line once');
  assert.deepEqual(rt.asked[1], { timestamps: true, since: Date.parse('2026-12-06T10:00:00Z') / 1000 });
  shipper.close();
});

test('a line Docker cut into 16 KiB pieces is one event, without the timestamps put before each piece', async () => {
  const api = fakeApi();
  const rt = fakeRuntime();
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20 });
  shipper.follow('c1', target);
  const ts = '2026-12-07T18:25:29.383433190Z ';
  const long = 'x'.repeat(40_000);
  const other = '2026-12-07T18:25:29.400000000Z from stderr\n';
  // As docker logs --timestamps writes it, with a stderr line between two stdout pieces.
  const wire = `${ts}${long.slice(0, 16384)}${ts}${long.slice(16384, 32768)}${other}${ts}${long.slice(32768)}\n2026-12-07T18:25:30.000000000Z next\n`;
  for (let i = 0; i < wire.length; i += 5000) rt.out.write(wire.slice(i, i + 5000));
  rt.out.end();
  await waitFor(() => put(api.calls).includes('next'));
  assert.deepEqual(put(api.calls).sort(), ['from stderr', long, 'next'].sort());
  shipper.close();
});

test('a line longer than CloudWatch’s event limit becomes events of at most 256 KiB less 26 bytes, characters whole', () => {
  const long = 'é'.repeat(200_000); // 400,000 bytes
  const parts = splitEventMessage(long);
  assert.equal(parts.join(''), long);
  assert.ok(parts.every((p) => Buffer.byteLength(p) <= MAX_EVENT_BYTES));
  assert.equal(parts.length, 2);
  assert.deepEqual(splitEventMessage('😀😀😀', 5), ['😀', '😀', '😀']);
  assert.deepEqual(splitEventMessage('short'), ['short']);
});

test('batches stay within PutLogEvents’ 1 MiB', async () => {
  const api = fakeApi();
  const rt = fakeRuntime();
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20 });
  shipper.follow('c1', target);
  for (let i = 0; i < 6; i++) rt.out.write(`2026-12-06T10:00:00.${String(100 + i).padStart(9, '0')}Z ${'y'.repeat(200_000)}\n`);
  rt.out.end();
  await waitFor(() => put(api.calls).length === 6);
  for (const c of api.calls.filter((x) => x.op === 'PutLogEvents')) {
    const bytes = c.body.logEvents.reduce((n: number, e: { message: string }) => n + Buffer.byteLength(e.message) + 26, 0);
    assert.ok(bytes <= 1_048_576, `batch of ${bytes} bytes`);
  }
  shipper.close();
});

test('awslogs-multiline-pattern: a matching line starts an event and the lines after it join it, as Docker’s driver does', async () => {
  const api = fakeApi();
  const rt = fakeRuntime();
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20 });
  shipper.follow('c1', { ...target, multiline: /^\d{4}-\d\d-\d\d /, multilineFlushMs: 5000 });
  const at = (i: number, text: string) => `2026-12-06T10:00:00.${String(100 + i).padStart(9, '0')}Z ${text}\n`;
  rt.out.write(at(0, 'before any start'));
  rt.out.write(at(1, '2026-12-06 ERROR boom'));
  rt.out.write(at(2, '  at f (a.js:1)'));
  rt.out.write(at(3, ''));
  rt.out.write(at(4, '  at g (b.js:2)'));
  rt.out.write(at(5, '2026-12-06 INFO next'));
  rt.out.end();
  await waitFor(() => put(api.calls).some((m: string) => m.includes('next')));
  assert.deepEqual(put(api.calls), ['before any start\n', '2026-12-06 ERROR boom\n  at f (a.js:1)\n\n  at g (b.js:2)\n', '2026-12-06 INFO next\n']);
  const events = api.calls.filter((c) => c.op === 'PutLogEvents').flatMap((c) => c.body.logEvents);
  assert.equal(events[1].timestamp, Date.parse('2026-12-06T10:00:00.000Z'), 'an event has its first line’s time');
  shipper.close();
});

test('a multiline event that gets no more lines goes out after the force-flush interval', async () => {
  const api = fakeApi();
  const rt = fakeRuntime();
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20 });
  shipper.follow('c1', { ...target, multiline: /^START/, multilineFlushMs: 100 });
  rt.out.write('2026-12-06T10:00:00.100000000Z START one\n2026-12-06T10:00:00.200000000Z   more\n');
  await waitFor(() => put(api.calls).length === 1, 3000);
  assert.deepEqual(put(api.calls), ['START one\n  more\n']);
  shipper.close();
});

test('awslogs-datetime-format becomes Docker’s pattern, and the flush interval its option', () => {
  const def = (options: Record<string, string>) => ({ name: 'app', logConfiguration: { logDriver: 'awslogs' as const, options: { 'awslogs-group': 'g', 'awslogs-stream-prefix': 'p', ...options } } });
  const t = awslogsTargetOf(def({ 'awslogs-datetime-format': '\\[%b %d, %Y %H:%M:%S\\]', 'awslogs-force-flush-interval-seconds': '2' }), 't1', undefined, 'us-east-1')!;
  assert.ok(t.multiline!.test('[Dec 07, 2026 18:00:00] started'));
  assert.ok(!t.multiline!.test('    at continuation'));
  assert.equal(t.multilineFlushMs, 2000);
  assert.equal(awslogsTargetOf(def({}), 't1', undefined, 'us-east-1')!.multiline, undefined);
});

test('after an agent restart, the read at the end starts where the stream ended, not at the container’s first line', async () => {
  const last = Date.parse('2026-12-06T10:00:05.500Z');
  const api = fakeApi({ lastEventTimestamp: last });
  const rt = fakeRuntime({ stored: '2026-12-06T10:00:05.500000000Z shipped before\n2026-12-06T10:00:06.000000000Z not yet' });
  const shipper = new AwslogsShipper({ api, runtime: rt.runtime, clock: systemClock, flushIntervalMs: 20 });
  shipper.follow('c1', target);
  await waitFor(() => rt.asked.length === 1);
  rt.out.end();
  await waitFor(() => put(api.calls).length === 1);
  assert.deepEqual(put(api.calls), ['not yet']);
  assert.deepEqual(rt.asked, [{ follow: true, timestamps: true, since: 1796551205 }, { timestamps: true, since: 1796551205 }]);
  shipper.close();
});
