import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentTask } from '../api/agent/protocol';
import { AgentStateStore, credentialsWithheld } from './agent-state-store';

const task = (id: string, extra: Partial<AgentTask> = {}): AgentTask => ({
  taskArn: `arn:aws:ecs:us-east-1:123456789012:task/default/${id}`,
  clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/default',
  desiredStatus: 'RUNNING',
  version: 1,
  taskDefinition: { family: 'web', revision: 1, containerDefinitions: [{ name: 'app', image: 'app', secrets: [{ name: 'TOKEN', valueFrom: 'token' }] }] },
  ...extra,
});

function filesOf(dir: string): string {
  return readdirSync(join(dir, 'tasks')).map((f) => readFileSync(join(dir, 'tasks', f), 'utf8')).join('\n');
}

test('secret values and registry passwords never reach the data dir; the kept task says it lacks them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-store-'));
  try {
    const store = new AgentStateStore(dir);
    store.putTask(task('a', { secrets: { app: { TOKEN: 'tok-value-1' } }, registryAuth: { app: { username: 'u', password: 'registry-pass-1' } } }));
    store.putTask(task('b'));
    const onDisk = filesOf(dir);
    assert.doesNotMatch(onDisk, /tok-value-1|registry-pass-1/);
    assert.match(onDisk, /"valueFrom":"token"/, 'the references stay: they are part of the definition');

    const listed = Object.fromEntries(store.listTasks().map((t) => [t.taskArn.slice(-1), t]));
    assert.equal(listed.a!.secrets, undefined, 'not kept in memory either');
    assert.ok(credentialsWithheld(listed.a!));
    assert.ok(!credentialsWithheld(listed.b!), 'a task without credentials is kept as it came');

    const reread = new AgentStateStore(dir).listTasks();
    assert.deepEqual(reread.map((t) => [t.taskArn.slice(-1), credentialsWithheld(t)]).sort(), [['a', true], ['b', false]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a task file written with credentials by an older agent is rewritten without them on start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-agent-store-'));
  try {
    new AgentStateStore(dir);
    writeFileSync(join(dir, 'tasks', 'old.json'), JSON.stringify(task('old', { registryAuth: { app: { username: 'u', password: 'old-pass' } } })));
    const [t] = new AgentStateStore(dir).listTasks();
    assert.ok(credentialsWithheld(t!));
    assert.doesNotMatch(filesOf(dir), /old-pass/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
