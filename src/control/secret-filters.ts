/**
 * ListSecrets' `Filters`, as the Secrets Manager API reference documents them (Filter):
 *
 *   name, tag-key, tag-value, primary-region, owning-service   prefix match, case-sensitive
 *   description                                                prefix match, not case-sensitive
 *   all     the value is broken into words; a secret matches when one of them begins a word of
 *           its name, description, tag keys or tag values; not case-sensitive
 *
 * A value starting with `!` negates. Several filters must all hold; within one filter the plain
 * values are alternatives (one of them must match) and every negated value must hold (none of its
 * terms may match): `Key=name,Values=app,db` is "app* or db*", `Values=!test,!tmp` excludes both.
 * AWS does not say how plain and negated values of one filter combine; this is Wharf's reading.
 *
 * Wharf has no replicated secrets and no secrets owned by other services, so primary-region and
 * owning-service have nothing to match: a plain value matches no secret, a negated one every secret.
 */

/** What the filters look at; a subset of control/secrets.ts's SecretRecord. */
export interface FilterableSecret {
  name: string;
  description?: string;
  tags: { Key: string; Value: string }[];
}

export interface SecretFilter {
  Key?: string;
  Values?: string[];
}

/**
 * Words as Secrets Manager's free-text search splits them: a new word at every change from lower
 * to upper case, between letters and digits, and at punctuation. `credsDatabase#892` is creds,
 * Database, 892.
 */
export function searchWords(text: string): string[] {
  return text.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g) ?? [];
}

/** Whether `term` (already without its `!`) matches the secret under `key`. */
function termMatches(s: FilterableSecret, key: string, term: string): boolean {
  const anyStarts = (values: (string | undefined)[], fold: boolean) => {
    const t = fold ? term.toLowerCase() : term;
    return values.some((v) => v !== undefined && (fold ? v.toLowerCase() : v).startsWith(t));
  };
  switch (key) {
    case 'name': return anyStarts([s.name], false);
    case 'description': return anyStarts([s.description], true);
    case 'tag-key': return anyStarts(s.tags.map((t) => t.Key), false);
    case 'tag-value': return anyStarts(s.tags.map((t) => t.Value), false);
    case 'all': {
      const words = [s.name, s.description ?? '', ...s.tags.flatMap((t) => [t.Key, t.Value])].flatMap(searchWords).map((w) => w.toLowerCase());
      return searchWords(term).some((q) => words.some((w) => w.startsWith(q.toLowerCase())));
    }
    // primary-region, owning-service: never set on a Wharf secret.
    default: return false;
  }
}

/** Whether a secret passes every filter. */
export function secretMatchesFilters(s: FilterableSecret, filters: readonly SecretFilter[] | undefined): boolean {
  for (const f of filters ?? []) {
    const key = f.Key ?? '';
    const values = f.Values ?? [];
    const plain = values.filter((v) => !v.startsWith('!'));
    const negated = values.filter((v) => v.startsWith('!')).map((v) => v.slice(1));
    if (plain.length && !plain.some((v) => termMatches(s, key, v))) return false;
    if (negated.some((v) => termMatches(s, key, v))) return false;
  }
  return true;
}
