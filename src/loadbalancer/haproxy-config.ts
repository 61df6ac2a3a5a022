/**
 * Desired state -> haproxy.cfg, as a pure function (no I/O, no clock).
 *
 *   one frontend per (load balancer address, listener port)
 *   one backend per target group, with a fixed number of server slots s1..sN; a slot holds a
 *   target (address:port) or is parked `disabled` (maintenance) at 0.0.0.0:0. Targets come and
 *   go by rewriting slots through the Runtime API (runtime-api.ts), never by reloading; only a
 *   structural change (listener, rule, target group, health-check setting, more slots) is
 *   written here and applied by a hitless reload.
 *
 * Rules: HAProxy runs `http-request` rules before `use_backend`, so an ELB rule list where a
 * forward of priority 10 must beat a fixed-response of priority 20 cannot be written as
 * independent lines. Instead the frontend first picks the matching rule, in priority order,
 * into the variable txn.rule (0 = the default actions), and every action line is conditioned on
 * that variable. A forward across several target groups draws txn.pick = rand(total weight)
 * and uses the backend whose cumulative weight first exceeds it.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Action, Condition, DesiredState, HealthCheck, Listener, LoadBalancer, TargetGroup, Target } from './model';

/** Where a slot stands in the generated file (the reconciler's own view of a slot). */
export interface SlotContent {
  target: Target;
}

/** Per target group: the slot count and which slots hold which target (index 0 = s1). */
export type SlotLayout = Map<string, (SlotContent | undefined)[]>;

export interface ConfigPaths {
  runtimeSocket: string;
  serverStateFile: string;
  /** Where fixed-response bodies are kept as files (`responseBodies`); default: `responses/`
   * beside the server-state file. */
  responseDir?: string;
}

const SAFE_ID = /^[A-Za-z0-9_.-]{1,100}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$/;

export const backendName = (targetGroupId: string): string => `tg_${targetGroupId}`;
export const frontendName = (lb: LoadBalancer, l: Listener): string => `lb_${lb.id}_${l.id}`;
export const slotName = (index: number): string => `s${index + 1}`;
/**
 * The fail-open twin of slot `index` (ELB: "If a target group contains only unhealthy registered
 * targets, the load balancer routes requests to all those targets"): a `backup` server without
 * checks, parked like an empty slot, that the reconciler points at the slot's target while that
 * target is unhealthy. HAProxy uses backups only when no regular server is up, and with
 * `option allbackups` all of them at once.
 */
export const failOpenName = (index: number): string => `f${index + 1}`;
/** Whether a server of a target group's backend is a slot (s1..sN), not a fail-open twin. */
export const isSlotServer = (name: string): boolean => /^s\d+$/.test(name);

/** The slot count for a group of `n` targets: a multiple of 8 with room to spare, at least 8. */
export function slotsFor(n: number): number {
  return Math.max(8, Math.ceil((n + 4) / 8) * 8);
}

/**
 * A double-quoted HAProxy config word: backslash, double quote and `$` (environment variables)
 * escaped, control characters as HAProxy's \r \n \t \xNN escapes. NUL alone cannot be written:
 * HAProxy's words are C strings and end there.
 */
