/**
 * The small part of AWS Secrets Manager that ECS users touch: a private registry's credentials
 * (`repositoryCredentials.credentialsParameter` names a secret holding
 * `{"username": ..., "password": ...}`) and containers' `secrets` (environment variables whose
 * values come from secrets; control/task-secrets.ts resolves both for the agent). Enough of the API
 * that `aws secretsmanager create-secret` and the SDKs work unchanged against Wharf: CreateSecret,
 * GetSecretValue, PutSecretValue, DeleteSecret, RestoreSecret, DescribeSecret, ListSecrets.
 *
 * Versions, as Secrets Manager keeps them: each value is a version with a VersionId (the
 * ClientRequestToken that made it, or a UUID) and staging labels. PutSecretValue without
 * VersionStages makes the new version AWSCURRENT and moves AWSPREVIOUS to the version that was
 * current; with VersionStages the new version takes exactly those labels (from whichever version
 * had them) and AWSCURRENT stays where it is unless it is among them. A version cannot change: the
 * same token with the same value does nothing, with another value it is ResourceExistsException.
 * GetSecretValue answers the version a VersionId or VersionStage names (AWSCURRENT by default).
 * Versions left without a label are kept, newest first, while the secret holds at most
 * MAX_VERSIONS (AWS keeps 100; here the whole secret is one store record).
 *
 *   put v1          v1 [AWSCURRENT]
 *   put v2          v2 [AWSCURRENT]  v1 [AWSPREVIOUS]
 *   put v3 [MINE]   v3 [MINE]        v2 [AWSCURRENT]  v1 [AWSPREVIOUS]
 *   put v4          v4 [AWSCURRENT]  v3 [MINE]        v2 [AWSPREVIOUS]  v1 []
 *
 * Deletion, as Secrets Manager does it: DeleteSecret schedules it RecoveryWindowInDays (7-30,
 * default 30) ahead, storing `deletedDate` and `deletionDate`; until then DescribeSecret shows
 * DeletedDate, ListSecrets leaves it out unless IncludePlannedDeletion, values are refused
 * (InvalidRequestException) and RestoreSecret cancels the deletion. From `deletionDate` on the
 * secret is gone for every operation (`isExpired`, checked on each read against the clock); the
 * record itself is removed by the next CreateSecret or DeleteSecret in the region
 * (`purgeExpiredSecrets`), or replaced by a CreateSecret of the same name. Because the deadline is
 * in the record, a restart changes nothing. ForceDeleteWithoutRecovery deletes at once.
 *
 * Secrets live in the store under `secrets/<url-encoded name>` (names may hold `/`, which the
 * cache uses as its parent separator) and are read from the state cache like everything else.
 *
 * Values are sealed at rest: with the context's `secretCipher` (AES-256-GCM under the data dir's
 * key), each version holds `sealed` instead of `secretString`/`secretBinary`, bound to the secret's
 * ARN. Everything that reads a value goes through `secretValueOf`. Records written before
 * encryption (plaintext members) are still read, and `sealPlaintextSecrets` rewrites them sealed
 * when the server starts. Records written before versions were kept hold the one AWSCURRENT
 * value in the record itself (`versionsOf` reads them as one version).
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

/** The most versions one secret keeps; versions without a label beyond it are dropped, oldest first. */
export const MAX_VERSIONS = 20;

/** One version of a secret's value. */
export interface SecretVersion {
  versionId: string;
  /** Staging labels; empty for a deprecated version. */
  stages: string[];
  createdDate: number;
  secretString?: string;
  /** base64, as on the wire. */
  secretBinary?: string;
  /** Both of the above, sealed (JSON of `SecretValue`); then neither is stored in the clear. */
  sealed?: string;
}

export interface SecretRecord {
  name: string;
  arn: string;
  description?: string;
  /** The versions, newest first. Absent in records written before versions were kept. */
  versions?: SecretVersion[];
  /** The AWSCURRENT version's id (in old records, the one version's). */
  versionId: string;
  /** Old records only: the one AWSCURRENT value, as a version holds it. */
  secretString?: string;
  secretBinary?: string;
  sealed?: string;
  createdDate: number;
  lastChangedDate: number;
  tags: { Key: string; Value: string }[];
  /** Set while the secret is scheduled for deletion: when DeleteSecret was called... */
  deletedDate?: number;
  /** ...and when the secret is gone (epoch seconds). */
  deletionDate?: number;
}

