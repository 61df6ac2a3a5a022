/**
 * Generates API requests from an AWS service model for the API fuzz test
 * (server/api-fuzz.test.ts): mostly plausible inputs (required members present, enum values,
 * lengths and ranges within the model's bounds, names of resources that exist), each with one
 * mutation of the kinds that found server errors before: null members and list items, wrong
 * types, out-of-range numbers, huge strings, unknown members, wrong enum values, deep nesting,
 * odd but well-typed strings, and bodies that are not JSON objects. Services in a query protocol
 * (EC2, ELBv2) get the same plausible inputs and value mutations, form-encoded as the AWS CLI does
 * (server/query-form-fuzzer.ts), plus mutations of the form itself. Deterministic for a seed, so a
 * failure is reproduced by its seed and index.
 */
import { seededRandom } from '../lib/seeded-random';
import type { ServiceModel } from '../api/model';
import { QUERY_MUTATIONS, encodeForm, mutateForm, type QueryMutation } from './query-form-fuzzer';

interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  required?: string[];
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  enum?: string[];
  min?: number;
  max?: number;
}

export interface FuzzService {
  /** `json` (X-Amz-Target and a JSON body) unless `query` (form-encoded, `Action=`). */
  protocol?: 'json' | 'query';
  /** X-Amz-Target prefix (JSON protocol). */
  targetPrefix: string;
  signingName: string;
  model: ServiceModel;
  /** The operations to call (the implemented ones; the others answer a fixed error). */
  operations: readonly string[];
}

export interface FuzzRequest {
  service: FuzzService;
  operation: string;
  /** What was done to the plausible input, for the failure report. */
  mutation: string;
  body: string;
}

const MUTATIONS = [
  'none',
  'null-member',
  'null-item',
  'wrong-type',
  'out-of-range',
  'huge-string',
  'unknown-member',
  'wrong-enum',
  'deep-nesting',
  'odd-string',
  'not-an-object',
] as const;
type Mutation = (typeof MUTATIONS)[number];

const ODD_STRINGS = [
  '', ' ', '/', '//', ':', '*', '%', '\u0000', '\ud800', '..', '../..', 'a/b/c', 'arn:', 'arn:aws:ecs:', 'arn:aws:ecs:us-east-1:123456789012:',
  'arn:aws:ecs:us-east-1:123456789012:task/', 'arn:aws:ecs:us-east-1:123456789012:task-definition/x:', 'x:0', 'x:-1', 'x:99999999999999999999',
  'fuzz:1:2', '__proto__', 'constructor', 'hasOwnProperty', '0', '-1', '1e400', 'NaN', 'true', 'null', '🐳', 'ａｂｃ', 'a'.repeat(300), ' fuzz ', 'FUZZ',
];
const NOT_OBJECTS = ['', 'null', '[]', '[null]', '"x"', '1', 'true', '{', '{"a":', '{"a":1}}', '\u0000', '{"__proto__":{"x":1}}'];
const UNKNOWN_MEMBERS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'unknownMember', ''];
const OUT_OF_RANGE = [-1, -(2 ** 31) - 1, 2 ** 31, 2 ** 53 + 2, 1e308, 0.5, -0.5, 1e-300];

/** A location in the generated input that a mutation can replace. */
interface Slot {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  shape: Shape;
}

export class RequestFuzzer {
  private readonly rnd: () => number;
  /** Raw JSON texts substituted for placeholder strings after serialisation (1e400, deep nests). */
  private raw = new Map<string, string>();

  constructor(
    private readonly services: readonly FuzzService[],
    seed: number,
    /** Names and ARNs of resources that exist, so that plausible requests reach deep code. */
    private readonly known: readonly string[],
  ) {
    this.rnd = seededRandom(seed);
    this.operations = services.flatMap((service) => service.operations.map((op): [FuzzService, string] => [service, op]));
  }
  private readonly operations: [FuzzService, string][];

  next(): FuzzRequest {
    // Every operation equally often, whatever its service.
    const [service, operation] = this.pick(this.operations);
    if (service.protocol === 'query') return this.nextQuery(service, operation);
    const mutation = this.rnd() < 0.25 ? 'none' : this.pick(MUTATIONS.slice(1));
    this.raw = new Map();
    if (mutation === 'not-an-object') return { service, operation, mutation, body: this.pick(NOT_OBJECTS) };
    const inputShape = service.model.operations[operation]?.input?.shape;
    const input: Record<string, unknown> = inputShape ? (this.value(service.model, inputShape, 0) as Record<string, unknown>) : {};
    const applied = this.mutate(service.model, inputShape, input, mutation);
    let body = JSON.stringify(input);
    for (const [token, text] of this.raw) body = body.split(JSON.stringify(token)).join(text);
    return { service, operation, mutation: applied, body };
  }