export function quote(s: string): string {
  if (s.includes('\0')) throw new Error(`a NUL character cannot be written to haproxy.cfg: ${JSON.stringify(s)}`);
  const escaped = s.replace(/[\\"$]/g, '\\$&').replace(/[\x01-\x1f\x7f]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  return `"${escaped}"`;
}

/**
 * The file a fixed-response body is served from. HAProxy's `return ... file` sends a file's bytes
 * as they are, whatever they hold (a `string` would stop at a NUL); named by content, so a
 * changed body is a changed config (a reload), and one file serves every rule with that body.
 */
export function responseFileName(body: string): string {
  return `${createHash('sha256').update(body).digest('hex').slice(0, 32)}.body`;
}

/** Every fixed-response body of `desired`, by file name: what must be in `responseDir` before haproxy reads the config. */
export function responseBodies(desired: DesiredState): Map<string, string> {
  const out = new Map<string, string>();
  for (const lb of desired.loadBalancers) {
    for (const l of lb.listeners) {
      for (const a of [...l.defaultActions, ...l.rules.flatMap((r) => r.actions)]) {
        const body = a.type === 'fixed-response' ? servedBody(a) : undefined;
        if (body) out.set(responseFileName(body), body);
      }
    }
  }
  return out;
}

export const responseDirOf = (paths: ConfigPaths): string => paths.responseDir ?? path.join(path.dirname(paths.serverStateFile), 'responses');

/** ELB wildcards (* any run, ? one character) as an anchored regular expression. */
export function wildcardRegex(pattern: string): string {
  const body = pattern.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return `^${body}$`;
}

/**
 * The body a fixed-response sends: HTTP forbids one in a 204 or 304 (and HAProxy refuses the whole
 * configuration for it), so those go without their MessageBody.
 */
function servedBody(a: Extract<Action, { type: 'fixed-response' }>): string | undefined {
  return a.statusCode === 204 || a.statusCode === 304 ? undefined : a.messageBody || undefined;
}

/** The User-Agent of every health check, HAProxy's and the reconciler's first (ELB's own). */
export const HEALTH_CHECK_USER_AGENT = 'ELB-HealthChecker/2.0';

/**
 * The Host header of a health check of a target at `address`, checked on `port`: ELB sends the
 * target's address (users' reports of ALB checks: "Invalid HTTP_HOST header: '10.0.1.85:8000'",
 * '172.31.31.126' for port 80; ELB's documentation does not say), with the port unless it is the
 * protocol's default, as HTTP clients write Host.
 */
export function healthCheckHost(protocol: 'HTTP' | 'HTTPS', address: string, port: number): string {
  return port === (protocol === 'HTTPS' ? 443 : 80) ? address : `${address}:${port}`;
}

/** "200", "200,202", "200-299" -> the codes, as a regex HAProxy's `rstatus` anchors. */
export function matcherRegex(matcher: string): string {
  const codes = new Set<number>();
  for (const part of matcher.split(',').map((p) => p.trim())) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    if (!m) throw new Error(`health check matcher ${JSON.stringify(matcher)} is not codes or ranges like 200,202 or 200-299`);
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    if (hi < lo) throw new Error(`health check matcher range ${part} ends before it starts`);
    for (let c = lo; c <= hi; c++) codes.add(c);
  }
  return `^(${[...codes].sort((a, b) => a - b).join('|')})$`;
}

function checkId(kind: string, id: string): void {
  if (!SAFE_ID.test(id)) throw new Error(`${kind} id ${JSON.stringify(id)} must be 1-100 of [A-Za-z0-9_.-]`);
}

export function generateConfig(desired: DesiredState, layout: SlotLayout, paths: ConfigPaths): string {
  const groups = new Map(desired.targetGroups.map((g) => [g.id, g]));
  const maxDrain = Math.max(30, ...desired.targetGroups.map((g) => g.attributes.deregistrationDelaySeconds + 5));
  const out: string[] = [
    '# Written by Wharf (src/loadbalancer/haproxy-config.ts); changes here are overwritten.',
    // HAProxy's CPU per proxied keep-alive request is mostly its floor of syscalls, 2 receives
    // and 2 sends (strace: 4.35 a request), and the kernel's loopback TCP behind them. One
    // thread (2.6 starts one per cpu): with targets that compute, requests come one per wakeup
    // and a second thread adds wakeups of its own; bench/loadbalancer.ts's harness on 2 cpus, 100
    // µs targets: HAProxy 76 -> 63 µs CPU per request (lower in 14 of 14 paired runs), trivial
    // targets unchanged within noise. It caps HAProxy at one core: a host whose load balancers
    // need more (many TLS handshakes, say) would need this raised. The default `http-reuse safe`
    // already keeps server connections (one connect per client connection, then reuse);
    // http-reuse always, dropping forwardfor/set-header or health checks moved the figure less
    // than its noise.
    'global',
    '  nbthread 1',
    `  stats socket ${quote(paths.runtimeSocket)} mode 600 level admin expose-fd listeners`,
    `  server-state-file ${quote(paths.serverStateFile)}`,
    // After a reload the old worker finishes its in-flight requests, at most this long.
    `  hard-stop-after ${maxDrain}s`,
    '',
    'defaults',
    '  timeout connect 5s',
    // ALB's default idle timeout is 60 seconds, on both sides.
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-keep-alive 60s',
    '  timeout http-request 30s',
    '  load-server-state-from-file global',
    '',
  ];
  for (const lb of desired.loadBalancers) {
    checkId('load balancer', lb.id);
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(lb.address)) throw new Error(`load balancer ${lb.id} address ${lb.address} is not IPv4`);
    for (const l of lb.listeners) out.push(...frontend(lb, l, groups, responseDirOf(paths)), '');
  }
  for (const g of desired.targetGroups) out.push(...backend(g, layout.get(g.id) ?? []), '');
  return out.join('\n');
}

