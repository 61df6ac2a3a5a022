import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentTokenTable, agentTokensPath, cmdAgentTokens, createAgentToken, ensureAgentToken, loadAgentTokens, localAgentToken, revokeAgentToken } from './agent-tokens';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-tokens-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sink() {
  const out = { text: '', write: (s: string | Uint8Array) => ((out.text += String(s)), true) };
  return out as typeof out & Pick<NodeJS.WritableStream, 'write'>;
}

test('a data dir from before: its unbound tokens become legacy tokens of any cluster, in a file only its owner reads', () =>
  withDir((dir) => {
    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ user: { accessKeyId: 'AKIAUSER', secretAccessKey: 'u' }, agentTokens: [{ accessKeyId: 'AKIAWAGENTOLD', secretAccessKey: 'old' }] }));
    assert.deepEqual(loadAgentTokens(dir), [{ accessKeyId: 'AKIAWAGENTOLD', secretAccessKey: 'old' }]);
    assert.equal(statSync(agentTokensPath(dir)).mode & 0o777, 0o600);
    const table = new AgentTokenTable(dir);
    assert.deepEqual(table.lookup('AKIAWAGENTOLD'), { secret: 'old', principal: { kind: 'agent-token', iamResource: 'role/wharf-agent' } });
    assert.equal(table.lookup('AKIAUSER'), undefined, 'the user key is never an agent token');
    assert.equal(localAgentToken(dir, 'prod').accessKeyId, 'AKIAWAGENTOLD', 'a local agent falls back to the legacy token');
  }));

test('tokens are made per cluster, listed, revoked, and the running table sees each change', () =>
  withDir((dir) => {
    const table = new AgentTokenTable(dir);
    const prod = createAgentToken(dir, 'prod');
    assert.match(prod.accessKeyId, /^AKIAWAGENT[A-Z2-7]{10}$/);
    assert.deepEqual(table.lookup(prod.accessKeyId)?.principal, { kind: 'agent-token', iamResource: 'role/wharf-agent', cluster: 'prod' });
    assert.equal(ensureAgentToken(dir, 'prod').accessKeyId, prod.accessKeyId, 'ensure keeps the one there is');
    const dev = ensureAgentToken(dir, 'dev');
    assert.notEqual(dev.accessKeyId, prod.accessKeyId);
    assert.equal(localAgentToken(dir, 'dev').accessKeyId, dev.accessKeyId);
    assert.throws(() => localAgentToken(dir, 'other'), /wharf credentials --agent --cluster other/);
    const out = sink();
    cmdAgentTokens(dir, { list: true }, out);
    assert.match(out.text, new RegExp(`^KEY ID +CLUSTER +REGION +CREATED\\n${prod.accessKeyId} +prod +\\(any region\\) +\\d{4}-`));
    assert.ok(revokeAgentToken(dir, prod.accessKeyId));
    assert.equal(revokeAgentToken(dir, prod.accessKeyId), false);
    assert.equal(table.lookup(prod.accessKeyId), undefined, 'revoked without a restart');
    assert.ok(table.lookup(dev.accessKeyId));
  }));

test('the CLI prints a new token once, and refuses what it cannot do', () =>
  withDir((dir) => {
    const out = sink();
    cmdAgentTokens(dir, { cluster: 'prod' }, out);
    const [id, secret] = out.text.trim().split(':');
    assert.deepEqual(loadAgentTokens(dir).map((t) => [t.accessKeyId, t.secretAccessKey, t.cluster]), [[id, secret, 'prod']]);
    assert.throws(() => cmdAgentTokens(dir, { cluster: 'no spaces' }, sink()), /not a cluster name/);
    assert.throws(() => cmdAgentTokens(dir, { revoke: 'AKIAWAGENTNONE' }, sink()), /no join token/);
    assert.throws(() => cmdAgentTokens(dir, {}, sink()), /give --cluster C/);
    assert.ok(!readFileSync(agentTokensPath(dir), 'utf8').includes('"user"'));
  }));

test('a token can be bound to a region, by --region or by a cluster ARN; local agents pick the one of their region', () =>
  withDir((dir) => {
    const out = sink();
    cmdAgentTokens(dir, { cluster: 'arn:aws:ecs:eu-west-1:123456789012:cluster/prod' }, out);
    cmdAgentTokens(dir, { cluster: 'prod', region: 'us-west-2' }, out);
    assert.deepEqual(loadAgentTokens(dir).map((t) => [t.cluster, t.region]), [['prod', 'eu-west-1'], ['prod', 'us-west-2']]);
    const ids = out.text.trim().split('\n').map((l) => l.split(':')[0]);
    assert.equal(localAgentToken(dir, 'prod', 'us-west-2').accessKeyId, ids[1]);
    assert.equal(localAgentToken(dir, 'prod', 'eu-west-1').accessKeyId, ids[0]);
    assert.throws(() => localAgentToken(dir, 'prod', 'ap-south-1'), /no join token for cluster prod/, "another region's tokens would be refused");
    // wharf up's own: one per cluster and region.
    const up = ensureAgentToken(dir, 'prod', 'ap-south-1');
    assert.equal(up.region, 'ap-south-1');
    assert.equal(ensureAgentToken(dir, 'prod', 'ap-south-1').accessKeyId, up.accessKeyId);
    const listed = sink();
    cmdAgentTokens(dir, { list: true }, listed);
    assert.match(listed.text, new RegExp(`\\n${ids[0]} +prod +eu-west-1 +\\d{4}-`));
    assert.throws(() => cmdAgentTokens(dir, { cluster: 'prod', region: 'mars-1' }, sink()), /--region: mars-1 is not a region name/);
    assert.throws(() => cmdAgentTokens(dir, { cluster: 'arn:aws:ecs:eu-west-1:123456789012:cluster/prod', region: 'us-east-1' }, sink()), /differ/);
    assert.throws(() => cmdAgentTokens(dir, { cluster: 'arn:aws:ecs:eu-west-1:123456789012:service/prod/x' }, sink()), /is not a cluster ARN/);
    assert.throws(() => cmdAgentTokens(dir, { region: 'us-east-1' }, sink()), /give both/);
  }));
