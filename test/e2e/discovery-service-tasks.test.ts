/**
 * A service found by name, end to end on a real Docker Engine: an ECS service (awsvpc, busybox
 * httpd) with `serviceRegistries` gets its RUNNING tasks registered in Cloud Map by Wharf, and a
 * container on the same subnet, using Wharf's DNS server (the Docker bridge gateway, port 53) as
 * its resolver, reaches them by `<service>.<namespace>`. Scaling the service to zero empties the
 * registry, and the name then resolves to nothing. A bridge service (dynamic host ports) is
 * registered under an SRV record: the docker0 address and each task's mapped host port, which a
 * container on the task subnet reaches.
 *
 * Run: node scripts/run-tests.js --e2e discovery-service-tasks
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateServiceCommand, DeleteServiceCommand, ListTasksCommand, RunTaskCommand, UpdateServiceCommand } from '@aws-sdk/client-ecs';
import { dockerBridgeAddress } from '../../src/cmd/dns';
import { dockerSkipReason } from '../images/docker-test-env';
import { waitUntil } from './helpers/processes';
import { startTasksHarness, type TasksHarness } from './helpers/tasks-harness';
import { AWS_CLI, defaultSubnets, run } from './helpers/wharf-server';
import { subnetNetworkName } from '../../src/control/agent-desired-state';

const bridge = dockerBridgeAddress();
const skip = dockerSkipReason() ?? (bridge ? undefined : 'no docker0 bridge on this host');

describe('a container reaches another service by name', { skip, timeout: 300_000 }, () => {
  let h: TasksHarness;
  let registryId = '';
  /** The default subnet of the agent's zone (<region>a). */
  let SUBNET = '';
  /** Its Docker network. */
  let NETWORK = '';
  const client = `wharf-sd-client-${process.pid}`;

  const sd = async (args: string[]) => {
    const r = await run(AWS_CLI, ['servicediscovery', ...args, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env());
    assert.equal(r.code, 0, `aws servicediscovery ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };
  /** Runs busybox on the task subnet's network with Wharf's DNS server as its resolver. */
  const inClient = (cmd: string[]) =>
    run('docker', ['run', '--rm', '--name', client, '--network', NETWORK, '--dns', bridge!, 'wharf-test/busybox', ...cmd], process.env, undefined, 30_000);

  /** A security group admitting tcp/`port` from anywhere (aws ec2 create-security-group + authorize). */
  const openGroup = async (name: string, port: number): Promise<string> => {
    const ec2 = async (args: string[]) => {
      const r = await run(AWS_CLI, ['ec2', ...args, '--endpoint-url', h.srv.endpoint, '--output', 'json'], h.srv.env());
      assert.equal(r.code, 0, `aws ec2 ${args.join(' ')}: ${r.stderr}`);
      return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    };
    const { GroupId } = await ec2(['create-security-group', '--group-name', name, '--description', 'reached by the test client']);
    await ec2(['authorize-security-group-ingress', '--group-id', GroupId, '--protocol', 'tcp', '--port', String(port), '--cidr', '0.0.0.0/0']);
    return GroupId;
  };

  before(async () => {
    h = await startTasksHarness('sd-tasks', { dns: { listen: [{ host: bridge!, port: 53 }], required: false, upstreams: [] }, taskDns: [bridge!] });
    const zoneA = (await defaultSubnets(h.srv))[`${h.srv.region}a`]!;
    SUBNET = zoneA.id;
    NETWORK = subnetNetworkName(zoneA.id, zoneA.cidr, `${h.srv.region}a`);
  });
  after(async () => {
    await run('docker', ['rm', '-f', client], process.env);
    await h?.close();
  });

  test('the service tasks are registered and answer through the name', async (t) => {
    if (!h.srv.server.dns.some((a) => a.host === bridge && a.port === 53)) return t.skip(`port 53 on ${bridge} is taken (another test's DNS server?)`);
    const op = await sd(['create-private-dns-namespace', '--name', 'corp.local', '--vpc', 'vpc-1']);
    const nsId = (await sd(['get-operation', '--operation-id', op.OperationId])).Operation.Targets.NAMESPACE;
    const registry = (await sd(['create-service', '--name', 'api', '--namespace-id', nsId, '--dns-config', 'RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=A,TTL=5}]'])).Service;
    registryId = registry.Id;

    const td = await h.register(
      'sd-web',
      [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, portMappings: [{ containerPort: 8080 }], command: ['sh', '-c', 'mkdir -p /www && echo hello-from-api > /www/index.html && exec httpd -f -p 8080 -h /www'] }],
      { networkMode: 'awsvpc' },
    );
    await h.ecs.send(new CreateServiceCommand({
      cluster: h.cluster,
      serviceName: 'api',
      taskDefinition: td,
      desiredCount: 2,
      // The client below is a plain container, in no security group: the service's group lets it in.
      networkConfiguration: { awsvpcConfiguration: { subnets: [SUBNET], securityGroups: [await openGroup('sd-web', 8080)] } },
      serviceRegistries: [{ registryArn: registry.Arn }],
    }));
    const instances = await waitUntil(async () => {
      const l = (await sd(['list-instances', '--service-id', registryId])).Instances as { Id: string; Attributes: Record<string, string> }[];
      return l.length === 2 ? l : undefined;
    }, 'two tasks registered in Cloud Map', { timeoutMs: 90_000, intervalMs: 500 });
    const taskIds = ((await h.ecs.send(new ListTasksCommand({ cluster: h.cluster, serviceName: 'api' }))).taskArns ?? []).map((a) => a.split('/').pop()).sort();
    assert.deepEqual(instances.map((i) => i.Id).sort(), taskIds, 'the instance ids are the task ids');
    const ips = instances.map((i) => i.Attributes.AWS_INSTANCE_IPV4!).sort();
    // An A record carries no port, and ECS refuses one for it (service-registries.ts).
    assert.ok(instances.every((i) => i.Attributes.AWS_INSTANCE_PORT === undefined), JSON.stringify(instances));

    // The client resolves the name to both tasks, and fetches a page from one of them by name.
    const look = await inClient(['nslookup', '-type=a', 'api.corp.local']);
    const answered = [...look.stdout.matchAll(/Address:\s*(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).filter((a) => a !== bridge).sort();
    assert.deepEqual(answered, ips, look.stdout + look.stderr);
    // Debian's static busybox cannot resolve names through getaddrinfo (static glibc has no NSS
    // modules) and its wget crashes, so the client resolves with nslookup, which speaks DNS
    // itself, and sends its request with nc to the address the name gave.
    const page = await inClient(['sh', '-c', "ip=$(nslookup -type=a api.corp.local | awk '/^Name:/{n=1} n && /^Address/{print $2; exit}'); echo \"via $ip\"; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $ip 8080"]);
    const via = /^via (\S+)$/m.exec(page.stdout)?.[1];
    assert.ok(via && ips.includes(via), `the name gave a task's address: ${page.stdout}${page.stderr}`);
    assert.match(page.stdout, /HTTP\/1\.[01] 200 OK[\s\S]*hello-from-api/, 'the task answered the request sent to the address the name gave');
  });

  test('an ECS task (awsvpc, no dnsServers) resolves the name through the resolver the agent gives it', async (t) => {
    if (!registryId) return t.skip('the previous test did not set up the service');
    const td = await h.register(
      'sd-client',
      [{ name: 'client', image: 'wharf-test/busybox', memory: 32, essential: true, command: ['sh', '-c', "ip=$(nslookup -type=a api.corp.local | awk '/^Name:/{n=1} n && /^Address/{print $2; exit}'); printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $ip 8080 | grep -q hello-from-api"] }],
      { networkMode: 'awsvpc' },
    );
    const arn = (await h.ecs.send(new RunTaskCommand({ cluster: h.cluster, taskDefinition: td, networkConfiguration: { awsvpcConfiguration: { subnets: [SUBNET] } } }))).tasks![0]!.taskArn!;
    const done = await h.waitTask(arn, (x) => x.lastStatus === 'STOPPED', 'the client task to finish', { timeoutMs: 60_000 });
    assert.equal(done.containers![0]!.exitCode, 0, `the task reached the service by name: ${JSON.stringify(done.containers)}`);
  });

  test('a bridge service is found by SRV: the docker0 address and the host port mapped for each task', async (t) => {
    if (!registryId) return t.skip('the first test did not set up the namespace');
    const nsId = (await sd(['list-namespaces'])).Namespaces.find((n: { Name: string }) => n.Name === 'corp.local').Id;
    const registry = (await sd(['create-service', '--name', 'bweb', '--namespace-id', nsId, '--dns-config', 'RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=SRV,TTL=5}]'])).Service;
    const td = await h.register(
      'sd-bridge',
      [{ name: 'web', image: 'wharf-test/busybox', memory: 32, essential: true, stopTimeout: 1, portMappings: [{ containerPort: 8080, hostPort: 0 }], command: ['sh', '-c', 'mkdir -p /www && echo hello-from-bridge > /www/index.html && exec httpd -f -p 8080 -h /www'] }],
      { networkMode: 'bridge' },
    );
    await h.ecs.send(new CreateServiceCommand({ cluster: h.cluster, serviceName: 'bweb', taskDefinition: td, desiredCount: 2, serviceRegistries: [{ registryArn: registry.Arn, containerName: 'web', containerPort: 8080 }] }));
    const instances = await waitUntil(async () => {
      const l = (await sd(['list-instances', '--service-id', registry.Id])).Instances as { Id: string; Attributes: Record<string, string> }[];
      return l.length === 2 ? l : undefined;
    }, 'two bridge tasks registered in Cloud Map', { timeoutMs: 90_000, intervalMs: 500 });
    assert.ok(instances.every((i) => i.Attributes.AWS_INSTANCE_IPV4 === bridge), JSON.stringify(instances));
    const ports = instances.map((i) => i.Attributes.AWS_INSTANCE_PORT!).sort();
    assert.notEqual(ports[0], ports[1], 'each task has its own host port');
    assert.ok(ports.every((p) => Number(p) !== 8080 && Number(p) > 0), `host ports Docker picked: ${ports}`);

    // The client resolves the SRV record (busybox: "service = prio weight port target") and
    // fetches a page from the host port of its first answer, at the target's address.
    const script = "set -- $(nslookup -type=srv bweb.corp.local | awk '/service =/{print $(NF-1), $NF; exit}'); ip=$(nslookup -type=a $2 | awk '/^Name:/{n=1} n && /^Address/{print $2; exit}'); echo \"via $ip:$1\"; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $ip $1";
    const page = await inClient(['sh', '-c', script]);
    const via = /^via (\S+):(\d+)$/m.exec(page.stdout);
    assert.ok(via && via[1] === bridge && ports.includes(via[2]!), `the SRV record gave the host address and a task's port: ${page.stdout}${page.stderr}`);
    assert.match(page.stdout, /HTTP\/1\.[01] 200 OK[\s\S]*hello-from-bridge/, 'the bridge task answered on its mapped host port');
    await h.ecs.send(new UpdateServiceCommand({ cluster: h.cluster, service: 'bweb', desiredCount: 0 }));
    await waitUntil(async () => ((await sd(['list-instances', '--service-id', registry.Id])).Instances.length === 0 ? true : undefined), 'the bridge registry to empty', { timeoutMs: 60_000, intervalMs: 500 });
    await h.ecs.send(new DeleteServiceCommand({ cluster: h.cluster, service: 'bweb', force: true }));
  });

  test('scaled to zero, the registry empties and the name resolves to nothing', async (t) => {
    if (!registryId) return t.skip('the previous test did not set up the service');
    await h.ecs.send(new UpdateServiceCommand({ cluster: h.cluster, service: 'api', desiredCount: 0 }));
    await waitUntil(async () => ((await sd(['list-instances', '--service-id', registryId])).Instances.length === 0 ? true : undefined), 'the registry to empty', { timeoutMs: 60_000, intervalMs: 500 });
    const look = await inClient(['nslookup', '-type=a', 'api.corp.local']);
    const answered = [...look.stdout.matchAll(/Address:\s*(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]!).filter((a) => a !== bridge);
    assert.deepEqual(answered, [], look.stdout);
    await h.ecs.send(new DeleteServiceCommand({ cluster: h.cluster, service: 'api', force: true }));
  });
});
