/** Small ECS and EC2 clients for Wharf's own commands: SigV4-signed JSON 1.1 and EC2 query calls. */
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { signRequest } from '../lib';
import type { CredentialsFile, KeyPair } from './credentials';

export const DEFAULT_PORT = 4100;
export const DEFAULT_ENDPOINT = `http://127.0.0.1:${DEFAULT_PORT}`;
export const defaultDataDir = () => process.env.WHARF_DATA_DIR ?? join(homedir(), '.wharf');

/**
 * Credentials the way the AWS CLI finds them: environment first (with AWS_SESSION_TOKEN when the
 * keys are a session's, from `aws sts get-session-token`), then the local data dir.
 */
export function resolveCredentials(dataDir = defaultDataDir()): KeyPair & { sessionToken?: string } {
  const { AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret, AWS_SESSION_TOKEN: token } = process.env;
  if (id && secret) return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
  const path = join(dataDir, 'credentials.json');
  if (existsSync(path)) return (JSON.parse(readFileSync(path, 'utf8')) as CredentialsFile).user;
  throw new Error(`no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --data-dir DIR of a server on this host (looked for ${path})`);
}

/**
 * The certificates an https endpoint must chain to, as the AWS CLI and SDKs find them:
 * AWS_CA_BUNDLE names a PEM file; without it, the system's trusted CAs.
 */
export function caBundle(caFile?: string, env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const path = caFile ?? env.AWS_CA_BUNDLE;
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read the CA bundle ${path} (${caFile ? '--ca' : 'AWS_CA_BUNDLE'}): ${(e as Error).message}`);
  }
}

/** One POST (node:http/https rather than fetch, which takes no CA bundle). */
function post(url: string, headers: Record<string, string>, body: string, caFile?: string): Promise<{ ok: boolean; status: number; text: string }> {
  const u = new URL(url);
  const ca = u.protocol === 'https:' ? caBundle(caFile) : undefined;
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? https : http).request(u, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, status, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      // A certificate that does not verify: say what would make it verify.
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(e.code ?? '')) reject(new Error(`the TLS certificate of ${u.origin} is not trusted (${e.code}: ${e.message}); pass --ca FILE or set AWS_CA_BUNDLE to the certificate or CA the server uses`));
      else reject(e);
    });
    req.end(body);
  });
}

export class EcsCallError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) {
    super(`${code}: ${message}`);
  }
}

export class EcsClient {
  constructor(
    readonly endpoint: string,
    private readonly credentials: KeyPair & { sessionToken?: string },
    private readonly region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    /** A PEM file the server's certificate must chain to (`--ca`); default AWS_CA_BUNDLE. */
    private readonly caFile?: string,
  ) {}

  async call<T = any>(operation: string, input: unknown): Promise<T> {
    const body = JSON.stringify(input ?? {});
    const url = this.endpoint.replace(/\/?$/, '/');
    const headers: Record<string, string> = {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `AmazonEC2ContainerServiceV20141113.${operation}`,
    };
    Object.assign(headers, signRequest({ method: 'POST', url, headers, body }, { ...this.credentials, region: this.region, service: 'ecs' }));
    delete headers.host;
    const res = await post(url, headers, body, this.caFile);
    const text = res.text;
    const json = text ? JSON.parse(text) : {};
    if (!res.ok) throw new EcsCallError(String(json.__type ?? res.status), String(json.message ?? text), res.status);
    return json as T;
  }
}

/** An XML element as the EC2 client reads it: its text, or its children in order. */
interface XmlNode {
  name: string;
  text: string;
  children: XmlNode[];
}

/** Parses the XML of an AWS answer (elements and text; no attributes, comments or CDATA matter). */
export function parseXml(xml: string): XmlNode {
  const root: XmlNode = { name: '', text: '', children: [] };
  const stack = [root];
  const unescape = (t: string) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  for (const m of xml.matchAll(/<(\/?)([A-Za-z_][\w.:-]*)[^>]*?(\/?)>|([^<]+)/g)) {
    const top = stack[stack.length - 1]!;
    if (m[4] !== undefined) top.text += unescape(m[4]);
    else if (m[1]) {
      if (stack.length > 1) stack.pop();
    } else {
      const node: XmlNode = { name: m[2]!, text: '', children: [] };
      top.children.push(node);
      if (!m[3]) stack.push(node);
    }
  }
  return root;
}

/** A small EC2 client: the query protocol, answers read as lists of flat records. */
export class Ec2Client {
  readonly region: string;
  constructor(
    readonly endpoint: string,
    private readonly credentials: KeyPair & { sessionToken?: string },
    region?: string,
    /** A PEM file the server's certificate must chain to (`--ca`); default AWS_CA_BUNDLE. */
    private readonly caFile?: string,
  ) {
    this.region = region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  }

  /** Calls `action` and returns the `<item>`s of the list `listElement` as name -> text records. */
  async list(action: string, listElement: string, params: Record<string, string> = {}): Promise<Record<string, string>[]> {
    const body = new URLSearchParams({ Action: action, Version: '2016-11-15', ...params }).toString();
    const url = this.endpoint.replace(/\/?$/, '/');
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
    Object.assign(headers, signRequest({ method: 'POST', url, headers, body }, { ...this.credentials, region: this.region, service: 'ec2' }));
    delete headers.host;
    const res = await post(url, headers, body, this.caFile);
    const doc = parseXml(res.text);
    if (!res.ok) {
      const find = (n: XmlNode, name: string): XmlNode | undefined => (n.name === name ? n : n.children.map((c) => find(c, name)).find(Boolean));
      throw new EcsCallError(find(doc, 'Code')?.text ?? String(res.status), find(doc, 'Message')?.text ?? '', res.status);
    }
    const list = doc.children[0]?.children.find((c) => c.name === listElement);
    return (list?.children ?? []).map((item) => Object.fromEntries(item.children.filter((c) => c.children.length === 0).map((c) => [c.name, c.text])));
  }
}
