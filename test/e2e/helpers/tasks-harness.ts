/**
 * The set-up the `tasks-*` end-to-end tests share: a real control plane in-process
 * (startTestServer), one real Docker agent in-process (startAgents, as `wharf agent` builds it),
 * a cluster of the test file's own (so parallel files never touch each other's containers), and
 * small waiting helpers over DescribeTasks. Everything is driven through the ECS API.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateClusterCommand,
  DescribeTasksCommand,
  RegisterTaskDefinitionCommand,
  type ContainerDefinition,
  type ECSClient,
  type RegisterTaskDefinitionCommandInput,
  type Task,
} from '@aws-sdk/client-ecs';
import { startAgents, type RunningAgents } from '../../../src/cmd/agent';
import { ensureAgentToken } from '../../../src/cmd/agent-tokens';
import type { PullBehaviour } from '../../../src/agent';
import { createLogger } from '../../../src/lib';
import { listClusterContainers, removeClusterContainers, sleep } from './processes';
import type { DnsSettings } from '../../../src/cmd/dns';
import type { LoadBalancerSettings } from '../../../src/cmd/load-balancers';
import { startTestServer, type TestServer } from './wharf-server';

export interface TasksHarness {
  srv: TestServer;
  ecs: ECSClient;
  cluster: string;
  clusterArn: string;
  agents: RunningAgents;
  instanceArn: string;
  /** The agent's data dir (its identity and instance credential live under `agent/`). */
  agentDir: string;
  /** Registers a task definition (EC2, bridge unless given) and returns its ARN. */
  register(family: string, containers: ContainerDefinition[], extra?: Partial<RegisterTaskDefinitionCommandInput>): Promise<string>;
  describe(arn: string, includeTags?: boolean): Promise<Task>;
  /** Polls DescribeTasks until `pred` holds (every status seen is appended to `seen`). */
  waitTask(arn: string, pred: (t: Task) => boolean, what: string, o?: { timeoutMs?: number; seen?: string[] }): Promise<Task>;
  /** Stops the agent (containers keep running) and starts a fresh one on the same data dir. */
  restartAgent(): Promise<void>;
  close(): Promise<void>;
}

export async function startTasksHarness(
  name: string,
  o: {
    pullBehaviour?: PullBehaviour;
    resources?: { cpu?: number; memory?: number };
    taskEndpoint?: { host?: string; port?: number } | false;
    dns?: DnsSettings;
    taskDns?: string[];
    loadBalancers?: LoadBalancerSettings;
  } = {},
): Promise<TasksHarness> {
  const srv = await startTestServer({ dns: o.dns, loadBalancers: o.loadBalancers });
  const ecs = srv.ecs();
  const cluster = `${name}-${process.pid}`;
  const clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: cluster }))).cluster!.clusterArn!;
  const agentDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-agent-'));
  const log = createLogger('wharf-e2e-agent', process.env.WHARF_LOG_LEVEL ?? 'silent');
  const startAgent = () =>
    startAgents({
      endpoint: srv.endpoint,
      region: srv.region,
      cluster,
      // A join token bound to the test's cluster, as `wharf credentials --agent --cluster` makes.
      credentials: ensureAgentToken(srv.dataDir, cluster),
      dataDir: agentDir,
      attributes: {},
      resources: o.resources,
      runtime: 'docker',
      instances: 1,
      pullBehaviour: o.pullBehaviour ?? 'prefer-cached',
      // Test files run side by side: each agent takes a free port unless a test asks otherwise.
      taskEndpoint: o.taskEndpoint ?? { port: 0 },
      dnsServers: o.taskDns,
      // Tests stay on loopback: assignPublicIp ENABLED publishes there.
      publicIp: '127.0.0.1',
      log,
    });
  let agents = await startAgent();
  const h: TasksHarness = {
    srv,
    ecs,
    cluster,
    clusterArn,
    get agents() {
      return agents;
    },
    instanceArn: agents.agents[0]!.containerInstanceArn!,
    agentDir,
    async register(family, containers, extra = {}) {
      const out = await ecs.send(new RegisterTaskDefinitionCommand({ family, networkMode: 'bridge', requiresCompatibilities: ['EC2'], containerDefinitions: containers, ...extra }));
      return out.taskDefinition!.taskDefinitionArn!;
    },
    async describe(arn, includeTags = false) {
      const out = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [arn], include: includeTags ? ['TAGS'] : undefined }));
      if (!out.tasks?.[0]) throw new Error(`task ${arn} not found: ${JSON.stringify(out.failures)}`);
      return out.tasks[0];
    },
    async waitTask(arn, pred, what, w = {}) {
      const end = Date.now() + (w.timeoutMs ?? 60_000);
      let last: Task | undefined;
      for (;;) {
        last = await h.describe(arn);
        if (w.seen && w.seen[w.seen.length - 1] !== last.lastStatus) w.seen.push(last.lastStatus!);
        if (pred(last)) return last;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; task: ${JSON.stringify(last)}`);
        await sleep(50);
      }
    },
    async restartAgent() {
      await agents.stop();
      agents = await startAgent();
    },
    async close() {
      await agents.stop().catch(() => undefined);
      await srv.close();
      await removeClusterContainers(clusterArn);
      fs.rmSync(agentDir, { recursive: true, force: true });
    },
  };
  return h;
}

/** Docker containers of the cluster that run now (pause containers included). */
export async function runningContainers(clusterArn: string) {
  return (await listClusterContainers(clusterArn)).filter((c) => c.running);
}
