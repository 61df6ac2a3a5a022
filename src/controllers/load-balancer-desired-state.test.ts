import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ElbAction, ListenerRecord, LoadBalancerRecord, RuleRecord, TargetGroupRecord, TargetRecord } from '../control/elbv2-records';
import { generateConfig } from '../loadbalancer/haproxy-config';
import type { DesiredState } from '../loadbalancer/model';
import { attributesOf, certificatePath, certificateProblem, desiredStateOf, xForwardedForOf, type RegionElbRecords } from './load-balancer-desired-state';

const A = (r: string) => `arn:aws:elasticloadbalancing:us-east-1:123456789012:${r}`;
const LB1 = A('loadbalancer/app/one/00000000000000a1');
const LB2 = A('loadbalancer/app/two/00000000000000a2');
const TG_WEB = A('targetgroup/web/00000000000000b1');
const TG_API = A('targetgroup/api/00000000000000b2');
const TG_IDLE = A('targetgroup/idle/00000000000000b3');
const TG_INST = A('targetgroup/inst/00000000000000b4');
const L1 = A('listener/app/one/00000000000000a1/00000000000000c1');

function lb(arn: string, address: string): LoadBalancerRecord {
  const name = arn.split('/')[2]!;
  return {
    LoadBalancerArn: arn,
    LoadBalancerName: name,
    DNSName: `${name}-1.us-east-1.elb.amazonaws.com`,
    CanonicalHostedZoneId: 'Z',
    CreatedTime: 0,
    Scheme: 'internal',
    VpcId: 'vpc-1',
    State: { Code: 'active' },
    Type: 'application',
    AvailabilityZones: [],
    IpAddressType: 'ipv4',
    Attributes: {},
    Tags: [],
    address,
  };
}

function tg(arn: string, over: Partial<TargetGroupRecord> = {}): TargetGroupRecord {
  return {
    TargetGroupArn: arn,
    TargetGroupName: arn.split('/')[1]!,
    Protocol: 'HTTP',
    Port: 80,
    VpcId: 'vpc-1',
    TargetType: 'ip',
    IpAddressType: 'ipv4',
    HealthCheckEnabled: true,
    HealthCheckProtocol: 'HTTP',
    HealthCheckPort: 'traffic-port',
    HealthCheckPath: '/health',
    HealthCheckIntervalSeconds: 10,
    HealthCheckTimeoutSeconds: 5,
    HealthyThresholdCount: 3,
    UnhealthyThresholdCount: 2,
    Attributes: { 'deregistration_delay.timeout_seconds': '300' },
    Tags: [],
    CreatedTime: 0,
    ...over,
  };
}

const fwd = (arn: string): ElbAction[] => [{ Type: 'forward', TargetGroupArn: arn }];
const target = (Id: string, Port: number): TargetRecord => ({ Id, Port, registeredAt: 0 });

function listener(arn: string, lbArn: string, port: number, DefaultActions: ElbAction[], over: Partial<ListenerRecord> = {}): ListenerRecord {
  return { ListenerArn: arn, LoadBalancerArn: lbArn, Port: port, Protocol: 'HTTP', DefaultActions, Tags: [], ...over };
}

function region(o: Partial<RegionElbRecords> = {}): RegionElbRecords {
  return { region: 'us-east-1', loadBalancers: [], listeners: new Map(), rules: new Map(), targetGroups: [], targets: new Map(), ...o };
}

const validate = (d: DesiredState) => void generateConfig(d, new Map(), { runtimeSocket: '/x', serverStateFile: '/y' });
const noInstances = () => undefined;

