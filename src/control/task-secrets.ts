/**
 * What a task's containers need from Secrets Manager before they can start, resolved by the
 * control plane so that the agent never reads secrets itself: the values of each container's
 * `secrets` (injected as environment variables) and the registry credentials its
 * `repositoryCredentials` names. When anything cannot be resolved the task gets one error message
 * instead, and the agent fails it to start with `ResourceInitializationError: unable to pull
 * secrets or registry auth: <message>`, as ECS does.
 *
 * `secrets[].valueFrom` forms (ECS developer guide, "Pass Secrets Manager secrets through Amazon
 * ECS environment variables"):
 *
 *   arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf                 whole secret
 *   arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password::      one JSON key
 *   arn:aws:secretsmanager:us-east-1:123456789012:secret:db:password:AWSCURRENT:   partial ARN, stage
 *   db   or   db:password::                                                         by name (see below)
 *
 * The tail is `json-key:version-stage:version-id`, each part may be empty. A stage or a version id
 * picks that version of the secret (control/secrets.ts keeps them), as GetSecretValue would, with
 * its errors; neither means AWSCURRENT. A secret scheduled for deletion cannot be read, as
 * GetSecretValue refuses it.
 *
 * A name without `arn:` is accepted as a Secrets Manager name in this account and region. Note that
 * ECS itself reads a bare name as an SSM parameter, and so does the requiresAttributes computation
 * (core/task-definition-attributes.ts): such a definition requires the ssm capability, which no
 * Wharf agent advertises, so placement refuses it first. SSM parameter ARNs resolve to an error:
 * Wharf has no Parameter Store.
 *
 * Execution role: ECS refuses secrets without `executionRoleArn`, because that role is what reads
 * them. Wharf has no IAM, so the role would grant nothing and requiring it would only make users
 * invent an ARN that changes nothing; it is not required (a definition that has one works the same).
 */
import type { ContainerDefinition } from '../core/shapes/ecs';
import { WharfError } from '../core/errors';
import { findSecret, markedForDeletion, secretValueOf, selectVersion, type SecretRecord, type SecretVersion } from './secrets';
import type { ControlContext } from './context';

/** A `valueFrom` taken apart. */
export type SecretReference =
  | { kind: 'secretsmanager'; secretId: string; jsonKey?: string; versionStage?: string; versionId?: string }
  | { kind: 'ssm' }
  | { kind: 'invalid'; reason: string };

const SM_ARN = /^arn:aws[a-z-]*:secretsmanager:/;
const SSM_ARN = /^arn:aws[a-z-]*:ssm:/;

/** Splits a `valueFrom` into the secret it names and the optional json-key, stage and version id. */
export function parseSecretReference(valueFrom: string): SecretReference {
  const empty = (s: string | undefined) => (s === undefined || s === '' ? undefined : s);
  if (SSM_ARN.test(valueFrom)) return { kind: 'ssm' };
  let head: string;
  let tail: string[];
  if (valueFrom.startsWith('arn:')) {
    if (!SM_ARN.test(valueFrom)) return { kind: 'invalid', reason: 'not a Secrets Manager secret ARN' };
    // arn : partition : secretsmanager : region : account : secret : name [: key : stage : id]
    const parts = valueFrom.split(':');
    if (parts[5] !== 'secret' || !parts[6]) return { kind: 'invalid', reason: 'not a Secrets Manager secret ARN' };
    head = parts.slice(0, 7).join(':');
    tail = parts.slice(7);
  } else {
    // Secret names cannot contain ':', so every ':' separates the optional parts.
    const parts = valueFrom.split(':');
    head = parts[0]!;
    tail = parts.slice(1);
    if (!head) return { kind: 'invalid', reason: 'the secret name is empty' };
  }
  if (tail.length !== 0 && tail.length !== 3) {
    return { kind: 'invalid', reason: 'expected the secret, optionally followed by :json-key:version-stage:version-id' };
  }
  return { kind: 'secretsmanager', secretId: head, jsonKey: empty(tail[0]), versionStage: empty(tail[1]), versionId: empty(tail[2]) };
}

/** What resolving needs: the cache, and the cipher that opens sealed values. */
export type SecretsReader = Pick<ControlContext, 'state' | 'secretCipher'>;

/** An error as a client would see it: its code and message. */
function wireText(e: WharfError): string {
  return `${e.code}: ${e.message}`;
}

/** A secret's value, or why it cannot be read (a key that does not open it), never thrown. */
function opened(ctx: SecretsReader, s: SecretRecord, version?: SecretVersion): { secretString?: string; secretBinary?: string } | { error: string } {
  if (s.deletedDate !== undefined) return { error: wireText(markedForDeletion()) };
  try {
    return secretValueOf(ctx, s, version);
  } catch (e) {
    if (e instanceof WharfError) return { error: wireText(e) };
    throw e;
  }
}