function frontend(lb: LoadBalancer, l: Listener, groups: Map<string, TargetGroup>, responseDir: string): string[] {
  checkId('listener', l.id);
  if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535) throw new Error(`listener ${l.id} port ${l.port} is not 1-65535`);
  const bind = `  bind ${lb.address}:${l.port}`;
  if (l.protocol === 'TCP') {
    if (l.rules.length > 0) throw new Error(`TCP listener ${l.id} cannot have rules`);
    const [action, ...more] = l.defaultActions;
    if (action?.type !== 'forward' || more.length > 0 || action.targetGroups.length !== 1) {
      throw new Error(`TCP listener ${l.id} takes exactly one forward action to one target group`);
    }
    return [`frontend ${frontendName(lb, l)}`, '  mode tcp', bind, `  default_backend ${groupBackend(action.targetGroups[0]!.targetGroupId, groups, 'TCP')}`];
  }
  let tls = '';
  if (l.protocol === 'HTTPS') {
    if (!l.certificatePemFile) throw new Error(`HTTPS listener ${l.id} needs a certificate PEM file`);
    tls = ` ssl crt ${quote(l.certificatePemFile)}`;
  }
  const proto = l.protocol.toLowerCase();
  const out = [
    `frontend ${frontendName(lb, l)}`,
    '  mode http',
    bind + tls,
    '  option http-keep-alive',
    ...forwardedForLines(lb),
    ...TRACE_ID_LINES,
    `  http-request set-header X-Forwarded-Proto ${proto}`,
    '  http-request set-header X-Forwarded-Port %[dst_port]',
  ];
  const rules = [...l.rules].sort((a, b) => a.priority - b.priority);
  const seen = new Set<number>();
  for (const r of rules) {
    if (!Number.isInteger(r.priority) || r.priority < 1 || r.priority > 50000) throw new Error(`rule priority ${r.priority} is not 1-50000`);
    if (seen.has(r.priority)) throw new Error(`listener ${l.id} has two rules of priority ${r.priority}`);
    seen.add(r.priority);
    if (r.conditions.length === 0) throw new Error(`rule ${r.priority} has no condition`);
    const names = r.conditions.map((c, i) => {
      const name = `r${r.priority}_c${i}`;
      out.push(...conditionAcl(name, c));
      return name;
    });
    out.push(`  http-request set-var(txn.rule) int(${r.priority}) if !{ var(txn.rule) -m found } ${names.join(' ')}`);
  }
  out.push('  http-request set-var(txn.rule) int(0) if !{ var(txn.rule) -m found }');
  const actions = [...rules.flatMap((r) => actionLines(r.priority, r.actions, l, groups, responseDir)), ...actionLines(0, l.defaultActions, l, groups, responseDir)];
  // HAProxy evaluates every http-request rule before any use_backend: write them in that order.
  const isUse = (line: string) => line.startsWith('  use_backend ');
  return [...out, ...actions.filter((a) => !isUse(a)), ...actions.filter(isUse)];
}

/** At most this many X-Forwarded-For lines of a request are joined; later ones are dropped. */
export const XFF_LINES_JOINED = 8;

/**
 * X-Forwarded-For as ALB writes it. Append (the default) adds the client's address to the header
 * the request brought, as one comma-separated header ("a, b, client"), where `option forwardfor`
 * would add a second header line. HAProxy 2.6 has no join of a header's lines: they are
 * gathered one by one into txn.xff (empty ones skipped), then the header is set once.
 */