describe('ELBv2 records -> the data plane desired state', () => {
  test('a load balancer, its listener and the group it forwards to, with health check and attributes', () => {
    const r = desiredStateOf({
      regions: [
        region({
          loadBalancers: [lb(LB1, '10.99.0.1')],
          listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_WEB))]]]),
          targetGroups: [
            tg(TG_WEB, {
              HealthCheckPort: '8081',
              Matcher: { HttpCode: '200-299' },
              Attributes: {
                'deregistration_delay.timeout_seconds': '30',
                'slow_start.duration_seconds': '60',
                'stickiness.enabled': 'true',
                'stickiness.type': 'lb_cookie',
                'stickiness.lb_cookie.duration_seconds': '3600',
                'load_balancing.algorithm.type': 'least_outstanding_requests',
              },
            }),
            tg(TG_IDLE),
          ],
          targets: new Map([
            ['00000000000000b1', [target('10.0.0.5', 8080), target('10.0.0.6', 8080)]],
            ['00000000000000b3', [target('10.0.0.7', 80)]],
          ]),
        }),
      ],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.rejected, []);
    assert.deepEqual(r.desired.loadBalancers, [
      {
        id: '00000000000000a1',
        type: 'application',
        address: '10.99.0.1',
        listeners: [{ id: '00000000000000c1', port: 80, protocol: 'HTTP', defaultActions: [{ type: 'forward', targetGroups: [{ targetGroupId: '00000000000000b1', weight: 1 }] }], rules: [] }],
        xForwardedFor: { mode: 'append', clientPort: false },
      },
    ]);
    // The idle group (no listener or rule forwards to it) is not in the data plane.
    assert.deepEqual(r.desired.targetGroups, [
      {
        id: '00000000000000b1',
        protocol: 'HTTP',
        port: 80,
        targetType: 'ip',
        healthCheck: { enabled: true, protocol: 'HTTP', path: '/health', port: 8081, intervalSeconds: 10, timeoutSeconds: 5, healthyThreshold: 3, unhealthyThreshold: 2, matcher: '200-299' },
        attributes: { deregistrationDelaySeconds: 30, slowStartSeconds: 60, algorithm: 'least_outstanding_requests', stickiness: { type: 'lb_cookie', durationSeconds: 3600 } },
        targets: [
          { id: '10.0.0.5', port: 8080 },
          { id: '10.0.0.6', port: 8080 },
        ],
      },
    ]);
    assert.deepEqual([...r.registered.keys()], ['00000000000000b1']);
    assert.equal(r.groupRegion.get('00000000000000b1'), 'us-east-1');
  });

  test("a TCP group's connection termination attributes reach the data plane with NLB's defaults; HTTP groups have none", () => {
    const tcp = (Attributes: Record<string, string>) => attributesOf(tg(TG_WEB, { Protocol: 'TCP', HealthCheckProtocol: 'TCP', Attributes }));
    assert.deepEqual([tcp({}).tcpCloseOnDeregistration, tcp({}).tcpCloseOnUnhealthy], [false, true]);
    const flipped = tcp({ 'deregistration_delay.connection_termination.enabled': 'true', 'target_health_state.unhealthy.connection_termination.enabled': 'false' });
    assert.deepEqual([flipped.tcpCloseOnDeregistration, flipped.tcpCloseOnUnhealthy], [true, false]);
    assert.deepEqual(attributesOf(tg(TG_WEB, { Attributes: { 'deregistration_delay.connection_termination.enabled': 'true' } })), { deregistrationDelaySeconds: 300, slowStartSeconds: 0, algorithm: 'round_robin' });
  });

  test('rules by priority, every condition form and every action form', () => {
    const rules: RuleRecord[] = [
      { RuleArn: 'r3', ListenerArn: L1, Priority: '30', Conditions: [{ Field: 'http-header', HttpHeaderConfig: { HttpHeaderName: 'X-Env', Values: ['beta'] } }], Actions: [{ Type: 'redirect', RedirectConfig: { StatusCode: 'HTTP_301', Protocol: 'HTTPS', Port: '443', Host: '#{host}', Path: '/#{path}', Query: '#{query}' } }], Tags: [] },
      { RuleArn: 'r1', ListenerArn: L1, Priority: '5', Conditions: [{ Field: 'path-pattern', Values: ['/api/*'] }, { Field: 'host-header', HostHeaderConfig: { Values: ['api.example.com'] } }], Actions: [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: TG_WEB, Weight: 1 }, { TargetGroupArn: TG_API, Weight: 3 }] } }], Tags: [] },
      { RuleArn: 'r2', ListenerArn: L1, Priority: '10', Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/old'] } }, { Field: 'host-header', Values: ['old.example.com'] }], Actions: [{ Type: 'redirect', RedirectConfig: { StatusCode: 'HTTP_302', Path: '/new' } }], Tags: [] },
    ];
    const r = desiredStateOf({
      regions: [
        region({
          loadBalancers: [lb(LB1, '10.99.0.1')],
          listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '404', ContentType: 'text/plain', MessageBody: 'nothing here' } }])]]]),
          rules: new Map([['00000000000000c1', rules]]),
          targetGroups: [tg(TG_WEB), tg(TG_API)],
        }),
      ],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.rejected, []);
    const l = r.desired.loadBalancers[0]!.listeners[0]!;
    assert.deepEqual(l.defaultActions, [{ type: 'fixed-response', statusCode: 404, contentType: 'text/plain', messageBody: 'nothing here' }]);
    assert.deepEqual(l.rules, [
      {
        priority: 5,
        conditions: [
          { field: 'path-pattern', values: ['/api/*'] },
          { field: 'host-header', values: ['api.example.com'] },
        ],
        actions: [{ type: 'forward', targetGroups: [{ targetGroupId: '00000000000000b1', weight: 1 }, { targetGroupId: '00000000000000b2', weight: 3 }] }],
      },
      {
        priority: 10,
        conditions: [
          { field: 'path-pattern', values: ['/old'] },
          { field: 'host-header', values: ['old.example.com'] },
        ],
        actions: [{ type: 'redirect', statusCode: 302, path: '/new' }],
      },
      {
        priority: 30,
        conditions: [{ field: 'http-header', headerName: 'X-Env', values: ['beta'] }],
        actions: [{ type: 'redirect', statusCode: 301, protocol: 'HTTPS', port: '443', host: '#{host}', path: '/#{path}', query: '#{query}' }],
      },
    ]);
    // Both groups are in use through the weighted rule (not through the default action).
    assert.deepEqual(r.desired.targetGroups.map((g) => g.id).sort(), ['00000000000000b1', '00000000000000b2']);
  });

  test('instance targets resolve to the address where the instance publishes host ports; unknown instances are left out', () => {
    const r = desiredStateOf({
      regions: [
        region({
          loadBalancers: [lb(LB1, '10.99.0.1')],
          listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_INST))]]]),
          targetGroups: [tg(TG_INST, { TargetType: 'instance' })],
          targets: new Map([['00000000000000b4', [target('i-0aaa', 32768), target('i-0bbb', 32769), target('i-gone', 32770)]]]),
        }),
      ],
      instanceAddress: (regionName, id) => (regionName === 'us-east-1' && id.startsWith('i-0') ? '172.17.0.1' : undefined),
      validate,
    });
    assert.deepEqual(r.desired.targetGroups[0]!.targets, [
      { id: '172.17.0.1', port: 32768 },
      { id: '172.17.0.1', port: 32769 },
    ]);
    // Health comes back under the instance id and host port.
    assert.deepEqual(r.registered.get('00000000000000b4')!.get('172.17.0.1:32769'), { Id: 'i-0bbb', Port: 32769 });
  });

  test('an ip target that is not an IPv4 address, or has no valid port, is never handed to HAProxy', () => {
    const r = desiredStateOf({
      regions: [
        region({
          loadBalancers: [lb(LB1, '10.99.0.1')],
          listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_WEB))]]]),
          targetGroups: [tg(TG_WEB)],
          targets: new Map([['00000000000000b1', [target('10.0.0.5', 80), target('i-0abc', 80), target('10.0.0.300', 80), target('10.0.0.6', 0)]]]),
        }),
      ],
      instanceAddress: () => '172.17.0.1',
      validate,
    });
    assert.deepEqual(r.desired.targetGroups[0]!.targets, [{ id: '10.0.0.5', port: 80 }]);
  });

  test('HTTPS listeners take the PEM file their certificate ARN names; without one only that listener is left out, the others are served', () => {
    assert.equal(certificatePath('/etc/wharf/site.pem'), '/etc/wharf/site.pem');
    assert.equal(certificatePath('file:///etc/wharf/my%20site.pem'), '/etc/wharf/my site.pem');
    assert.equal(certificatePath('arn:aws:acm:us-east-1:123456789012:certificate/abc'), undefined);
    const https = (cert?: string) =>
      listener(L1, LB1, 443, fwd(TG_WEB), { Protocol: 'HTTPS', ...(cert ? { Certificates: [{ CertificateArn: cert }] } : {}) });
    const ok = desiredStateOf({
      regions: [region({ loadBalancers: [lb(LB1, '10.99.0.1')], listeners: new Map([['00000000000000a1', [https('file:///etc/wharf/site.pem')]]]), targetGroups: [tg(TG_WEB)] })],
      instanceAddress: noInstances,
      validate,
    });
    assert.equal(ok.desired.loadBalancers[0]!.listeners[0]!.certificatePemFile, '/etc/wharf/site.pem');
    const L2 = A('listener/app/one/00000000000000a1/00000000000000c2');
    const plain = listener(L2, LB1, 80, fwd(TG_API));
    const unreadable = desiredStateOf({
      regions: [region({ loadBalancers: [lb(LB1, '10.99.0.1')], listeners: new Map([['00000000000000a1', [https('/etc/wharf/missing.pem'), plain]]]), targetGroups: [tg(TG_WEB), tg(TG_API)] })],
      instanceAddress: noInstances,
      validate,
      certificateProblem: (f) => (f === '/etc/wharf/missing.pem' ? `cannot read the certificate file ${f}` : undefined),
    });
    assert.deepEqual(unreadable.desired.loadBalancers.map((l) => [l.id, l.listeners.map((x) => x.port)]), [['00000000000000a1', [80]]]);
    assert.deepEqual(unreadable.desired.targetGroups.map((g) => g.id), ['00000000000000b2'], "the left-out listener's group is not carried");
    assert.equal(unreadable.rejected.length, 1);
    assert.deepEqual([unreadable.rejected[0]!.loadBalancerArn, unreadable.rejected[0]!.listenerArn], [LB1, L1]);
    assert.match(unreadable.rejected[0]!.reason, /cannot read the certificate file \/etc\/wharf\/missing\.pem/);
    const bad = desiredStateOf({
      regions: [region({ loadBalancers: [lb(LB1, '10.99.0.1')], listeners: new Map([['00000000000000a1', [https(), plain]]]), targetGroups: [tg(TG_WEB), tg(TG_API)] })],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(bad.desired.loadBalancers[0]!.listeners.map((x) => x.port), [80]);
    assert.deepEqual([bad.rejected[0]!.loadBalancerArn, bad.rejected[0]!.listenerArn], [LB1, L1]);
    assert.match(bad.rejected[0]!.reason, /Certificates\[0\]\.CertificateArn/);
  });

  test('certificateProblem: haproxy loads a certificate with its own key, in the PEM or in <file>.key; anything else is named', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-cert-'));
    try {
      const pair = (name: string) => {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=lb.test', '-days', '1', '-keyout', `${dir}/${name}.key`, '-out', `${dir}/${name}.crt`], { stdio: 'ignore' });
        return { crt: fs.readFileSync(`${dir}/${name}.crt`, 'utf8'), key: fs.readFileSync(`${dir}/${name}.key`, 'utf8') };
      };
      const a = pair('a');
      const b = pair('b');
      const files = new Map([
        ['/c/good.pem', a.crt + a.key],
        ['/c/split.pem', a.crt],
        ['/c/split.pem.key', a.key],
        ['/c/mismatch.pem', a.crt + b.key],
        ['/c/nokey.pem', a.crt],
        ['/c/junk.pem', 'not a certificate\n'],
      ]);
      const problem = (f: string) => certificateProblem(f, (x) => files.get(x));
      assert.equal(problem('/c/good.pem'), undefined);
      assert.equal(problem('/c/split.pem'), undefined);
      assert.equal(problem('/c/missing.pem'), 'cannot read the certificate file /c/missing.pem');
      assert.equal(problem('/c/junk.pem'), 'the certificate file /c/junk.pem holds no PEM certificate');
      assert.equal(problem('/c/nokey.pem'), 'the certificate file /c/nokey.pem holds no private key (nor does /c/nokey.pem.key)');
      assert.equal(problem('/c/mismatch.pem'), "the private key in /c/mismatch.pem is not the certificate's");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a listener the data plane rejects is left out with its reason; the other load balancers and listeners are served', () => {
    const L2 = A('listener/app/two/00000000000000a2/00000000000000c2');
    const r = desiredStateOf({
      regions: [
        region({
          loadBalancers: [lb(LB1, '10.99.0.1'), lb(LB2, '10.99.0.2')],
          listeners: new Map([
            ['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_WEB))]],
            ['00000000000000a2', [listener(L2, LB2, 80, fwd(TG_API))]],
          ]),
          // The matcher is not codes or ranges: haproxy-config's generator throws on it.
          targetGroups: [tg(TG_WEB, { Matcher: { HttpCode: 'two hundred' } }), tg(TG_API)],
        }),
      ],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.desired.loadBalancers.map((l) => [l.id, l.listeners.length]), [['00000000000000a1', 0], ['00000000000000a2', 1]]);
    assert.deepEqual(r.desired.targetGroups.map((g) => g.id), ['00000000000000b2']);
    assert.equal(r.rejected.length, 1);
    assert.deepEqual([r.rejected[0]!.loadBalancerArn, r.rejected[0]!.listenerArn], [LB1, L1]);
    assert.match(r.rejected[0]!.reason, /matcher/);
  });

  test("X-Forwarded-For follows the load balancer's routing.http.xff_* attributes, with ELB's defaults (append, no port)", () => {
    const of = (Attributes: Record<string, string>) => xForwardedForOf({ ...lb(LB1, '10.99.0.1'), Attributes });
    assert.deepEqual(of({}), { mode: 'append', clientPort: false });
    assert.deepEqual(of({ 'routing.http.xff_header_processing.mode': 'preserve' }), { mode: 'preserve', clientPort: false });
    assert.deepEqual(of({ 'routing.http.xff_header_processing.mode': 'remove' }), { mode: 'remove', clientPort: false });
    assert.deepEqual(of({ 'routing.http.xff_header_processing.mode': 'append', 'routing.http.xff_client_port.enabled': 'true' }), { mode: 'append', clientPort: true });
    const r = desiredStateOf({
      regions: [region({ loadBalancers: [{ ...lb(LB1, '10.99.0.1'), Attributes: { 'routing.http.xff_header_processing.mode': 'remove' } }], listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_WEB))]]]), targetGroups: [tg(TG_WEB)] })],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.desired.loadBalancers[0]!.xForwardedFor, { mode: 'remove', clientPort: false });
  });

  test('a forward whose groups all have weight 0 keeps its load balancer in the data plane, with both groups', () => {
    const zero: ElbAction[] = [{ Type: 'forward', ForwardConfig: { TargetGroups: [{ TargetGroupArn: TG_WEB, Weight: 0 }, { TargetGroupArn: TG_API, Weight: 0 }] } }];
    const r = desiredStateOf({
      regions: [region({ loadBalancers: [lb(LB1, '10.99.0.1')], listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, zero)]]]), targetGroups: [tg(TG_WEB), tg(TG_API)] })],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.rejected, []);
    assert.deepEqual(r.desired.loadBalancers.map((l) => l.id), ['00000000000000a1']);
    assert.deepEqual(r.desired.targetGroups.map((g) => g.id).sort(), ['00000000000000b1', '00000000000000b2']);
  });

  test('a forward to a target group that does not exist leaves that listener out', () => {
    const r = desiredStateOf({
      regions: [region({ loadBalancers: [lb(LB1, '10.99.0.1')], listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_WEB))]]]) })],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.desired.loadBalancers.map((l) => l.listeners), [[]]);
    assert.equal(r.rejected[0]!.listenerArn, L1);
    assert.match(r.rejected[0]!.reason, /target group 00000000000000b1 does not exist/);
  });

  test('every region goes into the one desired state', () => {
    const west = A('loadbalancer/app/w/00000000000000d1').replace('us-east-1', 'us-west-2');
    const westTg = A('targetgroup/w/00000000000000d2').replace('us-east-1', 'us-west-2');
    const westL = A('listener/app/w/00000000000000d1/00000000000000d3').replace('us-east-1', 'us-west-2');
    const r = desiredStateOf({
      regions: [
        region({ loadBalancers: [lb(LB1, '10.99.0.1')], listeners: new Map([['00000000000000a1', [listener(L1, LB1, 80, fwd(TG_WEB))]]]), targetGroups: [tg(TG_WEB)] }),
        region({ region: 'us-west-2', loadBalancers: [lb(west, '10.99.3.1')], listeners: new Map([['00000000000000d1', [listener(westL, west, 80, fwd(westTg))]]]), targetGroups: [tg(westTg)] }),
      ],
      instanceAddress: noInstances,
      validate,
    });
    assert.deepEqual(r.desired.loadBalancers.map((l) => l.address), ['10.99.0.1', '10.99.3.1']);
    assert.equal(r.groupRegion.get('00000000000000d2'), 'us-west-2');
  });
});
