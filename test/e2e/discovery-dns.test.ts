/**
 * Service discovery end to end: the unmodified AWS CLI v2 (`aws servicediscovery`) against
 * Wharf's Cloud Map API, Wharf's DNS server answering the registered instance on loopback, and a
 * real container (busybox, `--dns` the Docker bridge gateway, port 53) resolving the name.
 *
 * Run: node scripts/run-tests.js --e2e discovery-dns
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { dockerSkipReason } from '../images/docker-test-env';
import { dockerBridgeAddress } from '../../src/cmd/dns';
import { AWS_CLI, awsCli, boto3, run, startTestServer, type TestServer } from './helpers/wharf-server';

let srv: TestServer;
const bridge = dockerBridgeAddress();

before(async () => {
  srv = await startTestServer({
    // Loopback on a free port for the host-side checks; the bridge gateway on 53 for containers.
    dns: { listen: [{ host: '127.0.0.1', port: 0 }, ...(bridge ? [{ host: bridge, port: 53 }] : [])], required: false, upstreams: [] },
  });
});
after(() => srv.close());

async function sd(args: string[]): Promise<{ code: number | null; json: any; stderr: string }> {
  const r = await run(AWS_CLI, ['servicediscovery', ...args, '--endpoint-url', srv.endpoint, '--output', 'json'], srv.env());
  return { code: r.code, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}
async function sdOk(args: string[]): Promise<any> {
  const r = await sd(args);
  assert.equal(r.code, 0, `aws servicediscovery ${args.join(' ')}: ${r.stderr}`);
  return r.json;
}

function resolver(): Resolver {
  const loop = srv.server.dns.find((a) => a.host === '127.0.0.1')!;
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([`127.0.0.1:${loop.port}`]);
  return r;
}

let serviceId = '';
let namespaceId = '';

test('aws servicediscovery: namespace, service, instance, discover, with Cloud Map errors', async () => {
  const op = await sdOk(['create-private-dns-namespace', '--name', 'corp.local', '--vpc', 'vpc-0abc']);
  const got = await sdOk(['get-operation', '--operation-id', op.OperationId]);
  assert.equal(got.Operation.Status, 'SUCCESS');
  namespaceId = got.Operation.Targets.NAMESPACE;
  assert.match(namespaceId, /^ns-[a-z0-9]{16}$/);
  const listed = await sdOk(['list-namespaces', '--filters', 'Name=TYPE,Values=DNS_PRIVATE,Condition=EQ']);
  assert.deepEqual(listed.Namespaces.map((n: any) => n.Name), ['corp.local']);
  const dup = await sd(['create-private-dns-namespace', '--name', 'corp.local', '--vpc', 'vpc-0abc']);
  assert.equal(dup.code, 254);
  assert.match(dup.stderr, /NamespaceAlreadyExists/);

  const svc = await sdOk(['create-service', '--name', 'api', '--namespace-id', namespaceId, '--dns-config', 'RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=A,TTL=30},{Type=SRV,TTL=30}]', '--health-check-custom-config', 'FailureThreshold=1']);
  serviceId = svc.Service.Id;
  assert.match(serviceId, /^srv-[a-z0-9]{16}$/);
  await sdOk(['register-instance', '--service-id', serviceId, '--instance-id', 'task-1', '--attributes', 'AWS_INSTANCE_IPV4=10.42.0.7,AWS_INSTANCE_PORT=8080,stage=blue']);
  // DiscoverInstances has the model's host prefix `data-`: the CLI (2.9) would send it to
  // data-127.0.0.1, so it is called with boto3, which can turn the prefix off.
  const found = await boto3(srv, [
    'sd = boto3.client("servicediscovery", endpoint_url=ecs.meta.endpoint_url, config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))',
    'out(sd.discover_instances(NamespaceName="corp.local", ServiceName="api", QueryParameters={"stage": "blue"}))',
  ].join('\n'));
  assert.deepEqual(found.Instances.map((i: any) => [i.InstanceId, i.Attributes.AWS_INSTANCE_IPV4, i.HealthStatus]), [['task-1', '10.42.0.7', 'HEALTHY']]);
  const insts = await sdOk(['list-instances', '--service-id', serviceId]);
  assert.deepEqual(insts.Instances.map((i: any) => i.Id), ['task-1']);

  const missing = await sd(['get-namespace', '--id', 'ns-0000000000000000']);
  assert.equal(missing.code, 254);
  assert.match(missing.stderr, /NamespaceNotFound/);
  const inUse = await sd(['delete-namespace', '--id', namespaceId]);
  assert.match(inUse.stderr, /ResourceInUse/);
  const bad = await sd(['register-instance', '--service-id', serviceId, '--instance-id', 'task-2', '--attributes', 'AWS_INSTANCE_IPV4=10.42.0.8']);
  assert.match(bad.stderr, /InvalidInput.*AWS_INSTANCE_PORT is required/);
  // The model's patterns: a service name is DNS labels, an instance id has no spaces, an HTTP
  // namespace's name is not an ARN.
  const badName = await sd(['create-service', '--name', 'bad name', '--namespace-id', namespaceId]);
  assert.match(badName.stderr, /\(InvalidInput\).*1 validation error detected: Value 'bad name' at 'Name' failed to satisfy constraint: Member must satisfy regular expression pattern: /);
  const badId = await sd(['register-instance', '--service-id', serviceId, '--instance-id', 'bad id/with space', '--attributes', 'AWS_INSTANCE_IPV4=10.42.0.8,AWS_INSTANCE_PORT=80']);
  assert.match(badId.stderr, /\(InvalidInput\).*at 'InstanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: \^\[0-9a-zA-Z_\/:\.@-\]\+\$/);
  const arnName = await sd(['create-http-namespace', '--name', 'arn:bar']);
  assert.match(arnName.stderr, /\(InvalidInput\).*Value 'arn:bar' at 'Name'/);

  const byNs = await awsCli(srv, ['list-services-by-namespace', '--namespace', 'corp.local']);
  assert.equal(byNs.code, 0, byNs.stderr);
  assert.deepEqual(byNs.json.serviceArns, [], 'no ECS service uses the namespace yet');
});

test('the DNS server answers the registered instance (A and SRV) on loopback', async () => {
  assert.ok(serviceId, 'the previous test registered an instance');
  const r = resolver();
  assert.deepEqual(await r.resolve4('api.corp.local'), ['10.42.0.7']);
  const withTtl = await r.resolve4('api.corp.local', { ttl: true });
  assert.equal(withTtl[0]!.ttl, 30);
  assert.deepEqual(await r.resolveSrv('api.corp.local'), [{ name: 'task-1.api.corp.local', port: 8080, priority: 1, weight: 1 }]);
  await assert.rejects(r.resolve4('nope.corp.local'), (e: any) => e.code === 'ENOTFOUND');
});

test('aws servicediscovery update-service: the DNS server answers with the new TTL; instance health and the instances revision', async () => {
  assert.ok(serviceId, 'the first test created the service');
  const up = await sdOk(['update-service', '--id', serviceId, '--service', 'Description=api,DnsConfig={DnsRecords=[{Type=A,TTL=5},{Type=SRV,TTL=30}]}']);
  assert.equal((await sdOk(['get-operation', '--operation-id', up.OperationId])).Operation.Type, 'UPDATE_SERVICE');
  assert.equal((await resolver().resolve4('api.corp.local', { ttl: true }))[0]!.ttl, 5);
  const changeType = await sd(['update-service', '--id', serviceId, '--service', 'DnsConfig={DnsRecords=[{Type=A,TTL=5}]}']);
  assert.match(changeType.stderr, /\(InvalidInput\).*The record types of a service cannot be changed/);
  assert.deepEqual((await sdOk(['get-instances-health-status', '--service-id', serviceId])).Status, { 'task-1': 'HEALTHY' });
  const revisions = await boto3(srv, [
    'sd = boto3.client("servicediscovery", endpoint_url=ecs.meta.endpoint_url, config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))',
    'out({"revision": sd.discover_instances_revision(NamespaceName="corp.local", ServiceName="api")["InstancesRevision"], "discover": sd.discover_instances(NamespaceName="corp.local", ServiceName="api")["InstancesRevision"]})',
  ].join('\n'));
  assert.ok(revisions.revision > 0);
  assert.equal(revisions.revision, revisions.discover);
});

test('a container resolves the registered name through the DNS server on the bridge gateway', async (t) => {
  const skip = dockerSkipReason();
  if (skip) return t.skip(skip);
  const onBridge = bridge && srv.server.dns.find((a) => a.host === bridge && a.port === 53);
  if (!onBridge) return t.skip(`the DNS server could not listen on the Docker bridge gateway (${bridge ?? 'no docker0'}) port 53`);
  const name = `wharf-dns-e2e-${process.pid}`;
  try {
    const out = await run('docker', ['run', '--rm', '--name', name, '--dns', bridge!, 'wharf-test/busybox', 'nslookup', '-type=a', 'api.corp.local'], process.env, undefined, 30_000);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(out.stdout, /Address:\s*10\.42\.0\.7/);

    await sdOk(['deregister-instance', '--service-id', serviceId, '--instance-id', 'task-1']);
    const gone = await run('docker', ['run', '--rm', '--name', name, '--dns', bridge!, 'wharf-test/busybox', 'nslookup', '-type=a', 'api.corp.local'], process.env, undefined, 30_000);
    assert.doesNotMatch(gone.stdout, /10\.42\.0\.7/, 'a deregistered instance is no longer answered');
    const addresses = gone.stdout.split('\n').filter((l) => l.startsWith('Address:')).map((l) => l.replace(/\s+/g, ' '));
    assert.deepEqual(addresses, [`Address: ${bridge}:53`], `the lookup reached the server and got no address: ${gone.stdout}`);
  } finally {
    await run('docker', ['rm', '-f', name], process.env);
  }
});