export function secretKey(name: string): string {
  return `secrets/${encodeURIComponent(name)}`;
}

/** The name syntax Secrets Manager documents; the 512-character bound is also in its model, which
 * server/ checks first. */
const NAME_RE = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

const DAY_SECONDS = 86_400;

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

const hasPlainValue = (v: SecretValue) => v.secretString !== undefined || v.secretBinary !== undefined;

/** A secret's versions, newest first; old single-version records read as one AWSCURRENT version. */
export function versionsOf(s: SecretRecord): SecretVersion[] {
  if (s.versions) return s.versions;
  if (!hasPlainValue(s) && s.sealed === undefined) return [];
  return [{ versionId: s.versionId, stages: ['AWSCURRENT'], createdDate: s.lastChangedDate, secretString: s.secretString, secretBinary: s.secretBinary, sealed: s.sealed }];
}

/** The version holding a staging label, if any. */
export function versionByStage(s: SecretRecord, stage: string): SecretVersion | undefined {
  return versionsOf(s).find((v) => v.stages.includes(stage));
}

/** A version's value as stored: sealed when there is a cipher, as it is otherwise. */
function storedValue(ctx: CipherContext, arn: string, value: SecretValue): Pick<SecretVersion, 'secretString' | 'secretBinary' | 'sealed'> {
  if (!ctx.secretCipher) return { secretString: value.secretString, secretBinary: value.secretBinary };
  return { sealed: ctx.secretCipher.seal(JSON.stringify(value), arn) };
}

/** The record with these versions, in the current layout (no value members of its own). */
function withVersions(rec: SecretRecord, versions: SecretVersion[]): SecretRecord {
  const { secretString: _s, secretBinary: _b, sealed: _x, ...rest } = rec;
  const current = versions.find((v) => v.stages.includes('AWSCURRENT'));
  return { ...rest, versions, versionId: current?.versionId ?? rec.versionId };
}

/**
 * A version's value in the clear (the AWSCURRENT version's when none is named; empty when there
 * is none). Throws DecryptionFailure (Secrets Manager's error when it cannot decrypt with the
 * secret's KMS key) when the data dir's key is not the one that sealed it.
 */
export function secretValueOf(ctx: CipherContext, s: SecretRecord, version?: SecretVersion): SecretValue {
  const v = version ?? versionByStage(s, 'AWSCURRENT');
  if (!v) return {};
  if (v.sealed === undefined) return { secretString: v.secretString, secretBinary: v.secretBinary };
  if (!ctx.secretCipher) throw new WharfError('DecryptionFailure', `The value of secret ${s.name} is encrypted and this server has no secrets key to decrypt it.`);
  try {
    return JSON.parse(ctx.secretCipher.open(v.sealed, s.arn)) as SecretValue;
  } catch (e) {
    if (!(e instanceof SecretDecryptionError)) throw e;
    throw new WharfError('DecryptionFailure', `Secrets Manager can't decrypt the protected secret text using the provided KMS key (secret ${s.name}: ${e.message}; is the data dir's secrets.key the one it was written with?).`);
  }
}

/**
 * Rewrites records holding any value in the clear (written before values were sealed) with every
 * version sealed; returns how many. Their earlier revisions stay in the store's change history
 * until it is compacted.
 */
export async function sealPlaintextSecrets(ctx: ControlContext): Promise<number> {
  if (!ctx.secretCipher) return 0;
  let sealed = 0;
  for (const e of ctx.state.secrets.children('').values()) {
    const rec = e.value as SecretRecord;
    const versions = versionsOf(rec);
    if (!hasPlainValue(rec) && !versions.some(hasPlainValue)) continue;
    const resealed = versions.map((v) => {
      if (!hasPlainValue(v)) return v;
      const { secretString, secretBinary, sealed: _x, ...meta } = v;
      return { ...meta, ...storedValue(ctx, rec.arn, { secretString, secretBinary }) };
    });
    try {
      await ctx.state.waitFor(await ctx.store.update(secretKey(rec.name), withVersions(rec, resealed), e.modRevision));
      sealed++;
    } catch (err) {
      // Changed meanwhile: whoever wrote it wrote it sealed.
      if (!(err instanceof StoreConflictError)) throw err;
    }
  }
  return sealed;
}

