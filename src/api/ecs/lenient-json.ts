/**
 * A forgiving reader for task-definition files given to Wharf's own CLI
 * (`wharf task-definition register --file x.json`). People write these by hand, so it accepts
 * what strict JSON refuses but whose meaning is plain:
 *   - `//` and `/* ... *\/` comments,
 *   - trailing commas in objects and arrays,
 *   - numbers written as strings where the ECS model wants an integer (`"memory": "100"`),
 *     `"true"`/`"false"` where it wants a boolean, and numbers where it wants a string
 *     (task-level `"cpu": 256`, environment values).
 * Every such repair is reported in `notes`, so the CLI can show the user what it read.
 * Anything else (a missing quote, a stray token) is still an error, with line and column.
 * The AWS API itself stays strict; this is only for files.
 */
import { WharfError } from '../../core/errors';
import type { RegisterTaskDefinitionRequest } from '../../core/shapes/ecs';

export interface LenientParseResult {
  value: RegisterTaskDefinitionRequest;
  notes: string[];
}

export function parseLenientTaskDefinition(text: string): LenientParseResult {
  const notes: string[] = [];
  const parser = new LenientParser(text, notes);
  const value = parser.parseDocument();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WharfError('SerializationException', 'A task definition file must contain a JSON object.');
  }
  coerce(value, REQUEST_SCHEMA, '', notes);
  return { value: value as unknown as RegisterTaskDefinitionRequest, notes };
}

// ---------------------------------------------------------------------------------------------
// Parsing

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

