/**
 * The server-state file a reload hands to the new worker (`load-server-state-from-file`), made
 * from `show servers state` of the old one.
 *
 * HAProxy restores more from that file than where a slot points and whether it is up: it also
 * restores each server's check port (`srv_check_port`), over what the new config says. A group
 * whose HealthCheckPort went from 9999 back to traffic-port would go on checking 9999 forever
 * (measured on 2.6). So before the file is written, the check settings a target group owns are
 * set to the group's current ones: the check port (0 = the server's own port, traffic-port), and,
 * for a group without checks, the server running (nothing would ever bring up a slot that was
 * down when its checks were switched off).
 */
import { backendName } from './haproxy-config';
import type { DesiredState } from './model';

/** `show servers state` text with every desired group's check settings made current. */
export function serverStateForReload(stateText: string, desired: DesiredState): string {
  const groups = new Map(desired.targetGroups.map((g) => [backendName(g.id), g]));
  let columns: string[] = [];
  return stateText
    .split('\n')
    .map((line) => {
      if (line.startsWith('# ')) {
        columns = line.slice(2).trim().split(/\s+/);
        return line;
      }
      if (!/^\d+ /.test(line) || columns.length === 0) return line;
      const fields = line.trim().split(/\s+/);
      const g = groups.get(fields[columns.indexOf('be_name')] ?? '');
      if (!g) return line;
      const set = (column: string, value: string) => {
        const i = columns.indexOf(column);
        if (i >= 0 && i < fields.length) fields[i] = value;
      };
      const hc = g.healthCheck;
      set('srv_check_port', hc.enabled && hc.port !== 'traffic-port' ? String(hc.port) : '0');
      if (!hc.enabled) set('srv_op_state', '2');
      return fields.join(' ');
    })
    .join('\n');
}
