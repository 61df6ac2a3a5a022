import { createHash } from 'node:crypto';
import { invalidParameter } from '../core/errors';

/**
 * ECS-style pagination over an ordered list: `nextToken` is opaque to clients (base64 of the last
 * item's sort key, and of the operation and filters that made it) and `maxResults` is bounded per
 * operation.
 */
export function paginate<T>(
  items: T[],
  sortKey: (item: T) => string,
  input: { nextToken?: string; maxResults?: number },
  limits: { default: number; max: number; operation: string },
): { page: T[]; nextToken?: string } {
  const max = input.maxResults ?? limits.default;
  if (!Number.isInteger(max) || max < 1 || max > limits.max) {
    throw invalidParameter(`maxResults must be between 1 and ${limits.max}.`);
  }
  // A token is good only for the request that made it: another operation's, or one minted under
  // other filters, would silently answer a wrong page (an empty list, or skipped items).
  const scope = tokenScope(limits.operation, input);
  let after: string | undefined;
  if (input.nextToken !== undefined) {
    let parsed: { a?: unknown; s?: unknown } | undefined;
    try {
      parsed = JSON.parse(Buffer.from(input.nextToken, 'base64url').toString('utf8')) as { a?: unknown; s?: unknown };
    } catch {
      parsed = undefined;
    }
    if (typeof parsed?.a !== 'string' || parsed.s !== scope) throw invalidParameter('Invalid nextToken.');
    after = parsed.a;
  }
  const sorted = items.map((it) => ({ k: sortKey(it), it })).sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : 0));
  let start = 0;
  if (after !== undefined) {
    // First item whose key is greater than the token's (binary search).
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]!.k <= after) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const slice = sorted.slice(start, start + max);
  const more = start + max < sorted.length;
  return {
    page: slice.map((x) => x.it),
    nextToken: more ? Buffer.from(JSON.stringify({ a: slice[slice.length - 1]!.k, s: scope })).toString('base64url') : undefined,
  };
}

/** The operation and the request's other members (maxResults may change from page to page). */
function tokenScope(operation: string, input: object): string {
  const filters = Object.entries(input)
    .filter(([k, v]) => k !== 'nextToken' && k !== 'maxResults' && v !== undefined)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return createHash('sha256').update(JSON.stringify([operation, filters])).digest('base64url').slice(0, 16);
}
