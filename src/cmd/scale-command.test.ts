import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../lib';
import type { ScaleRequest } from '../controllers/capacity-provider-controller';
import { SCALE_COMMAND_TIMEOUT_MS, scaleCommandRunner } from './scale-command';

const log = createLogger('scale-command-test', 'silent');
const request = {
  capacityProvider: 'cp',
  cluster: 'c',
  autoScalingGroupArn: 'arn:aws:autoscaling:eu-west-3:123456789012:autoScalingGroup:0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0:autoScalingGroupName/g',
  desired: 2,
  instances: 1,
  reservation: 200,
  protectedInstances: [],
  removableInstances: [],
  instanceWarmupSeconds: 300,
} as unknown as ScaleRequest;

/** Running (not gone, and not a zombie waiting for a reaper that may not exist here). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('a scale command that does not end in time is killed (with what it started) and the run fails', async () => {
  assert.equal(SCALE_COMMAND_TIMEOUT_MS, 300_000);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-scale-'));
  // The shell stays, its child sleeps: both must go.
  const run = scaleCommandRunner(`sleep 30 & echo $! > ${dir}/pid; wait; true`, 'eu-west-3', log, 300);
  const started = Date.now();
  await assert.rejects(run(request), /timed out after 300 ms/);
  assert.ok(Date.now() - started < 5_000);
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(pid), false, 'the command’s child was killed');
  // Arguments are appended to the command: `:` takes them.
  await scaleCommandRunner('test "$1/$2" = cp/2 || exit 1; :', 'eu-west-3', log, 5_000)(request);
});