  /**
   * A form-encoded request: a plausible input, maybe with one of the value mutations that a form
   * can carry (a form has no null, no nesting but its names, no JSON types), then maybe one of the
   * form's own mutations (query-form-fuzzer.ts).
   */
  private nextQuery(service: FuzzService, operation: string): FuzzRequest {
    this.raw = new Map();
    const inputShape = service.model.operations[operation]?.input?.shape;
    const input: Record<string, unknown> = inputShape ? (this.value(service.model, inputShape, 0) as Record<string, unknown>) : {};
    const valueMutation = this.rnd() < 0.4 ? 'none' : this.pick(['wrong-type', 'out-of-range', 'huge-string', 'wrong-enum', 'odd-string'] as const);
    let applied = this.mutate(service.model, inputShape, input, valueMutation);
    const params = encodeForm(service.model, operation, input).map(([k, v]): [string, string] => [k, this.raw.get(v) ?? v]);
    const formMutation: QueryMutation = this.rnd() < 0.6 ? 'none' : this.pick(QUERY_MUTATIONS.slice(1));
    const body = mutateForm(params, formMutation, this.rnd);
    if (formMutation !== 'none') applied = applied === 'none' ? formMutation : `${applied}, ${formMutation}`;
    return { service, operation, mutation: applied, body };
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }

  private value(model: ServiceModel, shapeName: string, depth: number): unknown {
    const s = model.shapes[shapeName] as Shape | undefined;
    if (!s) return 'x';
    switch (s.type) {
      case 'structure': {
        const o: Record<string, unknown> = {};
        for (const [name, ref] of Object.entries(s.members ?? {})) {
          const required = s.required?.includes(name);
          if (required || (depth < 4 && this.rnd() < 0.35)) o[name] = this.value(model, ref.shape, depth + 1);
        }
        return o;
      }
      case 'list': {
        const n = Math.max(s.min ?? 0, depth < 4 ? this.int(0, 3) : 0);
        return Array.from({ length: Math.min(n, s.max ?? n) }, () => this.value(model, s.member!.shape, depth + 1));
      }
      case 'map': {
        const o: Record<string, unknown> = {};
        for (let i = depth < 4 ? this.int(0, 2) : 0; i > 0; i--) o[this.word()] = this.value(model, s.value!.shape, depth + 1);
        return o;
      }
      case 'string': {
        if (s.enum) return this.pick(s.enum);
        if (this.rnd() < 0.6) {
          const k = this.pick(this.known);
          if (k.length >= (s.min ?? 0) && k.length <= (s.max ?? Infinity)) return k;
        }
        const len = this.int(s.min ?? 1, Math.min(s.max ?? 12, Math.max(s.min ?? 1, 12)));
        return Array.from({ length: len }, () => this.pick([...'abcdefghijklmnopqrstuvwxyz0123456789-_'])).join('');
      }
      case 'blob':
        return Buffer.from(this.word()).toString('base64');
      case 'integer':
      case 'long':
        return this.int(s.min ?? 0, Math.min(s.max ?? 20, (s.min ?? 0) + 20));
      case 'double':
      case 'float':
        return (s.min ?? 0) + this.rnd() * Math.min((s.max ?? 100) - (s.min ?? 0), 100);
      case 'boolean':
        return this.rnd() < 0.5;
      case 'timestamp':
        return Math.floor(Date.now() / 1000) - this.int(0, 3600);
      default:
        return null;
    }
  }

  private word(): string {
    return this.pick(['a', 'key', 'fuzz', 'com.example.x', 'ecs.capability', 'x_y']);
  }

