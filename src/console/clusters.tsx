/** Clusters and, per cluster, its container instances with their capacity as bars. */
import type { Cluster, ContainerInstance, Resource, Task } from '../core/shapes/ecs';
import { ApiError, callEcs, chunks, listAll, type Session } from './api';
import { Bar, ConfirmButton, ErrorText, href, shortArn, TableHead, Updated, usePoll } from './ui';

const POLL_MS = 3000;

export function ClustersPage({ session }: { session: Session }) {
  const p = usePoll(
    async () => {
      const arns = await listAll(session, 'ListClusters', {}, 'clusterArns');
      const out: Cluster[] = [];
      const denied: string[] = [];
      for (const c of chunks(arns, 100)) {
        const got = await describeAllowed(session, c);
        out.push(...got.clusters);
        denied.push(...got.denied);
      }
      return { clusters: out.sort((a, b) => (a.clusterName ?? '').localeCompare(b.clusterName ?? '')), denied: denied.map(shortArn).sort() };
    },
    POLL_MS,
    [session],
  );
  return (
    <section>
      <h1>
        Clusters <Updated at={p.at} />
      </h1>
      <ErrorText error={p.error} />
      <table>
        <TableHead columns={['Cluster', 'Status', 'Services', 'Running tasks', 'Pending tasks', 'Instances']} />
        <tbody>
          {(p.data?.clusters ?? []).map((c) => (
            <tr key={c.clusterArn}>
              <th scope="row">
                <a href={href(['clusters', c.clusterName!])}>{c.clusterName}</a>
              </th>
              <td>{c.status}</td>
              <td>
                <a href={href(['services'], { cluster: c.clusterName })}>{c.activeServicesCount ?? 0}</a>
              </td>
              <td>
                <a href={href(['tasks'], { cluster: c.clusterName })}>{c.runningTasksCount ?? 0}</a>
              </td>
              <td>{c.pendingTasksCount ?? 0}</td>
              <td>{c.registeredContainerInstancesCount ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.data && p.data.denied.length > 0 && (
        <p class="note" data-testid="clusters-denied">
          Not shown, as your policy does not allow ecs:DescribeClusters on them: {p.data.denied.join(', ')}.
        </p>
      )}
      {p.data?.clusters.length === 0 && p.data.denied.length === 0 && <p>No clusters in {session.region}.</p>}
    </section>
  );
}

/**
 * DescribeClusters of `arns`; when the policy refuses the batch, each cluster alone, so that a
 * user allowed some clusters (a team kept to its own, say) sees those and is told of the rest.
 */
async function describeAllowed(session: Session, arns: string[]): Promise<{ clusters: Cluster[]; denied: string[] }> {
  const describe = async (clusters: string[]) => (await callEcs<{ clusters?: Cluster[] }>(session, 'DescribeClusters', { clusters })).clusters ?? [];
  try {
    return { clusters: await describe(arns), denied: [] };
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'AccessDeniedException') || arns.length === 1) {
      if (e instanceof ApiError && e.code === 'AccessDeniedException') return { clusters: [], denied: arns };
      throw e;
    }
  }
  const clusters: Cluster[] = [];
  const denied: string[] = [];
  for (const a of arns) {
    const one = await describeAllowed(session, [a]);
    clusters.push(...one.clusters);
    denied.push(...one.denied);
  }
  return { clusters, denied };
}

function resource(rs: Resource[] | undefined, name: string): number {
  return rs?.find((r) => r.name === name)?.integerValue ?? 0;
}

function attribute(ci: ContainerInstance, name: string): string {
  return ci.attributes?.find((a) => a.name === name)?.value ?? '';
}

function statistic(c: Cluster | undefined, name: string): number {
  return Number(c?.statistics?.find((s) => s.name === name)?.value ?? 0);
}

/** How many of a cluster's live Fargate tasks the page sums at most (one DescribeTasks per 100). */
const FARGATE_SUM_MAX = 1000;

interface FargateUse {
  /** Task-level CPU units and MiB reserved by the cluster's live Fargate tasks that were summed. */
  cpu: number;
  memory: number;
  summed: number;
  /** More live Fargate tasks than were summed. */
  partial: boolean;
}

/**
 * What the cluster's Fargate tasks hold: Fargate has no container instances to draw bars for, so
 * the reservation is the sum of its live tasks' task-level cpu and memory (ECS bills the same).
 */
async function fargateUse(session: Session, cluster: string): Promise<FargateUse> {
  const use: FargateUse = { cpu: 0, memory: 0, summed: 0, partial: false };
  let nextToken: string | undefined;
  do {
    const page = await callEcs<{ taskArns?: string[]; nextToken?: string }>(session, 'ListTasks', {
      cluster,
      launchType: 'FARGATE',
      desiredStatus: 'RUNNING',
      maxResults: 100,
      ...(nextToken ? { nextToken } : {}),
    });
    const arns = page.taskArns ?? [];
    if (arns.length > 0) {
      for (const t of (await callEcs<{ tasks?: Task[] }>(session, 'DescribeTasks', { cluster, tasks: arns })).tasks ?? []) {
        use.cpu += Number(t.cpu ?? 0);
        use.memory += Number(t.memory ?? 0);
        use.summed++;
      }
    }
    nextToken = page.nextToken;
  } while (nextToken && use.summed < FARGATE_SUM_MAX);
  use.partial = nextToken !== undefined;
  return use;
}

function FargateCapacity({ cluster, use }: { cluster: Cluster; use: FargateUse }) {
  const running = statistic(cluster, 'runningFargateTasksCount');
  const pending = statistic(cluster, 'pendingFargateTasksCount');
  const more = use.partial ? ` (the first ${use.summed} tasks)` : '';
  return (
    <section aria-labelledby="fargate-capacity">
      <h2 id="fargate-capacity">Fargate capacity in use</h2>
      <dl class="counts">
        <div>
          <dt>Running Fargate tasks</dt>
          <dd data-testid="fargate-running">{running}</dd>
        </div>
        <div>
          <dt>Pending Fargate tasks</dt>
          <dd data-testid="fargate-pending">{pending}</dd>
        </div>
        <div>
          <dt>vCPU reserved{more}</dt>
          <dd data-testid="fargate-cpu">{(use.cpu / 1024).toFixed(2)}</dd>
        </div>
        <div>
          <dt>Memory reserved{more}</dt>
          <dd data-testid="fargate-memory">{(use.memory / 1024).toFixed(2)} GiB</dd>
        </div>
      </dl>
    </section>
  );
}

export function ClusterPage({ session, cluster }: { session: Session; cluster: string }) {
  const p = usePoll(
    async () => {
      const [c] = (await callEcs<{ clusters?: Cluster[] }>(session, 'DescribeClusters', { clusters: [cluster], include: ['STATISTICS'] })).clusters ?? [];
      // The instances are a part of their own: a policy may allow the cluster and not them.
      let instances: ContainerInstance[] = [];
      let instancesError: unknown;
      try {
        const arns = await listAll(session, 'ListContainerInstances', { cluster }, 'containerInstanceArns');
        for (const ch of chunks(arns, 100)) {
          instances.push(...((await callEcs<{ containerInstances?: ContainerInstance[] }>(session, 'DescribeContainerInstances', { cluster, containerInstances: ch })).containerInstances ?? []));
        }
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        instances = [];
        instancesError = e;
      }
      // Only a cluster that has Fargate tasks pays for summing them.
      const fargateLive = statistic(c, 'runningFargateTasksCount') + statistic(c, 'pendingFargateTasksCount');
      const fargate = fargateLive > 0 ? await fargateUse(session, cluster) : undefined;
      return { cluster: c, instances, instancesError, fargate };
    },
    POLL_MS,
    [session, cluster],
  );
  const c = p.data?.cluster;
  return (
    <section>
      <h1>
        Cluster {cluster} <Updated at={p.at} />
      </h1>
      <ErrorText error={p.error} />
      {c && (
        <p class="summary">
          <span>Status {c.status}</span>
          <a href={href(['services'], { cluster })}>{c.activeServicesCount ?? 0} services</a>
          <a href={href(['tasks'], { cluster })}>{c.runningTasksCount ?? 0} running tasks</a>
          <span>{c.pendingTasksCount ?? 0} pending</span>
          {c.capacityProviders && c.capacityProviders.length > 0 && <span>Capacity providers: {c.capacityProviders.join(', ')}</span>}
        </p>
      )}
      {c && p.data?.fargate && <FargateCapacity cluster={c} use={p.data.fargate} />}
      <h2>Container instances</h2>
      <ErrorText error={p.data?.instancesError} />
      <div class="scroll">
        <table>
          <TableHead columns={['Instance', 'Zone', 'Type', 'Status', 'Agent', 'Tasks (running / pending)', 'CPU used', 'Memory used', '']} />
          <tbody>
            {(p.data?.instances ?? []).map((ci) => {
              const id = shortArn(ci.containerInstanceArn);
              const cpu = resource(ci.registeredResources, 'CPU');
              const mem = resource(ci.registeredResources, 'MEMORY');
              return (
                <tr key={ci.containerInstanceArn}>
                  <th scope="row">
                    <span title={ci.containerInstanceArn}>{id.slice(0, 12)}</span>
                    {ci.ec2InstanceId && <small> {ci.ec2InstanceId}</small>}
                  </th>
                  <td>{attribute(ci, 'ecs.availability-zone')}</td>
                  <td>{attribute(ci, 'ecs.instance-type')}</td>
                  <td>{ci.status}</td>
                  <td>{ci.agentConnected ? 'connected' : 'disconnected'}</td>
                  <td>
                    {ci.runningTasksCount ?? 0} / {ci.pendingTasksCount ?? 0}
                  </td>
                  <td>
                    <Bar value={cpu - resource(ci.remainingResources, 'CPU')} max={cpu} label={`CPU units used on ${id}`} />
                  </td>
                  <td>
                    <Bar value={mem - resource(ci.remainingResources, 'MEMORY')} max={mem} label={`Memory used on ${id}`} unit=" MiB" />
                  </td>
                  <td>
                    {ci.status === 'ACTIVE' && (
                      <ConfirmButton
                        label="Drain"
                        danger
                        question={<p>Drain instance {id}? Its service tasks are moved elsewhere and it takes no new tasks.</p>}
                        confirmLabel="Drain instance"
                        action={() => callEcs(session, 'UpdateContainerInstancesState', { cluster, containerInstances: [ci.containerInstanceArn], status: 'DRAINING' })}
                        onDone={p.refresh}
                      />
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {p.data && !p.data.instancesError && p.data.instances.length === 0 && <p>No container instances registered (Fargate tasks run on Wharf's own pool).</p>}
    </section>
  );
}
