/**
 * A new target's first health check, made the moment it is registered.
 *
 * HAProxy checks a server slot on that slot's own timer, which keeps running (at `inter`) while
 * the slot is empty; a target placed in a slot is first checked when that timer next fires,
 * anywhere up to one interval later. No Runtime API command re-arms the timer (measured on
 * HAProxy 2.6: addr, state, health, enable/disable health and downinter all leave it where it
 * was). ELB checks a target as soon as its registration completes, so the reconciler makes that
 * one check itself, with the target group's settings, from the host HAProxy runs on, and puts
 * the slot up when it passes. Every later check is HAProxy's, at the group's interval.
 *
 * The request is the one HAProxy's `option httpchk` sends (haproxy-config.ts, healthCheckLines):
 * GET <path> HTTP/1.1, Host the target's address and check port (healthCheckHost), ELB's
 * User-Agent; it passes when the status is one the matcher allows. A TCP check passes when the connection is accepted.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { HEALTH_CHECK_USER_AGENT, healthCheckHost, matcherRegex } from './haproxy-config';
import type { Target, TargetGroup } from './model';

export interface FirstCheckResult {
  passed: boolean;
  /** What failed, for the log: "status 500", "timeout", "connect ECONNREFUSED". */
  detail: string;
}

/** The port a check of `target` goes to (the group's check port, or the target's own). */
export function checkPort(group: TargetGroup, target: Target): number {
  return group.healthCheck.port === 'traffic-port' ? target.port : group.healthCheck.port;
}

/** One health check of `target` as its group defines it; never throws. */
export function firstCheck(group: TargetGroup, target: Target): Promise<FirstCheckResult> {
  const hc = group.healthCheck;
  const port = checkPort(group, target);
  const timeoutMs = hc.timeoutSeconds * 1000;
  return hc.protocol === 'TCP' ? tcpCheck(target.id, port, timeoutMs) : httpCheck(group, target.id, port, timeoutMs);
}

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<FirstCheckResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (r: FirstCheckResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ passed: false, detail: 'timeout' }), timeoutMs);
    socket.once('connect', () => done({ passed: true, detail: 'connected' }));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ passed: false, detail: `connect ${e.code ?? e.message}` }));
  });
}

function httpCheck(group: TargetGroup, host: string, port: number, timeoutMs: number): Promise<FirstCheckResult> {
  const hc = group.healthCheck;
  const codes = new RegExp(matcherRegex(hc.matcher));
  const client = hc.protocol === 'HTTPS' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: FirstCheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = client.request({
      host,
      port,
      method: 'GET',
      path: hc.path,
      agent: false,
      // HAProxy's `check-ssl` does not verify the target's certificate either.
      rejectUnauthorized: false,
      headers: { Host: healthCheckHost(hc.protocol === 'HTTPS' ? 'HTTPS' : 'HTTP', host, port), 'User-Agent': HEALTH_CHECK_USER_AGENT, Connection: 'close' },
    });
    const timer = setTimeout(() => done({ passed: false, detail: 'timeout' }), timeoutMs);
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      done({ passed: codes.test(String(status)), detail: `status ${status}` });
    });
    req.once('error', (e: NodeJS.ErrnoException) => done({ passed: false, detail: `connect ${e.code ?? e.message}` }));
    req.end();
  });
}
