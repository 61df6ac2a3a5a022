/**
 * Loads an AWS service model (models/<svc>/service-2.json.gz, shipped with Wharf) and validates
 * request members against it: types, required members and enum values. Each operation's own
 * rules (ranges, cross-field checks) live in control/.
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
export function loadModel(service: 'ecs' | 'elbv2' | 'servicediscovery' | 'logs'): ServiceModel {
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

function check(model: ServiceModel, shapeName: string, v: unknown, path: string): void {
  const s = model.shapes[shapeName];
  if (!s || v === undefined || v === null) return;
  const at = path || 'input';
  const wrong = (expected: string) =>
    new WharfError('SerializationException', `${at}: expected ${expected}, found ${describe(v)}.`);
  switch (s.type) {
    case 'structure': {
      if (typeof v !== 'object' || Array.isArray(v)) throw wrong('an object');
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) {
        if (o[r] === undefined || o[r] === null) {
          throw new WharfError('InvalidParameterException', `${path ? path + '.' : ''}${r} is required.`);
        }
      }
      for (const [name, mref] of Object.entries(s.members ?? {})) {
        if (name in o) check(model, mref.shape, o[name], path ? `${path}.${name}` : name);
      }
      return;
    }
    case 'list':
      if (!Array.isArray(v)) throw wrong('a list');
      v.forEach((item, i) => check(model, s.member!.shape, item, `${at}[${i}]`));
      return;
    case 'map':
      if (typeof v !== 'object' || Array.isArray(v)) throw wrong('a map');
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) check(model, s.value!.shape, item, `${at}.${k}`);
      return;
    case 'string':
      if (typeof v !== 'string') throw wrong('a string');
      if (s.enum && !s.enum.includes(v)) {
        throw new WharfError('InvalidParameterException', enumMessage(at, s.enum));
      }
      return;
    case 'integer':
    case 'long':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw wrong('an integer');
      return;
    case 'double':
    case 'float':
      if (typeof v !== 'number') throw wrong('a number');
      return;
    case 'boolean':
      if (typeof v !== 'boolean') throw wrong('a boolean');
      return;
    case 'timestamp':
      if (typeof v !== 'number' && typeof v !== 'string') throw wrong('a timestamp');
      return;
    default:
      return;
  }
}
