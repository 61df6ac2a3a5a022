import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { DockerEventStream } from './docker-events';
import type { RuntimeEvent } from './container-runtime';

/** A stand-in for dockerode's getEvents: each call answers the next stream the test hands out. */
function fakeDocker() {
  const streams: PassThrough[] = [];
  const docker = {
    getEvents: async () => {
      const s = new PassThrough();
      streams.push(s);
      return s;
    },
  } as unknown as Docker;
  return { docker, streams };
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), 'condition not reached');
};

test("container events reach the watchers with their labels; image events only say images may have moved", async () => {
  const { docker, streams } = fakeDocker();
  let moved = 0;
  const events = new DockerEventStream(docker, () => moved++, 10);
  const seen: RuntimeEvent[] = [];
  events.watch((e) => seen.push(e));
  await until(() => events.isOpen);
  const movedAtOpen = moved;
  streams[0]!.write(JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'c1', Attributes: { a: 'b' } } }) + '\n');
  streams[0]!.write('not json\n' + JSON.stringify({ Type: 'container', Action: 'health_status: healthy', Actor: { ID: 'c2' } }) + '\n');
  streams[0]!.write(JSON.stringify({ Type: 'image', Action: 'tag', Actor: { ID: 'sha256:x' } }) + '\n');
  await until(() => moved > movedAtOpen);
  assert.deepEqual(seen, [
    { id: 'c1', action: 'die', labels: { a: 'b' } },
    { id: 'c2', action: 'health' },
  ]);
  events.close();
});

test('a stream opened again after one ended tells the watchers to resync; the first opening does not', async () => {
  const { docker, streams } = fakeDocker();
  const events = new DockerEventStream(docker, () => {}, 10);
  const seen: RuntimeEvent[] = [];
  events.watch((e) => seen.push(e));
  await until(() => events.isOpen);
  assert.deepEqual(seen, []);
  streams[0]!.end();
  await until(() => streams.length === 2 && events.isOpen);
  assert.deepEqual(seen, [{ id: '', action: 'resync' }]);
  events.close();
  assert.equal(events.isOpen, false);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(streams.length, 2, 'a closed stream is not opened again');
});

test('a watcher that throws costs neither the other watchers their events nor the stream its resync', async () => {
  const { docker, streams } = fakeDocker();
  const events = new DockerEventStream(docker, () => {}, 10);
  events.watch(() => {
    throw new Error('a watcher bug');
  });
  const seen: RuntimeEvent[] = [];
  events.watch((e) => seen.push(e));
  await until(() => events.isOpen);
  streams[0]!.write(JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'c1' } }) + '\n');
  await until(() => seen.length === 1);
  streams[0]!.end();
  await until(() => seen.length === 2);
  assert.deepEqual(seen, [{ id: 'c1', action: 'die' }, { id: '', action: 'resync' }]);
  assert.equal(streams.length, 2, 'the reopened stream is the only new one');
  streams[1]!.write(JSON.stringify({ Type: 'container', Action: 'oom', Actor: { ID: 'c2' } }) + '\n');
  await until(() => seen.length === 3);
  assert.deepEqual(seen[2], { id: 'c2', action: 'oom' });
  events.close();
});
