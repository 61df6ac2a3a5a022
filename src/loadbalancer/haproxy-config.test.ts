import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateConfig, healthCheckHost, matcherRegex, quote, responseBodies, responseFileName, slotsFor, wildcardRegex, XFF_LINES_JOINED, type SlotLayout } from './haproxy-config';
import { targetGroupDefaults, type DesiredState, type Listener, type LoadBalancer, type TargetGroup } from './model';

const PATHS = { runtimeSocket: '/run/lb/runtime.sock', serverStateFile: '/run/lb/state' };

function group(id: string, over: Partial<TargetGroup> = {}): TargetGroup {
  return { ...targetGroupDefaults('HTTP'), id, port: 80, targets: [], ...over };
}

function desired(listener: Partial<Listener>, groups = [group('web')]): DesiredState {
  const l: Listener = { id: 'l80', port: 80, protocol: 'HTTP', defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'web', weight: 1 }] }], rules: [], ...listener };
  return { loadBalancers: [{ id: 'lb1', type: 'application', address: '127.100.0.1', listeners: [l] }], targetGroups: groups };
}

const lines = (cfg: string) => cfg.split('\n').map((l) => l.trim());

const haproxyMissing = spawnSync('haproxy', ['-v']).status === 0 ? false : 'haproxy is not installed';

