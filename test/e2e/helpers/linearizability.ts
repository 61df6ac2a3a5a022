/**
 * A linearizability checker for histories of single-object reads and writes, in the manner of
 * Jepsen's Knossos and etcd's robustness tests (porcupine): the Wing & Gong search with Lowe's
 * memoisation (WGL), over a register model, one object (key) at a time. Single-object operations
 * of a linearizable system compose (linearizability is local, Herlihy & Wing), so checking each key
 * on its own is exact and keeps the search small.
 *
 * An operation has an invoke and a return time (from one clock: the test process's). Its outcome
 * is `ok` (it took effect, and a read saw `value`) or `unknown` (a timeout, a dropped connection,
 * a server error: it may have taken effect at any point after its invoke, or never). A write of
 * unknown outcome is optional and open-ended, as Knossos treats an `:info` op; a read of unknown
 * outcome tells nothing and is left out. Operations that definitely failed must not be recorded.
 *
 * The search: the history is linearizable if the ok operations (and any subset of the unknown
 * writes) can be put in one order that respects real time (an op that returned before another
 * was invoked comes first) in which each read sees the latest write before it. WGL walks that
 * order: the next op may be any not yet placed whose invoke is before every pending ok op's
 * return; it backtracks when a read disagrees, and memoises (placed set, register value) states
 * already known to fail.
 */

export type Outcome = 'ok' | 'unknown';

export interface Operation<V = unknown> {
  key: string;
  kind: 'read' | 'write';
  /** A write's value, or what a read saw (`undefined`: the object was absent). */
  value: V | undefined;
  invoke: number;
  /** When the answer came; for an unknown outcome, when the client gave up (ignored). */
  ret: number;
  outcome: Outcome;
  /** Free text for reports (who, which operation). */
  label?: string;
}

export interface KeyResult {
  key: string;
  ok: boolean;
  operations: number;
  /** When not linearizable: the ops that could not be placed after the longest order found. */
  stuck?: Operation[];
  /** When not linearizable: the longest linearizable prefix the search found (labels/values). */
  longestPrefix?: Operation[];
}

export interface CheckResult {
  ok: boolean;
  keys: KeyResult[];
  /** The keys that are not linearizable. */
  failures: KeyResult[];
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * Checks every key's history against a register whose value starts as `initial(key)` (default
 * undefined: absent until written).
 */
export function checkRegisterHistory<V>(ops: readonly Operation<V>[], initial: (key: string) => V | undefined = () => undefined): CheckResult {
  const byKey = new Map<string, Operation<V>[]>();
  for (const op of ops) {
    if (op.kind === 'read' && op.outcome === 'unknown') continue;
    let list = byKey.get(op.key);
    if (!list) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const keys = [...byKey.entries()].map(([key, list]) => checkKey(key, list, initial(key)));
  const failures = keys.filter((k) => !k.ok);
  return { ok: failures.length === 0, keys, failures };
}

function checkKey<V>(key: string, input: Operation<V>[], initial: V | undefined): KeyResult {
  // Sorted by invoke, so that the candidates for "next" are a prefix of the pending ones.
  const ops = [...input].sort((a, b) => a.invoke - b.invoke);
  const n = ops.length;
  const ret = ops.map((o) => (o.outcome === 'ok' ? o.ret : Infinity));
  const required = ops.reduce((c, o) => c + (o.outcome === 'ok' ? 1 : 0), 0);
  const placed = new Uint8Array(n);
  const failed = new Set<string>();
  let best: number[] = [];
  const order: number[] = [];
  const stateKey = (value: V | undefined) => `${Buffer.from(placed).toString('base64')}|${JSON.stringify(value ?? null)}`;

  // Iterative DFS (histories of hundreds of ops would nest deep): each frame is a register value
  // and the next candidate index to try.
  interface Frame {
    value: V | undefined;
    placedOk: number;
    next: number;
    /** The op placed to reach this frame (-1 for the root). */
    via: number;
  }
  const stack: Frame[] = [{ value: initial, placedOk: 0, next: 0, via: -1 }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (f.placedOk === required) return { key, ok: true, operations: n };
    // The earliest return among pending ok ops bounds which op may come next.
    let minRet = Infinity;
    for (let i = 0; i < n; i++) if (!placed[i] && ret[i]! < minRet) minRet = ret[i]!;
    let moved = false;
    for (let i = f.next; i < n; i++) {
      if (placed[i]) continue;
      const op = ops[i]!;
      if (op.invoke > minRet) break;
      let value = f.value;
      if (op.kind === 'read') {
        if (!same(op.value, f.value)) continue;
      } else value = op.value;
      placed[i] = 1;
      const k = stateKey(value);
      if (failed.has(k)) {
        placed[i] = 0;
        continue;
      }
      f.next = i + 1;
      order.push(i);
      if (order.length > best.length) best = [...order];
      stack.push({ value, placedOk: f.placedOk + (op.outcome === 'ok' ? 1 : 0), next: 0, via: i });
      moved = true;
      break;
    }
    if (moved) continue;
    // Every choice from here fails: remember the state, undo the op that led here.
    failed.add(stateKey(f.value));
    stack.pop();
    if (f.via >= 0) {
      placed[f.via] = 0;
      order.pop();
    }
  }
  const inBest = new Set(best);
  let minRet = Infinity;
  for (let i = 0; i < n; i++) if (!inBest.has(i) && ret[i]! < minRet) minRet = ret[i]!;
  const stuck = ops.filter((o, i) => !inBest.has(i) && o.invoke <= minRet);
  return { key, ok: false, operations: n, stuck, longestPrefix: best.map((i) => ops[i]!) };
}

/** A failure as text, for an assertion message. */
export function describeFailure(r: KeyResult): string {
  const show = (o: Operation) => `${o.label ?? o.kind} ${o.kind}=${JSON.stringify(o.value ?? null)} [${o.invoke}, ${o.outcome === 'ok' ? o.ret : '?'}]`;
  const tail = (r.longestPrefix ?? []).slice(-5).map(show).join('; ');
  return `${r.key}: not linearizable (${r.operations} ops); longest order ends ... ${tail}; cannot place next: ${(r.stuck ?? []).map(show).join('; ')}`;
}
