/**
 * Container instances end to end: a real control plane (SQLite store, SigV4, HTTP, the agent
 * gateway and the instance liveness controller) on 127.0.0.1:0 in a temp dir, driven with the
 * AWS SDK for JavaScript v3 the way an agent and a user would, a raw WebSocket agent on the
 * channel of api/agent/protocol.ts, and the AWS CLI v2 once.
 *
 * The server is composed here (`startInstanceServer`) rather than through cmd/server.ts so the
 * test does not depend on when the container-instance handlers and the gateway are wired there;
 * it is also the reference for that wiring.
 */
import { RegionPolicy } from '../../src/core/regions';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  DeleteAttributesCommand,
  DeregisterContainerInstanceCommand,
  DescribeClustersCommand,
  DescribeContainerInstancesCommand,
  ECSClient,
  ListAttributesCommand,
  ListContainerInstancesCommand,
  PutAttributesCommand,
  RegisterContainerInstanceCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  UpdateContainerInstancesStateCommand,
  type Attribute,
  type ContainerInstance,
  type Resource,
} from '@aws-sdk/client-ecs';
import { WebSocket } from 'ws';
import { loadModel, validateInput } from '../../src/api/model';
import { AGENT_CONNECT_PATH, type DesiredStateMessage, type ServerToAgentMessage } from '../../src/api/agent/protocol';
import { credentialsPath, loadOrCreateCredentials, newKeyPair } from '../../src/cmd/credentials';
import { AGENT_OPERATIONS, ecsHandlers, type ControlContext } from '../../src/control';
import type { Principal } from '../../src/control/context';
import { InstanceCredentialIndex } from '../../src/control/instance-credentials';
import { AgentTokenTable, loadAgentTokens } from '../../src/cmd/agent-tokens';
import { InstanceLivenessController } from '../../src/controllers/instance-liveness-controller';
import { keys, type TaskRecord } from '../../src/core/resources';
import { reserve } from '../../src/core/instance-resources';
import { hexId, createLogger, signRequest, systemClock } from '../../src/lib';
import { createAgentGateway } from '../../src/server/agent-gateway';
import type { Handler } from '../../src/server/api-registry';
import { createHttpServer } from '../../src/server/http-server';
import { PlacementView } from '../../src/state/placement-view';
import { State } from '../../src/state/state';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { AWS_CLI, childEnv, run } from './helpers/wharf-server';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

interface InstanceServer {
  endpoint: string;
  port: number;
  ctx: ControlContext;
  user: { accessKeyId: string; secretAccessKey: string };
  agent: { accessKeyId: string; secretAccessKey: string };
  close(): Promise<void>;
}

/** The control plane with the container-instance API, the agent gateway and liveness wired in. */
async function startInstanceServer(dataDir: string, opts: { livenessTimeoutMs: number; pingIntervalMs?: number }): Promise<InstanceServer> {
  const log = createLogger('wharf-e2e', process.env.WHARF_LOG_LEVEL ?? 'silent');
  let credentials = loadOrCreateCredentials(dataDir, {});
  // A data dir from before join tokens had a cluster: its one token is taken over as "any
  // cluster" (this test registers into several clusters with it, and into one that does not exist).
  if (!fs.existsSync(path.join(dataDir, 'agent-tokens.json')) && !credentials.agentTokens) {
    credentials = { ...credentials, agentTokens: [newKeyPair('AKIAWAGENT')] };
    fs.writeFileSync(credentialsPath(dataDir), JSON.stringify(credentials), { mode: 0o600 });
  }
  const store = SqliteStore.open({ path: path.join(dataDir, 'wharf.db'), synchronous: 'NORMAL' });
  const state = new State(store);
  await state.start();
  const placement = new PlacementView(state);
  const ctx: ControlContext = { store, state, placement, partition: { region: REGION, accountId: ACCOUNT }, clock: systemClock, log };
  const keyTable = new Map<string, { secret: string; principal: Principal }>();
  keyTable.set(credentials.user.accessKeyId, { secret: credentials.user.secretAccessKey, principal: { kind: 'user', iamResource: 'root' } });
  // As cmd/server.ts: join tokens from agent-tokens.json, instance credentials from the instances.
  const tokens = new AgentTokenTable(dataDir);
  const instanceKeys = new InstanceCredentialIndex();
  instanceKeys.attach(state);
  const lookup = (id: string) => keyTable.get(id) ?? instanceKeys.lookup(id) ?? tokens.lookup(id);
  const gateway = createAgentGateway({ ctx, credentials: { lookup }, pingIntervalMs: opts.pingIntervalMs ?? 1000 });
  const liveness = new InstanceLivenessController({ state, store, clock: systemClock, log, connections: gateway.connections, timeoutMs: opts.livenessTimeoutMs });
  const model = loadModel('ecs');
  const http = createHttpServer({
    apis: [
      {
        targetPrefix: model.metadata.targetPrefix!,
        signingName: 'ecs',
        modelOperations: Object.keys(model.operations),
        handlers: ecsHandlers(ctx) as Record<string, Handler>,
        agentOperations: AGENT_OPERATIONS,
        validate: (op, input) => validateInput(model, op, input),
      },
    ],
    credentials: { lookup },
    accountId: ACCOUNT,
    regions: new RegionPolicy(REGION, [REGION]),
    log,
    onUpgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
  });
  liveness.start();
  const { port } = await http.listen(0, '127.0.0.1');
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    ctx,
    user: credentials.user,
    agent: loadAgentTokens(dataDir)[0]!,
    async close() {
      liveness.stop();
      await gateway.close();
      await http.close();
      placement.stop();
      state.stop();
      await store.close();
    },
  };
}

