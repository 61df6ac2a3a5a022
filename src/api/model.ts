/**
 * Loads an AWS service model (models/<svc>/service-2.json.gz, shipped with Wharf) and validates
 * request members against it before any handler runs: types, required members, enum values, the
 * model's length, range and pattern constraints, and nulls. Each operation's own rules
 * (cross-field checks, name syntax beyond the model's) live in control/.
 *
 * Patterns are Java regular expressions that AWS matches against the whole value (Java's
 * `matches()`: `[a-z]+` refuses "a b", as CloudWatch Logs and Cloud Map do); they are turned into
 * JavaScript ones once per shape (patternOf).
 *
 * Null is never a value: the AWS SDKs leave an unset member out rather than send `null`, and the
 * models' lists and maps are not sparse (Smithy servers refuse a null item in them). A null
 * member, list item or map value is therefore a SerializationException, wherever it appears, so
 * that no handler sees one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { WharfError } from '../core/errors';
import { enumMessage } from './enum-message';

interface ShapeRef { shape: string }
interface Shape {
  type: string;
  members?: Record<string, ShapeRef>;
  required?: string[];
  member?: ShapeRef;
  key?: ShapeRef;
  value?: ShapeRef;
  enum?: string[];
  min?: number;
  max?: number;
  pattern?: string;
  sparse?: boolean;
}
export interface ServiceModel {
  metadata: { targetPrefix?: string; serviceId: string; apiVersion: string; signingName?: string; endpointPrefix: string; protocol: string };
  operations: Record<string, { name: string; input?: ShapeRef; output?: ShapeRef; errors?: ShapeRef[] }>;
  shapes: Record<string, Shape>;
}

/** The folder holding `models/`, found by walking up from this file (works from src/ and dist/). */
export function modelsDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'models');
    if (existsSync(join(candidate, 'ecs', 'service-2.json.gz'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find the models/ folder (AWS service models) next to Wharf');
}

const cache = new Map<string, ServiceModel>();
export function loadModel(service: 'ecs' | 'ec2' | 'elbv2' | 'servicediscovery' | 'logs' | 'secretsmanager' | 'sts'): ServiceModel {
  let m = cache.get(service);
  if (!m) {
    m = JSON.parse(gunzipSync(readFileSync(join(modelsDir(), service, 'service-2.json.gz'))).toString('utf8')) as ServiceModel;
    cache.set(service, m);
  }
  return m;
}

/** Throws SerializationException / InvalidParameterException when input does not fit the shape. */
export function validateInput(model: ServiceModel, operation: string, input: unknown): void {
  const ref = model.operations[operation]?.input;
  if (!ref) return;
  check(model, ref.shape, input, '');
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

const INT32 = 2 ** 31;
const LONE_SURROGATE = /\p{Cs}/u;

/** The constraint messages of AWS's request validation ("1 validation error detected: ..."). */
function constraint(at: string, shown: unknown, rule: string): WharfError {
  const text = typeof shown === 'string' && shown.length > 64 ? `${shown.slice(0, 64)}...` : String(shown);
  return new WharfError('InvalidParameterException', `1 validation error detected: Value '${text}' at '${at}' failed to satisfy constraint: ${rule}`);
}

function checkLength(s: Shape, v: unknown, n: number, at: string): void {
  if (s.min !== undefined && n < s.min) throw constraint(at, v, `Member must have length greater than or equal to ${s.min}`);
  if (s.max !== undefined && n > s.max) throw constraint(at, v, `Member must have length less than or equal to ${s.max}`);
}

/** Escapes that JavaScript's `u` mode accepts as they are: letters and digits (`\d`, `\p{L}`, `\u0009`) and syntax characters. */
const KEPT_ESCAPE = /[A-Za-z0-9^$\\.*+?()[\]{}|/]/;
const compiled = new Map<string, RegExp | null>();

/**
 * A model pattern as a JavaScript regex over the whole value, or undefined when it cannot be
 * translated (then it is not enforced). Java lets any punctuation be escaped (`\!`, `\=`,
 * `\-` outside a class) where `u` mode refuses it, so such escapes become code point escapes.
 */
export function patternOf(pattern: string): RegExp | undefined {
  let re = compiled.get(pattern);
  if (re === undefined) {
    let js = '';
    // Java reads `[\w-_]` as \w, '-' and '_'; `u` mode refuses a range from a class escape, so
    // such a dash is written as a code point.
    let afterClassEscape = false;
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!;
      if (c === '\\' && i + 1 < pattern.length) {
        const next = pattern[++i]!;
        js += KEPT_ESCAPE.test(next) ? `\\${next}` : `\\u{${next.codePointAt(0)!.toString(16)}}`;
        afterClassEscape = /[dDsSwW]/.test(next);
      } else {
        js += c === '-' && afterClassEscape ? '\\u{2d}' : c;
        afterClassEscape = false;
      }
    }
    try {
      re = new RegExp(`^(?:${js})$`, 'u');
    } catch {
      re = null;
    }
    compiled.set(pattern, re);
  }
  return re ?? undefined;
}

function check(model: ServiceModel, shapeName: string, v: unknown, path: string): void {
  const s = model.shapes[shapeName];
  if (!s || v === undefined) return;
  const at = path || 'input';
  const wrong = (expected: string) =>
    new WharfError('SerializationException', `${at}: expected ${expected}, found ${describe(v)}.`);
  if (v === null) {
    throw new WharfError('SerializationException', `${at}: null is not a valid value; leave the member out instead.`);
  }
  switch (s.type) {
    case 'structure': {
      if (typeof v !== 'object' || Array.isArray(v)) throw wrong('an object');
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) {
        if (o[r] === undefined) {
          throw new WharfError('InvalidParameterException', `${path ? path + '.' : ''}${r} is required.`);
        }
      }
      for (const [name, mref] of Object.entries(s.members ?? {})) {
        if (Object.prototype.hasOwnProperty.call(o, name)) check(model, mref.shape, o[name], path ? `${path}.${name}` : name);
      }
      return;
    }
    case 'list': {
      if (!Array.isArray(v)) throw wrong('a list');
      const item = model.shapes[s.member!.shape];
      v.forEach((x, i) => {
        if (x === null) {
          if (s.sparse) return;
          throw new WharfError('SerializationException', `${at}[${i}]: null is not a valid list item.`);
        }
        if (item) check(model, s.member!.shape, x, `${at}[${i}]`);
      });
      checkLength(s, `[${v.length} items]`, v.length, at);
      return;
    }
    case 'map': {
      if (typeof v !== 'object' || Array.isArray(v)) throw wrong('a map');
      const entries = Object.entries(v as Record<string, unknown>);
      for (const [k, item] of entries) {
        if (s.key) check(model, s.key.shape, k, `${at} key '${k}'`);
        if (item === null) {
          if (s.sparse) continue;
          throw new WharfError('SerializationException', `${at}.${k}: null is not a valid map value.`);
        }
        check(model, s.value!.shape, item, `${at}.${k}`);
      }
      checkLength(s, `{${entries.length} entries}`, entries.length, at);
      return;
    }
    case 'string':
      if (typeof v !== 'string') throw wrong('a string');
      // JSON can spell a lone UTF-16 surrogate (`"\ud800"`), which is no Unicode text: it
      // cannot be stored as UTF-8 nor URI-encoded into a key.
      if (LONE_SURROGATE.test(v)) throw new WharfError('SerializationException', `${at}: the string is not valid Unicode (a lone surrogate).`);
      if (s.enum && !s.enum.includes(v)) {
        throw new WharfError('InvalidParameterException', enumMessage(at, s.enum));
      }
      checkLength(s, v, v.length, at);
      if (s.pattern !== undefined && patternOf(s.pattern)?.test(v) === false) {
        throw constraint(at, v, `Member must satisfy regular expression pattern: ${s.pattern}`);
      }
      return;
    case 'blob':
      if (typeof v !== 'string') throw wrong('a base64 string');
      checkLength(s, '<binary>', Buffer.byteLength(v, 'base64'), at);
      return;
    case 'integer':
    case 'long':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw wrong('an integer');
      if (s.type === 'integer' ? v < -INT32 || v >= INT32 : !Number.isSafeInteger(v)) {
        throw new WharfError('SerializationException', `${at}: ${v} is out of range for ${s.type === 'integer' ? 'a 32-bit' : 'a 64-bit'} integer.`);
      }
      if (s.min !== undefined && v < s.min) throw constraint(at, v, `Member must have value greater than or equal to ${s.min}`);
      if (s.max !== undefined && v > s.max) throw constraint(at, v, `Member must have value less than or equal to ${s.max}`);
      return;
    case 'double':
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw wrong('a number');
      if (s.min !== undefined && v < s.min) throw constraint(at, v, `Member must have value greater than or equal to ${s.min}`);
      if (s.max !== undefined && v > s.max) throw constraint(at, v, `Member must have value less than or equal to ${s.max}`);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') throw wrong('a boolean');
      return;
    case 'timestamp':
      // AWS JSON 1.1 sends timestamps as epoch seconds; a string would be stored and echoed
      // back where SDKs expect a number.
      if (typeof v !== 'number' || !Number.isFinite(v)) throw wrong('a timestamp in epoch seconds');
      return;
    default:
      return;
  }
}
