/**
 * The small part of AWS Secrets Manager that ECS users touch: a private registry's credentials
 * (`repositoryCredentials.credentialsParameter` names a secret holding
 * `{"username": ..., "password": ...}`) and containers' `secrets` (environment variables whose
 * values come from secrets; control/task-secrets.ts resolves both for the agent). Enough of the API
 * that `aws secretsmanager create-secret` and the SDKs work unchanged against Wharf: CreateSecret,
 * GetSecretValue, PutSecretValue, DeleteSecret, DescribeSecret, ListSecrets. One version per
 * secret, always labelled AWSCURRENT: PutSecretValue replaces it.
 *
 * Secrets live in the store under `secrets/<url-encoded name>` (names may hold `/`, which the
 * cache uses as its parent separator) and are read from the state cache like everything else.
 * Deletion is immediate (Wharf keeps no recovery window; ForceDeleteWithoutRecovery is implied).
 * ListSecrets applies its Filters as control/secret-filters.ts describes.
 *
 * Values are sealed at rest: with the context's `secretCipher` (AES-256-GCM under the data dir's
 * key), a record holds `sealed` instead of `secretString`/`secretBinary`, bound to the secret's
 * ARN. Everything that reads a value goes through `secretValueOf`. Records written before
 * encryption (plaintext members) are still read, and `sealPlaintextSecrets` rewrites them sealed
 * when the server starts.
 */
import { randomBytes } from 'node:crypto';
import { WharfError, invalidParameter } from '../core/errors';
import { partitionOf } from '../core/regions';
import { SecretDecryptionError, epochSeconds, uuid } from '../lib';
import { StoreConflictError } from '../store/store';
import type { ControlContext } from './context';
import { secretMatchesFilters, type SecretFilter } from './secret-filters';

export const SECRETS_TARGET_PREFIX = 'secretsmanager';
export const SECRETS_SIGNING_NAME = 'secretsmanager';

export interface SecretRecord {
  name: string;
  arn: string;
  description?: string;
  secretString?: string;
  /** base64, as on the wire. */
  secretBinary?: string;
  /** Both of the above, sealed (JSON of `SecretValue`); then neither is stored in the clear. */
  sealed?: string;
  versionId: string;
  createdDate: number;
  lastChangedDate: number;
  tags: { Key: string; Value: string }[];
}

export function secretKey(name: string): string {
  return `secrets/${encodeURIComponent(name)}`;
}

/** The name syntax Secrets Manager documents; the 512-character bound is also in its model, which
 * server/ checks first. */
const NAME_RE = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

