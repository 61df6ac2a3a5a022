/** Tasks filtered by cluster, service, family and status; a page per task; run and stop. */
import { useState } from 'preact/hooks';
import type { Task } from '../core/shapes/ecs';
import { callEcs, describeOne, listAll, type Session } from './api';
import { ConfirmButton, ErrorText, href, Pager, shortArn, TableHead, Updated, usePages, usePoll, when } from './ui';
import { TaskLogs } from './task-logs';

const POLL_MS = 2000;
/** ListTasks' page size, and DescribeTasks' limit: one Describe per page. */
const PAGE = 100;

export function ClusterPicker({ session, cluster, onPick }: { session: Session; cluster: string; onPick: (c: string) => void }) {
  const p = usePoll(async () => (await listAll(session, 'ListClusters', {}, 'clusterArns')).map(shortArn).sort(), 0, [session]);
  const names = p.data ?? [];
  return (
    <label class="picker">
      Cluster
      <select value={cluster} onChange={(e) => onPick((e.currentTarget as HTMLSelectElement).value)}>
        {!names.includes(cluster) && <option>{cluster}</option>}
        {names.map((n) => (
          <option key={n}>{n}</option>
        ))}
      </select>
    </label>
  );
}

function stopStop(t: Task): boolean {
  return t.desiredStatus !== 'STOPPED';
}