/** Secrets Manager's InvalidRequestException: a request not valid in the secret's state. */
export function invalidRequest(message: string): WharfError {
  return new WharfError('InvalidRequestException', message);
}

function notFound(): WharfError {
  return new WharfError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
}

/** Secrets Manager's answer to reading or changing a secret scheduled for deletion. */
export function markedForDeletion(): WharfError {
  return invalidRequest("You can't perform this operation on the secret because it was marked for deletion.");
}

/** Whether a secret's recovery window has run out: it no longer exists. */
export function isExpired(s: SecretRecord, nowSeconds: number): boolean {
  return s.deletionDate !== undefined && nowSeconds >= s.deletionDate;
}

/**
 * The secret a `SecretId` (name, full ARN or ARN without its random suffix) names, if any,
 * including one scheduled for deletion (callers refuse those as they need).
 */
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

const nowSeconds = (ctx: ControlContext) => epochSeconds(ctx.clock.now());

/** The secret, existing (possibly scheduled for deletion), with its store revision. */
function requireSecret(ctx: ControlContext, secretId: string | undefined): { s: SecretRecord; modRevision: number } {
  if (!secretId) throw invalidParameter('SecretId is required.');
  const s = findSecret(ctx, secretId);
  if (!s || isExpired(s, nowSeconds(ctx))) throw notFound();
  return { s, modRevision: ctx.state.secrets.get('', encodeURIComponent(s.name))!.modRevision };
}

/** As requireSecret, refusing a secret scheduled for deletion. */
function requireLiveSecret(ctx: ControlContext, secretId: string | undefined): { s: SecretRecord; modRevision: number } {
  const r = requireSecret(ctx, secretId);
  if (r.s.deletedDate !== undefined) throw markedForDeletion();
  return r;
}

/** Runs a compare-and-swap update of one secret, re-reading it after a conflict. */
async function updateSecret<T>(ctx: ControlContext, attemptOnce: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptOnce();
    } catch (err) {
      if (!(err instanceof StoreConflictError) || attempt >= 20) throw err;
      await ctx.state.waitFor(await ctx.store.revision());
    }
  }
}

/** Removes the records of secrets whose recovery window has run out; conflicts are left for next time. */
export async function purgeExpiredSecrets(ctx: ControlContext): Promise<number> {
  const now = nowSeconds(ctx);
  let purged = 0;
  for (const e of ctx.state.secrets.children('').values()) {
    const rec = e.value as SecretRecord;
    if (!isExpired(rec, now)) continue;
    try {
      await ctx.state.waitFor(await ctx.store.delete(secretKey(rec.name), e.modRevision));
      purged++;
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
    }
  }
  return purged;
}

function valueOf(input: { SecretString?: string; SecretBinary?: string }): SecretValue {
  if (input.SecretString !== undefined && input.SecretBinary !== undefined) {
    throw new WharfError('InvalidParameterException', 'You can specify SecretString or SecretBinary, not both.');
  }
  if ((input.SecretString?.length ?? 0) > 65536) throw invalidParameter('SecretString must be at most 65536 characters.');
  return { secretString: input.SecretString, secretBinary: input.SecretBinary };
}

async function createSecret(ctx: ControlContext, input: { Name?: string; Description?: string; SecretString?: string; SecretBinary?: string; Tags?: { Key: string; Value: string }[]; ClientRequestToken?: string }) {
  const name = input.Name;
  if (!name || !NAME_RE.test(name)) throw invalidParameter('Name must be 1-512 letters, digits or /_+=.@- characters.');
  const now = nowSeconds(ctx);
  const v = valueOf(input);
  const arn = `arn:${partitionOf(ctx.partition.region)}:secretsmanager:${ctx.partition.region}:${ctx.partition.accountId}:secret:${name}-${arnSuffix()}`;
  const versionId = input.ClientRequestToken ?? uuid();
  const versions: SecretVersion[] = hasPlainValue(v) ? [{ versionId, stages: ['AWSCURRENT'], createdDate: now, ...storedValue(ctx, arn, v) }] : [];
  const rec: SecretRecord = { name, arn, description: input.Description, versions, versionId, createdDate: now, lastChangedDate: now, tags: input.Tags ?? [] };
  const existing = ctx.state.secrets.get('', encodeURIComponent(name));
  const prior = existing?.value as SecretRecord | undefined;
  try {
    if (prior && isExpired(prior, now)) {
      // Its recovery window is over: the name is free again.
      await ctx.state.waitFor(await ctx.store.update(secretKey(name), rec, existing!.modRevision));
    } else {
      if (prior?.deletedDate !== undefined) throw invalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.");
      await ctx.state.waitFor(await ctx.store.create(secretKey(name), rec));
    }
  } catch (e) {
    if (e instanceof StoreConflictError) throw new WharfError('ResourceExistsException', `The operation failed because the secret ${name} already exists.`);
    throw e;
  }
  await purgeExpiredSecrets(ctx);
  return { ARN: rec.arn, Name: rec.name, VersionId: versions.length ? versionId : undefined };
}

