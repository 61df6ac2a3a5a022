import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logsCluster } from './client-commands';

test("wharf logs asks the cluster a task ARN names unless --cluster says otherwise; a bare id means default", () => {
  const arn = 'arn:aws:ecs:us-east-1:123456789012:task/fg/0123456789abcdef0123456789abcdef';
  assert.equal(logsCluster(undefined, arn), 'fg');
  assert.equal(logsCluster('other', arn), 'other');
  assert.equal(logsCluster(undefined, '0123456789abcdef0123456789abcdef'), 'default');
  assert.equal(logsCluster('fg', '0123456789abcdef0123456789abcdef'), 'fg');
});
