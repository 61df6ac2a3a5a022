/**
 * The txn rules both embedded backends (sqlite, memory) apply, kept in one place so they cannot
 * drift: argument validation, JSON serialisation of values, and which conflict an op raises
 * against a key's current modRevision.
 */
import { StoreConflictError, type TxnOp } from './store';

export interface PreparedOp {
  op: TxnOp['op'];
  key: string;
  /** The value as JSON text, for create/update/put. */
  json?: string;
  /** The value itself (the caller's object: read it only before the txn's first await). */
  value?: unknown;
  expectedRevision?: number;
}

/**
 * Values are stored as JSON text: this is the point where the caller's object is copied, so
 * mutating it after the write cannot change what the store holds.
 */
export function toJson(value: unknown, key: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new TypeError(`store value for ${key} is not JSON-serialisable: ${(e as Error).message}`);
  }
  if (json === undefined) throw new TypeError(`store value for ${key} is not JSON-serialisable (${typeof value})`);
  return json;
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '') throw new TypeError(`store key must be a non-empty string, got ${JSON.stringify(key)}`);
}

function checkRevision(rev: unknown, key: string): asserts rev is number {
  // Catches `update(key, v, entry?.modRevision)` with a missing entry, which would otherwise
  // turn into a confusing conflict.
  if (typeof rev !== 'number' || !Number.isInteger(rev) || rev < 0) {
    throw new TypeError(`expectedRevision for ${key} must be a non-negative integer, got ${String(rev)}`);
  }
}

/** Validates ops, serialises their values, and rejects a key written twice in one txn. */
export function prepareTxn(ops: readonly TxnOp[]): PreparedOp[] {
  if (!Array.isArray(ops)) throw new TypeError('txn ops must be an array');
  const written = new Set<string>();
  return ops.map((op): PreparedOp => {
    checkKey(op.key);
    if (op.op !== 'check') {
      if (written.has(op.key)) throw new Error(`txn writes ${op.key} more than once`);
      written.add(op.key);
    }
    switch (op.op) {
      case 'create':
      case 'put':
        return { op: op.op, key: op.key, json: toJson(op.value, op.key), value: op.value };
      case 'update':
        checkRevision(op.expectedRevision, op.key);
        return { op: 'update', key: op.key, json: toJson(op.value, op.key), value: op.value, expectedRevision: op.expectedRevision };
      case 'delete':
        if (op.expectedRevision !== undefined) checkRevision(op.expectedRevision, op.key);
        return { op: 'delete', key: op.key, expectedRevision: op.expectedRevision };
      case 'check':
        checkRevision(op.expectedRevision, op.key);
        return { op: 'check', key: op.key, expectedRevision: op.expectedRevision };
      default:
        throw new TypeError(`unknown txn op ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  });
}

/** The conflict `op` raises against a key whose current modRevision is `current` (undefined = absent). */
export function txnConflict(op: PreparedOp, current: number | undefined): StoreConflictError | undefined {
  switch (op.op) {
    case 'create':
      return current !== undefined ? new StoreConflictError(op.key, 'exists') : undefined;
    case 'put':
      return undefined;
    case 'update':
    case 'delete':
      if (current === undefined) return new StoreConflictError(op.key, 'missing');
      if (op.expectedRevision !== undefined && current !== op.expectedRevision) return new StoreConflictError(op.key, 'revision');
      return undefined;
    case 'check':
      if (op.expectedRevision === 0) return current !== undefined ? new StoreConflictError(op.key, 'exists') : undefined;
      if (current === undefined) return new StoreConflictError(op.key, 'missing');
      return current !== op.expectedRevision ? new StoreConflictError(op.key, 'revision') : undefined;
  }
}
