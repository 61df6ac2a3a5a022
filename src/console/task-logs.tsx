/**
 * The task page's Logs section: each container's output as the awslogs driver put it in
 * CloudWatch Logs, followed live. The first read takes the stream's last lines; after that the
 * forward token is polled every 1.5 s and what comes is appended (CloudWatch gives the same token
 * back while nothing is new). The box has a fixed height, so lines arriving never move the page,
 * and it stays scrolled to the bottom unless the user has scrolled up to read.
 *
 * Containers that do not log with awslogs say why there is nothing here, and where their output is.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ContainerDefinition, Task, TaskDefinition } from '../core/shapes/ecs';
import { ApiError, callEcs, callLogs, describeError, type Session } from './api';
import { useFollowBottom } from './ui';

const FOLLOW_MS = 1500;
/** Lines a box keeps; older ones leave the top. */
const KEEP_LINES = 2000;

interface Where {
  group: string;
  stream: string;
  region: string;
}

/** The stream ECS names for a container, or why there is none to show. */
function whereOf(def: ContainerDefinition | undefined, c: NonNullable<Task['containers']>[number], taskId: string, region: string): Where | { why: string } {
  const lc = def?.logConfiguration;
  if (!def) return { why: 'its task definition could not be read.' };
  if (lc?.logDriver !== 'awslogs') return { why: `it logs with ${lc?.logDriver ?? 'the default json-file driver'}, not awslogs: its output stays on the host that runs it.` };
  const o = lc.options ?? {};
  const group = o['awslogs-group'];
  if (!group) return { why: 'its awslogs configuration names no awslogs-group.' };
  const prefix = o['awslogs-stream-prefix'];
  const stream = prefix ? `${prefix}/${c.name}/${taskId}` : c.runtimeId;
  if (!stream) return { why: 'it has no awslogs-stream-prefix, and its stream (named after its Docker id) is not known until it is created.' };
  return { group, stream, region: o['awslogs-region'] ?? region };
}

export function TaskLogs({ session, cluster, task }: { session: Session; cluster: string; task: Task }) {
  const [defs, setDefs] = useState<{ arn: string; containers?: ContainerDefinition[]; error?: string }>();
  const arn = task.taskDefinitionArn ?? '';
  useEffect(() => {
    let alive = true;
    callEcs<{ taskDefinition?: TaskDefinition }>(session, 'DescribeTaskDefinition', { taskDefinition: arn }).then(
      (out) => alive && setDefs({ arn, containers: out.taskDefinition?.containerDefinitions ?? [] }),
      (e: unknown) => alive && setDefs({ arn, error: describeError(e) }),
    );
    return () => {
      alive = false;
    };
  }, [session, arn]);
  const taskId = (task.taskArn ?? '').split('/').pop() ?? '';
  return (
    <>
      <h2>Logs</h2>
      {defs?.error && <p class="error">{defs.error}</p>}
      {defs?.containers &&
        (task.containers ?? []).map((c) => {
          const w = whereOf(defs.containers!.find((d) => d.name === c.name), c, taskId, session.region);
          return (
            <div key={c.name} data-testid={`log-${c.name}`}>
              <h3>{c.name}</h3>
              {'why' in w ? (
                <p data-testid={`log-why-${c.name}`}>
                  No log shown: {w.why} On that host: <code>wharf logs --cluster {cluster} --follow {taskId} {c.name}</code>
                </p>
              ) : (
                <FollowedLog session={session} where={w} name={c.name ?? ''} />
              )}
            </div>
          );
        })}
    </>
  );
}

function FollowedLog({ session, where, name }: { session: Session; where: Where; name: string }) {
  const [lines, setLines] = useState<string[]>([]);
  const [note, setNote] = useState<string>();
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let token: string | undefined;
    setLines([]);
    const poll = async () => {
      try {
        // First the stream's last lines, then everything after them.
        const out = await callLogs<{ events?: { message: string }[]; nextForwardToken?: string }>(
          session,
          'GetLogEvents',
          { logGroupName: where.group, logStreamName: where.stream, ...(token ? { nextToken: token, startFromHead: true } : { limit: 200 }) },
          where.region,
        );
        if (!alive) return;
        token = out.nextForwardToken ?? token;
        const got = (out.events ?? []).map((e) => e.message);
        if (got.length > 0) {
          setLines((ls) => [...ls, ...got].slice(-KEEP_LINES));
        }
        setNote(undefined);
      } catch (e) {
        if (!alive) return;
        setNote(e instanceof ApiError && e.code === 'ResourceNotFoundException' ? `Waiting for stream ${where.stream} in ${where.group} (${e.message})` : describeError(e));
      }
      // A hidden tab follows slowly: nobody is reading.
      if (alive) timer = setTimeout(poll, document.hidden ? FOLLOW_MS * 5 : FOLLOW_MS);
    };
    void poll();
    return () => {
      alive = false;
      if (timer) clearTimeout(timer);
    };
  }, [session, where.group, where.stream, where.region]);
  const follow = useFollowBottom<HTMLPreElement>(lines);
  return (
    <>
      <p class="crumbs">
        {where.group} · {where.stream}
        {where.region !== session.region ? ` · ${where.region}` : ''}
      </p>
      {note && <p class="error">{note}</p>}
      <pre
        ref={follow.ref}
        onScroll={follow.onScroll}
        data-testid={`log-lines-${name}`}
        tabIndex={0}
        aria-label={`Log of container ${name}`}
        style={{ height: '20em', overflow: 'auto', margin: 0, padding: '8px', border: '1px solid var(--line, #ccc)', whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}
      >
        {lines.join('\n')}
      </pre>
    </>
  );
}