function forwardedForLines(lb: LoadBalancer): string[] {
  const x = lb.xForwardedFor ?? { mode: 'append', clientPort: false };
  if (x.mode === 'preserve') return [];
  if (x.mode === 'remove') return ['  http-request del-header X-Forwarded-For'];
  const out: string[] = [];
  for (let i = 1; i <= XFF_LINES_JOINED; i++) {
    const line = `%[req.fhdr(X-Forwarded-For,${i})]`;
    out.push(`  http-request set-var-fmt(txn.xff) ${quote(`${i > 1 ? '%[var(txn.xff)]' : ''}${line}, `)} if { req.fhdr_cnt(X-Forwarded-For) ge ${i} } { req.fhdr(X-Forwarded-For,${i}) -m len gt 0 }`);
  }
  out.push(`  http-request set-header X-Forwarded-For ${quote(`%[var(txn.xff)]%[src]${x.clientPort ? ':%[src_port]' : ''}`)}`);
  return out;
}

/**
 * X-Amzn-Trace-Id as ALB writes it ("Request tracing for your Application Load Balancer"): a new
 * `Root=1-<epoch seconds, 8 hex>-<24 hex>` when the request has none; `Self=` with a new id put
 * in front of a header that has a Root, or in place of a Self it already has; other fields kept.
 * A header with neither gets a Root in front of what it carried. (ALB's rewrite of headers over
 * 7 KB is not done.)
 */
const TRACE_ID_LINES = [
  `  http-request set-var-fmt(txn.trace_id) ${quote(`1-%[date,htonl,hex,lower]-${'%[rand,htonl,hex,lower]'.repeat(3)}`)}`,
  `  acl trace_self req.fhdr(X-Amzn-Trace-Id) -m reg ${quote('(^|;)[ ]*Self=')}`,
  `  acl trace_root req.fhdr(X-Amzn-Trace-Id) -m reg ${quote('(^|;)[ ]*Root=')}`,
  `  http-request replace-header X-Amzn-Trace-Id ${quote('^((.*;)?[ ]*)Self=[^;]*(.*)$')} ${quote('\\1Self=%[var(txn.trace_id)]\\3')} if trace_self`,
  `  http-request replace-header X-Amzn-Trace-Id ${quote('^(.*)$')} ${quote('Self=%[var(txn.trace_id)];\\1')} if trace_root !trace_self`,
  `  http-request replace-header X-Amzn-Trace-Id ${quote('^(.*)$')} ${quote('Root=%[var(txn.trace_id)];\\1')} if { req.hdr(X-Amzn-Trace-Id) -m found } !trace_root !trace_self`,
  `  http-request set-header X-Amzn-Trace-Id ${quote('Root=%[var(txn.trace_id)]')} unless { req.hdr(X-Amzn-Trace-Id) -m found }`,
];

function conditionAcl(name: string, c: Condition): string[] {
  if (c.values.length === 0) throw new Error(`a ${c.field} condition needs at least one value`);
  // Several `acl` lines of one name are OR'ed by HAProxy: one line per value.
  return c.values.map((v) => {
    const re = quote(wildcardRegex(v));
    switch (c.field) {
      case 'path-pattern':
        return `  acl ${name} path -m reg ${re}`;
      case 'host-header':
        return `  acl ${name} req.hdr(host),field(1,:) -m reg -i ${re}`;
      case 'http-header':
        if (!HEADER_NAME.test(c.headerName)) throw new Error(`http-header name ${JSON.stringify(c.headerName)} is not a header name`);
        return `  acl ${name} req.hdr(${c.headerName}) -m reg -i ${re}`;
    }
  });
}

function groupBackend(id: string, groups: Map<string, TargetGroup>, mode: 'HTTP' | 'TCP'): string {
  const g = groups.get(id);
  if (!g) throw new Error(`target group ${id} is not in the desired state`);
  if ((g.protocol === 'TCP') !== (mode === 'TCP')) throw new Error(`target group ${id} (${g.protocol}) cannot serve a ${mode} listener`);
  return backendName(id);
}

