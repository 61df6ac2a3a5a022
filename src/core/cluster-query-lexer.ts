/**
 * The cluster query lexer: words, quoted strings, brackets and operator symbols, each with its
 * 1-based position so that errors can point at the character (cluster-query.ts).
 */
import { WharfError } from './errors';

type TokenType = '(' | ')' | '[' | ']' | ',' | 'symbol' | 'word' | 'string' | 'eof';
export interface Token {
  type: TokenType;
  text: string;
  /** 1-based. */
  pos: number;
}

const SYMBOLS = ['&&', '||', '==', '!=', '>=', '<=', '=~', '!~', '>', '<', '!'];
// Characters that end a bare word: whitespace, punctuation of the grammar and operator starts.
const WORD_STOP = new Set([...'()[],\'"=!<>&|']);

export function syntaxError(pos: number, message: string): WharfError {
  return new WharfError('InvalidParameterException', `Invalid cluster query expression at position ${pos}: ${message}`);
}

export function describeToken(t: Token): string {
  if (t.type === 'eof') return 'the end of the expression';
  return `'${t.text}'`;
}

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i + 1;
    if (c === '(' || c === ')' || c === '[' || c === ']' || c === ',') {
      out.push({ type: c, text: c, pos });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw syntaxError(pos, `unterminated quoted string (expected a closing ${c})`);
      out.push({ type: 'string', text: src.slice(i + 1, end), pos });
      i = end + 1;
      continue;
    }
    const sym = SYMBOLS.find((s) => src.startsWith(s, i));
    if (sym) {
      out.push({ type: 'symbol', text: sym, pos });
      i += sym.length;
      continue;
    }
    if (WORD_STOP.has(c)) throw syntaxError(pos, `unexpected character '${c}'`);
    let j = i;
    while (j < src.length && !/\s/.test(src[j]!) && !WORD_STOP.has(src[j]!)) j++;
    out.push({ type: 'word', text: src.slice(i, j), pos });
    i = j;
  }
  out.push({ type: 'eof', text: '', pos: src.length + 1 });
  return out;
}
