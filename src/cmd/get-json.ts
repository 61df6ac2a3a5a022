/** A GET of a small JSON document (a health endpoint), HTTP or HTTPS. */
import http from 'node:http';
import https from 'node:https';

export function getJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    // A self-signed certificate is the usual case of a local installation; health is not secret.
    const req = (u.protocol === 'https:' ? https : http).get(u, { timeout: timeoutMs, ...(u.protocol === 'https:' ? { rejectUnauthorized: false } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (e) {
          reject(e);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
