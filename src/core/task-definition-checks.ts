/**
 * Small building blocks shared by the task-definition rules: the error helpers (ECS answers
 * almost every RegisterTaskDefinition problem with ClientException; tags are the exception and
 * get InvalidParameterException) and type guards for values that came off the wire unchecked.
 */
import { WharfError } from './errors';

/** Family, container and volume names: 1-255 letters, digits, hyphens, underscores. */
export const NAME_RE = /^[A-Za-z0-9_-]{1,255}$/;

export function clientFail(message: string): never {
  throw new WharfError('ClientException', message);
}

export function invalidParameterFail(message: string): never {
  throw new WharfError('InvalidParameterException', message);
}

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
export const isString = (v: unknown): v is string => typeof v === 'string';
export const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
/** A plain object (not null, not an array); keeps the declared type of wire values it narrows. */
export const isObject = <T>(v: T | null | undefined): v is T & object =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** An optional list member: absent is fine, anything but an array is a client error. */
export function optionalArray<T>(value: T[] | undefined, what: string): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) clientFail(`Invalid '${what}' setting. It must be a list.`);
  return value;
}

/**
 * An optional integer within [min, max]. `field` names the member (`healthCheck.interval`) and
 * `where` the object it sits on (`container 'web'`), so the message says which value is wrong.
 */
export function checkOptionalInt(
  value: unknown,
  min: number,
  max: number,
  field: string,
  where?: string,
  unit = '',
): void {
  if (value === undefined || value === null) return;
  if (!isInt(value) || value < min || value > max) {
    const on = where ? ` for ${where}` : '';
    const suffix = unit ? ` ${unit}` : '';
    clientFail(`Invalid '${field}' setting${on}. It must be an integer between ${min} and ${max}${suffix}.`);
  }
}

/** Keep only the listed keys of `obj` (drops members a newer SDK may send that we don't model). */
export function pick<T extends object>(obj: T, keys: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = (obj as Record<string, unknown>)[k];
    if (v !== undefined && v !== null) out[k] = v;
  }
  return out as T;
}

/**
 * Memory and cpu arithmetic (ECS-REFERENCE 3.5 rule 3), for a definition's own values and for a
 * task's after overrides: ECS's words for the first rule broken, or undefined. What a container
 * reserves is memoryReservation when set, else memory. Example: task memory 512 with containers
 * {memory 300} and {memory 400, memoryReservation 200} reserves 300 + 200 = 500 <= 512: valid.
 */
export function taskSizeProblem(
  containers: readonly { name?: string; cpu?: number; memory?: number; memoryReservation?: number }[],
  taskCpu?: number,
  taskMemory?: number,
): string | undefined {
  if (taskMemory !== undefined) {
    const tooBig = containers.find((c) => c.memory !== undefined && c.memory > taskMemory);
    if (tooBig) return `Invalid 'memory' setting for container '${tooBig.name}'. A container's 'memory' cannot be greater than the task 'memory'.`;
    if (containers.reduce((sum, c) => sum + (c.memoryReservation ?? c.memory ?? 0), 0) > taskMemory) {
      const field = containers.some((c) => c.memoryReservation !== undefined) ? 'memoryReservation' : 'memory';
      return `The sum of all container '${field}' values cannot be greater than the value of the task 'memory'.`;
    }
  }
  if (taskCpu !== undefined && containers.reduce((sum, c) => sum + (c.cpu ?? 0), 0) > taskCpu) {
    return "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.";
  }
  return undefined;
}
