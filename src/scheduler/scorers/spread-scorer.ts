import { invalidParameter } from '../../core/errors';
import { tasksOnInstance, type PlacementScorer } from './scorer';

const ATTRIBUTE = /^attribute:([A-Za-z0-9_./\\-]{1,128})$/;

/**
 * spread(instanceId|host|attribute:<name>): the instance whose field value has the fewest tasks
 * of the same service (service tasks) or task group (standalone tasks) wins. Instances without
 * the attribute form one group of their own.
 */
export const spreadScorer: PlacementScorer = {
  type: 'spread',
  normalize(field) {
    if (field === undefined || field === '') throw invalidParameter('Invalid placement strategy: spread requires a field (instanceId, host or attribute:<name>).');
    if (field.toLowerCase() === 'instanceid' || field.toLowerCase() === 'host') return { type: 'spread', field: 'instanceId' };
    const m = ATTRIBUTE.exec(field);
    if (!m) throw invalidParameter(`Invalid placement strategy field '${field}' for spread: the field must be instanceId, host or attribute:<name>.`);
    return { type: 'spread', field, attribute: m[1]! };
  },
  score(ctx, inst, s) {
    if (s.attribute === undefined) return tasksOnInstance(ctx.spreadKey, inst);
    return ctx.spreadCount(s.attribute, inst.attributes.get(s.attribute));
  },
};
