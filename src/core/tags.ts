import type { Tag } from './shapes/ecs';
import { invalidParameter } from './errors';

/**
 * ECS tag rules: at most 50 user tags, key 1-128 and value 0-256 characters of the Tag shape's
 * pattern (letters, numbers, spaces and _ . : / = + - @), keys unique per request, `aws:` reserved.
 */
export const MAX_TAGS = 50;
const TAG_CHARS_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

export function validateTags(tags: Tag[] | undefined, opts: { allowReserved?: boolean } = {}): Tag[] {
  if (!tags) return [];
  const seen = new Set<string>();
  for (const t of tags) {
    if (typeof t.key !== 'string' || t.key.length < 1 || t.key.length > 128) {
      throw invalidParameter('Tag keys must be between 1 and 128 characters.');
    }
    if (t.value !== undefined && (typeof t.value !== 'string' || t.value.length > 256)) {
      throw invalidParameter(`The value of tag '${t.key}' must be at most 256 characters.`);
    }
    if (!TAG_CHARS_RE.test(t.key) || !TAG_CHARS_RE.test(t.value ?? '')) {
      throw invalidParameter(`Invalid tag '${t.key}'. Tags may contain letters, numbers, spaces and the characters _ . : / = + - @.`);
    }
    if (!opts.allowReserved && t.key.toLowerCase().startsWith('aws:')) {
      throw invalidParameter(`Tag keys beginning with 'aws:' are reserved: '${t.key}'.`);
    }
    if (seen.has(t.key)) throw invalidParameter(`Duplicate tag key '${t.key}'.`);
    seen.add(t.key);
  }
  const userTags = tags.filter((t) => !t.key!.toLowerCase().startsWith('aws:'));
  if (userTags.length > MAX_TAGS) throw invalidParameter(`At most ${MAX_TAGS} tags may be applied to a resource.`);
  return tags.map((t) => ({ key: t.key, value: t.value ?? '' }));
}

/** New tags overwrite existing ones with the same key. */
export function mergeTags(existing: Tag[] | undefined, added: Tag[]): Tag[] {
  const m = new Map<string, string>();
  for (const t of existing ?? []) m.set(t.key!, t.value ?? '');
  for (const t of added) m.set(t.key!, t.value ?? '');
  return [...m].map(([key, value]) => ({ key, value }));
}

export function userTagCount(tags: Tag[]): number {
  return tags.filter((t) => !t.key!.toLowerCase().startsWith('aws:')).length;
}