export function TasksPage({ session, query }: { session: Session; query: URLSearchParams }) {
  const cluster = query.get('cluster') ?? 'default';
  const service = query.get('service') ?? '';
  const family = query.get('family') ?? '';
  const status = query.get('status') ?? 'RUNNING';
  const go = (over: Record<string, string>) => (location.hash = href(['tasks'], { cluster, service, family, status, ...over }));
  const pages = usePages();
  const token = pages.token;
  const p = usePoll(
    async () => {
      const page = await callEcs<{ taskArns?: string[]; nextToken?: string }>(session, 'ListTasks', {
        cluster,
        maxResults: PAGE,
        desiredStatus: status,
        ...(service ? { serviceName: service } : {}),
        ...(family ? { family } : {}),
        ...(token ? { nextToken: token } : {}),
      });
      const arns = page.taskArns ?? [];
      const tasks = arns.length === 0 ? [] : ((await callEcs<{ tasks?: Task[] }>(session, 'DescribeTasks', { cluster, tasks: arns })).tasks ?? []);
      return { tasks, nextToken: page.nextToken };
    },
    POLL_MS,
    [session, cluster, service, family, status, token],
  );
  const filter = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    pages.reset();
    go({ service: String(f.get('service') ?? ''), family: String(f.get('family') ?? ''), status: String(f.get('status') ?? 'RUNNING') });
  };
  return (
    <section>
      <h1>
        Tasks <Updated at={p.at} />
      </h1>
      <form class="filters" onSubmit={filter} aria-label="Filter tasks">
        <ClusterPicker
          session={session}
          cluster={cluster}
          onPick={(c) => {
            pages.reset();
            go({ cluster: c, service: '' });
          }}
        />
        {/* Uncontrolled (defaultValue, keyed by the address's value): the list re-renders at every
            poll, and a controlled field would be set back to the address's value under the
            user's typing. A new address (a submitted filter, the back button) resets them. */}
        <label>
          Service
          <input name="service" defaultValue={service} key={`service=${service}`} />
        </label>
        <label>
          Family
          <input name="family" defaultValue={family} key={`family=${family}`} />
        </label>
        <label>
          Desired status
          <select name="status" defaultValue={status} key={`status=${status}`}>
            <option>RUNNING</option>
            <option>STOPPED</option>
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorText error={p.error} />
      <div class="scroll">
        <table>
          <TableHead columns={['Task', 'Task definition', 'Last status', 'Desired', 'Health', 'Started by', 'Stopped reason', '']} />
          <tbody>
            {(p.data?.tasks ?? []).map((t) => {
              const id = shortArn(t.taskArn);
              return (
                <tr key={t.taskArn}>
                  <th scope="row">
                    <a href={href(['tasks', cluster, id])}>{id}</a>
                  </th>
                  <td>{shortArn(t.taskDefinitionArn)}</td>
                  <td>{t.lastStatus}</td>
                  <td>{t.desiredStatus}</td>
                  <td>{t.healthStatus}</td>
                  <td>{t.startedBy}</td>
                  <td class="reason">{t.stoppedReason}</td>
                  <td>{stopStop(t) && <StopTask session={session} cluster={cluster} task={t} onDone={p.refresh} />}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {p.data?.tasks.length === 0 && <p>No {status.toLowerCase()} tasks match.</p>}
      <Pager pages={pages} nextToken={p.data?.nextToken} label="Pages of tasks" />
      <RunTask session={session} cluster={cluster} onDone={p.refresh} />
    </section>
  );
}

function StopTask({ session, cluster, task, onDone }: { session: Session; cluster: string; task: Task; onDone: () => void }) {
  const id = shortArn(task.taskArn);
  return (
    <ConfirmButton
      label="Stop"
      danger
      question={<p>Stop task {id}? Its containers get SIGTERM, then SIGKILL after their stop timeout.</p>}
      confirmLabel="Stop task"
      action={() => callEcs(session, 'StopTask', { cluster, task: task.taskArn, reason: 'Stopped from the Wharf console' })}
      onDone={onDone}
    />
  );
}

function RunTask({ session, cluster, onDone }: { session: Session; cluster: string; onDone: () => void }) {
  const [td, setTd] = useState('');
  const [count, setCount] = useState('1');
  const [launchType, setLaunchType] = useState('EC2');
  return (
    <section class="panel" aria-labelledby="run-task">
      <h2 id="run-task">Run task</h2>
      <div class="fields">
        <label>
          Task definition
          <input value={td} onInput={(e) => setTd((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Count
          <input type="number" min={1} max={10} value={count} onInput={(e) => setCount((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Launch type
          <select value={launchType} onChange={(e) => setLaunchType((e.currentTarget as HTMLSelectElement).value)}>
            <option>EC2</option>
            <option>FARGATE</option>
          </select>
        </label>
      </div>
      <ConfirmButton
        label="Run task…"
        question={
          <p>
            Run {count} task(s) of {td || '(no task definition)'} in {cluster}?
          </p>
        }
        confirmLabel="Run"
        action={async () => {
          const out = await callEcs<{ failures?: { arn?: string; reason?: string; detail?: string }[]; tasks?: Task[] }>(session, 'RunTask', {
            cluster,
            taskDefinition: td,
            count: Number(count),
            launchType,
          });
          // RunTask answers 200 with failures when nothing could be placed: show them as ECS wrote them.
          if ((out.tasks ?? []).length === 0 && out.failures?.length) throw new Error(out.failures.map((f) => `${f.arn ?? ''} ${f.reason ?? ''}${f.detail ? ` (${f.detail})` : ''}`.trim()).join('; '));
        }}
        onDone={onDone}
      />
    </section>
  );
}

export function TaskPage({ session, cluster, task }: { session: Session; cluster: string; task: string }) {
  const p = usePoll(
    () => describeOne<Task>(session, 'DescribeTasks', { cluster, tasks: [task] }, 'tasks', `Task ${task}`),
    POLL_MS,
    [session, cluster, task],
  );
  const t = p.data;
  return (
    <section>
      <h1>
        Task {task} <Updated at={p.at} />
      </h1>
      <p class="crumbs">
        <a href={href(['clusters', cluster])}>Cluster {cluster}</a> · <a href={href(['tasks'], { cluster })}>Tasks</a>
        {t?.group?.startsWith('service:') && (
          <>
            {' '}
            · <a href={href(['services', cluster, t.group.slice('service:'.length)])}>Service {t.group.slice('service:'.length)}</a>
          </>
        )}
      </p>
      <ErrorText error={p.error} />
      {t && (
        <>
          <dl class="details">
            <dt>Last status</dt>
            <dd data-testid="task-status">{t.lastStatus}</dd>
            <dt>Desired status</dt>
            <dd>{t.desiredStatus}</dd>
            <dt>Task definition</dt>
            <dd>
              <a href={href(['taskdefs', shortArn(t.taskDefinitionArn).split(':')[0]!])}>{shortArn(t.taskDefinitionArn)}</a>
            </dd>
            <dt>Launch type</dt>
            <dd>{t.launchType}</dd>
            <dt>Health</dt>
            <dd>{t.healthStatus}</dd>
            <dt>Zone</dt>
            <dd>{t.availabilityZone}</dd>
            <dt>CPU / memory</dt>
            <dd>
              {t.cpu} / {t.memory}
            </dd>
            <dt>Started</dt>
            <dd>{when(t.startedAt)}</dd>
            <dt>Stopped</dt>
            <dd>{when(t.stoppedAt)}</dd>
            <dt>Stop code</dt>
            <dd>{t.stopCode}</dd>
            <dt>Stopped reason</dt>
            <dd>{t.stoppedReason}</dd>
          </dl>
          {stopStop(t) && <StopTask session={session} cluster={cluster} task={t} onDone={p.refresh} />}
          <h2>Containers</h2>
          <div class="scroll">
            <table>
              <TableHead columns={['Container', 'Image', 'Last status', 'Exit code', 'Reason', 'Health', 'Network bindings']} />
              <tbody>
                {(t.containers ?? []).map((c) => (
                  <tr key={c.name}>
                    <th scope="row">{c.name}</th>
                    <td>{c.image}</td>
                    <td>{c.lastStatus}</td>
                    <td>{c.exitCode}</td>
                    <td class="reason">{c.reason}</td>
                    <td>{c.healthStatus}</td>
                    <td>
                      {(c.networkBindings ?? []).map((b) => `${b.bindIP ?? ''}:${b.hostPort} → ${b.containerPort}/${b.protocol ?? 'tcp'}`).join(', ')}
                      {(c.networkInterfaces ?? []).map((n) => n.privateIpv4Address).join(', ')}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <TaskLogs session={session} cluster={cluster} task={t} />
        </>
      )}
    </section>
  );
}