function client(srv: InstanceServer, who: 'user' | 'agent'): ECSClient {
  return new ECSClient({ endpoint: srv.endpoint, region: REGION, credentials: srv[who], maxAttempts: 1 });
}

async function sdkError(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

async function waitUntil(cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const resource = (list: Resource[] | undefined, name: string) => list?.find((r) => r.name === name);

const TOTAL: Resource[] = [
  { name: 'CPU', type: 'INTEGER', integerValue: 2048, doubleValue: 0, longValue: 0 },
  { name: 'MEMORY', type: 'INTEGER', integerValue: 3768, doubleValue: 0, longValue: 0 },
  { name: 'PORTS', type: 'STRINGSET', stringSetValue: ['22', '2375', '2376', '51678', '51679'] },
  { name: 'PORTS_UDP', type: 'STRINGSET', stringSetValue: [] },
];

function registration(cluster: string, az: string, instanceType: string, extra: Attribute[] = []) {
  return new RegisterContainerInstanceCommand({
    cluster,
    totalResources: TOTAL,
    versionInfo: { agentVersion: '1.80.0', agentHash: 'wharf', dockerVersion: 'DockerVersion: 24.0.5' },
    attributes: [
      { name: 'ecs.availability-zone', value: az },
      { name: 'ecs.instance-type', value: instanceType },
      { name: 'ecs.os-type', value: 'linux' },
      { name: 'ecs.capability.container-health-check' },
      ...extra,
    ],
    tags: [{ key: 'team', value: 'infra' }],
  });
}

/** The credential registration bound to an instance (as its agent keeps it), read from the store. */
function instanceKeyOf(srv: InstanceServer, cluster: string, instanceArn: string): { accessKeyId: string; secretAccessKey: string } {
  return srv.ctx.state.instances.get(cluster, instanceArn.split('/').pop()!)!.value.wharf.agentKey!;
}

/** A raw agent on the channel: SigV4-signed upgrade, then a queue of server messages. */
function connectAgent(srv: InstanceServer, cluster: string, instanceArn: string) {
  const url = `${srv.endpoint}${AGENT_CONNECT_PATH}?cluster=${cluster}&containerInstance=${encodeURIComponent(instanceArn)}`;
  // Signed, as a registered agent does, with the instance's own credential.
  const key = instanceKeyOf(srv, cluster, instanceArn);
  const { host: _h, ...headers } = signRequest({ method: 'GET', url, headers: {}, body: '' }, { ...key, region: REGION, service: 'ecs' });
  const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
  const inbox: ServerToAgentMessage[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (d) => {
    inbox.push(JSON.parse(String(d)) as ServerToAgentMessage);
    wake?.();
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  return {
    ws,
    closed,
    opened: new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }),
    /** The next message satisfying `match` (earlier ones are dropped). */
    async until(match: (m: ServerToAgentMessage) => boolean, ms = 5000): Promise<ServerToAgentMessage> {
      const end = Date.now() + ms;
      for (;;) {
        while (inbox.length > 0) {
          const m = inbox.shift()!;
          if (match(m)) return m;
        }
        const left = end - Date.now();
        if (left <= 0) throw new Error('no matching message from the gateway');
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, left);
        });
      }
    },
  };
}

