/** A small ECS client for Wharf's own commands: SigV4-signed JSON 1.1 calls. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { signRequest } from '../lib';
import type { CredentialsFile, KeyPair } from './credentials';

export const DEFAULT_PORT = 4100;
export const DEFAULT_ENDPOINT = `http://127.0.0.1:${DEFAULT_PORT}`;
export const defaultDataDir = () => process.env.WHARF_DATA_DIR ?? join(homedir(), '.wharf');

/** Credentials the way the AWS CLI finds them: environment first, then the local data dir. */
export function resolveCredentials(dataDir = defaultDataDir()): KeyPair {
  const { AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret } = process.env;
  if (id && secret) return { accessKeyId: id, secretAccessKey: secret };
  const path = join(dataDir, 'credentials.json');
  if (existsSync(path)) return (JSON.parse(readFileSync(path, 'utf8')) as CredentialsFile).user;
  throw new Error(`no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run the server with --data-dir ${dataDir}`);
}

export class EcsCallError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) {
    super(`${code}: ${message}`);
  }
}

export class EcsClient {
  constructor(
    readonly endpoint: string,
    private readonly credentials: KeyPair,
    private readonly region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
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
    const res = await fetch(url, { method: 'POST', headers, body });
    const text = await res.text();
    const json = text ? JSON.parse(text) : {};
    if (!res.ok) throw new EcsCallError(String(json.__type ?? res.status), String(json.message ?? text), res.status);
    return json as T;
  }
}
