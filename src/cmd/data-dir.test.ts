import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SESSION_TOKEN_KEY_FILE, loadOrCreateSessionTokenKey } from './data-dir';

const run = promisify(execFile);

test('the session token key is made once, 0600 whatever the umask, and read back the same', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-session-key-'));
  const old = process.umask(0);
  try {
    const a = loadOrCreateSessionTokenKey(dir);
    assert.equal(a.length, 32);
    const file = path.join(dir, SESSION_TOKEN_KEY_FILE);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(loadOrCreateSessionTokenKey(dir), a);
    assert.deepEqual(fs.readdirSync(dir), [SESSION_TOKEN_KEY_FILE], 'no temporary file is left');
    fs.writeFileSync(file, Buffer.alloc(7));
    assert.throws(() => loadOrCreateSessionTokenKey(dir), /holds 7 bytes, not 32/);
  } finally {
    process.umask(old);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('replicas starting together on one data dir all end up with the same key', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-session-key-'));
  try {
    const script = `const { loadOrCreateSessionTokenKey } = require(${JSON.stringify(path.join(__dirname, 'data-dir.ts'))}); console.log(loadOrCreateSessionTokenKey(${JSON.stringify(dir)}).toString('hex'));`;
    const outs = await Promise.all(Array.from({ length: 4 }, () => run(process.execPath, ['--import', 'tsx', '-e', script])));
    const keys = new Set(outs.map((o) => o.stdout.trim()));
    assert.equal(keys.size, 1, [...keys].join(' '));
    assert.equal([...keys][0], fs.readFileSync(path.join(dir, SESSION_TOKEN_KEY_FILE)).toString('hex'));
    assert.deepEqual(fs.readdirSync(dir), [SESSION_TOKEN_KEY_FILE]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