/** `haproxy -c` on the generated file, its bodies written where it reads them: the error text, or '' when valid. */
function haproxyCheck(d: DesiredState): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-cfg-'));
  try {
    const paths = { runtimeSocket: path.join(dir, 'sock'), serverStateFile: path.join(dir, 'state'), responseDir: dir };
    for (const [name, body] of responseBodies(d)) fs.writeFileSync(path.join(dir, name), body);
    fs.writeFileSync(path.join(dir, 'haproxy.cfg'), generateConfig(d, new Map(), paths));
    const r = spawnSync('haproxy', ['-c', '-f', path.join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
    return r.status === 0 ? '' : `${r.stdout}${r.stderr}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('haproxy config generator', () => {
  test('a listener is a frontend on its load balancer address with forwarded headers and keep-alive', () => {
    const cfg = lines(generateConfig(desired({}), new Map(), PATHS));
    for (const want of ['frontend lb_lb1_l80', 'bind 127.100.0.1:80', 'http-request set-header X-Forwarded-For "%[var(txn.xff)]%[src]"', 'option http-keep-alive', 'http-request set-header X-Forwarded-Proto http', 'http-request set-header X-Forwarded-Port %[dst_port]', 'use_backend tg_web if { var(txn.rule) -m int 0 }']) {
      assert.ok(cfg.includes(want), want);
    }
  });

  test('a target group is a backend of slots: targets where placed, the rest parked disabled', () => {
    const layout: SlotLayout = new Map([['web', [undefined, { target: { id: '10.0.0.5', port: 8080 } }, undefined]]]);
    const cfg = lines(generateConfig(desired({}), layout, PATHS));
    assert.deepEqual(cfg.filter((l) => l.startsWith('server s')), ['server s1 0.0.0.0:0 disabled', 'server s2 10.0.0.5:8080', 'server s3 0.0.0.0:0 disabled']);
  });

  test('a group with health checks has a parked fail-open twin per slot (backup, no checks, all used at once); one without has none', () => {
    const layout: SlotLayout = new Map([['web', [undefined, { target: { id: '10.0.0.5', port: 8080 } }]]]);
    const cfg = lines(generateConfig(desired({}), layout, PATHS));
    assert.deepEqual(cfg.filter((l) => l.startsWith('server f')), ['server f1 0.0.0.0:0 disabled backup no-check', 'server f2 0.0.0.0:0 disabled backup no-check']);
    assert.ok(cfg.includes('option allbackups'));
    const unchecked = group('web', { healthCheck: { ...targetGroupDefaults('HTTP').healthCheck, enabled: false } });
    const plain = lines(generateConfig(desired({}, [unchecked]), layout, PATHS));
    assert.deepEqual(plain.filter((l) => l.startsWith('server f') || l === 'option allbackups'), []);
  });

  test("X-Forwarded-For: append (the default) joins the request's lines and the client into one header; the client port if asked; preserve adds nothing; remove deletes it", () => {
    const withXff = (xForwardedFor?: LoadBalancer['xForwardedFor']) => {
      const d = desired({});
      d.loadBalancers[0] = { ...d.loadBalancers[0]!, ...(xForwardedFor ? { xForwardedFor } : {}) };
      return lines(generateConfig(d, new Map(), PATHS)).filter((l) => /forwardfor|X-Forwarded-For|txn\.xff/.test(l));
    };
    const append = withXff();
    assert.equal(append.length, XFF_LINES_JOINED + 1);
    assert.deepEqual(append.slice(0, 2), [
      'http-request set-var-fmt(txn.xff) "%[req.fhdr(X-Forwarded-For,1)], " if { req.fhdr_cnt(X-Forwarded-For) ge 1 } { req.fhdr(X-Forwarded-For,1) -m len gt 0 }',
      'http-request set-var-fmt(txn.xff) "%[var(txn.xff)]%[req.fhdr(X-Forwarded-For,2)], " if { req.fhdr_cnt(X-Forwarded-For) ge 2 } { req.fhdr(X-Forwarded-For,2) -m len gt 0 }',
    ]);
    assert.equal(append.at(-1), 'http-request set-header X-Forwarded-For "%[var(txn.xff)]%[src]"');
    assert.deepEqual(withXff({ mode: 'append', clientPort: false }), append);
    assert.equal(withXff({ mode: 'append', clientPort: true }).at(-1), 'http-request set-header X-Forwarded-For "%[var(txn.xff)]%[src]:%[src_port]"');
    assert.deepEqual(withXff({ mode: 'preserve', clientPort: true }), []);
    assert.deepEqual(withXff({ mode: 'remove', clientPort: false }), ['http-request del-header X-Forwarded-For']);
    for (const x of [{ mode: 'append' as const, clientPort: true }, { mode: 'remove' as const, clientPort: false }]) {
      const d = desired({});
      d.loadBalancers[0] = { ...d.loadBalancers[0]!, xForwardedFor: x };
      if (!haproxyMissing) assert.equal(haproxyCheck(d), '', x.mode);
    }
  });

  test('health check settings become inter/fall/rise, httpchk and the matcher', () => {
    const g = group('web', { healthCheck: { ...targetGroupDefaults('HTTP').healthCheck, path: '/ping', port: 9000, intervalSeconds: 10, timeoutSeconds: 4, healthyThreshold: 3, unhealthyThreshold: 4, matcher: '200,202' } });
    const cfg = lines(generateConfig(desired({}, [g]), new Map(), PATHS));
    assert.ok(cfg.includes('default-server inter 10s fall 4 rise 3 check port 9000'));
    assert.ok(cfg.includes('timeout check 4s'));
    assert.ok(cfg.includes('http-check expect rstatus "^(200|202)\\$"'));
    assert.ok(cfg.some((l) => l.startsWith('http-check send meth GET uri "/ping" ver HTTP/1.1')));
  });

  test("a health check's Host is the target's address and check port (taken from the check's connection), without the protocol's default port", () => {
    const cfg = lines(generateConfig(desired({}), new Map(), PATHS));
    assert.ok(cfg.includes('http-check set-var-fmt(check.host) "%[bc_dst]:%[bc_dst_port]"'));
    assert.ok(cfg.some((l) => l.startsWith('http-check send ') && l.includes(' hdr Host "%[var(check.host),regsub(:80\\$,)]" hdr User-Agent ELB-HealthChecker/2.0')));
    const tls = group('web', { healthCheck: { ...targetGroupDefaults('HTTPS').healthCheck, protocol: 'HTTPS' } });
    assert.ok(lines(generateConfig(desired({}, [tls]), new Map(), PATHS)).some((l) => l.includes('regsub(:443\\$,)')));
    assert.deepEqual([healthCheckHost('HTTP', '10.0.1.85', 8000), healthCheckHost('HTTP', '10.0.1.85', 80), healthCheckHost('HTTPS', '10.0.1.85', 443), healthCheckHost('HTTPS', '10.0.1.85', 80)], ['10.0.1.85:8000', '10.0.1.85', '10.0.1.85', '10.0.1.85:80']);
  });

  test('attributes: least outstanding requests, slow start, cookie stickiness', () => {
    const g = group('web', { attributes: { deregistrationDelaySeconds: 60, slowStartSeconds: 30, algorithm: 'least_outstanding_requests', stickiness: { type: 'lb_cookie', durationSeconds: 3600 } } });
    const cfg = lines(generateConfig(desired({}, [g]), new Map([['web', [undefined]]]), PATHS));
    assert.ok(cfg.includes('balance leastconn'));
    assert.ok(cfg.some((l) => l.startsWith('default-server') && l.endsWith('slowstart 30s')));
    assert.ok(cfg.includes('cookie AWSALB insert indirect nocache maxlife 3600s'));
    assert.ok(cfg.includes('http-after-response replace-header Set-Cookie "^(AWSALB=[^;]*)(.*)\\$" "\\\\1; Expires=%[date(3600),http_date]\\\\2"'));
    assert.ok(cfg.includes('server s1 0.0.0.0:0 disabled cookie s1'));
    assert.ok(cfg.includes('server f1 0.0.0.0:0 disabled backup no-check cookie f1'));
    assert.ok(cfg.includes('hard-stop-after 65s'));
  });

  test('rules pick by priority into txn.rule; all http-request lines come before use_backend', () => {
    const cfg = lines(
      generateConfig(
        desired(
          {
            rules: [
              { priority: 20, conditions: [{ field: 'path-pattern', values: ['/b/*'] }], actions: [{ type: 'fixed-response', statusCode: 503, messageBody: 'down' }] },
              { priority: 10, conditions: [{ field: 'path-pattern', values: ['/a/*'] }, { field: 'host-header', values: ['*.example.com'] }], actions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'web', weight: 1 }] }] },
            ],
          },
          [group('web')],
        ),
        new Map(),
        PATHS,
      ),
    );
    const picks = cfg.filter((l) => l.includes('set-var(txn.rule)'));
    assert.deepEqual(picks, [
      'http-request set-var(txn.rule) int(10) if !{ var(txn.rule) -m found } r10_c0 r10_c1',
      'http-request set-var(txn.rule) int(20) if !{ var(txn.rule) -m found } r20_c0',
      'http-request set-var(txn.rule) int(0) if !{ var(txn.rule) -m found }',
    ]);
    assert.ok(cfg.includes(`http-request return status 503 content-type "text/plain" file "/run/lb/responses/${responseFileName('down')}" if { var(txn.rule) -m int 20 }`));
    const lastHttpRequest = cfg.map((l) => l.startsWith('http-request')).lastIndexOf(true);
    const firstUse = cfg.findIndex((l) => l.startsWith('use_backend'));
    assert.ok(lastHttpRequest < firstUse);
  });

  test('fixed-response bodies are files named by their content, served as they are whatever they hold', () => {
    const body = '{\n  "ok": true\r\n\t"x": "%s \\ $HOME"\u0000 é\n}';
    const d = desired({
      defaultActions: [{ type: 'fixed-response', statusCode: 200, contentType: 'application/json', messageBody: body }],
      rules: [{ priority: 1, conditions: [{ field: 'path-pattern', values: ['/x'] }], actions: [{ type: 'fixed-response', statusCode: 404, messageBody: 'gone' }] }],
    });
    const cfg = lines(generateConfig(d, new Map(), { ...PATHS, responseDir: '/data/bodies' }));
    assert.ok(cfg.includes(`http-request return status 200 content-type "application/json" file "/data/bodies/${responseFileName(body)}" if { var(txn.rule) -m int 0 }`));
    assert.deepEqual(responseBodies(d), new Map([[responseFileName('gone'), 'gone'], [responseFileName(body), body]]));
    assert.notEqual(responseFileName('a'), responseFileName('b'));
  });

  test('a weighted forward draws rand(total) and splits by cumulative weight; weight 0 is left out', () => {
    const forward = { type: 'forward' as const, targetGroups: [{ targetGroupId: 'a', weight: 30 }, { targetGroupId: 'b', weight: 0 }, { targetGroupId: 'c', weight: 70 }] };
    const cfg = lines(generateConfig(desired({ defaultActions: [forward] }, [group('a'), group('b'), group('c')]), new Map(), PATHS));
    assert.ok(cfg.includes('http-request set-var(txn.pick) rand(100) if { var(txn.rule) -m int 0 }'));
    assert.deepEqual(cfg.filter((l) => l.startsWith('use_backend')), [
      'use_backend tg_a if { var(txn.rule) -m int 0 } { var(txn.pick) -m int lt 30 }',
      'use_backend tg_c if { var(txn.rule) -m int 0 } { var(txn.pick) -m int lt 100 }',
    ]);
  });

  test('a forward whose groups all have weight 0 answers 503 for its requests (the groups stay, with their checks); the other rules are served', () => {
    const zero = { type: 'forward' as const, targetGroups: [{ targetGroupId: 'a', weight: 0 }, { targetGroupId: 'b', weight: 0 }] };
    const d = desired({ rules: [{ priority: 1, conditions: [{ field: 'path-pattern', values: ['/z'] }], actions: [zero] }] }, [group('web'), group('a'), group('b')]);
    const cfg = lines(generateConfig(d, new Map(), PATHS));
    assert.ok(cfg.includes('http-request deny deny_status 503 if { var(txn.rule) -m int 1 }'));
    assert.deepEqual(cfg.filter((l) => l.startsWith('use_backend')), ['use_backend tg_web if { var(txn.rule) -m int 0 }']);
    assert.ok(cfg.includes('backend tg_a') && cfg.includes('backend tg_b'));
    const dflt = lines(generateConfig(desired({ defaultActions: [zero] }, [group('a'), group('b')]), new Map(), PATHS));
    assert.ok(dflt.includes('http-request deny deny_status 503 if { var(txn.rule) -m int 0 }'));
    // The groups must still be ones the listener can serve.
    assert.throws(() => generateConfig(desired({ defaultActions: [zero] }, [group('a')]), new Map(), PATHS), /target group b/);
  });

  test('a 204 or 304 fixed-response goes without its body (HTTP forbids one, haproxy refuses the configuration)', () => {
    const d = desired({
      defaultActions: [{ type: 'fixed-response', statusCode: 204, contentType: 'text/plain', messageBody: 'ignored' }],
      rules: [{ priority: 1, conditions: [{ field: 'path-pattern', values: ['/n'] }], actions: [{ type: 'fixed-response', statusCode: 304, messageBody: 'also' }] }],
    });
    const cfg = lines(generateConfig(d, new Map(), PATHS));
    assert.ok(cfg.includes('http-request return status 204 if { var(txn.rule) -m int 0 }'));
    assert.ok(cfg.includes('http-request return status 304 if { var(txn.rule) -m int 1 }'));
    assert.deepEqual(responseBodies(d), new Map());
  });

  test('every action, condition and setting the model allows passes haproxy -c', { skip: haproxyMissing }, () => {
    const body = 'body\n\t%s $HOME \\ "q"';
    const fixed = (statusCode: number) => [{ type: 'fixed-response' as const, statusCode, contentType: 'text/html', messageBody: body }];
    const statuses = [200, 201, 202, 203, 204, 205, 206, 304, 400, 401, 403, 404, 410, 418, 429, 451, 500, 502, 503, 504, 599];
    const d = desired(
      {
        defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'a', weight: 0 }, { targetGroupId: 'b', weight: 0 }] }],
        rules: [
          ...statuses.map((s, i) => ({ priority: i + 1, conditions: [{ field: 'path-pattern' as const, values: [`/${s}*`] }], actions: fixed(s) })),
          { priority: 100, conditions: [{ field: 'host-header', values: ['*.a?.example.com'] }, { field: 'http-header', headerName: 'X-Env', values: ['b%{x}$y"z'] }], actions: [{ type: 'redirect', statusCode: 301, protocol: 'HTTPS', host: '%[x]#{host}', port: '443', path: '/#{path}%', query: 'a=%{b}&#{query}' }] },
          { priority: 101, conditions: [{ field: 'path-pattern', values: ['/w'] }], actions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'a', weight: 3 }, { targetGroupId: 'b', weight: 0 }, { targetGroupId: 'web', weight: 1 }] }] },
        ],
      },
      [
        group('web', { attributes: { deregistrationDelaySeconds: 0, slowStartSeconds: 30, algorithm: 'least_outstanding_requests', stickiness: { type: 'lb_cookie', durationSeconds: 1 } } }),
        group('a', { healthCheck: { ...targetGroupDefaults('HTTP').healthCheck, path: '/a b?c=%d&e="f"', port: 8080, matcher: '200-299,301' } }),
        group('b', { attributes: { deregistrationDelaySeconds: 300, slowStartSeconds: 0, algorithm: 'round_robin', stickiness: { type: 'source_ip', durationSeconds: 604800 } } }),
      ],
    );
    assert.equal(haproxyCheck(d), '');
  });

  test('a TCP listener forwards its stream to one TCP group', () => {
    const g = group('db', { ...targetGroupDefaults('TCP'), id: 'db' });
    const cfg = lines(generateConfig(desired({ protocol: 'TCP', port: 5432, defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'db', weight: 1 }] }] }, [g]), new Map(), PATHS));
    assert.ok(cfg.includes('default_backend tg_db'));
    assert.equal(cfg.filter((l) => l === 'mode tcp').length, 2);
    assert.ok(!cfg.includes('option httpchk'));
  });

  test('bad input is refused before it reaches haproxy', () => {
    assert.throws(() => generateConfig(desired({ defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: 'nope', weight: 1 }] }] }), new Map(), PATHS), /target group nope/);
    assert.throws(() => generateConfig(desired({ protocol: 'HTTPS' }), new Map(), PATHS), /certificate/);
    assert.throws(() => generateConfig(desired({}, [group('web'), group('bad id')]), new Map(), PATHS), /must be 1-100/);
    assert.throws(() => generateConfig(desired({ rules: [{ priority: 1, conditions: [{ field: 'http-header', headerName: 'a b', values: ['x'] }], actions: [{ type: 'fixed-response', statusCode: 200 }] }] }), new Map(), PATHS), /header name/);
    assert.throws(() => matcherRegex('299-200'), /ends before/);
  });

  test('wildcards, quoting and slot counts', () => {
    assert.equal(wildcardRegex('/img/*.png?'), '^\\/img\\/.*\\.png.$');
    assert.equal(quote('a"b\\c$d'), '"a\\"b\\\\c\\$d"');
    // Control characters as HAProxy's escapes; only NUL cannot be written.
    assert.equal(quote('a\nb\r\tc\u0001\u007f'), '"a\\nb\\r\\tc\\x01\\x7f"');
    assert.throws(() => quote('a\u0000b'), /NUL/);
    assert.equal(matcherRegex('200-202,204'), '^(200|201|202|204)$');
    assert.deepEqual([0, 4, 5, 12, 13].map(slotsFor), [8, 8, 16, 16, 24]);
  });
});
