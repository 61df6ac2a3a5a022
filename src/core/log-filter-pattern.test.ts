import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesLogFilter, parseLogFilterPattern, type LogFilter } from './log-filter-pattern';

const filter = (pattern: string): LogFilter => {
  const f = parseLogFilterPattern(pattern);
  if ('error' in f) throw new Error(f.error);
  return f;
};
const matching = (pattern: string, messages: string[]) => messages.filter((m) => matchesLogFilter(filter(pattern), m));

const events = ['ERROR disk full', 'ERR42 timeout', 'INFO all good', 'WARN slow from 10.0.0.12', '[ERROR 401] UNAUTHORIZED REQUEST'];

test('regular expressions between % match anywhere in the message, as CloudWatch’s do', () => {
  assert.deepEqual(matching('%ERR.*%', events), ['ERROR disk full', 'ERR42 timeout', '[ERROR 401] UNAUTHORIZED REQUEST']);
  assert.deepEqual(matching('%^ERR[0-9]+%', events), ['ERR42 timeout']);
  assert.deepEqual(matching('%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%', events), ['WARN slow from 10.0.0.12']);
  assert.deepEqual(matching('%INFO|WARN%', events), ['INFO all good', 'WARN slow from 10.0.0.12']);
  assert.deepEqual(matching('%ERR.*% -disk', events), ['ERR42 timeout', '[ERROR 401] UNAUTHORIZED REQUEST']);
  assert.deepEqual(matching('?%^INFO% ?%slow$%', events), ['INFO all good']);
  assert.deepEqual(matching('-%ERR%', events), ['INFO all good', 'WARN slow from 10.0.0.12']);
});

test('regular expressions outside CloudWatch’s subset are refused, not matched as something else', () => {
  const error = (p: string) => {
    const f = parseLogFilterPattern(p);
    return 'error' in f ? f.error : undefined;
  };
  assert.match(error('%(ERR|WARN)%') ?? '', /^Invalid filter pattern: %\(ERR\|WARN\)%: a regular expression between % may use only letters, digits/);
  assert.match(error('%something!%') ?? '', /may use only/);
  assert.match(error('%ERR') ?? '', /not closed with %/);
  assert.match(error('%[a-%') ?? '', /is not a valid regular expression/);
  assert.match(error('%a% %b% %c%') ?? '', /at most 2 regular expressions/);
  assert.equal(error('"100%" done'), undefined, 'a % inside a quoted phrase is text');
});