function actionLines(rule: number, actions: Action[], l: Listener, groups: Map<string, TargetGroup>, responseDir: string): string[] {
  if (actions.length !== 1) throw new Error(`rule ${rule || 'default'} of listener ${l.id} must have exactly one action`);
  const action = actions[0]!;
  const when = `{ var(txn.rule) -m int ${rule} }`;
  switch (action.type) {
    case 'forward': {
      const weighted = action.targetGroups.filter((t) => action.targetGroups.length === 1 || t.weight > 0);
      if (weighted.length === 0) {
        // Every group at weight 0 (ELB allows it): no group takes the request, which is answered
        // as a group without targets is, with HAProxy's 503. The groups must still be servable.
        for (const t of action.targetGroups) groupBackend(t.targetGroupId, groups, 'HTTP');
        return [`  http-request deny deny_status 503 if ${when}`];
      }
      if (weighted.length === 1) return [`  use_backend ${groupBackend(weighted[0]!.targetGroupId, groups, 'HTTP')} if ${when}`];
      const total = weighted.reduce((s, t) => s + t.weight, 0);
      const out = [`  http-request set-var(txn.pick) rand(${total}) if ${when}`];
      let upTo = 0;
      for (const t of weighted) {
        upTo += t.weight;
        out.push(`  use_backend ${groupBackend(t.targetGroupId, groups, 'HTTP')} if ${when} { var(txn.pick) -m int lt ${upTo} }`);
      }
      return out;
    }
    case 'fixed-response': {
      if (!Number.isInteger(action.statusCode) || action.statusCode < 200 || action.statusCode > 599) throw new Error(`fixed-response status ${action.statusCode} is not 2XX-5XX`);
      const served = servedBody(action);
      const file = served ? path.join(responseDir, responseFileName(served)) : '';
      const body = file ? ` content-type ${quote(action.contentType ?? 'text/plain')} file ${quote(file)}` : '';
      return [`  http-request return status ${action.statusCode}${body} if ${when}`];
    }
    case 'redirect':
      return redirectLines(action, l, when);
  }
}

