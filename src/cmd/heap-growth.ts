/**
 * How far V8 lets the server's heap grow past its live data before collecting.
 *
 * Left to itself V8 sizes the old generation for throughput: with a few hundred MiB of live
 * objects and a fast allocation rate it grows the heap to three or four times that before a full
 * collection, so a control plane holding 100,000 tasks (~280 MiB live) sat near 900 MiB of RSS.
 * `--heap-growing-percent` (a V8 flag read at every collection, so it can be set after start)
 * caps the growth at live * (1 + percent/100): memory then follows the data, for a few percent
 * more CPU spent collecting. 0 leaves V8's own heuristics.
 */
import v8 from 'node:v8';

export const DEFAULT_HEAP_GROWTH_PERCENT = 50;

export function parseHeapGrowth(value: string | undefined): number {
  if (value === undefined) return DEFAULT_HEAP_GROWTH_PERCENT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new Error(`--heap-growth wants a whole percentage from 0 to 1000, not '${value}'`);
  return n;
}

export function applyHeapGrowth(percent: number): void {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
