/**
 * CloudWatch Logs filter patterns for unstructured events (FilterLogEvents' `filterPattern`):
 *
 *   ERROR                every term must occur in the message (case-sensitive)
 *   ERROR timeout        both terms, anywhere, in any order
 *   "Connection lost"    a quoted term is matched as one phrase (\" escapes a quote)
 *   ERROR -debug         a term after `-` must not occur
 *   ?ERROR ?WARN         any one of the `?` terms (with the plain terms, all of those too)
 *   %ERR[A-Z]*%          a regular expression found anywhere in the message (also after - or ?)
 *   (empty)              every event
 *
 * Regular expressions are CloudWatch's subset: letters, digits, the symbols : _ # = @ / ; , -
 * and the operators ^ $ ? [ ] { } | \ * + . only (no parentheses, no multibyte characters), at
 * most two in one pattern. Anything else is refused, not matched as something else.
 *
 * JSON (`{ $.x = 1 }`) and space-delimited (`[ip, user, ...]`) patterns are refused: Wharf does
 * not evaluate them, and a filter that silently matched everything would mislead.
 */

/** A term: text to find as it is, or a regular expression (`%...%`). */
export type LogFilterTerm = string | RegExp;

export interface LogFilter {
  all: LogFilterTerm[];
  none: LogFilterTerm[];
  any: LogFilterTerm[];
}

/** What CloudWatch lets a `%regex%` hold. */
const REGEX_CHARS = /^[A-Za-z0-9:_#=@/;,\-^$?[\]{}|\\*+.]*$/;
const MAX_REGEXES = 2;
const REGEX_RULE = 'a regular expression between % may use only letters, digits, the symbols : _ # = @ / ; , - and the operators ^ $ ? [ ] { } | \\ * + . (no parentheses, spaces or multibyte characters)';

function regexTerm(source: string): RegExp | { error: string } {
  if (source === '' || !REGEX_CHARS.test(source)) return { error: `Invalid filter pattern: %${source}%: ${REGEX_RULE}.` };
  try {
    return new RegExp(source);
  } catch {
    return { error: `Invalid filter pattern: %${source}% is not a valid regular expression.` };
  }
}

/** Parses a pattern; returns an error message (in CloudWatch's words where known) when it is not one Wharf can evaluate. */
export function parseLogFilterPattern(pattern: string | undefined): LogFilter | { error: string } {
  const filter: LogFilter = { all: [], none: [], any: [] };
  const text = (pattern ?? '').trim();
  if (text === '') return filter;
  if (text.startsWith('{') || text.startsWith('[')) {
    return { error: 'Invalid filter pattern: JSON and space-delimited filter patterns are not supported by Wharf; use terms and quoted phrases.' };
  }
  let i = 0;
  let regexes = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    let kind: keyof LogFilter = 'all';
    if (text[i] === '-' || text[i] === '?') {
      kind = text[i] === '-' ? 'none' : 'any';
      i++;
    }
    let term: LogFilterTerm = '';
    if (text[i] === '%') {
      const close = text.indexOf('%', i + 1);
      if (close < 0) return { error: 'Invalid filter pattern: a regular expression opened with % is not closed with %.' };
      const re = regexTerm(text.slice(i + 1, close));
      if ('error' in re) return re;
      if (++regexes > MAX_REGEXES) return { error: `Invalid filter pattern: at most ${MAX_REGEXES} regular expressions may be used in one filter pattern.` };
      term = re;
      i = close + 1;
      if (i < text.length && text[i] !== ' ' && text[i] !== '\t') return { error: 'Invalid filter pattern: a regular expression between % must be followed by a space or the end of the pattern.' };
    } else if (text[i] === '"') {
      i++;
      let closed = false;
      let phrase = '';
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === '\\' && i + 1 < text.length) {
          phrase += text[i + 1];
          i += 2;
          continue;
        }
        i++;
        if (ch === '"') {
          closed = true;
          break;
        }
        phrase += ch;
      }
      if (!closed) return { error: 'Invalid filter pattern: a quoted term is not closed.' };
      term = phrase;
    } else {
      let word = '';
      while (i < text.length && text[i] !== ' ' && text[i] !== '\t') word += text[i++];
      term = word;
    }
    if (term !== '') filter[kind].push(term);
  }
  return filter;
}

const found = (t: LogFilterTerm, message: string) => (typeof t === 'string' ? message.includes(t) : t.test(message));

export function matchesLogFilter(f: LogFilter, message: string): boolean {
  for (const t of f.all) if (!found(t, message)) return false;
  for (const t of f.none) if (found(t, message)) return false;
  return f.any.length === 0 || f.any.some((t) => found(t, message));
}