  private slots(model: ServiceModel, shapeName: string | undefined, v: unknown, out: Slot[]): void {
    const s = shapeName ? (model.shapes[shapeName] as Shape | undefined) : undefined;
    if (!s || v === null || typeof v !== 'object') return;
    if (s.type === 'structure') {
      const o = v as Record<string, unknown>;
      for (const [name, ref] of Object.entries(s.members ?? {})) {
        const ms = model.shapes[ref.shape] as Shape;
        out.push({ parent: o, key: name, shape: ms });
        if (name in o) this.slots(model, ref.shape, o[name], out);
      }
    } else if (s.type === 'list' && Array.isArray(v)) {
      v.forEach((item, i) => {
        out.push({ parent: v, key: i, shape: model.shapes[s.member!.shape] as Shape });
        this.slots(model, s.member!.shape, item, out);
      });
    } else if (s.type === 'map') {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        out.push({ parent: o, key: k, shape: model.shapes[s.value!.shape] as Shape });
        this.slots(model, s.value!.shape, o[k], out);
      }
    }
  }

  /** Applies the mutation at a random fitting slot; returns a description of what it did. */
  private mutate(model: ServiceModel, shapeName: string | undefined, input: Record<string, unknown>, m: Mutation): string {
    if (m === 'none') return m;
    const all: Slot[] = [];
    this.slots(model, shapeName, input, all);
    const set = (slot: Slot, v: unknown) => ((slot.parent as Record<string | number, unknown>)[slot.key] = v);
    const where = (slot: Slot) => `${m} at ${String(slot.key)}`;
    const fitting = (f: (s: Slot) => boolean) => {
      const xs = all.filter(f);
      return xs.length ? this.pick(xs) : undefined;
    };
    switch (m) {
      case 'null-member':
      case 'wrong-type': {
        const slot = fitting(() => true);
        if (!slot) break;
        const wrong: Record<string, unknown[]> = {
          string: [1, true, {}, ['x']],
          integer: ['1', true, 1.5, [], {}],
          long: ['1', false, 2.5],
          double: ['1.0', true],
          boolean: ['true', 0, 1, 'false'],
          structure: ['x', 1, [], [{}]],
          list: ['x', {}, 1, {'0': 'x'}],
          map: ['x', [], [['a', 'b']], 1],
          timestamp: [true, {}, [], 'yesterday', '2026-01-01T00:00:00Z', ''],
          blob: [1, {}, true],
        };
        set(slot, m === 'null-member' ? null : this.pick(wrong[slot.shape.type] ?? [null]));
        return where(slot);
      }
      case 'null-item': {
        const lists = all.filter((s) => s.shape.type === 'list' || s.shape.type === 'map');
        const slot = lists.length ? this.pick(lists) : undefined;
        if (!slot) break;
        if (slot.shape.type === 'list') {
          const cur = (slot.parent as Record<string | number, unknown>)[slot.key];
          set(slot, [...(Array.isArray(cur) ? cur : []), null]);
        } else {
          set(slot, { a: null });
        }
        return where(slot);
      }
      case 'out-of-range': {
        const slot = fitting((s) => ['integer', 'long', 'double', 'float', 'string', 'list'].includes(s.shape.type));
        if (!slot) break;
        if (slot.shape.type === 'string') set(slot, 'x'.repeat((slot.shape.max ?? 2048) + 1));
        else if (slot.shape.type === 'list') set(slot, []);
        else if (this.rnd() < 0.2) {
          const token = `@raw${this.raw.size}@`;
          this.raw.set(token, this.pick(['1e400', '-1e400', '123456789012345678901234567890', '-0', '1E2']));
          set(slot, token);
        } else {
          set(slot, this.pick([...OUT_OF_RANGE, (slot.shape.min ?? 0) - 1, (slot.shape.max ?? 2 ** 31) + 1]));
        }
        return where(slot);
      }
      case 'huge-string': {
        const slot = fitting((s) => s.shape.type === 'string');
        if (!slot) break;
        // Past a length limit, past the 64 KiB a header-sized buffer holds, and past the 1 MiB
        // body limit (once encoded), in characters whatever the unit.
        const unit = this.pick(['x', 'arn:aws:ecs:', '/', '\u00e9']);
        set(slot, unit.repeat(Math.ceil(this.pick([5_000, 5_000, 70_000, 70_000, 600_000]) / unit.length)));
        return where(slot);
      }
      case 'unknown-member': {
        const structs = all.filter((s) => s.shape.type === 'structure');
        const st = structs.length && this.rnd() < 0.5 ? this.pick(structs) : undefined;
        const target = st ? (st.parent as Record<string | number, unknown>)[st.key] : input;
        const o = target && typeof target === 'object' && !Array.isArray(target) ? (target as Record<string, unknown>) : input;
        const name = this.pick(UNKNOWN_MEMBERS);
        Object.defineProperty(o, name, { value: this.pick([null, 1, 'x', { polluted: true }, []]), enumerable: true, writable: true, configurable: true });
        return `unknown-member ${name}`;
      }
      case 'wrong-enum': {
        const slot = fitting((s) => s.shape.type === 'string' && !!s.shape.enum);
        if (!slot) break;
        const cur = (slot.parent as Record<string | number, unknown>)[slot.key];
        set(slot, this.pick(['NOT_A_VALUE', '', typeof cur === 'string' ? cur.toLowerCase() : 'x', ' ' + String(cur)]));
        return where(slot);
      }
      case 'deep-nesting': {
        const slot = fitting(() => true);
        const depth = this.pick([50, 1000, 5000]);
        const token = `@raw${this.raw.size}@`;
        this.raw.set(token, this.rnd() < 0.5 ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
        if (slot) set(slot, token);
        else input.deep = token;
        return slot ? where(slot) : 'deep-nesting at top';
      }
      case 'odd-string': {
        const slot = fitting((s) => s.shape.type === 'string' && !s.shape.enum);
        if (!slot) break;
        set(slot, this.pick(ODD_STRINGS));
        return where(slot);
      }
      default:
        break;
    }
    return `${m} (no place for it: none)`;
  }
}