const sameValue = (a: SecretValue, b: SecretValue) => a.secretString === b.secretString && a.secretBinary === b.secretBinary;

/**
 * The versions after a new one takes `stages`: the labels leave the versions that had them, and
 * when AWSCURRENT moves, the version it leaves becomes AWSPREVIOUS.
 */
export function stageNewVersion(versions: readonly SecretVersion[], added: SecretVersion): SecretVersion[] {
  const oldCurrent = versions.find((v) => v.stages.includes('AWSCURRENT'));
  const movesCurrent = added.stages.includes('AWSCURRENT') && oldCurrent !== undefined;
  const taken = new Set([...added.stages, ...(movesCurrent ? ['AWSPREVIOUS'] : [])]);
  const rest = versions.map((v) => {
    const stages = v.stages.filter((l) => !taken.has(l));
    if (movesCurrent && v === oldCurrent) stages.push('AWSPREVIOUS');
    return { ...v, stages };
  });
  const all = [added, ...rest];
  // Keep every labelled version, and unlabelled ones (newest first) while there is room.
  let room = MAX_VERSIONS - all.filter((v) => v.stages.length).length;
  return all.filter((v) => v.stages.length > 0 || room-- > 0);
}

async function putSecretValue(ctx: ControlContext, input: { SecretId?: string; SecretString?: string; SecretBinary?: string; ClientRequestToken?: string; VersionStages?: string[] }) {
  const value = valueOf(input);
  if (!hasPlainValue(value)) throw invalidRequest('You must provide either SecretString or SecretBinary.');
  const stages = input.VersionStages ?? ['AWSCURRENT'];
  if (stages.length === 0) throw invalidParameter('VersionStages must name at least one staging label.');
  return updateSecret(ctx, async () => {
    const { s, modRevision } = requireLiveSecret(ctx, input.SecretId);
    const versions = versionsOf(s);
    const versionId = input.ClientRequestToken ?? uuid();
    const existing = versions.find((v) => v.versionId === versionId);
    if (existing) {
      // A version never changes: the same request again is answered as before.
      if (!sameValue(secretValueOf(ctx, s, existing), value)) {
        throw new WharfError('ResourceExistsException', "You can't modify an existing version, you can only create a new version.");
      }
      return { ARN: s.arn, Name: s.name, VersionId: existing.versionId, VersionStages: existing.stages };
    }
    const now = nowSeconds(ctx);
    const added: SecretVersion = { versionId, stages: [...new Set(stages)], createdDate: now, ...storedValue(ctx, s.arn, value) };
    const next = withVersions({ ...s, lastChangedDate: now }, stageNewVersion(versions, added));
    await ctx.state.waitFor(await ctx.store.update(secretKey(s.name), next, modRevision));
    return { ARN: s.arn, Name: s.name, VersionId: versionId, VersionStages: added.stages };
  });
}

async function getSecretValue(ctx: ControlContext, input: { SecretId?: string; VersionId?: string; VersionStage?: string }) {
  const { s } = requireLiveSecret(ctx, input.SecretId);
  const v = selectVersion(s, input.VersionId, input.VersionStage);
  if ('error' in v) throw v.error;
  const value = secretValueOf(ctx, s, v.version);
  return { ARN: s.arn, Name: s.name, VersionId: v.version.versionId, SecretString: value.secretString, SecretBinary: value.secretBinary, VersionStages: v.version.stages, CreatedDate: v.version.createdDate };
}

/**
 * The version a VersionId and/or VersionStage name (AWSCURRENT when neither is given), or
 * Secrets Manager's error when there is none.
 */
