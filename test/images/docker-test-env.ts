/**
 * Shared set-up for tests that need a real Docker Engine: decides whether to skip (only when
 * Docker is unreachable AND `CI` is unset; in CI a missing Docker is a failure) and builds the
 * test images with build.sh (idempotent, so every test file may call it).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

let cached: string | false | undefined;

/** A skip message, or false when Docker is usable. Throws in CI when Docker is missing. */
export function dockerSkipReason(): string | false {
  if (cached !== undefined) return cached;
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    if (process.env.CI) throw new Error('Docker is required in CI but `docker info` failed');
    cached = 'skipped: `docker info` failed (no Docker Engine); set CI=1 to make this a failure';
    return cached;
  }
  execFileSync(join(__dirname, 'build.sh'), { stdio: 'ignore', timeout: 120_000 });
  cached = false;
  return cached;
}
