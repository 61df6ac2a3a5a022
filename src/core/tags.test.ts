import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WharfError } from './errors';
import type { Tag } from './shapes/ecs';
import { validateTags } from './tags';

const refused = (tags: Tag[], message: string) =>
  assert.throws(
    () => validateTags(tags),
    (e: unknown) => e instanceof WharfError && e.code === 'InvalidParameterException' && e.message === message,
  );

test("tag keys and values outside the Tag shape's pattern are refused", () => {
  const chars = 'Tags may contain letters, numbers, spaces and the characters _ . : / = + - @.';
  refused([{ key: 'team,name', value: 'a' }], `Invalid tag 'team,name'. ${chars}`);
  refused([{ key: 'team', value: 'a;b' }], `Invalid tag 'team'. ${chars}`);
  refused([{ key: 'tab\there', value: '' }], `Invalid tag 'tab\there'. ${chars}`);
});

test('a key given twice in one request is refused', () => {
  refused([{ key: 'team', value: 'a' }, { key: 'team', value: 'b' }], "Duplicate tag key 'team'.");
});

test('every character the pattern allows is taken, in any script; keys differing in case are distinct', () => {
  const tags = [
    { key: 'a-Z 09_.:/=+@', value: 'x y/z@w+=.:_-' },
    { key: 'équipe', value: '東京' },
    { key: 'Team', value: '' },
    { key: 'team', value: '' },
  ];
  assert.deepEqual(validateTags(tags), tags);
});
