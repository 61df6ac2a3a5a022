/**
 * The security-group chain as rules: what a task accepts follows from its groups' ingress rules
 * and the addresses of the other groups' running members, and nothing else reaches it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimulatedRuntime } from './runtime/simulated-runtime';
import { LABELS } from '../api/agent/protocol';
import { FIREWALL_CHAIN, LINK_LOCAL_CHAIN, TaskFirewall, firewallRules, isFargatePause, linkLocalRules, parseGroupsLabel, restoreInput, type FirewallMember } from './firewall';

const web: FirewallMember = { ip: '10.100.0.10', groups: ['sg-web'], ingress: [{ protocol: 'tcp', fromPort: 8080, toPort: 8080, group: 'sg-client' }] };
const client: FirewallMember = { ip: '10.100.0.2', groups: ['sg-client'], ingress: [] };
const other: FirewallMember = { ip: '10.100.16.3', groups: ['sg-other'], ingress: [{ protocol: '-1', cidr: '10.0.0.0/8' }, { protocol: 'udp', fromPort: 5000, toPort: 5010, cidr: '127.0.0.1/32' }] };

test('a group source becomes its running members; every task ends in a DROP of the rest; replies pass first', () => {
  assert.deepEqual(firewallRules([web, client, other]), [
    `-A ${FIREWALL_CHAIN} -j ${LINK_LOCAL_CHAIN}`,
    `-A ${FIREWALL_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
    `-A ${FIREWALL_CHAIN} -d 10.100.0.2/32 -j DROP`,
    `-A ${FIREWALL_CHAIN} -s 10.100.0.2/32 -d 10.100.0.10/32 -p tcp -m tcp --dport 8080 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -d 10.100.0.10/32 -j DROP`,
    `-A ${FIREWALL_CHAIN} -s 10.0.0.0/8 -d 10.100.16.3/32 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -s 127.0.0.1/32 -d 10.100.16.3/32 -p udp -m udp --dport 5000:5010 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -d 10.100.16.3/32 -j DROP`,
  ]);
});

test('a group with no running member admits nobody; the default group admits its own members', () => {
  assert.deepEqual(firewallRules([web]).slice(2), [`-A ${FIREWALL_CHAIN} -d 10.100.0.10/32 -j DROP`]);
  const a: FirewallMember = { ip: '10.100.0.5', groups: ['sg-default'], ingress: [{ protocol: '-1', group: 'sg-default' }] };
  const b: FirewallMember = { ...a, ip: '10.100.0.6' };
  assert.deepEqual(firewallRules([b, a]).slice(2), [
    `-A ${FIREWALL_CHAIN} -s 10.100.0.5/32 -d 10.100.0.5/32 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -s 10.100.0.6/32 -d 10.100.0.5/32 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -d 10.100.0.5/32 -j DROP`,
    `-A ${FIREWALL_CHAIN} -s 10.100.0.5/32 -d 10.100.0.6/32 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -s 10.100.0.6/32 -d 10.100.0.6/32 -j RETURN`,
    `-A ${FIREWALL_CHAIN} -d 10.100.0.6/32 -j DROP`,
  ]);
});

test('the restore input replaces the two chains (declared, so flushed) and nothing else', () => {
  const text = restoreInput([]);
  assert.equal(
    text,
    [
      '*filter',
      `:${FIREWALL_CHAIN} - [0:0]`,
      `:${LINK_LOCAL_CHAIN} - [0:0]`,
      `-A ${LINK_LOCAL_CHAIN} ! -d 169.254.0.0/16 -j RETURN`,
      `-A ${LINK_LOCAL_CHAIN} -p udp -m udp --dport 53 -j RETURN`,
      `-A ${LINK_LOCAL_CHAIN} -p tcp -m tcp --dport 53 -j RETURN`,
      `-A ${FIREWALL_CHAIN} -j ${LINK_LOCAL_CHAIN}`,
      `-A ${FIREWALL_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('a Fargate task reaches no link-local address (instance metadata, its credentials) but DNS; an EC2 task still does', () => {
  const fargate: FirewallMember = { ip: '10.100.0.20', groups: [], ingress: [], fargate: true };
  const pooled: FirewallMember = { ip: '10.100.0.3', groups: [], ingress: [], fargate: true };
  assert.deepEqual(linkLocalRules([web, fargate, pooled, { ...fargate }]).slice(3), [`-A ${LINK_LOCAL_CHAIN} -s 10.100.0.3/32 -j DROP`, `-A ${LINK_LOCAL_CHAIN} -s 10.100.0.20/32 -j DROP`]);
  assert.deepEqual(linkLocalRules([web, client]).slice(3), [], 'EC2 awsvpc tasks are not blocked');
  // Forwarded traffic meets the link-local chain before anything else of WHARF-SG (replies included).
  assert.equal(firewallRules([fargate])[0], `-A ${FIREWALL_CHAIN} -j ${LINK_LOCAL_CHAIN}`);
  assert.equal(isFargatePause({ [LABELS.containerInstance]: 'arn:aws:ecs:us-east-1:000000000000:container-instance/~fargate/e4bc' }), true);
  assert.equal(isFargatePause({ [LABELS.containerInstance]: 'arn:aws:ecs:us-east-1:000000000000:container-instance/default/ff67' }), false);
  assert.equal(isFargatePause({}), false);
});

test('members come from running pause containers with the label; the rebuild restores, then jumps from DOCKER-USER once', async () => {
  const rt = new SimulatedRuntime();
  const label = JSON.stringify({ groups: ['sg-web'], ingress: web.ingress });
  await rt.ensureNetwork('wharf-subnet-a', {});
  const fargateInstance = 'arn:aws:ecs:us-east-1:000000000000:container-instance/~fargate/e4bc';
  const id = await rt.createContainer({ name: 'p', image: 'pause', labels: { [LABELS.pause]: 'true', [LABELS.securityGroups]: label, [LABELS.containerInstance]: fargateInstance }, host: { networkMode: 'wharf-subnet-a' } });
  await rt.startContainer(id);
  // A pause container of a task without groups (an older agent's) and a stopped one are not members.
  await rt.createContainer({ name: 'q', image: 'pause', labels: { [LABELS.pause]: 'true' }, host: { networkMode: 'wharf-subnet-a' } });
  const calls: { cmd: string; args: string[]; input?: string }[] = [];
  let jumped = false;
  const fw = new TaskFirewall(rt, {
    exec: async (cmd, args, input) => {
      calls.push({ cmd, args, input });
      if (args.includes('-C') && !jumped) throw new Error('no such rule');
      if (args.includes('-I')) jumped = true;
    },
  });
  const members = await fw.members();
  assert.equal(members.length, 1);
  assert.deepEqual(members[0]!.groups, ['sg-web']);
  await fw.sync();
  await fw.sync();
  const restores = calls.filter((c) => c.cmd === 'iptables-restore');
  assert.equal(restores.length, 2);
  assert.match(restores[0]!.input!, new RegExp(`-d ${members[0]!.ip.replace(/\./g, '\\.')}/32 -j DROP`));
  assert.equal(members[0]!.fargate, true, "a Fargate pool instance's pause container");
  assert.ok(restores[0]!.input!.includes(`-A ${LINK_LOCAL_CHAIN} -s ${members[0]!.ip}/32 -j DROP`));
  assert.deepEqual(
    calls.filter((c) => c.args.includes('-I')).map((c) => c.args.join(' ')),
    [`-w -I DOCKER-USER 1 -j ${FIREWALL_CHAIN}`, `-w -I INPUT 1 -j ${LINK_LOCAL_CHAIN}`],
    'each jump is added once: forwarded traffic and traffic to the host itself',
  );
  assert.deepEqual(parseGroupsLabel('not json'), undefined);
});

test('a rebuild is one iptables-restore (it declares the chain, no iptables -N) with the jump checked alongside', async () => {
  const rt = new SimulatedRuntime();
  const calls: string[] = [];
  const fw = new TaskFirewall(rt, { exec: async (cmd, args) => void calls.push(`${cmd} ${args.join(' ')}`) });
  await fw.sync();
  assert.deepEqual(calls.sort(), ['iptables -w -C DOCKER-USER -j WHARF-SG', 'iptables -w -C INPUT -j WHARF-LINK-LOCAL', 'iptables-restore -w --noflush']);
});

test('sync() waits for a rebuild begun after the call, and not for one asked for later', async () => {
  const rt = new SimulatedRuntime();
  const release: (() => void)[] = [];
  let restores = 0;
  const fw = new TaskFirewall(rt, {
    exec: async (cmd) => {
      if (cmd !== 'iptables-restore') return;
      restores++;
      await new Promise<void>((r) => release.push(r));
    },
  });
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  let firstDone = false;
  let secondDone = false;
  void fw.sync().then(() => (firstDone = true));
  await settle();
  assert.equal(restores, 1);
  // Asked while the first runs: the first's rules may predate what this caller needs.
  void fw.sync().then(() => (secondDone = true));
  release.shift()!();
  await settle();
  assert.equal(firstDone, true);
  assert.equal(secondDone, false, 'the second caller waits for a rebuild of its own');
  assert.equal(restores, 2);
  // A third caller arrives during the second rebuild; the second caller does not wait for it.
  let thirdDone = false;
  void fw.sync().then(() => (thirdDone = true));
  release.shift()!();
  await settle();
  assert.equal(secondDone, true);
  assert.equal(thirdDone, false);
  assert.equal(restores, 3);
  release.shift()!();
  await settle();
  assert.equal(thirdDone, true);
  assert.equal(restores, 3, 'no rebuild nobody asked for');
});

test('the watcher rebuilds for pause containers only, and not for an event a rebuild begun after it has covered', async () => {
  const rt = new SimulatedRuntime();
  let restores = 0;
  const fw = new TaskFirewall(rt, { exec: async (cmd) => void (cmd === 'iptables-restore' && restores++) });
  const settle = () => new Promise((r) => setTimeout(r, 250));
  await rt.ensureNetwork('wharf-subnet-a', {});
  fw.watch();
  await settle();
  assert.equal(restores, 1, 'one rebuild when the watch begins');
  const app = await rt.createContainer({ name: 'app', image: 'app', labels: {}, host: { networkMode: 'none' } });
  await rt.startContainer(app);
  await settle();
  assert.equal(restores, 1, "a task container's start changes no address");
  const p1 = await rt.createContainer({ name: 'p1', image: 'pause', labels: { [LABELS.pause]: 'true' }, host: { networkMode: 'wharf-subnet-a' } });
  await rt.startContainer(p1);
  await settle();
  assert.equal(restores, 2, "a pause container's start is a rebuild");
  const p2 = await rt.createContainer({ name: 'p2', image: 'pause', labels: { [LABELS.pause]: 'true' }, host: { networkMode: 'wharf-subnet-a' } });
  await rt.startContainer(p2);
  // The starting task syncs at once (begun after the event): the debounced rebuild is not needed.
  await fw.sync();
  await settle();
  assert.equal(restores, 3);
  await rt.removeContainer(p2);
  await settle();
  assert.equal(restores, 4, 'a pause container going is a rebuild');
  fw.stop();
});
