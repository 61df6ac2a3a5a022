/** Clusters and, per cluster, its container instances with their capacity as bars. */
import type { Cluster, ContainerInstance, Resource } from '../core/shapes/ecs';
import { callEcs, chunks, listAll, type Session } from './api';
import { Bar, ConfirmButton, ErrorText, href, shortArn, Updated, usePoll } from './ui';

const POLL_MS = 3000;

export function ClustersPage({ session }: { session: Session }) {
  const p = usePoll(
    async () => {
      const arns = await listAll(session, 'ListClusters', {}, 'clusterArns');
      const out: Cluster[] = [];
      for (const c of chunks(arns, 100)) out.push(...((await callEcs<{ clusters?: Cluster[] }>(session, 'DescribeClusters', { clusters: c })).clusters ?? []));
      return out.sort((a, b) => (a.clusterName ?? '').localeCompare(b.clusterName ?? ''));
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
        <thead>
          <tr>
            <th scope="col">Cluster</th>
            <th scope="col">Status</th>
            <th scope="col">Services</th>
            <th scope="col">Running tasks</th>
            <th scope="col">Pending tasks</th>
            <th scope="col">Instances</th>
          </tr>
        </thead>
        <tbody>
          {(p.data ?? []).map((c) => (
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
      {p.data?.length === 0 && <p>No clusters in {session.region}.</p>}
    </section>
  );
}

function resource(rs: Resource[] | undefined, name: string): number {
  return rs?.find((r) => r.name === name)?.integerValue ?? 0;
}

function attribute(ci: ContainerInstance, name: string): string {
  return ci.attributes?.find((a) => a.name === name)?.value ?? '';
}

export function ClusterPage({ session, cluster }: { session: Session; cluster: string }) {
  const p = usePoll(
    async () => {
      const [c] = (await callEcs<{ clusters?: Cluster[] }>(session, 'DescribeClusters', { clusters: [cluster], include: ['STATISTICS'] })).clusters ?? [];
      const arns = await listAll(session, 'ListContainerInstances', { cluster }, 'containerInstanceArns');
      const instances: ContainerInstance[] = [];
      for (const ch of chunks(arns, 100)) {
        instances.push(...((await callEcs<{ containerInstances?: ContainerInstance[] }>(session, 'DescribeContainerInstances', { cluster, containerInstances: ch })).containerInstances ?? []));
      }
      return { cluster: c, instances };
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
      <h2>Container instances</h2>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Instance</th>
              <th scope="col">Zone</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Agent</th>
              <th scope="col">Tasks (running / pending)</th>
              <th scope="col">CPU used</th>
              <th scope="col">Memory used</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
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
      {p.data && p.data.instances.length === 0 && <p>No container instances registered (Fargate tasks run on Wharf's own pool).</p>}
    </section>
  );
}
