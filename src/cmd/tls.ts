/**
 * TLS for the control plane: the certificate and key `wharf server --tls-cert --tls-key` serves
 * (HTTPS, and WSS for the agent channel), the self-signed pair `wharf up --tls` makes in the data
 * dir with the openssl CLI, and how clients are told to trust it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { aptInstall, findCommand, hasApt, isRoot } from './docker-setup';
import { ensurePrivateDir, makePrivate, writePrivateFile } from './data-dir';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** The PEM files, read; a missing or unreadable one is named in the error. */
export function readTlsFiles(f: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${(e as Error).message}`);
    }
  };
  const cert = read(f.certFile, 'certificate');
  const key = read(f.keyFile, 'key');
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${f.certFile} is not a PEM certificate`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) throw new Error(`${f.keyFile} is not a PEM private key`);
  return { cert, key };
}

/** Where `wharf up --tls` keeps its pair. */
export function selfSignedPaths(dataDir: string): TlsFiles {
  const dir = join(dataDir, 'tls');
  return { certFile: join(dir, 'wharf.crt'), keyFile: join(dir, 'wharf.key') };
}

/**
 * The data dir's self-signed pair, made on first use (a P-256 key, 825 days, subjectAltName
 * 127.0.0.1, ::1, localhost and `extraHosts`) and reused after, so the clients that trust it
 * keep working across restarts. The key is 0600 from its creation (openssl overwrites the empty
 * file made for it, which keeps the file's mode).
 */
export function ensureSelfSignedCertificate(dataDir: string, extraHosts: string[] = [], say: (s: string) => void = () => undefined): TlsFiles & { created: boolean } {
  const files = selfSignedPaths(dataDir);
  if (existsSync(files.certFile) && existsSync(files.keyFile)) {
    makePrivate(files.keyFile);
    makePrivate(files.certFile);
    return { ...files, created: false };
  }
  let openssl = findCommand('openssl');
  if (!openssl && isRoot() && hasApt()) {
    aptInstall(['openssl'], say);
    openssl = findCommand('openssl');
  }
  if (!openssl) throw new Error('--tls needs the openssl command to make a certificate (apt-get install -y openssl), or give wharf server --tls-cert and --tls-key');
  ensurePrivateDir(join(dataDir, 'tls'));
  const names = new Set(['IP:127.0.0.1', 'IP:::1', 'DNS:localhost']);
  for (const h of extraHosts) if (h && h !== '0.0.0.0' && h !== '::') names.add(isIP(h) ? `IP:${h}` : `DNS:${h}`);
  for (const f of [files.keyFile, files.certFile]) {
    rmSync(f, { force: true });
    writePrivateFile(f, '', { exclusive: true });
  }
  const r = spawnSync(openssl, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '825',
    '-subj', '/CN=wharf', '-addext', `subjectAltName=${[...names].join(',')}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-keyout', files.keyFile, '-out', files.certFile,
  ], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(files.keyFile, { force: true });
    rmSync(files.certFile, { force: true });
    throw new Error(`openssl could not make a certificate: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  makePrivate(files.keyFile);
  makePrivate(files.certFile);
  return { ...files, created: true };
}

/** How to trust the server's certificate, for the banner. */
export function trustInstructions(certFile: string, endpoint: string): string {
  return `TLS: the server's certificate is ${certFile} (self-signed). Trust it with:
  AWS CLI:  AWS_CA_BUNDLE=${certFile} aws ecs list-clusters --endpoint-url ${endpoint}
            (or aws --ca-bundle ${certFile} ...)
  boto3:    boto3.client('ecs', endpoint_url='${endpoint}', verify='${certFile}')
  agents:   wharf agent --endpoint ${endpoint} --ca ${certFile} ...
  (the file is readable by this user only; copy it for others, it holds no secret)

`;
}
