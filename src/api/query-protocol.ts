/**
 * The AWS query protocols, driven by a service model: requests are form-encoded POSTs
 * (`Action=...&Version=...&Member.1=...`), answers are XML. Two flavours share the code:
 *
 * - `ec2` (EC2): a member's form name is its `queryName`, else its `locationName` with the first
 *   letter upper-cased, else its own name; lists are always flat (`GroupId.1`, `Filter.1.Value.1`).
 *   Answers are `<XResponse xmlns=..><requestId>..</requestId>members..</XResponse>`; errors
 *   `<Response><Errors><Error><Code>..` with `<RequestID>`.
 * - `query` (ELBv2, IAM, ...): a member's form name is its `locationName` or own name; lists are
 *   `Name.member.1` unless the shape is `flattened`; maps `Name.entry.1.key`/`.value`. Answers are
 *   `<XResponse xmlns=..><XResult>..</XResult><ResponseMetadata><RequestId>..`; errors
 *   `<ErrorResponse><Error><Type>Sender</Type><Code>..`.
 *
 * In both, an answer's element names are the members' `locationName` (else their own name) and a
 * list's items are `<item>`/`<member>` as its member's `locationName` says. What decoding cannot
 * make sense of (a number that is not one, a missing required member) is a `MalformedQuery`: the
 * caller says it in its service's own words.
 */
import type { ServiceModel } from './model';

export type QueryFlavour = 'ec2' | 'query';

interface Ref {
  shape: string;
  locationName?: string;
  queryName?: string;
  flattened?: boolean;
}
interface QShape {
  type: string;
  members?: Record<string, Ref>;
  required?: string[];
  member?: Ref;
  key?: Ref;
  value?: Ref;
  flattened?: boolean;
  error?: { code?: string };
}

/** Why a request could not be decoded: `missing` names a required member left out. */
export class MalformedQuery extends Error {
  constructor(
    message: string,
    readonly missing?: string,
  ) {
    super(message);
  }
}

export function flavourOf(model: ServiceModel): QueryFlavour {
  return model.metadata.protocol === 'ec2' ? 'ec2' : 'query';
}

function shapeOf(model: ServiceModel, name: string): QShape {
  const s = (model.shapes as Record<string, QShape>)[name];
  if (!s) throw new Error(`model has no shape ${name}`);
  return s;
}

function formName(flavour: QueryFlavour, name: string, ref: Ref): string {
  if (flavour === 'ec2') {
    if (ref.queryName) return ref.queryName;
    if (ref.locationName) return ref.locationName[0]!.toUpperCase() + ref.locationName.slice(1);
    return name;
  }
  return ref.locationName ?? name;
}

/** Splits a form body into its parameters (later values of a repeated name win). */
export function parseForm(body: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(body)) out.set(k, v);
  return out;
}

/** The operation a form names and its input, shaped as the model's input structure. */
export function decodeQueryRequest(model: ServiceModel, form: Map<string, string>): { action: string; input: Record<string, unknown> } {
  const action = form.get('Action') ?? '';
  const op = model.operations[action];
  if (!op) return { action, input: {} };
  const flavour = flavourOf(model);
  const input = op.input ? (decodeValue(model, flavour, op.input.shape, form, '') as Record<string, unknown> | undefined) ?? {} : {};
  if (op.input) checkRequired(model, op.input.shape, input);
  return { action, input };
}

/** How many name segments deep the index of a form's names goes; no model nests its inputs deeper. */
const MAX_FORM_DEPTH = 16;
const formPrefixes = new WeakMap<Map<string, string>, Set<string>>();

/**
 * Whether any form parameter is `prefix` itself or below it. The names and their dotted prefixes
 * are indexed once per form: scanning every name for every lookup made a form of 60,000
 * parameters (a 1 MB body) take minutes to decode.
 */
