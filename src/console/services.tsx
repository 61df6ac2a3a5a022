/** Services of a cluster, a page per service with its deployments and events, and their actions. */
import { useMemo, useRef, useState } from 'preact/hooks';
import type { Deployment, Service, ServiceEvent } from '../core/shapes/ecs';
import { callEcs, chunks, describeOne, listAll, type Session } from './api';
import { ClusterPicker } from './tasks';
import { ConfirmButton, ErrorText, href, Pager, shortArn, TableHead, Updated, useFollowBottom, usePages, usePoll, when } from './ui';

const POLL_MS = 2000;
/** ListServices' page size: a cluster of 1,000 services is read a page at a time. */
const PAGE = 50;

export function ServicesPage({ session, cluster }: { session: Session; cluster: string }) {
  const pages = usePages();
  const token = pages.token;
  const p = usePoll(
    async () => {
      const page = await callEcs<{ serviceArns?: string[]; nextToken?: string }>(session, 'ListServices', { cluster, maxResults: PAGE, ...(token ? { nextToken: token } : {}) });
      const services: Service[] = [];
      for (const ch of chunks(page.serviceArns ?? [], 10)) services.push(...((await callEcs<{ services?: Service[] }>(session, 'DescribeServices', { cluster, services: ch })).services ?? []));
      return { services, nextToken: page.nextToken };
    },
    POLL_MS,
    [session, cluster, token],
  );
  return (
    <section>
      <h1>
        Services <Updated at={p.at} />
      </h1>
      <ClusterPicker session={session} cluster={cluster} onPick={(c) => (location.hash = href(['services'], { cluster: c }))} />
      <ErrorText error={p.error} />
      <div class="scroll">
        <table>
          <TableHead columns={['Service', 'Status', 'Desired', 'Running', 'Pending', 'Task definition', 'Rollout']} />
          <tbody>
            {(p.data?.services ?? []).map((s) => (
              <tr key={s.serviceArn}>
                <th scope="row">
                  <a href={href(['services', cluster, s.serviceName!])}>{s.serviceName}</a>
                </th>
                <td>{s.status}</td>
                <td class="num">{s.desiredCount}</td>
                <td class="num">{s.runningCount}</td>
                <td class="num">{s.pendingCount}</td>
                <td>{shortArn(s.taskDefinition)}</td>
                <td>{s.deployments?.find((d) => d.status === 'PRIMARY')?.rolloutState ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager pages={pages} nextToken={p.data?.nextToken} label="Pages of services" />
      <CreateService session={session} cluster={cluster} onCreated={p.refresh} />
    </section>
  );
}

function CreateService({ session, cluster, onCreated }: { session: Session; cluster: string; onCreated: () => void }) {
  const [form, setForm] = useState({ serviceName: '', taskDefinition: '', desiredCount: '1', launchType: 'EC2' });
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <section class="panel" aria-labelledby="create-service">
      <h2 id="create-service">Create service</h2>
      <div class="fields">
        <label>
          Service name
          <input value={form.serviceName} onInput={set('serviceName')} required />
        </label>
        <label>
          Task definition (family, family:revision or ARN)
          <input value={form.taskDefinition} onInput={set('taskDefinition')} required />
        </label>
        <label>
          Desired count
          <input type="number" min={0} value={form.desiredCount} onInput={set('desiredCount')} />
        </label>
        <label>
          Launch type
          <select value={form.launchType} onChange={set('launchType')}>
            <option>EC2</option>
            <option>FARGATE</option>
            <option>EXTERNAL</option>
          </select>
        </label>
      </div>
      <ConfirmButton
        label="Create service…"
        question={
          <p>
            Create service {form.serviceName || '(no name)'} in {cluster} running {form.desiredCount} of {form.taskDefinition || '(no task definition)'}?
          </p>
        }
        confirmLabel="Create"
        action={() =>
          callEcs(session, 'CreateService', {
            cluster,
            serviceName: form.serviceName,
            taskDefinition: form.taskDefinition,
            desiredCount: Number(form.desiredCount),
            launchType: form.launchType,
          })
        }
        onDone={() => {
          location.hash = href(['services', cluster, form.serviceName]);
          onCreated();
        }}
      />
    </section>
  );
}

/** How far a deployment is: its running tasks out of its desired count. */
function DeploymentRow({ d }: { d: Deployment }) {
  const desired = d.desiredCount ?? 0;
  const running = d.runningCount ?? 0;
  return (
    <tr>
      <th scope="row">{d.status}</th>
      <td>{shortArn(d.taskDefinition)}</td>
      <td>
        <progress max={Math.max(desired, 1)} value={Math.min(running, Math.max(desired, 1))} aria-label={`${d.status} deployment: ${running} of ${desired} running`} />
        <span class="bar-text">
          {running} / {desired} running, {d.pendingCount ?? 0} pending
        </span>
      </td>
      <td>{d.rolloutState}</td>
      <td class="reason">
        <div class="clamp" title={d.rolloutStateReason}>
          {d.rolloutStateReason}
        </div>
      </td>
      <td class="num">{d.failedTasks ?? 0}</td>
      <td>{when(d.updatedAt)}</td>
    </tr>
  );
}

export function ServicePage({ session, cluster, service }: { session: Session; cluster: string; service: string }) {
  const p = usePoll(
    () => describeOne<Service>(session, 'DescribeServices', { cluster, services: [service] }, 'services', `Service ${service}`),
    POLL_MS,
    [session, cluster, service],
  );
  const [count, setCount] = useState<string>('');
  const s = p.data;
  return (
    <section>
      <h1>
        Service {service} <Updated at={p.at} />
      </h1>
      <p class="crumbs">
        <a href={href(['clusters', cluster])}>Cluster {cluster}</a> · <a href={href(['services'], { cluster })}>Services</a> ·{' '}
        <a href={href(['tasks'], { cluster, service })}>Tasks of this service</a>
      </p>
      <ErrorText error={p.error} />
      {s && (
        <>
          <dl class="counts">
            <div>
              <dt>Desired</dt>
              <dd data-testid="desired">{s.desiredCount}</dd>
            </div>
            <div>
              <dt>Running</dt>
              <dd data-testid="running">{s.runningCount}</dd>
            </div>
            <div>
              <dt>Pending</dt>
              <dd data-testid="pending">{s.pendingCount}</dd>
            </div>
            <div>
              <dt>Status</dt>
              <dd>{s.status}</dd>
            </div>
            <div>
              <dt>Launch type</dt>
              <dd>{s.launchType ?? 'capacity providers'}</dd>
            </div>
          </dl>
          <div class="actions">
            <label>
              Desired count
              <input type="number" min={0} value={count === '' ? String(s.desiredCount ?? 0) : count} onInput={(e) => setCount((e.currentTarget as HTMLInputElement).value)} />
            </label>
            <ConfirmButton
              label="Scale…"
              question={
                <p>
                  Set the desired count of {service} from {s.desiredCount} to {count === '' ? s.desiredCount : count}?
                </p>
              }
              confirmLabel="Scale"
              action={() => callEcs(session, 'UpdateService', { cluster, service, desiredCount: Number(count === '' ? s.desiredCount : count) })}
              onDone={() => {
                setCount('');
                p.refresh();
              }}
            />
            <ConfirmButton
              label="Force new deployment…"
              question={<p>Start a new deployment of {service}? Every task is replaced by a new one, as the deployment configuration allows.</p>}
              confirmLabel="Deploy"
              action={() => callEcs(session, 'UpdateService', { cluster, service, forceNewDeployment: true })}
              onDone={p.refresh}
            />
          </div>
          <h2>Deployments</h2>
          <div class="scroll deployments-box">
            <table class="deployments">
              <TableHead columns={['Deployment', 'Task definition', 'Progress', 'Rollout state', 'Reason', 'Failed tasks', 'Updated']} />
              <tbody>
                {(s.deployments ?? []).map((d) => (
                  <DeploymentRow key={d.id} d={d} />
                ))}
              </tbody>
            </table>
          </div>
          {s.deploymentConfiguration?.deploymentCircuitBreaker?.enable && <p>Deployment circuit breaker on (rollback {s.deploymentConfiguration.deploymentCircuitBreaker.rollback ? 'on' : 'off'}).</p>}
          <h2>Events</h2>
          <EventsFeed key={`${cluster}/${service}`} events={s.events} />
        </>
      )}
    </section>
  );
}

/** How many events the feed keeps while the page is open. */
const KEEP_EVENTS = 500;

/**
 * The service's events, oldest first, in a box of fixed height that follows the newest. The live
 * page never moves what the user reads: new events are appended below (ECS's list is newest
 * first, and prepending would push every line down), and an event once shown stays until the page
 * is left, so the window of the latest events sliding on does not move the lines either.
 */
function EventsFeed({ events }: { events: ServiceEvent[] | undefined }) {
  const seen = useRef(new Map<string, ServiceEvent>());
  const shown = useMemo(() => {
    for (const e of events ?? []) seen.current.set(eventKey(e), e);
    return [...seen.current.values()].sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0)).slice(-KEEP_EVENTS);
  }, [events]);
  const follow = useFollowBottom<HTMLOListElement>(shown);
  return (
    <ol class="events" aria-label="Service events, oldest first; the box follows the newest" ref={follow.ref} onScroll={follow.onScroll} tabIndex={0}>
      {shown.map((e) => (
        <li key={eventKey(e)}>
          <time>{when(e.createdAt)}</time> {e.message}
        </li>
      ))}
    </ol>
  );
}

const eventKey = (e: ServiceEvent) => e.id ?? `${e.createdAt}/${e.message}`;

/** Every service name of a cluster (for the task filters). */
export async function serviceNames(session: Session, cluster: string): Promise<string[]> {
  return (await listAll(session, 'ListServices', { cluster }, 'serviceArns')).map(shortArn).sort();
}
