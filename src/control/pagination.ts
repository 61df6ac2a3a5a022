import { invalidParameter } from '../core/errors';

/**
 * ECS-style pagination over an ordered list: `nextToken` is opaque to clients (base64 of the last
 * item's sort key) and `maxResults` is bounded per operation.
 */
export function paginate<T>(
  items: T[],
  sortKey: (item: T) => string,
  input: { nextToken?: string; maxResults?: number },
  limits: { default: number; max: number },
): { page: T[]; nextToken?: string } {
  const max = input.maxResults ?? limits.default;
  if (!Number.isInteger(max) || max < 1 || max > limits.max) {
    throw invalidParameter(`maxResults must be between 1 and ${limits.max}.`);
  }
  let after: string | undefined;
  if (input.nextToken !== undefined) {
    try {
      const parsed = JSON.parse(Buffer.from(input.nextToken, 'base64url').toString('utf8')) as { a?: unknown };
      if (typeof parsed.a !== 'string') throw new Error('bad');
      after = parsed.a;
    } catch {
      throw invalidParameter('Invalid nextToken.');
    }
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
    nextToken: more ? Buffer.from(JSON.stringify({ a: slice[slice.length - 1]!.k })).toString('base64url') : undefined,
  };
}