function hasUnder(form: Map<string, string>, prefix: string): boolean {
  let index = formPrefixes.get(form);
  if (!index) {
    index = new Set();
    for (const k of form.keys()) {
      let dot = k.indexOf('.');
      for (let depth = 1; dot !== -1 && depth < MAX_FORM_DEPTH; depth++, dot = k.indexOf('.', dot + 1)) index.add(k.slice(0, dot));
      if (dot === -1) index.add(k);
    }
    formPrefixes.set(form, index);
  }
  return index.has(prefix);
}

function decodeValue(model: ServiceModel, flavour: QueryFlavour, shapeName: string, form: Map<string, string>, prefix: string, flattenedRef = false): unknown {
  const s = shapeOf(model, shapeName);
  switch (s.type) {
    case 'structure': {
      const out: Record<string, unknown> = {};
      for (const [name, ref] of Object.entries(s.members ?? {})) {
        const key = prefix ? `${prefix}.${formName(flavour, name, ref)}` : formName(flavour, name, ref);
        if (!hasUnder(form, key)) continue;
        const v = decodeValue(model, flavour, ref.shape, form, key, ref.flattened);
        if (v !== undefined) out[name] = v;
      }
      return prefix && Object.keys(out).length === 0 ? undefined : out;
    }
    case 'list': {
      // An empty list is sent as the bare name with an empty value.
      if (form.get(prefix) === '') return [];
      const flat = flavour === 'ec2' || s.flattened || flattenedRef;
      const base = flat ? prefix : `${prefix}.${s.member?.locationName ?? 'member'}`;
      const out: unknown[] = [];
      for (let i = 1; hasUnder(form, `${base}.${i}`); i++) {
        const item = decodeValue(model, flavour, s.member!.shape, form, `${base}.${i}`);
        // A structure's place holding a bare value decodes to nothing: a list has no holes.
        if (item === undefined) throw new MalformedQuery(`${base}.${i} is not a valid ${shapeOf(model, s.member!.shape).type}.`);
        out.push(item);
      }
      return out;
    }
    case 'map': {
      const flat = s.flattened || flattenedRef;
      const base = flat ? prefix : `${prefix}.entry`;
      const keyName = s.key?.locationName ?? 'key';
      const valueName = s.value?.locationName ?? 'value';
      const out: Record<string, unknown> = {};
      for (let i = 1; hasUnder(form, `${base}.${i}`); i++) {
        const k = form.get(`${base}.${i}.${keyName}`);
        if (k === undefined) throw new MalformedQuery(`${base}.${i}.${keyName} is missing.`);
        out[k] = decodeValue(model, flavour, s.value!.shape, form, `${base}.${i}.${valueName}`);
      }
      return out;
    }
    default:
      return decodeScalar(s.type, form.get(prefix), prefix);
  }
}

function decodeScalar(type: string, raw: string | undefined, name: string): unknown {
  if (raw === undefined) return undefined;
  switch (type) {
    case 'integer':
    case 'long': {
      if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new MalformedQuery(`Invalid value '${raw}' for ${name}: expected an integer.`);
      return Number(raw);
    }
    case 'float':
    case 'double': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new MalformedQuery(`Invalid value '${raw}' for ${name}: expected a number.`);
      return n;
    }
    case 'boolean':
      if (raw !== 'true' && raw !== 'false') throw new MalformedQuery(`Invalid value '${raw}' for ${name}: expected true or false.`);
      return raw === 'true';
    default:
      return raw;
  }
}

function checkRequired(model: ServiceModel, shapeName: string, v: unknown): void {
  const s = shapeOf(model, shapeName);
  if (s.type === 'structure' && v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (o[r] === undefined) throw new MalformedQuery(`The request must contain the parameter ${r}`, r);
    for (const [name, ref] of Object.entries(s.members ?? {})) if (o[name] !== undefined) checkRequired(model, ref.shape, o[name]);
  } else if (s.type === 'list' && Array.isArray(v)) {
    for (const x of v) checkRequired(model, s.member!.shape, x);
  }
}

// ---------------------------------------------------------------------------------------------
// Answers

