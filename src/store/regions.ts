/**
 * How one store holds every AWS region: region R's keys live under `regions/<R>/` (each region
 * works through a PrefixedStore view and never sees another's), and `meta/regions/<R>` marks the
 * regions that have been used, so a restarted server knows which regions to bring back up (their
 * services must keep being reconciled even before anyone calls that region again).
 *
 * Data directories written before regions existed hold their keys at the top level
 * (`clusters/...`, `tasks/...`). `migrateUnprefixedKeys` moves them, once and atomically, under the
 * region their ARNs name (a server then only ever answered one region).
 */
import { PrefixedStore } from './prefixed-store';
import { StoreConflictError, type Store, type TxnOp } from './store';

const DATA = 'regions/';
const MARKS = 'meta/regions/';
/** CloudWatch Logs data of each region, beside (not in) its view: the state cache never loads it. */
const LOGS = 'logs/';

/** The key of a region's view that every write of it also puts (distributed mode's read barrier). */
export const REGION_REVISION_KEY = 'meta/revision';

export function regionStore(store: Store, region: string, opts: { trackRevision?: boolean } = {}): PrefixedStore {
  return new PrefixedStore(store, `${DATA}${region}/`, opts.trackRevision ? { revisionKey: REGION_REVISION_KEY } : {});
}

/** Region R's CloudWatch Logs part (`logs/<R>/`): groups, streams and event batches (control/logs-records.ts). */
export function regionLogStore(store: Store, region: string): PrefixedStore {
  return new PrefixedStore(store, `${LOGS}${region}/`);
}

/** The regions that hold (or held) data, oldest mark first. */
export async function usedRegions(store: Store): Promise<string[]> {
  const marks = await store.list<{ since: number }>(MARKS);
  return marks.sort((a, b) => a.createRevision - b.createRevision).map((e) => e.key.slice(MARKS.length));
}

/** Records that a region is in use (idempotent). */
export async function markRegionUsed(store: Store, region: string, now: number): Promise<void> {
  try {
    await store.create(`${MARKS}${region}`, { since: now });
  } catch (e) {
    if (!(e instanceof StoreConflictError)) throw e;
  }
}

const ARN_REGION = /^arn:aws[a-z-]*:ecs:([a-z0-9-]+):/;

/** The region named by the first ECS ARN found in a record (clusterArn, taskArn, ...). */
function regionOfRecord(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  for (const v of Object.values(value as Record<string, unknown>)) {
    const m = typeof v === 'string' ? ARN_REGION.exec(v) : null;
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Moves top-level keys of a pre-region data directory under `regions/<region>/`, where region is
 * the one their ARNs carry (`fallbackRegion` when no record has an ARN). One transaction: a crash
 * leaves either the old layout or the new. Returns the region and how many keys moved.
 */
export async function migrateUnprefixedKeys(store: Store, fallbackRegion: string, now: number): Promise<{ region: string; moved: number }> {
  const legacy = (await store.list('')).filter((e) => !e.key.startsWith(DATA) && !e.key.startsWith('meta/') && !e.key.startsWith(LOGS));
  if (legacy.length === 0) return { region: fallbackRegion, moved: 0 };
  let region: string | undefined;
  for (const e of legacy) if ((region = regionOfRecord(e.value))) break;
  region ??= fallbackRegion;
  const ops: TxnOp[] = [];
  for (const e of legacy) {
    ops.push({ op: 'delete', key: e.key, expectedRevision: e.modRevision });
    ops.push({ op: 'create', key: `${DATA}${region}/${e.key}`, value: e.value });
  }
  ops.push({ op: 'put', key: `${MARKS}${region}`, value: { since: now } });
  await store.txn(ops);
  return { region, moved: legacy.length };
}
