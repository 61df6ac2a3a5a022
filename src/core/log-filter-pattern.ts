/**
 * CloudWatch Logs filter patterns for unstructured events (FilterLogEvents' `filterPattern`):
 *
 *   ERROR                every term must occur in the message (case-sensitive)
 *   ERROR timeout        both terms, anywhere, in any order
 *   "Connection lost"    a quoted term is matched as one phrase (\" escapes a quote)
 *   ERROR -debug         a term after `-` must not occur
 *   ?ERROR ?WARN         any one of the `?` terms (with the plain terms, all of those too)
 *   (empty)              every event
 *
 * JSON (`{ $.x = 1 }`) and space-delimited (`[ip, user, ...]`) patterns are refused: Wharf does
 * not evaluate them, and a filter that silently matched everything would mislead.
 */

export interface LogFilter {
  all: string[];
  none: string[];
  any: string[];
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
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i >= text.length) break;
    let kind: keyof LogFilter = 'all';
    if (text[i] === '-' || text[i] === '?') {
      kind = text[i] === '-' ? 'none' : 'any';
      i++;
    }
    let term = '';
    if (text[i] === '"') {
      i++;
      let closed = false;
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === '\\' && i + 1 < text.length) {
          term += text[i + 1];
          i += 2;
          continue;
        }
        i++;
        if (ch === '"') {
          closed = true;
          break;
        }
        term += ch;
      }
      if (!closed) return { error: 'Invalid filter pattern: a quoted term is not closed.' };
    } else {
      while (i < text.length && text[i] !== ' ' && text[i] !== '\t') term += text[i++];
    }
    if (term !== '') filter[kind].push(term);
  }
  return filter;
}

export function matchesLogFilter(f: LogFilter, message: string): boolean {
  for (const t of f.all) if (!message.includes(t)) return false;
  for (const t of f.none) if (message.includes(t)) return false;
  return f.any.length === 0 || f.any.some((t) => message.includes(t));
}