test('container instances: register, describe, list, attributes, drain, deregister, agent channel, liveness', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-ci-e2e-'));
  let srv = await startInstanceServer(dataDir, { livenessTimeoutMs: 400 });
  let user = client(srv, 'user');
  let agent = client(srv, 'agent');
  t.after(async () => {
    user.destroy();
    agent.destroy();
    await srv.close().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const C = 'e2e';
  await user.send(new CreateClusterCommand({ clusterName: C }));

  // --- Registration, as an agent does it (join-token key) ---------------------------------------
  const a = (await agent.send(registration(C, 'us-east-1a', 't3.small', [{ name: 'stack', value: 'prod' }]))).containerInstance!;
  const b = (await agent.send(registration(C, 'us-east-1b', 't3.large'))).containerInstance!;
  const c = (await user.send(registration(C, 'us-east-1a', 'm5.large'))).containerInstance!;
  assert.match(a.containerInstanceArn!, new RegExp(`^arn:aws:ecs:${REGION}:${ACCOUNT}:container-instance/${C}/[0-9a-f]{32}$`));
  assert.equal(a.status, 'ACTIVE');
  assert.equal(a.agentConnected, false, 'connected only once the agent opens its channel');
  assert.equal(a.runningTasksCount, 0);
  assert.ok(a.registeredAt instanceof Date && Math.abs(a.registeredAt.getTime() - Date.now()) < 60_000);
  assert.deepEqual(resource(a.registeredResources, 'CPU'), { name: 'CPU', type: 'INTEGER', integerValue: 2048, doubleValue: 0, longValue: 0 });
  assert.deepEqual(a.remainingResources, a.registeredResources);
  assert.equal(a.versionInfo?.agentVersion, '1.80.0');
  assert.deepEqual(a.tags, [{ key: 'team', value: 'infra' }]);

  const notFound = await sdkError(agent.send(registration('no-such-cluster', 'us-east-1a', 't3.small')));
  assert.equal(notFound.name, 'ClusterNotFoundException');
  const badResources = await sdkError(agent.send(new RegisterContainerInstanceCommand({ cluster: C, totalResources: [{ name: 'PORTS', type: 'STRINGSET', stringSetValue: ['http'] }] })));
  assert.equal(badResources.name, 'InvalidParameterException');

  // Registering to the default cluster creates it.
  const d = (await agent.send(new RegisterContainerInstanceCommand({ totalResources: TOTAL }))).containerInstance!;
  assert.match(d.containerInstanceArn!, /container-instance\/default\//);
  const def = await user.send(new DescribeClustersCommand({ clusters: ['default'] }));
  assert.equal(def.clusters?.[0]?.status, 'ACTIVE');
  assert.equal(def.clusters?.[0]?.registeredContainerInstancesCount, 1);

  // Re-registration after an agent restart keeps the identity and picks up new resources. It is
  // signed with the instance's own credential: the join token may not speak for an instance.
  const bAgent = new ECSClient({ endpoint: srv.endpoint, region: REGION, credentials: instanceKeyOf(srv, C, b.containerInstanceArn!), maxAttempts: 1 });
  const tokenReReg = await sdkError(agent.send(new RegisterContainerInstanceCommand({ cluster: C, containerInstanceArn: b.containerInstanceArn, totalResources: TOTAL })));
  assert.equal(tokenReReg.name, 'AccessDeniedException');
  const again = (await bAgent.send(new RegisterContainerInstanceCommand({
    cluster: C,
    containerInstanceArn: b.containerInstanceArn,
    totalResources: [{ ...TOTAL[0]!, integerValue: 4096 }, ...TOTAL.slice(1)],
    versionInfo: { agentVersion: '1.81.0' },
    attributes: [{ name: 'ecs.availability-zone', value: 'us-east-1b' }, { name: 'ecs.instance-type', value: 't3.large' }],
  }))).containerInstance!;
  bAgent.destroy();
  assert.equal(again.containerInstanceArn, b.containerInstanceArn);
  assert.equal(resource(again.registeredResources, 'CPU')?.integerValue, 4096);
  assert.equal(again.versionInfo?.agentVersion, '1.81.0');
  assert.ok(again.version! > b.version!);
  assert.equal(again.registeredAt?.getTime(), b.registeredAt?.getTime());

  // --- Describe -----------------------------------------------------------------------------
  const id = (ci: ContainerInstance) => ci.containerInstanceArn!.split('/').pop()!;
  const missing = hexId();
  const desc = await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [a.containerInstanceArn!, id(b), missing], include: ['TAGS'] }));
  assert.deepEqual(desc.containerInstances?.map((x) => x.containerInstanceArn), [a.containerInstanceArn, b.containerInstanceArn]);
  assert.deepEqual(desc.failures, [{ arn: `arn:aws:ecs:${REGION}:${ACCOUNT}:container-instance/${C}/${missing}`, reason: 'MISSING' }]);
  assert.deepEqual(desc.containerInstances?.[0]?.tags, [{ key: 'team', value: 'infra' }]);
  assert.ok(desc.containerInstances?.[0]?.attributes?.some((x) => x.name === 'ecs.capability.container-health-check' && x.value === undefined));
  const untagged = await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [id(a)] }));
  assert.equal(untagged.containerInstances?.[0]?.tags, undefined, 'tags only with include TAGS');
  const otherCluster = await user.send(new DescribeContainerInstancesCommand({ cluster: 'default', containerInstances: [a.containerInstanceArn!] }));
  assert.equal(otherCluster.failures?.[0]?.reason, 'MISSING', 'an ARN of another cluster is not found here');

  // --- List: status and cluster-query filters, pagination -----------------------------------
  const list = async (input: { status?: 'ACTIVE' | 'DRAINING'; filter?: string; maxResults?: number; nextToken?: string } = {}) =>
    user.send(new ListContainerInstancesCommand({ cluster: C, ...input }));
  const sorted = (arns: (string | undefined)[] | undefined) => [...(arns ?? [])].sort();
  const all = sorted([a, b, c].map((x) => x.containerInstanceArn));
  assert.deepEqual(sorted((await list()).containerInstanceArns), all);
  assert.deepEqual(sorted((await list({ filter: 'attribute:ecs.instance-type =~ t3.*' })).containerInstanceArns), sorted([a.containerInstanceArn, b.containerInstanceArn]));
  assert.deepEqual((await list({ filter: "attribute:ecs.availability-zone in [us-east-1b] or attribute:stack == 'none'" })).containerInstanceArns, [b.containerInstanceArn]);
  assert.deepEqual((await list({ filter: 'attribute:stack exists and runningTasksCount == 0' })).containerInstanceArns, [a.containerInstanceArn]);
  assert.deepEqual(sorted((await list({ filter: 'agentVersion >= 1.81.0 or not(attribute:ecs.availability-zone == us-east-1b)' })).containerInstanceArns), all);
  assert.equal((await sdkError(list({ filter: 'attribute:ecs.instance-type ==' }))).name, 'InvalidParameterException');
  const p1 = await list({ maxResults: 2 });
  assert.equal(p1.containerInstanceArns?.length, 2);
  assert.ok(p1.nextToken);
  const p2 = await list({ maxResults: 2, nextToken: p1.nextToken });
  assert.equal(p2.nextToken, undefined);
  assert.deepEqual(sorted([...p1.containerInstanceArns!, ...p2.containerInstanceArns!]), all);

  // --- Drain and activate -------------------------------------------------------------------
  const drained = await user.send(new UpdateContainerInstancesStateCommand({ cluster: C, containerInstances: [id(b), missing], status: 'DRAINING' }));
  assert.deepEqual(drained.containerInstances?.map((x) => [x.containerInstanceArn, x.status]), [[b.containerInstanceArn, 'DRAINING']]);
  assert.equal(drained.failures?.[0]?.reason, 'MISSING');
  assert.deepEqual((await list({ status: 'DRAINING' })).containerInstanceArns, [b.containerInstanceArn]);
  assert.deepEqual(sorted((await list({ status: 'ACTIVE' })).containerInstanceArns), sorted([a.containerInstanceArn, c.containerInstanceArn]));
  assert.equal((await list()).containerInstanceArns?.length, 3, 'DRAINING instances are listed by default');
  const wrongStatus = await sdkError(user.send(new UpdateContainerInstancesStateCommand({ cluster: C, containerInstances: [id(b)], status: 'REGISTERING' })));
  assert.equal(wrongStatus.name, 'InvalidParameterException');
  const tooMany = await sdkError(user.send(new UpdateContainerInstancesStateCommand({ cluster: C, containerInstances: Array.from({ length: 11 }, () => hexId()), status: 'ACTIVE' })));
  assert.equal(tooMany.name, 'InvalidParameterException');
  const back = await user.send(new UpdateContainerInstancesStateCommand({ cluster: C, containerInstances: [b.containerInstanceArn!], status: 'ACTIVE' }));
  assert.equal(back.containerInstances?.[0]?.status, 'ACTIVE');

  // --- Attributes ---------------------------------------------------------------------------
  // `a` already has one custom attribute (stack); nine more reach the limit of ten.
  const nine = Array.from({ length: 9 }, (_, i): Attribute => ({ name: `custom-${i}`, value: `v${i}`, targetId: a.containerInstanceArn }));
  const put = await user.send(new PutAttributesCommand({ cluster: C, attributes: nine }));
  assert.equal(put.attributes?.length, 9);
  const over = await sdkError(user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'one-too-many', value: 'x', targetType: 'container-instance', targetId: id(a) }] })));
  assert.equal(over.name, 'AttributeLimitExceededException');
  // Replacing an existing name's value is not a new attribute.
  await user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'stack', value: 'staging', targetType: 'container-instance', targetId: id(a) }] }));
  const bad = [
    { name: 'has space', value: 'x' },
    { name: 'x'.repeat(129), value: 'x' },
    { name: 'ok', value: 'semi;colon' },
    { name: 'ok', value: ' leading-space' },
  ];
  for (const attr of bad) {
    const e = await sdkError(user.send(new PutAttributesCommand({ cluster: C, attributes: [{ ...attr, targetId: a.containerInstanceArn }] })));
    assert.equal(e.name, 'InvalidParameterException', JSON.stringify(attr));
  }
  const okValue = await user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'path/with\\slashes.v1', value: 'user@host:/a b', targetId: b.containerInstanceArn }] }));
  assert.equal(okValue.attributes?.length, 1);
  const unknownTarget = await sdkError(user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'x', value: 'y', targetType: 'container-instance', targetId: missing }] })));
  assert.equal(unknownTarget.name, 'TargetNotFoundException');
  const shortWithoutType = await sdkError(user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'x', value: 'y', targetId: id(a) }] })));
  assert.equal(shortWithoutType.name, 'InvalidParameterException');
  const eleven = Array.from({ length: 11 }, (_, i): Attribute => ({ name: `n${i}`, targetId: b.containerInstanceArn }));
  assert.equal((await sdkError(user.send(new PutAttributesCommand({ cluster: C, attributes: eleven })))).name, 'InvalidParameterException');

  const byName = await user.send(new ListAttributesCommand({ cluster: C, targetType: 'container-instance', attributeName: 'stack' }));
  assert.deepEqual(byName.attributes, [{ name: 'stack', value: 'staging', targetType: 'container-instance', targetId: a.containerInstanceArn }]);
  const byValue = await user.send(new ListAttributesCommand({ cluster: C, targetType: 'container-instance', attributeName: 'ecs.availability-zone', attributeValue: 'us-east-1a' }));
  assert.deepEqual(sorted(byValue.attributes?.map((x) => x.targetId)), sorted([a.containerInstanceArn, c.containerInstanceArn]));
  // Every attribute of the cluster, page by page.
  const seen: Attribute[] = [];
  let token: string | undefined;
  do {
    const page = await user.send(new ListAttributesCommand({ cluster: C, targetType: 'container-instance', maxResults: 7, nextToken: token }));
    assert.ok((page.attributes?.length ?? 0) <= 7);
    seen.push(...(page.attributes ?? []));
    token = page.nextToken;
  } while (token);
  const described = await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [id(a), id(b), id(c)] }));
  const expectedCount = described.containerInstances!.reduce((n, ci) => n + (ci.attributes?.length ?? 0), 0);
  assert.equal(seen.length, expectedCount);
  assert.equal(new Set(seen.map((x) => `${x.targetId} ${x.name}`)).size, seen.length, 'no attribute is listed twice across pages');

  const deleted = await user.send(new DeleteAttributesCommand({ cluster: C, attributes: [{ name: 'custom-0', targetId: a.containerInstanceArn }] }));
  assert.equal(deleted.attributes?.[0]?.name, 'custom-0');
  await user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'fits-now', value: 'yes', targetId: a.containerInstanceArn }] }));
  const aNow = (await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [id(a)] }))).containerInstances![0]!;
  const names = aNow.attributes!.map((x) => x.name);
  assert.ok(names.includes('fits-now') && !names.includes('custom-0') && names.includes('ecs.os-type'));

  // --- The agent channel --------------------------------------------------------------------
  const ch = connectAgent(srv, C, b.containerInstanceArn!);
  await ch.opened;
  const first = (await ch.until((m) => m.type === 'desiredState')) as DesiredStateMessage;
  assert.equal(first.containerInstanceArn, b.containerInstanceArn);
  assert.deepEqual(first.tasks, []);
  const describeB = async () => (await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [id(b)] }))).containerInstances![0]!;
  await waitUntil(async () => (await describeB()).agentConnected === true, 'agentConnected=true');

  // RunTask places on the only connected instance, and the agent is told at once.
  await user.send(new RegisterTaskDefinitionCommand({ family: 'ci-web', containerDefinitions: [{ name: 'app', image: 'busybox', memory: 128, cpu: 256, essential: true, portMappings: [{ containerPort: 80, hostPort: 8080 }] }] }));
  const run1 = await user.send(new RunTaskCommand({ cluster: C, taskDefinition: 'ci-web', launchType: 'EC2' }));
  assert.deepEqual(run1.failures, []);
  const placed = run1.tasks![0]!;
  assert.equal(placed.containerInstanceArn, b.containerInstanceArn);
  const withTask = (await ch.until((m) => m.type === 'desiredState' && m.tasks.length > 0)) as DesiredStateMessage;
  assert.equal(withTask.tasks[0]!.taskArn, placed.taskArn);
  assert.equal(withTask.tasks[0]!.desiredStatus, 'RUNNING');
  assert.equal(withTask.tasks[0]!.taskDefinition.family, 'ci-web');
  assert.ok(withTask.seq > first.seq);
  const bWithTask = await describeB();
  assert.equal(bWithTask.runningTasksCount, 1);
  assert.equal(bWithTask.pendingTasksCount, 1);
  assert.equal(resource(bWithTask.remainingResources, 'CPU')?.integerValue, 4096 - 256);
  assert.equal(resource(bWithTask.remainingResources, 'MEMORY')?.integerValue, 3768 - 128);
  assert.ok(resource(bWithTask.remainingResources, 'PORTS')?.stringSetValue?.includes('8080'));
  assert.deepEqual((await list({ filter: 'runningTasksCount > 0' })).containerInstanceArns, [b.containerInstanceArn]);
  assert.deepEqual((await list({ filter: 'task:group == family:ci-web' })).containerInstanceArns, [b.containerInstanceArn]);

  // Deregistering an instance with a running task needs force.
  const refused = await sdkError(user.send(new DeregisterContainerInstanceCommand({ cluster: C, containerInstance: id(b) })));
  assert.equal(refused.name, 'InvalidParameterException');
  assert.match(refused.message, /Found running tasks on the instance/);

  ch.ws.close();
  assert.equal(await ch.closed, 1005);
  await waitUntil(async () => (await describeB()).agentConnected === false, 'agentConnected=false after the channel closed');

  // --- AWS CLI v2, once ---------------------------------------------------------------------
  const r = await run(AWS_CLI, ['ecs', 'list-container-instances', '--cluster', C, '--endpoint-url', srv.endpoint, '--output', 'json'], childEnv(srv.user, REGION));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(sorted(JSON.parse(r.stdout).containerInstanceArns), all);
  const r2 = await run(AWS_CLI, ['ecs', 'describe-container-instances', '--cluster', C, '--container-instances', id(b), '--endpoint-url', srv.endpoint, '--output', 'json'], childEnv(srv.user, REGION));
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).containerInstances[0].runningTasksCount, 1);

  // --- A control-plane restart: stored "connected" without a socket expires ---------------------
  const ch2 = connectAgent(srv, C, a.containerInstanceArn!);
  await ch2.opened;
  await waitUntil(async () => srv.ctx.state.instances.get(C, id(a))!.value.agentConnected === true, 'a connected');
  user.destroy();
  agent.destroy();
  await srv.close(); // closes the socket without writing agentConnected=false
  await ch2.closed;
  srv = await startInstanceServer(dataDir, { livenessTimeoutMs: 400 });
  user = client(srv, 'user');
  agent = client(srv, 'agent');
  assert.equal(srv.ctx.state.instances.get(C, id(a))!.value.agentConnected, true, 'the stored flag survives the restart');
  await waitUntil(async () => srv.ctx.state.instances.get(C, id(a))!.value.agentConnected === false, 'the liveness controller to expire it', 3000);

  // --- Deregistration -----------------------------------------------------------------------
  // A task still placed on `c` (as a placement would leave it) orphans with force.
  const taskId = hexId();
  const cKey = keys.instance(C, id(c));
  const cEntry = srv.ctx.state.instances.get(C, id(c))!;
  const reservation = { cpu: 100, memory: 100, ports: [80], portsUdp: [], gpuIds: [] };
  const orphan: TaskRecord = {
    taskArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${C}/${taskId}`,
    clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${C}`,
    taskDefinitionArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/ci-web:1`,
    containerInstanceArn: c.containerInstanceArn,
    lastStatus: 'RUNNING',
    desiredStatus: 'RUNNING',
    launchType: 'EC2',
    group: 'family:ci-web',
    version: 1,
    containers: [],
    wharf: { id: taskId, cluster: C, instanceId: id(c), reservation },
  };
  await srv.ctx.state.waitFor(await srv.ctx.store.txn([
    { op: 'create', key: keys.task(C, taskId), value: orphan },
    { op: 'update', key: cKey, value: { ...cEntry.value, remainingResources: reserve(cEntry.value.remainingResources ?? [], reservation), version: cEntry.value.version + 1 }, expectedRevision: cEntry.modRevision },
  ]));
  const cBefore = (await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [id(c)] }))).containerInstances![0]!;
  assert.equal(cBefore.runningTasksCount, 1);
  assert.equal(resource(cBefore.remainingResources, 'CPU')?.integerValue, 2048 - 100);
  assert.equal((await sdkError(user.send(new DeregisterContainerInstanceCommand({ cluster: C, containerInstance: id(c) })))).name, 'InvalidParameterException');
  const forced = await user.send(new DeregisterContainerInstanceCommand({ cluster: C, containerInstance: c.containerInstanceArn, force: true }));
  assert.equal(forced.containerInstance?.status, 'INACTIVE');
  assert.equal(forced.containerInstance?.agentConnected, false);
  const orphaned = srv.ctx.state.tasks.get(C, taskId)!.value;
  assert.equal(orphaned.lastStatus, 'STOPPED');
  assert.equal(orphaned.desiredStatus, 'STOPPED');
  assert.match(orphaned.stoppedReason ?? '', /deregistered/);

  const plain = await user.send(new DeregisterContainerInstanceCommand({ cluster: C, containerInstance: id(a) }));
  assert.equal(plain.containerInstance?.status, 'INACTIVE');
  assert.deepEqual((await list()).containerInstanceArns, [b.containerInstanceArn], 'INACTIVE instances are not listed');
  const stillDescribed = await user.send(new DescribeContainerInstancesCommand({ cluster: C, containerInstances: [id(a)] }));
  assert.equal(stillDescribed.containerInstances?.[0]?.status, 'INACTIVE', 'but can still be described');
  assert.equal((await sdkError(user.send(new DeregisterContainerInstanceCommand({ cluster: C, containerInstance: id(a) })))).name, 'InvalidParameterException');
  const attrOnInactive = await sdkError(user.send(new PutAttributesCommand({ cluster: C, attributes: [{ name: 'x', value: 'y', targetId: a.containerInstanceArn }] })));
  assert.equal(attrOnInactive.name, 'TargetNotFoundException');
  const drainInactive = await user.send(new UpdateContainerInstancesStateCommand({ cluster: C, containerInstances: [id(a)], status: 'DRAINING' }));
  assert.equal(drainInactive.failures?.[0]?.reason, 'INACTIVE');
  // Its agent can neither come back on the channel nor re-register with the old ARN.
  const gone = connectAgent(srv, C, a.containerInstanceArn!);
  await assert.rejects(gone.opened);
  const aAgent = new ECSClient({ endpoint: srv.endpoint, region: REGION, credentials: instanceKeyOf(srv, C, a.containerInstanceArn!), maxAttempts: 1 });
  const reReg = await sdkError(aAgent.send(new RegisterContainerInstanceCommand({ cluster: C, containerInstanceArn: a.containerInstanceArn, totalResources: TOTAL })));
  aAgent.destroy();
  assert.equal(reReg.name, 'ClientException');
});
