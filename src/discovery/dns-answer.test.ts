import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerQuestion, MULTIVALUE_MAX, NXDOMAIN, NOERROR, type DnsAnswer } from './dns-answer';
import type { DiscoverySnapshot, DnsService } from './registry-snapshot';

const api = (n: number, extra: Partial<DnsService> = {}): DnsService => ({
  name: 'api',
  routing: 'MULTIVALUE',
  ttl: { A: 10, SRV: 20 },
  instances: Array.from({ length: n }, (_, i) => ({ id: `task-${i}`, ipv4: `10.0.0.${i + 1}`, port: 8080 + i, healthy: true })),
  ...extra,
});

const snap = (services: DnsService[], more: Partial<DiscoverySnapshot> = {}): DiscoverySnapshot => ({
  zones: [{ name: 'corp.local', soaTtl: 15, region: 'us-east-1', services }],
  hosts: [],
  ...more,
});

function ok(a: DnsAnswer) {
  assert.equal(a.kind, 'answer');
  return a as Extract<DnsAnswer, { kind: 'answer' }>;
}
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

test('A: the healthy instances, with the TTL of the service A record', () => {
  const s = api(3);
  s.instances[1]!.healthy = false;
  const a = ok(answerQuestion(snap([s]), { type: 'A', name: 'API.corp.local.' }));
  assert.equal(a.rcode, NOERROR);
  assert.deepEqual(a.answers.map((r) => (r as { data: string }).data).sort(), ['10.0.0.1', '10.0.0.3']);
  assert.ok(a.answers.every((r) => r.type === 'A' && (r as { ttl: number }).ttl === 10 && r.name === 'api.corp.local'));
});

test('MULTIVALUE answers at most 8, shuffled by the random source; WEIGHTED answers one', () => {
  const many = api(12);
  const a1 = ok(answerQuestion(snap([many]), { type: 'A', name: 'api.corp.local' }, seq(0.1, 0.9, 0.5, 0.3)));
  const a2 = ok(answerQuestion(snap([many]), { type: 'A', name: 'api.corp.local' }, seq(0.7, 0.2, 0.6)));
  assert.equal(a1.answers.length, MULTIVALUE_MAX);
  assert.notDeepEqual(a1.answers.map((r) => (r as { data: string }).data), a2.answers.map((r) => (r as { data: string }).data), 'a different random source, a different order');
  const w = ok(answerQuestion(snap([api(5, { routing: 'WEIGHTED' })]), { type: 'A', name: 'api.corp.local' }, () => 0.5));
  assert.deepEqual(w.answers.map((r) => (r as { data: string }).data), ['10.0.0.3']);
});

test('SRV: priority 1 weight 1, the instance port, target <instance>.<service>.<namespace>, its A in additionals', () => {
  const a = ok(answerQuestion(snap([api(1)]), { type: 'SRV', name: 'api.corp.local' }));
  assert.deepEqual(a.answers, [{ type: 'SRV', name: 'api.corp.local', ttl: 20, data: { priority: 1, weight: 1, port: 8080, target: 'task-0.api.corp.local' } }]);
  assert.deepEqual(a.additionals, [{ type: 'A', name: 'task-0.api.corp.local', ttl: 10, data: '10.0.0.1' }]);
  const target = ok(answerQuestion(snap([api(1)]), { type: 'A', name: 'task-0.api.corp.local' }));
  assert.deepEqual(target.answers, [{ type: 'A', name: 'task-0.api.corp.local', ttl: 10, data: '10.0.0.1' }]);
});

test('unknown names inside a namespace are NXDOMAIN with the SOA; a type the service lacks is no data', () => {
  const nx = ok(answerQuestion(snap([api(1)]), { type: 'A', name: 'nope.corp.local' }));
  assert.equal(nx.rcode, NXDOMAIN);
  assert.equal(nx.authorities[0]!.type, 'SOA');
  assert.equal((nx.authorities[0] as { ttl: number }).ttl, 15);
  const nodata = ok(answerQuestion(snap([api(1, { ttl: { A: 10 } })]), { type: 'SRV', name: 'api.corp.local' }));
  assert.equal(nodata.rcode, NOERROR);
  assert.deepEqual(nodata.answers, []);
  const none = ok(answerQuestion(snap([api(0)]), { type: 'A', name: 'api.corp.local' }));
  assert.equal(none.rcode, NOERROR, 'a service without instances exists: no data, not NXDOMAIN');
  assert.deepEqual(none.answers, []);
  assert.equal(ok(answerQuestion(snap([api(1)]), { type: 'SOA', name: 'corp.local' })).answers[0]!.type, 'SOA');
});

