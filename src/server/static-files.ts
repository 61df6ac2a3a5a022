/**
 * The web console's files (built by Vite into dist/console) served under `/console/`, with `/`
 * redirected there. Only GET and HEAD; every path is resolved inside the root and refused if it
 * leaves it, so `..`, encoded slashes and NUL bytes cannot reach another file.
 *
 * The console holds no secret: it is a client of the public API like the AWS CLI, signing each
 * call with SigV4 in the browser, so these files need no authentication.
 */
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

export const CONSOLE_PATH = '/console';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/**
 * The page may run only its own scripts and talk only to this origin: an injected script (a task
 * name shown on a page, say) could otherwise read the keys from sessionStorage and send them away.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Answers the request if it is the console's (true), else leaves it to the caller (false). */
export type StaticFilesHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function staticFiles(root: string): StaticFilesHandler {
  const base = resolve(root);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q >= 0 ? url.slice(0, q) : url;
    if (pathname === '/') return redirect(res, `${CONSOLE_PATH}/`, 302);
    if (pathname === CONSOLE_PATH) return redirect(res, `${CONSOLE_PATH}/`, 301);
    if (!pathname.startsWith(`${CONSOLE_PATH}/`)) return false;
    let rel: string;
    try {
      rel = decodeURIComponent(pathname.slice(CONSOLE_PATH.length + 1));
    } catch {
      return plain(res, 400, 'Bad path.');
    }
    if (rel.includes('\0') || rel.includes('\\') || rel.split('/').some((s) => s === '..')) return plain(res, 400, 'Bad path.');
    if (rel === '') rel = 'index.html';
    const file = resolve(base, rel);
    if (file !== base && !file.startsWith(base + sep)) return plain(res, 400, 'Bad path.');
    let body: Buffer;
    try {
      if (!statSync(file).isFile()) return plain(res, 404, 'Not found.');
      body = readFileSync(file);
    } catch {
      if (rel === 'index.html') return plain(res, 404, 'The console is not built: run `npm run build`.');
      return plain(res, 404, 'Not found.');
    }
    // Vite names everything under assets/ by its content hash, so it never changes; index.html
    // names the current assets and must be revalidated every time.
    const immutable = rel.startsWith('assets/');
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

function redirect(res: ServerResponse, location: string, status: number): true {
  res.writeHead(status, { location, 'content-length': 0, 'cache-control': 'no-cache' });
  res.end();
  return true;
}

function plain(res: ServerResponse, status: number, text: string): true {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  res.end(text);
  return true;
}
