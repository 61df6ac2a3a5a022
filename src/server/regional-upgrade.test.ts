import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../core/iam-policy';
import { agentChannelDenial } from './regional-upgrade';

const p = { region: 'us-east-1', accountId: '123456789012' };
const url = (cluster: string, ci: string) => new URL(`http://x/v1/agent/connect?cluster=${cluster}&containerInstance=${ci}`);
const user = (policy: unknown) => ({ kind: 'user' as const, iamResource: 'user/u', policy: parsePolicy(policy) });

test('a user key opens the agent channel only when its policy allows ecs:Poll on that instance', () => {
  const readonly = user({ Statement: [{ Effect: 'Allow', Action: ['ecs:Describe*', 'ecs:List*'], Resource: '*' }] });
  assert.equal(agentChannelDenial(readonly, p, url('a', 'abc')),
    'User: arn:aws:iam::123456789012:user/u is not authorized to perform: ecs:Poll on resource: arn:aws:ecs:us-east-1:123456789012:container-instance/a/abc because no identity-based policy allows the ecs:Poll action');
  const inA = user({ Statement: [{ Effect: 'Allow', Action: 'ecs:Poll', Resource: '*', Condition: { ArnEquals: { 'ecs:cluster': 'arn:aws:ecs:us-east-1:123456789012:cluster/a' } } }] });
  assert.equal(agentChannelDenial(inA, p, url('a', 'abc')), undefined);
  assert.match(agentChannelDenial(inA, p, url('b', 'abc')) ?? '', /ecs:Poll on resource: .*container-instance\/b\/abc/);
  // The root key and agents' keys are not checked here.
  assert.equal(agentChannelDenial({ kind: 'user', iamResource: 'root' }, p, url('b', 'abc')), undefined);
  assert.equal(agentChannelDenial({ kind: 'agent-token', iamResource: 'role/wharf-agent' }, p, url('b', 'abc')), undefined);
});