test('names outside every namespace are forwarded; host names (load balancers) answer their addresses', () => {
  assert.deepEqual(answerQuestion(snap([api(1)]), { type: 'A', name: 'example.com' }), { kind: 'forward' });
  assert.deepEqual(answerQuestion(snap([api(1)]), { type: 'A', name: 'xcorp.local' }), { kind: 'forward' }, 'a suffix match is by label');
  const lb = ok(answerQuestion(snap([], { hosts: [{ name: 'web-123.us-east-1.elb.amazonaws.com', ipv4: ['127.0.10.1'] }] }), { type: 'A', name: 'WEB-123.us-east-1.elb.amazonaws.com' }));
  assert.deepEqual(lb.answers.map((r) => (r as { data: string }).data), ['127.0.10.1']);
});

test('a namespace in two regions answers from the first (the default region comes first)', () => {
  const s: DiscoverySnapshot = {
    zones: [
      { name: 'corp.local', soaTtl: 15, region: 'us-east-1', services: [api(1)] },
      { name: 'corp.local', soaTtl: 15, region: 'eu-west-1', services: [api(1, { instances: [{ id: 'x', ipv4: '10.9.9.9', healthy: true }] })] },
    ],
    hosts: [],
  };
  assert.deepEqual(ok(answerQuestion(s, { type: 'A', name: 'api.corp.local' })).answers.map((r) => (r as { data: string }).data), ['10.0.0.1']);
});

test('SRV for bridge tasks sharing one host address: each its own host port, each target the host address', () => {
  const bridge: DnsService = {
    name: 'web',
    routing: 'MULTIVALUE',
    ttl: { SRV: 10 },
    instances: [
      { id: 'task-a', ipv4: '172.17.0.1', port: 32768, healthy: true },
      { id: 'task-b', ipv4: '172.17.0.1', port: 32771, healthy: true },
    ],
  };
  const a = ok(answerQuestion(snap([bridge]), { type: 'SRV', name: 'web.corp.local' }, () => 0));
  const srv = a.answers.map((r) => (r as { data: { port: number; target: string } }).data).map((d) => [d.target, d.port]).sort();
  assert.deepEqual(srv, [['task-a.web.corp.local', 32768], ['task-b.web.corp.local', 32771]]);
  assert.deepEqual(a.additionals.map((r) => [r.name, (r as { data: string }).data]).sort(), [['task-a.web.corp.local', '172.17.0.1'], ['task-b.web.corp.local', '172.17.0.1']]);
  // The service has no A record: its name answers no address, only the SRV targets do.
  assert.deepEqual(ok(answerQuestion(snap([bridge]), { type: 'A', name: 'web.corp.local' })).answers, []);
  assert.deepEqual(ok(answerQuestion(snap([bridge]), { type: 'A', name: 'task-b.web.corp.local' })).answers, [{ type: 'A', name: 'task-b.web.corp.local', ttl: 10, data: '172.17.0.1' }]);
});

test('an instance of an A-only service has no name of its own: Cloud Map makes <instance>.<service> names only as SRV targets', () => {
  const web: DnsService = { name: 'web', routing: 'MULTIVALUE', ttl: { A: 10 }, instances: [{ id: 'i2', ipv4: '10.9.9.2', healthy: true }] };
  assert.deepEqual(ok(answerQuestion(snap([web]), { type: 'A', name: 'web.corp.local' })).answers.map((r) => (r as { data: string }).data), ['10.9.9.2']);
  const own = ok(answerQuestion(snap([web]), { type: 'A', name: 'i2.web.corp.local' }));
  assert.equal(own.rcode, NXDOMAIN);
  assert.deepEqual(own.answers, []);
  // With an SRV record as well, the same instance answers under its own name.
  const both = ok(answerQuestion(snap([{ ...web, ttl: { A: 10, SRV: 20 }, instances: [{ ...web.instances[0]!, port: 80 }] }]), { type: 'A', name: 'i2.web.corp.local' }));
  assert.deepEqual(both.answers, [{ type: 'A', name: 'i2.web.corp.local', ttl: 10, data: '10.9.9.2' }]);
});
