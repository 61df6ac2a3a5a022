import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WharfSubmitContainerStateChange, WharfTaskStateChange } from '../api/agent/protocol';
import { ControlPlaneError, type ControlPlaneClient } from './control-plane-client';
import { StateReporter } from './state-reporter';

type Sent = { op: 'task' | 'container'; task: string; what: string };

/**
 * A control plane whose answers the test releases one by one (or fails), recording what
 * arrived in order.
 */
function controlPlane() {
  const sent: Sent[] = [];
  const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  let hold = true;
  const arrive = (s: Sent) =>
    new Promise<void>((resolve, reject) => {
      sent.push(s);
      if (hold) waiting.push({ resolve, reject });
      else resolve();
    });
  const client: ControlPlaneClient = {
    registerContainerInstance: () => Promise.reject(new Error('not used')),
    connect: () => {
      throw new Error('not used');
    },
    submitTaskStateChange: (c: WharfTaskStateChange) => arrive({ op: 'task', task: c.task!, what: c.status ?? '' }),
    submitContainerStateChange: (c: WharfSubmitContainerStateChange) => arrive({ op: 'container', task: c.task!, what: `${c.containerName}:${c.status}` }),
  };
  const tick = () => new Promise((r) => setImmediate(r));
  return {
    client,
    sent,
    /** Answers the oldest call still waiting. */
    async answer(err?: Error) {
      await tick();
      const w = waiting.shift();
      assert.ok(w, 'a call is waiting for its answer');
      if (err) w.reject(err);
      else w.resolve();
      await tick();
    },
    release() {
      hold = false;
      for (const w of waiting.splice(0)) w.resolve();
    },
  };
}

/** The reporter's retry timers do not hold the process open (systemClock unrefs them); a test must. */
async function settled(r: StateReporter): Promise<void> {
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await r.flush();
  } finally {
    clearInterval(keepAlive);
  }
}

const task = (t: string, status: string): WharfTaskStateChange => ({ cluster: 'c', task: t, status, containers: [] });
const container = (t: string, name: string, status: string): WharfSubmitContainerStateChange => ({ cluster: 'c', task: t, containerName: name, status });

test('every change is sent, in order, when the control plane keeps up', async () => {
  const cp = controlPlane();
  cp.release();
  const r = new StateReporter(cp.client);
  r.submitTask(task('t1', 'PENDING'));
  await new Promise((res) => setImmediate(res));
  r.submitContainer(container('t1', 'app', 'RUNNING'));
  await new Promise((res) => setImmediate(res));
  r.submitTask(task('t1', 'RUNNING'));
  await settled(r);
  assert.deepEqual(
    cp.sent.map((s) => s.what),
    ['PENDING', 'app:RUNNING', 'RUNNING'],
  );
});

test('a task report replaces whatever of that task waits behind the one in flight', async () => {
  const cp = controlPlane();
  const r = new StateReporter(cp.client);
  r.submitTask(task('t1', 'PENDING')); // in flight, unanswered
  r.submitContainer(container('t1', 'app', 'RUNNING'));
  r.submitTask(task('t1', 'ACTIVATING'));
  r.submitTask(task('t1', 'RUNNING'));
  assert.equal(r.pending, 2, 'the in-flight report and the latest task state');
  await cp.answer();
  await cp.answer();
  await settled(r);
  assert.deepEqual(cp.sent.map((s) => s.what), ['PENDING', 'RUNNING']);
});

test('a container report replaces a waiting report of the same container only', async () => {
  const cp = controlPlane();
  const r = new StateReporter(cp.client);
  r.submitTask(task('t1', 'RUNNING')); // in flight
  r.submitContainer(container('t1', 'app', 'RUNNING'));
  r.submitContainer(container('t1', 'sidecar', 'RUNNING'));
  r.submitContainer(container('t1', 'app', 'STOPPED'));
  cp.release();
  await cp.answer().catch(() => undefined);
  await settled(r);
  assert.deepEqual(cp.sent.map((s) => s.what), ['RUNNING', 'sidecar:RUNNING', 'app:STOPPED']);
});

test('reports of other tasks are never merged, and a failed send is retried', async () => {
  const cp = controlPlane();
  const r = new StateReporter(cp.client, { baseRetryMs: 1, maxRetryMs: 5 });
  r.submitTask(task('t1', 'RUNNING'));
  r.submitTask(task('t2', 'RUNNING'));
  await cp.answer(new ControlPlaneError('NetworkError', 'connection refused'));
  cp.release();
  await settled(r);
  const t1 = cp.sent.filter((s) => s.task === 't1').map((s) => s.what);
  const t2 = cp.sent.filter((s) => s.task === 't2').map((s) => s.what);
  assert.deepEqual(t1, ['RUNNING', 'RUNNING'], 't1 sent again after the network error');
  assert.deepEqual(t2, ['RUNNING']);
  assert.equal(r.pending, 0);
});

test('a change the control plane refuses is dropped, the next one still goes', async () => {
  const cp = controlPlane();
  const r = new StateReporter(cp.client);
  r.submitTask(task('t1', 'RUNNING'));
  await cp.answer(new ControlPlaneError('InvalidParameterException', 'no such task'));
  r.submitTask(task('t1', 'STOPPED'));
  cp.release();
  await settled(r);
  assert.deepEqual(cp.sent.map((s) => s.what), ['RUNNING', 'STOPPED']);
});
