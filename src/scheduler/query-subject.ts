import type { QuerySubject } from '../core/cluster-query';
import type { SnapshotInstance } from './types';

/** A snapshot instance is already a QuerySubject (ListContainerInstances' filter evaluates the
 * same language); this narrows the type for callers that only want the query view. */
export function instanceQuerySubject(inst: SnapshotInstance): QuerySubject {
  return inst;
}