function escapeXml(s: string): string {
  return s
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    // Characters XML 1.0 cannot carry even escaped (a NUL echoed from a request) would make the
    // whole answer unreadable to an XML parser.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd');
}

function encodeValue(model: ServiceModel, shapeName: string, v: unknown): string {
  const s = shapeOf(model, shapeName);
  switch (s.type) {
    case 'structure': {
      let out = '';
      const o = v as Record<string, unknown>;
      for (const [name, ref] of Object.entries(s.members ?? {})) {
        const x = o[name];
        if (x === undefined || x === null) continue;
        out += encodeMember(model, ref.locationName ?? name, ref, x);
      }
      return out;
    }
    case 'timestamp': {
      const d = typeof v === 'number' ? new Date(v * 1000) : new Date(String(v));
      return escapeXml(d.toISOString());
    }
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return escapeXml(String(v));
  }
}

function encodeMember(model: ServiceModel, element: string, ref: Ref, v: unknown): string {
  const s = shapeOf(model, ref.shape);
  if (s.type === 'list') {
    const itemName = s.member?.locationName ?? 'member';
    const items = (v as unknown[]).map((x) => `<${s.flattened || ref.flattened ? element : itemName}>${encodeValue(model, s.member!.shape, x)}</${s.flattened || ref.flattened ? element : itemName}>`).join('');
    return s.flattened || ref.flattened ? items : `<${element}>${items}</${element}>`;
  }
  if (s.type === 'map') {
    const entries = Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `<entry><${s.key?.locationName ?? 'key'}>${escapeXml(k)}</${s.key?.locationName ?? 'key'}><${s.value?.locationName ?? 'value'}>${encodeValue(model, s.value!.shape, x)}</${s.value?.locationName ?? 'value'}></entry>`)
      .join('');
    return `<${element}>${entries}</${element}>`;
  }
  return `<${element}>${encodeValue(model, ref.shape, v)}</${element}>`;
}

function namespaceOf(model: ServiceModel): string {
  const ns = (model.metadata as { xmlNamespace?: string }).xmlNamespace ?? '';
  // EC2's model omits the trailing slash its answers carry.
  return model.metadata.protocol === 'ec2' && ns && !ns.endsWith('/') ? `${ns}/` : ns;
}

/** The XML answer of a successful call. */
export function encodeQueryResponse(model: ServiceModel, action: string, output: unknown, requestId: string): string {
  const op = model.operations[action] as { output?: Ref & { resultWrapper?: string } } | undefined;
  const body = op?.output && output ? encodeValue(model, op.output.shape, output) : '';
  const ns = escapeXml(namespaceOf(model));
  const head = '<?xml version="1.0" encoding="UTF-8"?>\n';
  if (flavourOf(model) === 'ec2') {
    return `${head}<${action}Response xmlns="${ns}"><requestId>${escapeXml(requestId)}</requestId>${body}</${action}Response>`;
  }
  const wrapper = op?.output?.resultWrapper ?? `${action}Result`;
  return `${head}<${action}Response xmlns="${ns}"><${wrapper}>${body}</${wrapper}><ResponseMetadata><RequestId>${escapeXml(requestId)}</RequestId></ResponseMetadata></${action}Response>`;
}

/** The XML answer of a failed call (HTTP 400, or 5xx for a server fault). */
export function encodeQueryError(model: ServiceModel, err: { code: string; message: string; serverFault?: boolean }, requestId: string): string {
  const head = '<?xml version="1.0" encoding="UTF-8"?>\n';
  const code = escapeXml(err.code);
  const message = escapeXml(err.message);
  if (flavourOf(model) === 'ec2') {
    return `${head}<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${escapeXml(requestId)}</RequestID></Response>`;
  }
  const ns = escapeXml(namespaceOf(model));
  return `${head}<ErrorResponse xmlns="${ns}"><Error><Type>${err.serverFault ? 'Receiver' : 'Sender'}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${escapeXml(requestId)}</RequestId></ErrorResponse>`;
}