/** ARNs end in `-` and six random characters, as Secrets Manager's do. */
function arnSuffix(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return [...randomBytes(6)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** A secret's value, in the clear. */
export interface SecretValue {
  secretString?: string;
  secretBinary?: string;
}

type CipherContext = Pick<ControlContext, 'secretCipher'>;

/** The record as stored: the value sealed when there is a cipher, as it is otherwise. */
function stored(ctx: CipherContext, rec: SecretRecord, value: SecretValue): SecretRecord {
  const { secretString: _s, secretBinary: _b, sealed: _x, ...rest } = rec;
  if (value.secretString === undefined && value.secretBinary === undefined) return rest;
  if (!ctx.secretCipher) return { ...rest, ...value };
  return { ...rest, sealed: ctx.secretCipher.seal(JSON.stringify(value), rec.arn) };
}

/**
 * A secret's value in the clear. Throws DecryptionFailure (Secrets Manager's error when it cannot
 * decrypt with the secret's KMS key) when the data dir's key is not the one that sealed it.
 */
export function secretValueOf(ctx: CipherContext, s: SecretRecord): SecretValue {
  if (s.sealed === undefined) return { secretString: s.secretString, secretBinary: s.secretBinary };
  if (!ctx.secretCipher) throw new WharfError('DecryptionFailure', `The value of secret ${s.name} is encrypted and this server has no secrets key to decrypt it.`);
  try {
    return JSON.parse(ctx.secretCipher.open(s.sealed, s.arn)) as SecretValue;
  } catch (e) {
    if (!(e instanceof SecretDecryptionError)) throw e;
    throw new WharfError('DecryptionFailure', `Secrets Manager can't decrypt the protected secret text using the provided KMS key (secret ${s.name}: ${e.message}; is the data dir's secrets.key the one it was written with?).`);
  }
}

/**
 * Rewrites records written before values were sealed (plaintext members) sealed; returns how many.
 * Their earlier revisions stay in the store's change history until it is compacted.
 */
export async function sealPlaintextSecrets(ctx: ControlContext): Promise<number> {
  if (!ctx.secretCipher) return 0;
  let sealed = 0;
  for (const e of ctx.state.secrets.children('').values()) {
    const rec = e.value as SecretRecord;
    if (rec.secretString === undefined && rec.secretBinary === undefined) continue;
    try {
      await ctx.state.waitFor(await ctx.store.update(secretKey(rec.name), stored(ctx, rec, { secretString: rec.secretString, secretBinary: rec.secretBinary }), e.modRevision));
      sealed++;
    } catch (err) {
      // Changed meanwhile: whoever wrote it wrote it sealed.
      if (!(err instanceof StoreConflictError)) throw err;
    }
  }
  return sealed;
}

function notFound(): WharfError {
  return new WharfError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
}

/** The secret a `SecretId` (name, full ARN or ARN without its random suffix) names, if any. */
export function findSecret(ctx: Pick<ControlContext, 'state'>, secretId: string | undefined): SecretRecord | undefined {
  if (!secretId) return undefined;
  const byName = (n: string) => ctx.state.secrets.get('', encodeURIComponent(n))?.value as SecretRecord | undefined;
  if (!secretId.startsWith('arn:')) return byName(secretId);
  const i = secretId.indexOf(':secret:');
  if (i < 0) return undefined;
  const tail = secretId.slice(i + ':secret:'.length);
  const full = byName(tail.replace(/-[A-Za-z0-9]{6}$/, ''));
  if (full && full.arn === secretId) return full;
  // A partial ARN (no random suffix) names the secret by its name.
  const partial = byName(tail);
  return partial && partial.arn.startsWith(secretId) ? partial : undefined;
}

function requireSecret(ctx: ControlContext, secretId: string | undefined): SecretRecord {
  if (!secretId) throw invalidParameter('SecretId is required.');
  const s = findSecret(ctx, secretId);
  if (!s) throw notFound();
  return s;
}

function valueOf(input: { SecretString?: string; SecretBinary?: string }): { secretString?: string; secretBinary?: string } {
  if (input.SecretString !== undefined && input.SecretBinary !== undefined) {
    throw new WharfError('InvalidParameterException', 'You can specify SecretString or SecretBinary, not both.');
  }
  if ((input.SecretString?.length ?? 0) > 65536) throw invalidParameter('SecretString must be at most 65536 characters.');
  return { secretString: input.SecretString, secretBinary: input.SecretBinary };
}

async function createSecret(ctx: ControlContext, input: { Name?: string; Description?: string; SecretString?: string; SecretBinary?: string; Tags?: { Key: string; Value: string }[]; ClientRequestToken?: string }) {
  const name = input.Name;
  if (!name || !NAME_RE.test(name)) throw invalidParameter('Name must be 1-512 letters, digits or /_+=.@- characters.');
  const now = epochSeconds(ctx.clock.now());
  const v = valueOf(input);
  const rec: SecretRecord = {
    name,
    arn: `arn:${partitionOf(ctx.partition.region)}:secretsmanager:${ctx.partition.region}:${ctx.partition.accountId}:secret:${name}-${arnSuffix()}`,
    description: input.Description,
    versionId: input.ClientRequestToken ?? uuid(),
    createdDate: now,
    lastChangedDate: now,
    tags: input.Tags ?? [],
  };
  try {
    await ctx.state.waitFor(await ctx.store.create(secretKey(name), stored(ctx, rec, v)));
  } catch (e) {
    if (e instanceof StoreConflictError) throw new WharfError('ResourceExistsException', `The operation failed because the secret ${name} already exists.`);
    throw e;
  }
  return { ARN: rec.arn, Name: rec.name, VersionId: v.secretString !== undefined || v.secretBinary !== undefined ? rec.versionId : undefined };
}

async function putSecretValue(ctx: ControlContext, input: { SecretId?: string; SecretString?: string; SecretBinary?: string; ClientRequestToken?: string }) {
  for (let attempt = 0; ; attempt++) {
    const s = requireSecret(ctx, input.SecretId);
    const e = ctx.state.secrets.get('', encodeURIComponent(s.name))!;
    const next: SecretRecord = { ...s, versionId: input.ClientRequestToken ?? uuid(), lastChangedDate: epochSeconds(ctx.clock.now()) };
    try {
      await ctx.state.waitFor(await ctx.store.update(secretKey(s.name), stored(ctx, next, valueOf(input)), e.modRevision));
      return { ARN: next.arn, Name: next.name, VersionId: next.versionId, VersionStages: ['AWSCURRENT'] };
    } catch (err) {
      if (!(err instanceof StoreConflictError) || attempt >= 20) throw err;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

async function getSecretValue(ctx: ControlContext, input: { SecretId?: string }) {
  const s = requireSecret(ctx, input.SecretId);
  const v = secretValueOf(ctx, s);
  if (v.secretString === undefined && v.secretBinary === undefined) {
    throw new WharfError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT");
  }
  return { ARN: s.arn, Name: s.name, VersionId: s.versionId, SecretString: v.secretString, SecretBinary: v.secretBinary, VersionStages: ['AWSCURRENT'], CreatedDate: s.lastChangedDate };
}

function describe(s: SecretRecord) {
  return {
    ARN: s.arn,
    Name: s.name,
    Description: s.description,
    CreatedDate: s.createdDate,
    LastChangedDate: s.lastChangedDate,
    Tags: s.tags,
    VersionIdsToStages: { [s.versionId]: ['AWSCURRENT'] },
  };
}

/** ListSecrets' entry: DescribeSecret's fields, with the version map under its list name. */
function listEntry(s: SecretRecord) {
  const { VersionIdsToStages, ...rest } = describe(s);
  return { ...rest, SecretVersionsToStages: VersionIdsToStages };
}

async function deleteSecret(ctx: ControlContext, input: { SecretId?: string }) {
  const s = requireSecret(ctx, input.SecretId);
  try {
    await ctx.state.waitFor(await ctx.store.delete(secretKey(s.name)));
  } catch (e) {
    if (e instanceof StoreConflictError) throw notFound();
    throw e;
  }
  return { ARN: s.arn, Name: s.name, DeletionDate: epochSeconds(ctx.clock.now()) };
}

async function listSecrets(ctx: ControlContext, input: { MaxResults?: number; NextToken?: string; Filters?: SecretFilter[] }) {
  const all = [...ctx.state.secrets.children('').values()]
    .map((e) => e.value as SecretRecord)
    .filter((s) => secretMatchesFilters(s, input.Filters))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const max = input.MaxResults ?? 100;
  if (!Number.isInteger(max) || max < 1 || max > 100) throw invalidParameter('MaxResults must be between 1 and 100.');
  let start = 0;
  if (input.NextToken) {
    start = all.findIndex((s) => s.name > Buffer.from(input.NextToken!, 'base64url').toString());
    if (start < 0) start = all.length;
  }
  const page = all.slice(start, start + max);
  const more = start + max < all.length;
  return { SecretList: page.map(listEntry), NextToken: more ? Buffer.from(page[page.length - 1]!.name).toString('base64url') : undefined };
}

/** The Secrets Manager operations, for server/'s API table. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function secretsHandlers(ctx: ControlContext): Record<string, (input: any) => Promise<unknown>> {
  return {
    CreateSecret: (input) => createSecret(ctx, input ?? {}),
    GetSecretValue: (input) => getSecretValue(ctx, input ?? {}),
    PutSecretValue: (input) => putSecretValue(ctx, input ?? {}),
    DeleteSecret: (input) => deleteSecret(ctx, input ?? {}),
    DescribeSecret: async (input) => describe(requireSecret(ctx, input?.SecretId)),
    ListSecrets: (input) => listSecrets(ctx, input ?? {}),
  };
}
