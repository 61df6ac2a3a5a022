import { test } from 'node:test';
import assert from 'node:assert/strict';
import { targetGroupDefaults, type TargetGroup } from './model';
import { serverStateForReload } from './server-state';

// `show servers state` of HAProxy 2.6 after a group's check port was set to 9999.
const STATE = [
  '1',
  '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port',
  '2 tg_web 1 s1 127.0.0.1 0 0 1 1 4 8 2 0 6 0 0 0 - 8080 - 0 9999 - - 9999',
  '2 tg_web 2 s2 0.0.0.0 0 5 1 1 4 1 0 0 14 0 0 0 - 0 - 0 9999 - - 9999',
  '3 tg_other 1 s1 10.0.0.9 2 0 1 1 4 6 3 4 6 0 0 0 - 80 - 0 7000 - - 0',
  '',
].join('\n');

function group(id: string, hc: Partial<TargetGroup['healthCheck']>): TargetGroup {
  const d = targetGroupDefaults('HTTP');
  return { ...d, id, port: 80, targets: [], healthCheck: { ...d.healthCheck, ...hc } };
}

const column = (text: string, row: number, name: string) => {
  const lines = text.split('\n');
  const cols = lines[1]!.slice(2).split(' ');
  return lines[row]!.split(' ')[cols.indexOf(name)];
};

test("a reload's server-state file carries each group's current check port, not the old one", () => {
  const back = serverStateForReload(STATE, { loadBalancers: [], targetGroups: [group('web', { port: 'traffic-port' })] });
  // 0: check the server's own port (traffic-port).
  assert.deepEqual([column(back, 2, 'srv_check_port'), column(back, 3, 'srv_check_port')], ['0', '0']);
  // Everything else is kept: address, state, health.
  assert.equal(back.split('\n')[2], '2 tg_web 1 s1 127.0.0.1 0 0 1 1 4 8 2 0 6 0 0 0 - 8080 - 0 0 - - 9999');
  // A group not in the desired state is left as it was.
  assert.equal(back.split('\n')[4], STATE.split('\n')[4]);
  const other = serverStateForReload(STATE, { loadBalancers: [], targetGroups: [group('web', { port: 8081 })] });
  assert.equal(column(other, 2, 'srv_check_port'), '8081');
});

test('a group whose checks were switched off gets its servers running again', () => {
  const off = serverStateForReload(STATE, { loadBalancers: [], targetGroups: [group('web', { enabled: false })] });
  assert.deepEqual([column(off, 2, 'srv_op_state'), column(off, 2, 'srv_admin_state')], ['2', '0']);
  assert.equal(column(off, 3, 'srv_admin_state'), '5', 'a parked slot stays in maintenance');
});