/** ELB's #{...} placeholders in HAProxy log-format; the listener's own protocol and port are literal. */
function redirectLines(a: Extract<Action, { type: 'redirect' }>, l: Listener, when: string): string[] {
  const lit = (s: string) => s.replace(/%/g, '%%');
  const fill = (s: string) =>
    lit(s)
      .replace(/#\{protocol\}/g, l.protocol.toLowerCase())
      .replace(/#\{host\}/g, '%[req.hdr(host),field(1,:)]')
      .replace(/#\{port\}/g, String(l.port))
      // ELB's #{path} has no leading slash: the default path is "/#{path}".
      .replace(/#\{path\}/g, '%[path,regsub(^/,)]')
      .replace(/#\{query\}/g, '%[query]');
  const protocol = fill(a.protocol ?? '#{protocol}').toLowerCase();
  const port = fill(a.port ?? '#{port}');
  const defaultPort = (protocol === 'http' && port === '80') || (protocol === 'https' && port === '443');
  const base = `${protocol}://${fill(a.host ?? '#{host}')}${defaultPort ? '' : ':' + port}${fill(a.path ?? '/#{path}')}`;
  const query = fill(a.query ?? '#{query}');
  const line = (loc: string, cond: string) => `  http-request redirect location ${quote(loc)} code ${a.statusCode} if ${when}${cond}`;
  if (!query) return [line(base, '')];
  // No "?" when the query would come out empty, as ELB does.
  return a.query === undefined || a.query === '#{query}'
    ? [line(`${base}?${query}`, ' { query -m len gt 0 }'), line(base, '')]
    : [line(`${base}?${query}`, '')];
}

function healthCheckLines(g: TargetGroup, hc: HealthCheck): string[] {
  if (!hc.enabled) return [];
  const out = [`  timeout check ${hc.timeoutSeconds}s`];
  if (hc.protocol === 'TCP') return out;
  // Host is the target's address and the check port, without the protocol's default port
  // (healthCheckHost): the slot's address comes from the check's own connection (bc_dst), so it
  // follows the target the Runtime API puts in the slot.
  const defaultPort = hc.protocol === 'HTTPS' ? 443 : 80;
  out.push(
    '  option httpchk',
    `  http-check set-var-fmt(check.host) ${quote('%[bc_dst]:%[bc_dst_port]')}`,
    `  http-check send meth GET uri ${quote(hc.path)} ver HTTP/1.1 hdr Host ${quote(`%[var(check.host),regsub(:${defaultPort}$,)]`)} hdr User-Agent ${HEALTH_CHECK_USER_AGENT}`,
    `  http-check expect rstatus ${quote(matcherRegex(hc.matcher))}`,
  );
  return out;
}

/**
 * ELB's lb_cookie stickiness: AWSALB, expiring `seconds` from now, and AWSALBCORS with the same
 * value for cross-site requests (SameSite=None; Secure), which ELB also accepts back. HAProxy's
 * `cookie` sets no Expires (maxlife only bounds it on the server side) and inserts its cookie
 * after every `http-response` rule, so the Expires attribute and AWSALBCORS are added by
 * `http-after-response` rules, which see the inserted cookie.
 */
function lbCookieLines(seconds: number): string[] {
  const expires = `Expires=%[date(${seconds}),http_date]`;
  return [
    `  cookie AWSALB insert indirect nocache maxlife ${seconds}s`,
    `  http-request add-header Cookie ${quote('AWSALB=%[req.cook(AWSALBCORS)]')} if { req.cook(AWSALBCORS) -m found } !{ req.cook(AWSALB) -m found }`,
    `  http-after-response replace-header Set-Cookie ${quote('^(AWSALB=[^;]*)(.*)$')} ${quote(`\\1; ${expires}\\2`)}`,
    `  http-after-response add-header Set-Cookie ${quote(`AWSALBCORS=%[res.cook(AWSALB)]; ${expires}; Path=/; SameSite=None; Secure`)} if { res.cook(AWSALB) -m found }`,
  ];
}

function backend(g: TargetGroup, slots: (SlotContent | undefined)[]): string[] {
  checkId('target group', g.id);
  const hc = g.healthCheck;
  const a = g.attributes;
  const http = g.protocol !== 'TCP';
  const out = [
    `backend ${backendName(g.id)}`,
    `  mode ${http ? 'http' : 'tcp'}`,
    `  balance ${a.algorithm === 'least_outstanding_requests' ? 'leastconn' : 'roundrobin'}`,
    // A connection refused by a target that just went away is retried on another target.
    '  option redispatch',
    '  retries 3',
  ];
  if (http) out.push('  retry-on conn-failure empty-response');
  out.push(...healthCheckLines(g, hc));
  const cookie = a.stickiness?.type === 'lb_cookie';
  if (a.stickiness) {
    if (cookie && !http) throw new Error(`target group ${g.id}: lb_cookie stickiness needs an HTTP target group`);
    if (cookie) out.push(...lbCookieLines(a.stickiness.durationSeconds));
    else out.push(`  stick-table type ip size 1m expire ${a.stickiness.durationSeconds}s`, '  stick on src');
  }
  const defaults = [`inter ${hc.intervalSeconds}s`, `fall ${hc.unhealthyThreshold}`, `rise ${hc.healthyThreshold}`];
  if (hc.enabled) defaults.push('check');
  if (hc.enabled && hc.port !== 'traffic-port') defaults.push(`port ${hc.port}`);
  if (hc.enabled && hc.protocol === 'HTTPS') defaults.push('check-ssl');
  if (g.protocol === 'HTTPS') defaults.push('ssl verify none');
  if (a.slowStartSeconds > 0) defaults.push(`slowstart ${a.slowStartSeconds}s`);
  out.push(`  default-server ${defaults.join(' ')}`);
  slots.forEach((s, i) => {
    const name = slotName(i);
    const where = s ? `${s.target.id}:${s.target.port}` : '0.0.0.0:0 disabled';
    out.push(`  server ${name} ${where}${cookie ? ` cookie ${name}` : ''}`);
  });
  // Fail-open twins exist only where checks can make every target unhealthy; they start parked and
  // are pointed at unhealthy targets by the reconciler (a reload keeps them through the state file).
  if (hc.enabled) {
    out.push('  option allbackups');
    slots.forEach((_, i) => {
      const name = failOpenName(i);
      out.push(`  server ${name} 0.0.0.0:0 disabled backup no-check${cookie ? ` cookie ${name}` : ''}`);
    });
  }
  return out;
}