export function selectVersion(s: SecretRecord, versionId: string | undefined, versionStage: string | undefined): { version: SecretVersion } | { error: WharfError } {
  const versions = versionsOf(s);
  if (versionId !== undefined) {
    const version = versions.find((v) => v.versionId === versionId);
    if (!version) return { error: new WharfError('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`) };
    if (versionStage !== undefined && !version.stages.includes(versionStage)) {
      return { error: invalidRequest('You provided a VersionStage that is not associated to the provided VersionId.') };
    }
    return { version };
  }
  const stage = versionStage ?? 'AWSCURRENT';
  const version = versions.find((v) => v.stages.includes(stage));
  if (!version) return { error: new WharfError('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for staging label: ${stage}`) };
  return { version };
}

/** Version id -> labels, for the versions that have labels (AWS leaves the others out). */
function stagesMap(s: SecretRecord): Record<string, string[]> | undefined {
  const labelled = versionsOf(s).filter((v) => v.stages.length);
  return labelled.length ? Object.fromEntries(labelled.map((v) => [v.versionId, v.stages])) : undefined;
}

function describe(s: SecretRecord) {
  return {
    ARN: s.arn,
    Name: s.name,
    Description: s.description,
    CreatedDate: s.createdDate,
    LastChangedDate: s.lastChangedDate,
    DeletedDate: s.deletedDate,
    Tags: s.tags,
    VersionIdsToStages: stagesMap(s),
  };
}

/** ListSecrets' entry: DescribeSecret's fields, with the version map under its list name. */
function listEntry(s: SecretRecord) {
  const { VersionIdsToStages, ...rest } = describe(s);
  return { ...rest, SecretVersionsToStages: VersionIdsToStages };
}

async function deleteSecret(ctx: ControlContext, input: { SecretId?: string; RecoveryWindowInDays?: number; ForceDeleteWithoutRecovery?: boolean }) {
  const force = input.ForceDeleteWithoutRecovery === true;
  if (force && input.RecoveryWindowInDays !== undefined) {
    throw new WharfError('InvalidParameterException', "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
  }
  const days = input.RecoveryWindowInDays ?? 30;
  if (!force && (!Number.isInteger(days) || days < 7 || days > 30)) {
    throw new WharfError('InvalidParameterException', 'The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).');
  }
  const out = await updateSecret(ctx, async () => {
    const { s, modRevision } = requireSecret(ctx, input.SecretId);
    const now = nowSeconds(ctx);
    if (force) {
      // Also ends a scheduled deletion early, as on AWS.
      await ctx.state.waitFor(await ctx.store.delete(secretKey(s.name), modRevision));
      return { ARN: s.arn, Name: s.name, DeletionDate: now };
    }
    if (s.deletedDate !== undefined) {
      throw invalidRequest("You tried to perform the operation on a secret that's currently marked deleted.");
    }
    const deletionDate = now + days * DAY_SECONDS;
    await ctx.state.waitFor(await ctx.store.update(secretKey(s.name), { ...s, deletedDate: now, deletionDate }, modRevision));
    return { ARN: s.arn, Name: s.name, DeletionDate: deletionDate };
  });
  await purgeExpiredSecrets(ctx);
  return out;
}

async function restoreSecret(ctx: ControlContext, input: { SecretId?: string }) {
  return updateSecret(ctx, async () => {
    const { s, modRevision } = requireSecret(ctx, input.SecretId);
    if (s.deletedDate !== undefined) {
      const { deletedDate: _d, deletionDate: _x, ...rest } = s;
      await ctx.state.waitFor(await ctx.store.update(secretKey(s.name), rest, modRevision));
    }
    return { ARN: s.arn, Name: s.name };
  });
}

async function listSecrets(ctx: ControlContext, input: { MaxResults?: number; NextToken?: string; Filters?: SecretFilter[]; IncludePlannedDeletion?: boolean }) {
  const now = nowSeconds(ctx);
  const all = [...ctx.state.secrets.children('').values()]
    .map((e) => e.value as SecretRecord)
    .filter((s) => !isExpired(s, now) && (s.deletedDate === undefined || input.IncludePlannedDeletion === true))
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
    RestoreSecret: (input) => restoreSecret(ctx, input ?? {}),
    DescribeSecret: async (input) => describe(requireSecret(ctx, input?.SecretId).s),
    ListSecrets: (input) => listSecrets(ctx, input ?? {}),
  };
}
