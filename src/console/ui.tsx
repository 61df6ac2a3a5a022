/** Small building blocks every page uses: the hash router, polling, errors, confirmation. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { describeError } from './api';

/** The route is the hash (`#/services/c1/web?x=y`): a static file server needs no rewrites. */
export interface Route {
  parts: string[];
  query: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const q = h.indexOf('?');
  const path = q >= 0 ? h.slice(0, q) : h;
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q >= 0 ? h.slice(q + 1) : '') };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parseRoute(hash);
}

export function href(parts: string[], query: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  const qs = q.toString();
  return `#/${parts.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  /** When the last successful answer came (ms since epoch). */
  at: number | undefined;
  refresh(): void;
}

/**
 * Calls `load` now and every `everyMs`, keeping the last good answer on screen while the next is
 * on its way (no blank page, no layout shift), and an error beside it when a call fails (the
 * control plane restarting, say); polling goes on, so the page recovers by itself.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]): Polled<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; at?: number }>({});
  const loadRef = useRef(load);
  loadRef.current = load;
  const [tick, setTick] = useState(0);
  // Other inputs (another cluster, page or region) blank the old answer; a refresh keeps it.
  const key = JSON.stringify(deps);
  const shownKey = useRef(key);
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (shownKey.current !== key) {
      shownKey.current = key;
      setState({});
    }
    const once = async () => {
      try {
        const data = await loadRef.current();
        if (alive) setState({ data, at: Date.now() });
      } catch (error) {
        if (alive) setState((s) => ({ ...s, error }));
      }
      // A hidden tab polls slowly: nobody is looking.
      if (alive && everyMs > 0) timer = setTimeout(once, document.hidden ? everyMs * 5 : everyMs);
    };
    void once();
    return () => {
      alive = false;
      if (timer) clearTimeout(timer);
    };
  }, [key, tick]);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, data: state.data, error: state.error, at: state.at, refresh };
}

/** Column headers; an empty name is an actions column, named for screen readers only. */
export function TableHead({ columns }: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th scope="col" key={c || 'actions'}>
            {c || <span class="visually-hidden">Actions</span>}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** Token paging over an ECS List call: the tokens of the pages up to the one shown. */
export interface Pages {
  /** The token of the page shown ('' for the first). */
  token: string;
  number: number;
  next(token: string): void;
  back(): void;
  reset(): void;
}

export function usePages(): Pages {
  const [tokens, setTokens] = useState<string[]>(['']);
  return {
    token: tokens[tokens.length - 1]!,
    number: tokens.length,
    next: (t) => setTokens([...tokens, t]),
    back: () => setTokens(tokens.length > 1 ? tokens.slice(0, -1) : tokens),
    reset: () => setTokens(['']),
  };
}

export function Pager({ pages, nextToken, label }: { pages: Pages; nextToken: string | undefined; label: string }) {
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" disabled={pages.number === 1} onClick={pages.back}>
        Previous page
      </button>
      <span>Page {pages.number}</span>
      <button type="button" disabled={!nextToken} onClick={() => nextToken && pages.next(nextToken)}>
        Next page
      </button>
    </nav>
  );
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {describeError(error)}
    </p>
  );
}

/** A bar of `value` out of `max`, labelled in words for screen readers and in text beside it. */
export function Bar({ value, max, label, unit = '' }: { value: number; max: number; label: string; unit?: string }) {
  return (
    <span class="bar">
      <meter min={0} max={Math.max(max, 1)} value={value} aria-label={label} title={`${value}${unit} of ${max}${unit}`} />
      <span class="bar-text">
        {value}
        {unit} / {max}
        {unit}
      </span>
    </span>
  );
}

/**
 * Runs `action` only after the user confirmed it in a modal dialog; shows the API's error in the
 * dialog, verbatim, and closes it on success.
 */
export function ConfirmButton(props: {
  label: string;
  question: ComponentChildren;
  confirmLabel?: string;
  action: () => Promise<unknown>;
  onDone?: () => void;
  danger?: boolean;
  disabled?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const open = () => {
    setError(undefined);
    ref.current?.showModal();
  };
  const run = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await props.action();
      ref.current?.close();
      props.onDone?.();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class={props.danger ? 'danger' : undefined} onClick={open} disabled={props.disabled}>
        {props.label}
      </button>
      <dialog ref={ref} aria-label={props.label}>
        <form method="dialog" onSubmit={run}>
          <div class="question">{props.question}</div>
          <ErrorText error={error} />
          <div class="buttons">
            <button type="button" onClick={() => ref.current?.close()}>
              Cancel
            </button>
            <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={busy}>
              {props.confirmLabel ?? 'Confirm'}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

export function shortArn(arn: string | undefined): string {
  if (!arn) return '';
  const slash = arn.lastIndexOf('/');
  return slash >= 0 ? arn.slice(slash + 1) : arn;
}

export function when(epochSeconds: number | undefined): string {
  if (epochSeconds === undefined) return '';
  return new Date(epochSeconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function Updated({ at }: { at: number | undefined }) {
  return <span class="updated" aria-live="off">{at ? `updated ${new Date(at).toLocaleTimeString()}` : 'loading…'}</span>;
}

/**
 * A box that follows what is appended at its bottom while the user is at the bottom, and stays
 * put once they scroll up to read (the page never moves under them). Give `ref` and `onScroll`
 * to the scrolling element; `content` is whatever changes when lines are appended.
 */
export function useFollowBottom<T extends HTMLElement>(content: unknown) {
  const ref = useRef<T>(null);
  const pinned = useRef(true);
  const onScroll = useCallback(() => {
    const el = ref.current;
    if (el) pinned.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  }, []);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [content]);
  return { ref, onScroll };
}
