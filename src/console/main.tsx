/**
 * The Wharf web console: a client of the public ECS API, like the AWS CLI. It may import only
 * api/ and core/ of src (the `console` rule of .dependency-cruiser.js); the shapes it shows are
 * core/shapes, generated from the ECS model.
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { AWS_REGIONS } from '../core/regions';
import { describeError, loadSession, logIn, onSessionEnded, saveSession, type Session } from './api';
import { ClusterPage, ClustersPage } from './clusters';
import { ServicePage, ServicesPage } from './services';
import { TaskPage, TasksPage } from './tasks';
import { TaskDefinitionsPage, FamilyPage } from './task-definitions';
import { href, useRoute } from './ui';
import './style.css';

/** `notice` says why the form is back (the session ended); it goes once the user tries again. */
function Login({ onLogin, notice }: { onLogin: (s: Session) => void; notice?: string }) {
  const [region, setRegion] = useState('us-east-1');
  const [error, setError] = useState<string | undefined>(notice);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    // /healthz names the server's default region; a guess the user may change.
    fetch('/healthz')
      .then((r) => r.json())
      .then((h: { region?: string }) => h.region && setRegion(h.region))
      .catch(() => undefined);
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    setBusy(true);
    setError(undefined);
    try {
      // The key buys a session and is forgotten: only the session is kept.
      const s = await logIn({ accessKeyId: String(f.get('accessKeyId')).trim(), secretAccessKey: String(f.get('secretAccessKey')) }, String(f.get('region')));
      saveSession(s);
      onLogin(s);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>Wharf console</h1>
      <form onSubmit={submit} aria-describedby="login-note">
        <label>
          Access key ID
          <input name="accessKeyId" autocomplete="username" required spellcheck={false} />
        </label>
        <label>
          Secret access key
          <input name="secretAccessKey" type="password" autocomplete="current-password" required />
        </label>
        <label>
          Region
          <select name="region" value={region} onChange={(e) => setRegion((e.currentTarget as HTMLSelectElement).value)}>
            {AWS_REGIONS.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Log in
        </button>
        <p id="login-note" class="note">
          Your access key is used once, in this browser, to get a short-lived session (STS GetSessionToken: 12 hours for a user, 1 hour for the built-in key); only the session is kept in this tab (sessionStorage) and every request is signed with it. `wharf credentials` prints your key.
        </p>
      </form>
    </main>
  );
}

function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const [ended, setEnded] = useState<string>();
  useEffect(() => {
    onSessionEnded((message) => {
      setEnded(message);
      setSession(undefined);
    });
    return () => onSessionEnded(undefined);
  }, []);
  const route = useRoute();
  // A new page moves focus to its content, as a full page load would start over: keyboard and
  // screen reader users land on the new page, not on the link they left.
  const first = useRef(true);
  const path = route.parts.join('/');
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);
  if (!session) {
    return (
      <Login
        key={ended}
        notice={ended}
        onLogin={(s) => {
          setEnded(undefined);
          setSession(s);
        }}
      />
    );
  }
  const setRegion = (region: string) => {
    const s = { ...session, region };
    saveSession(s);
    setSession(s);
  };
  const [page, ...rest] = route.parts;
  const s = session;
  let body;
  if (page === 'clusters' && rest[0]) body = <ClusterPage session={s} cluster={rest[0]} />;
  else if (page === 'services' && rest[0] && rest[1]) body = <ServicePage session={s} cluster={rest[0]} service={rest[1]} />;
  // Keyed by cluster: its page tokens mean nothing in another cluster.
  else if (page === 'services') body = <ServicesPage key={route.query.get('cluster') ?? 'default'} session={s} cluster={route.query.get('cluster') ?? 'default'} />;
  else if (page === 'tasks' && rest[0] && rest[1]) body = <TaskPage session={s} cluster={rest[0]} task={rest[1]} />;
  else if (page === 'tasks') body = <TasksPage session={s} query={route.query} />;
  else if (page === 'taskdefs' && rest[0]) body = <FamilyPage session={s} family={rest[0]} />;
  else if (page === 'taskdefs') body = <TaskDefinitionsPage session={s} />;
  else body = <ClustersPage session={s} />;
  const current = page ?? 'clusters';
  return (
    <>
      {/* The hash is the route, so the skip link moves focus itself instead of following #main. */}
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header>
        <span class="brand">Wharf</span>
        <nav aria-label="Main">
          {[
            ['clusters', 'Clusters'],
            ['services', 'Services'],
            ['tasks', 'Tasks'],
            ['taskdefs', 'Task definitions'],
          ].map(([p, label]) => (
            <a key={p} href={href([p!])} aria-current={current === p ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <label class="region">
          Region
          <select value={s.region} onChange={(e) => setRegion((e.currentTarget as HTMLSelectElement).value)}>
            {AWS_REGIONS.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <span class="who" title={`session until ${new Date(s.expiration).toLocaleString()}`}>
          {s.arn.split(':').pop()}
        </span>
        <button
          type="button"
          onClick={() => {
            // The session is dropped from the tab; it stays valid on the server until it ends.
            saveSession(undefined);
            setEnded(undefined);
            setSession(undefined);
          }}
        >
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1} key={s.region}>
        {body}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
