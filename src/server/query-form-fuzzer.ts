/**
 * The form half of the request fuzzer (server/request-fuzzer.ts) for services in a query
 * protocol (EC2, ELBv2): an input shaped as the model says is written as the form the AWS CLI
 * (botocore's query and ec2 serialisers) would send, then maybe mutated as a form: unknown, repeated
 * or misnumbered parameters, a missing or unknown Action, broken percent-encoding, tens of
 * thousands of parameters, or a body that is no form at all. Written apart from
 * api/query-protocol.ts on purpose: a second reading of the same rules, so that the decoder is
 * tested against the serialisers' conventions rather than against itself.
 */
import type { ServiceModel } from '../api/model';

interface Ref {
  shape: string;
  locationName?: string;
  queryName?: string;
  flattened?: boolean;
}
interface FShape {
  type: string;
  members?: Record<string, Ref>;
  member?: Ref;
  key?: Ref;
  value?: Ref;
  flattened?: boolean;
}

export const QUERY_MUTATIONS = [
  'none',
  'unknown-param',
  'no-action',
  'unknown-action',
  'duplicate-param',
  'index-gap',
  'bad-encoding',
  'many-params',
  'not-a-form',
] as const;
export type QueryMutation = (typeof QUERY_MUTATIONS)[number];

const NOT_FORMS = ['', '\u0000', '&', '=', '==&==', '%', '%%%%', 'Action', '{"Action":"DescribeVpcs"}', '<xml/>', 'Action=%E0%A4%A', '\ud800=\udfff'];
const BAD_ENCODINGS = ['%zz', '%', '%C3', '%ED%A0%80', '%00', '+', '&&&&', '=', '==x', '%25%', 'a=b=c'];
const ODD_ACTIONS = ['NotAnAction', 'describevpcs', 'constructor', '__proto__', 'toString', 'hasOwnProperty', ' DescribeVpcs', 'Describe%00Vpcs'];
const ODD_NAMES = ['Bogus', 'Bogus.1', '__proto__', 'constructor', 'constructor.member.1', 'toString.1.Name', '.', '..', 'a..b', '.1', 'Version.1'];

function shapeOf(model: ServiceModel, name: string): FShape {
  return (model.shapes as Record<string, FShape>)[name] ?? { type: 'string' };
}

/** The parameters of `input` as the serialisers name them, Action and Version first. */
export function encodeForm(model: ServiceModel, operation: string, input: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [
    ['Action', operation],
    ['Version', model.metadata.apiVersion ?? ''],
  ];
  const ec2 = model.metadata.protocol === 'ec2';
  const inputShape = model.operations[operation]?.input?.shape;
  if (inputShape) encodeInto(model, ec2, inputShape, input, '', out, false);
  return out;
}

function memberName(ec2: boolean, name: string, ref: Ref): string {
  if (!ec2) return ref.locationName ?? name;
  if (ref.queryName) return ref.queryName;
  return ref.locationName ? ref.locationName[0]!.toUpperCase() + ref.locationName.slice(1) : name;
}

function encodeInto(model: ServiceModel, ec2: boolean, shapeName: string, v: unknown, prefix: string, out: [string, string][], flattenedRef: boolean): void {
  const s = shapeOf(model, shapeName);
  // A value of the wrong type (a mutation) is written as the text it is, under its own name.
  const scalar = (): void => {
    out.push([prefix, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
  };
  if (v === undefined) return;
  switch (s.type) {
    case 'structure': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return scalar();
      const o = v as Record<string, unknown>;
      for (const [name, ref] of Object.entries(s.members ?? {})) {
        if (!Object.prototype.hasOwnProperty.call(o, name)) continue;
        const key = prefix ? `${prefix}.${memberName(ec2, name, ref)}` : memberName(ec2, name, ref);
        encodeInto(model, ec2, ref.shape, o[name], key, out, !!ref.flattened);
      }
      return;
    }
    case 'list': {
      if (!Array.isArray(v)) return scalar();
      if (v.length === 0) {
        if (!ec2) out.push([prefix, '']);
        return;
      }
      const flat = ec2 || s.flattened || flattenedRef;
      const base = flat ? prefix : `${prefix}.${s.member?.locationName ?? 'member'}`;
      v.forEach((x, i) => encodeInto(model, ec2, s.member!.shape, x, `${base}.${i + 1}`, out, false));
      return;
    }
    case 'map': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return scalar();
      const base = s.flattened || flattenedRef ? prefix : `${prefix}.entry`;
      Object.entries(v as Record<string, unknown>).forEach(([k, x], i) => {
        out.push([`${base}.${i + 1}.${s.key?.locationName ?? 'key'}`, k]);
        encodeInto(model, ec2, s.value!.shape, x, `${base}.${i + 1}.${s.value?.locationName ?? 'value'}`, out, false);
      });
      return;
    }
    case 'timestamp':
      out.push([prefix, typeof v === 'number' ? new Date(v * 1000).toISOString() : String(v)]);
      return;
    default:
      scalar();
  }
}

const encode = (params: [string, string][]) => params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');

/** Lone surrogates cannot be percent-encoded; they are sent as the replacement character. */
function wellFormed(params: [string, string][]): [string, string][] {
  const fix = (s: string) => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  return params.map(([k, v]) => [fix(k), fix(v)]);
}

/** The form body, with the mutation applied. */
export function mutateForm(input: [string, string][], m: QueryMutation, rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const params = wellFormed(input);
  switch (m) {
    case 'none':
      return encode(params);
    case 'unknown-param':
      params.splice(Math.floor(rnd() * (params.length + 1)), 0, [pick(ODD_NAMES), pick(['x', '', '1'])]);
      return encode(params);
    case 'no-action':
      return encode(params.filter(([k]) => k !== 'Action'));
    case 'unknown-action':
      return encode(params.map(([k, v]) => (k === 'Action' ? [k, pick(ODD_ACTIONS)] : [k, v])));
    case 'duplicate-param': {
      const [k] = pick(params);
      params.push([k, pick(['', 'x', '0', 'true', 'DescribeVpcs'])]);
      return encode(params);
    }
    case 'index-gap': {
      const indexed = params.filter(([k]) => /\.\d+(\.|$)/.test(k));
      const to = pick(['0', '2', '-1', '01', '99999999999999999999', '1e3', '']);
      const target = indexed.length ? pick(indexed) : params[params.length - 1]!;
      target[0] = indexed.length ? target[0].replace(/\.\d+(?=\.|$)/, `.${to}`) : `${target[0]}.${to}`;
      return encode(params);
    }
    case 'bad-encoding': {
      const text = encode(params);
      const at = Math.floor(rnd() * (text.length + 1));
      return text.slice(0, at) + pick(BAD_ENCODINGS) + text.slice(at);
    }
    case 'many-params': {
      // Tens of thousands of list items (under the body size limit): the decoder must stay linear.
      const indexed = params.find(([k]) => /\.\d+$/.test(k));
      const base = indexed ? indexed[0].replace(/\.\d+$/, '') : 'Bogus.member';
      const n = pick([1_000, 1_000, 20_000, 60_000]);
      const extra = Array.from({ length: n }, (_, i): [string, string] => [`${base}.${i + 1}`, 'x']);
      return encode([...params, ...extra]);
    }
    case 'not-a-form':
      return pick(NOT_FORMS);
  }
}