/**
 * The value a `valueFrom` stands for, or why there is none. Error messages name the reference and
 * never quote any part of a secret's value.
 */
export function resolveSecretReference(ctx: SecretsReader, valueFrom: string): { value: string } | { error: string } {
  const ref = parseSecretReference(valueFrom);
  if (ref.kind === 'ssm') return { error: `${valueFrom}: SSM Parameter Store parameters are not supported by Wharf; use a Secrets Manager secret` };
  if (ref.kind === 'invalid') return { error: `${valueFrom}: ${ref.reason}` };
  const s = findSecret(ctx, ref.secretId);
  if (!s) return { error: `${valueFrom}: ResourceNotFoundException: Secrets Manager can't find the specified secret.` };
  const picked = selectVersion(s, ref.versionId, ref.versionStage);
  if ('error' in picked) return { error: `${valueFrom}: ${wireText(picked.error)}` };
  const text = stringValue(ctx, s, picked.version);
  if ('error' in text) return { error: `${valueFrom}: ${text.error}` };
  if (ref.jsonKey === undefined) return { value: text.value };
  let obj: unknown;
  try {
    obj = JSON.parse(text.value);
  } catch {
    // JSON.parse's own message quotes the input, which is the secret: say nothing of it.
    return { error: `${valueFrom}: the secret is not valid JSON, so json-key ${ref.jsonKey} cannot be read` };
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    return { error: `${valueFrom}: the secret is not a JSON object, so json-key ${ref.jsonKey} cannot be read` };
  }
  if (!Object.prototype.hasOwnProperty.call(obj, ref.jsonKey)) {
    return { error: `${valueFrom}: json-key ${ref.jsonKey} is not in the secret` };
  }
  const v = (obj as Record<string, unknown>)[ref.jsonKey];
  // Strings go in as they are; numbers, booleans and nested JSON as their JSON text.
  return { value: typeof v === 'string' ? v : JSON.stringify(v) };
}

function stringValue(ctx: SecretsReader, rec: SecretRecord, version: SecretVersion): { value: string } | { error: string } {
  const s = opened(ctx, rec, version);
  if ('error' in s) return s;
  if (s.secretString !== undefined) return { value: s.secretString };
  if (s.secretBinary !== undefined) return { error: 'the secret holds a binary value, which cannot be an environment variable' };
  return { error: "ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: AWSCURRENT" };
}

/** Registry credentials from a `repositoryCredentials` secret, or why there are none. */
export function resolveRegistryCredentials(ctx: SecretsReader, secretId: string): { username: string; password: string } | { error: string } {
  const rec = findSecret(ctx, secretId);
  if (!rec) return { error: `${secretId}: ResourceNotFoundException: Secrets Manager can't find the specified secret.` };
  const s = opened(ctx, rec);
  if ('error' in s) return { error: `${secretId}: ${s.error}` };
  if (s.secretString === undefined) return { error: `${secretId}: the secret has no string value` };
  try {
    const v = JSON.parse(s.secretString) as { username?: unknown; password?: unknown } | null;
    if (typeof v?.username === 'string' && typeof v.password === 'string') return { username: v.username, password: v.password };
  } catch {
    /* reported below, without quoting the value */
  }
  return { error: `${secretId}: registry credentials must be JSON with string "username" and "password"` };
}

/** What a task's containers get from Secrets Manager (see AgentTask in api/agent/protocol.ts). */
export interface TaskCredentials {
  /** Container name -> environment variable name -> value. */
  secrets?: Record<string, Record<string, string>>;
  /** Container name -> registry credentials. */
  registryAuth?: Record<string, { username: string; password: string }>;
  /** Set when anything could not be resolved; then neither of the above is. */
  error?: string;
}

/** Resolves every container's `secrets` and `repositoryCredentials`; all or nothing. */
export function resolveTaskCredentials(ctx: SecretsReader, containers: readonly ContainerDefinition[]): TaskCredentials {
  const out: TaskCredentials = {};
  const errors: string[] = [];
  for (const c of containers) {
    if (!c.name) continue;
    for (const s of c.secrets ?? []) {
      if (!s.name) continue;
      const r = resolveSecretReference(ctx, s.valueFrom);
      if ('error' in r) errors.push(`secret ${s.name} of container ${c.name}: ${r.error}`);
      else ((out.secrets ??= {})[c.name] ??= {})[s.name] = r.value;
    }
    const credentialsParameter = c.repositoryCredentials?.credentialsParameter;
    if (credentialsParameter) {
      const r = resolveRegistryCredentials(ctx, credentialsParameter);
      if ('error' in r) errors.push(`registry credentials of container ${c.name}: ${r.error}`);
      else (out.registryAuth ??= {})[c.name] = r;
    }
  }
  // A task either gets everything it needs or only the reason it cannot start.
  if (errors.length) return { error: errors.join('; ').slice(0, 900) };
  return out;
}