class LenientParser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly notes: string[],
  ) {}

  parseDocument(): Json {
    const v = this.parseValue();
    this.skipBlank();
    if (this.pos < this.text.length) this.fail('unexpected text after the end of the document');
    return v;
  }

  /** 1-based line and column of a character offset. */
  private where(offset: number): string {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < offset; i++) {
      if (this.text[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    return `line ${line} col ${offset - lineStart + 1}`;
  }

  private fail(what: string, offset = this.pos): never {
    throw new WharfError('SerializationException', `Invalid JSON at ${this.where(offset)}: ${what}.`);
  }

  /** Skip whitespace and comments, noting each comment removed. */
  private skipBlank(): void {
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\uFEFF') {
        this.pos++;
      } else if (ch === '/' && this.text[this.pos + 1] === '/') {
        const start = this.pos;
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.pos++;
        this.notes.push(`removed comment at ${this.where(start)}`);
      } else if (ch === '/' && this.text[this.pos + 1] === '*') {
        const start = this.pos;
        const end = this.text.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated comment', start);
        this.pos = end + 2;
        this.notes.push(`removed comment at ${this.where(start)}`);
      } else {
        return;
      }
    }
  }

  private parseValue(): Json {
    this.skipBlank();
    const ch = this.text[this.pos];
    if (ch === '{') return this.parseObject();
    if (ch === '[') return this.parseArray();
    if (ch === '"') return this.parseString();
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) return this.parseNumber();
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    if (ch === undefined) this.fail('unexpected end of input');
    this.fail(`unexpected character '${ch}'`);
  }

  private parseObject(): Json {
    const out: { [k: string]: Json } = {};
    this.pos++; // {
    for (;;) {
      this.skipBlank();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return out;
      }
      if (this.text[this.pos] !== '"') this.fail('expected a quoted member name or }');
      const key = this.parseString();
      this.skipBlank();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after "${key}"`);
      this.pos++;
      out[key] = this.parseValue();
      if (this.afterItem('}')) return out;
    }
  }

  private parseArray(): Json {
    const out: Json[] = [];
    this.pos++; // [
    this.skipBlank();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.parseValue());
      if (this.afterItem(']')) return out;
    }
  }

  /**
   * After a member or element: a comma (possibly trailing, then the closer) or the closer.
   * Returns true when the container is closed.
   */
  private afterItem(closer: '}' | ']'): boolean {
    this.skipBlank();
    const ch = this.text[this.pos];
    if (ch === closer) {
      this.pos++;
      return true;
    }
    if (ch !== ',') this.fail(`expected ',' or '${closer}'`);
    const comma = this.pos;
    this.pos++;
    this.skipBlank();
    if (this.text[this.pos] === closer) {
      this.notes.push(`removed trailing comma at ${this.where(comma)}`);
      this.pos++;
      return true;
    }
    return false;
  }

  private parseString(): string {
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === undefined || ch === '\n') this.fail('unterminated string', start);
      this.pos++;
      if (ch === '"') return out;
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const esc = this.text[this.pos++];
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (esc !== undefined && esc in simple) {
        out += simple[esc];
      } else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos, this.pos + 4))) {
        out += String.fromCharCode(parseInt(this.text.slice(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else {
        this.fail('invalid escape in string', this.pos - 2);
      }
    }
  }

  private parseNumber(): number {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.pos));
    if (!m) this.fail('invalid number');
    this.pos += m[0].length;
    return Number(m[0]);
  }
}

// ---------------------------------------------------------------------------------------------
// Coercion to the shapes of RegisterTaskDefinitionRequest

type Schema =
  | 'int'
  | 'bool'
  | 'string'
  | { obj: Record<string, Schema> }
  | { list: Schema }
  | { map: Schema };

const obj = (members: Record<string, Schema>): Schema => ({ obj: members });
const list = (item: Schema): Schema => ({ list: item });
const map = (value: Schema): Schema => ({ map: value });

/**
 * Only the members whose type a hand-written file tends to get wrong; the integer and boolean
 * members are those of the ECS model's RegisterTaskDefinitionRequest.
 */
const REQUEST_SCHEMA: Schema = obj({
  cpu: 'string',
  memory: 'string',
  enableFaultInjection: 'bool',
  ephemeralStorage: obj({ sizeInGiB: 'int' }),
  tags: list(obj({ key: 'string', value: 'string' })),
  volumes: list(
    obj({
      configuredAtLaunch: 'bool',
      dockerVolumeConfiguration: obj({ autoprovision: 'bool', driverOpts: map('string'), labels: map('string') }),
      efsVolumeConfiguration: obj({ transitEncryptionPort: 'int' }),
      s3filesVolumeConfiguration: obj({ transitEncryptionPort: 'int' }),
    }),
  ),
  containerDefinitions: list(
    obj({
      cpu: 'int',
      memory: 'int',
      memoryReservation: 'int',
      essential: 'bool',
      startTimeout: 'int',
      stopTimeout: 'int',
      disableNetworking: 'bool',
      privileged: 'bool',
      readonlyRootFilesystem: 'bool',
      interactive: 'bool',
      pseudoTerminal: 'bool',
      portMappings: list(obj({ containerPort: 'int', hostPort: 'int' })),
      restartPolicy: obj({ enabled: 'bool', ignoredExitCodes: list('int'), restartAttemptPeriod: 'int' }),
      mountPoints: list(obj({ readOnly: 'bool' })),
      volumesFrom: list(obj({ readOnly: 'bool' })),
      linuxParameters: obj({
        initProcessEnabled: 'bool',
        sharedMemorySize: 'int',
        maxSwap: 'int',
        swappiness: 'int',
        tmpfs: list(obj({ size: 'int' })),
      }),
      ulimits: list(obj({ softLimit: 'int', hardLimit: 'int' })),
      healthCheck: obj({ interval: 'int', timeout: 'int', retries: 'int', startPeriod: 'int' }),
      environment: list(obj({ name: 'string', value: 'string' })),
      dockerLabels: map('string'),
      logConfiguration: obj({ options: map('string') }),
    }),
  ),
});

const INT_TEXT_RE = /^\s*-?\d+\s*$/;

/**
 * Convert `value` to the scalar type `schema` wants when the conversion is unambiguous; returns
 * the (possibly new) value. Containers are converted in place.
 */
function coerce(value: Json, schema: Schema, path: string, notes: string[]): Json {
  if (schema === 'int') {
    if (typeof value === 'string' && INT_TEXT_RE.test(value)) {
      const n = Number(value.trim());
      notes.push(`${path}: string ${JSON.stringify(value)} -> ${n}`);
      return n;
    }
    return value;
  }
  if (schema === 'bool') {
    if (value === 'true' || value === 'false') {
      notes.push(`${path}: string ${JSON.stringify(value)} -> ${value}`);
      return value === 'true';
    }
    return value;
  }
  if (schema === 'string') {
    if (typeof value === 'number' || typeof value === 'boolean') {
      const s = String(value);
      notes.push(`${path}: ${typeof value} ${s} -> ${JSON.stringify(s)}`);
      return s;
    }
    return value;
  }
  if ('list' in schema) {
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        value[i] = coerce(item, schema.list, `${path}[${i}]`, notes);
      });
    }
    return value;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  if ('map' in schema) {
    for (const k of Object.keys(value)) value[k] = coerce(value[k]!, schema.map, `${path}.${k}`, notes);
    return value;
  }
  // Walk in document order so the notes read top to bottom like the file.
  for (const k of Object.keys(value)) {
    const sub = Object.hasOwn(schema.obj, k) ? schema.obj[k] : undefined;
    if (sub !== undefined) value[k] = coerce(value[k]!, sub, path ? `${path}.${k}` : k, notes);
  }
  return value;
}
