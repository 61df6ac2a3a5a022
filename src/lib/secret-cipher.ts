import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Authenticated encryption of small values at rest (Secrets Manager values): AES-256-GCM, a
 * random 12-byte IV per value, and associated data that binds a sealed value to the record it
 * belongs to, so a sealed value copied into another record does not open there.
 *
 * A sealed value is `v1:` and base64 of IV (12) | tag (16) | ciphertext.
 */
export interface SecretCipher {
  seal(plaintext: string, associatedData: string): string;
  /** Throws SecretDecryptionError when the key is not the one that sealed it or the value was altered. */
  open(sealed: string, associatedData: string): string;
}

export class SecretDecryptionError extends Error {}

export const SECRET_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1:';

export function aesGcmSecretCipher(key: Buffer): SecretCipher {
  if (key.length !== SECRET_KEY_BYTES) throw new TypeError(`an AES-256 key is ${SECRET_KEY_BYTES} bytes, not ${key.length}`);
  return {
    seal(plaintext, associatedData) {
      const iv = randomBytes(IV_BYTES);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(associatedData, 'utf8'));
      const body = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
      return VERSION + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
    },
    open(sealed, associatedData) {
      if (!sealed.startsWith(VERSION)) throw new SecretDecryptionError('the value is not in a sealed format this build knows');
      const raw = Buffer.from(sealed.slice(VERSION.length), 'base64');
      if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretDecryptionError('the sealed value is truncated');
      const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
      d.setAAD(Buffer.from(associatedData, 'utf8'));
      d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
      } catch {
        // GCM says only "unable to authenticate": a wrong key and an altered value look the same.
        throw new SecretDecryptionError('the value does not authenticate under this key (another key sealed it, or it was altered)');
      }
    },
  };
}
