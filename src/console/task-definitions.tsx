/** Task definition families, their revisions, a side-by-side diff, and registering a revision. */
import { useEffect, useState } from 'preact/hooks';
import type { TaskDefinition } from '../core/shapes/ecs';
import { callEcs, describeError, listAll, type Session } from './api';
import { diffLines, type DiffRow } from './diff';
import { ErrorText, href, shortArn, Updated, usePoll } from './ui';

export function TaskDefinitionsPage({ session }: { session: Session }) {
  const p = usePoll(() => listAll(session, 'ListTaskDefinitionFamilies', { status: 'ACTIVE' }, 'families'), 10_000, [session]);
  return (
    <section>
      <h1>
        Task definitions <Updated at={p.at} />
      </h1>
      <ErrorText error={p.error} />
      <ul class="families">
        {(p.data ?? []).map((f) => (
          <li key={f}>
            <a href={href(['taskdefs', f])}>{f}</a>
          </li>
        ))}
      </ul>
      {p.data?.length === 0 && <p>No task definitions registered in {session.region}.</p>}
    </section>
  );
}

/** What RegisterTaskDefinition takes back from a described revision (the rest ECS sets itself). */
const REGISTERABLE = [
  'family', 'taskRoleArn', 'executionRoleArn', 'networkMode', 'containerDefinitions', 'volumes', 'placementConstraints',
  'requiresCompatibilities', 'cpu', 'memory', 'pidMode', 'ipcMode', 'proxyConfiguration', 'inferenceAccelerators',
  'ephemeralStorage', 'runtimePlatform',
] as const;

function registerable(td: TaskDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of REGISTERABLE) if (td[k] !== undefined) out[k] = td[k];
  return out;
}

async function describe(session: Session, arn: string): Promise<TaskDefinition> {
  return (await callEcs<{ taskDefinition: TaskDefinition }>(session, 'DescribeTaskDefinition', { taskDefinition: arn })).taskDefinition;
}

function RevisionSelect({ label, revisions, value, onPick }: { label: string; revisions: string[]; value: string; onPick: (arn: string) => void }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onPick((e.currentTarget as HTMLSelectElement).value)}>
        {revisions.map((a) => (
          <option key={a} value={a}>
            {shortArn(a)}
          </option>
        ))}
      </select>
    </label>
  );
}

export function FamilyPage({ session, family }: { session: Session; family: string }) {
  const p = usePoll(
    async () => (await listAll(session, 'ListTaskDefinitions', { familyPrefix: family, sort: 'DESC' }, 'taskDefinitionArns')).filter((a) => shortArn(a).split(':')[0] === family),
    10_000,
    [session, family],
  );
  const revisions = p.data ?? [];
  const [left, setLeft] = useState('');
  const [right, setRight] = useState('');
  const l = left || revisions[1] || revisions[0] || '';
  const r = right || revisions[0] || '';
  return (
    <section>
      <h1>
        Family {family} <Updated at={p.at} />
      </h1>
      <p class="crumbs">
        <a href={href(['taskdefs'])}>Task definitions</a> · <a href={href(['tasks'], { family })}>Tasks of this family</a>
      </p>
      <ErrorText error={p.error} />
      <h2>Revisions</h2>
      <ol class="revisions">
        {revisions.map((a) => (
          <li key={a}>{shortArn(a)}</li>
        ))}
      </ol>
      {revisions.length > 0 && (
        <>
          <h2>Compare revisions</h2>
          <div class="fields">
            <RevisionSelect label="Left" revisions={revisions} value={l} onPick={setLeft} />
            <RevisionSelect label="Right" revisions={revisions} value={r} onPick={setRight} />
          </div>
          <Diff session={session} left={l} right={r} />
          <Register session={session} latest={revisions[0]!} onDone={p.refresh} />
        </>
      )}
    </section>
  );
}

/** Pretty JSON with every object's keys sorted, so two revisions line up member by member. */
function canonicalLines(v: unknown): string[] {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(sort(v), null, 2).split('\n');
}

function Diff({ session, left, right }: { session: Session; left: string; right: string }) {
  const [rows, setRows] = useState<DiffRow[]>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let alive = true;
    Promise.all([describe(session, left), describe(session, right)]).then(
      ([a, b]) => alive && setRows(diffLines(canonicalLines(a), canonicalLines(b))),
      (e) => alive && setError(e),
    );
    return () => {
      alive = false;
    };
  }, [session, left, right]);
  if (error) return <ErrorText error={error} />;
  if (!rows) return <p>Loading…</p>;
  const changed = rows.filter((x) => x.kind !== 'same').length;
  return (
    <div class="scroll">
      <table class="diff" aria-label={`Differences between ${shortArn(left)} and ${shortArn(right)}: ${changed} lines`}>
        <thead>
          <tr>
            <th scope="col">{shortArn(left)}</th>
            <th scope="col">{shortArn(right)}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((x, i) => (
            <tr key={i} class={x.kind}>
              <td>
                <pre>{x.left ?? ''}</pre>
              </td>
              <td>
                <pre>{x.right ?? ''}</pre>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Register({ session, latest, onDone }: { session: Session; latest: string; onDone: () => void }) {
  const [text, setText] = useState<string>();
  const [error, setError] = useState<string>();
  const [registered, setRegistered] = useState<string>();
  useEffect(() => {
    describe(session, latest).then(
      (td) => setText((t) => t ?? JSON.stringify(registerable(td), null, 2)),
      (e) => setError(describeError(e)),
    );
  }, [session, latest]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setRegistered(undefined);
    let input: unknown;
    try {
      input = JSON.parse(text ?? '');
    } catch (err) {
      setError(`The JSON does not parse: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    try {
      const out = await callEcs<{ taskDefinition: TaskDefinition }>(session, 'RegisterTaskDefinition', input as object);
      setRegistered(shortArn(out.taskDefinition.taskDefinitionArn));
      onDone();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return (
    <form class="panel" onSubmit={submit} aria-labelledby="register">
      <h2 id="register">Register a new revision</h2>
      <label>
        RegisterTaskDefinition input (JSON)
        <textarea rows={16} spellcheck={false} value={text ?? ''} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} aria-invalid={error ? true : undefined} aria-describedby="register-error" />
      </label>
      <div id="register-error">
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {registered && <p role="status">Registered {registered}.</p>}
      </div>
      <button type="submit" class="primary">
        Register
      </button>
    </form>
  );
}
