/**
 * Shared set-up for tests that need a real Docker Engine: decides whether to skip (only when
 * Docker is unreachable AND not in CI; in CI a missing piece is a failure, so that a broken
 * machine cannot pass by skipping) and builds the test images with build.sh (idempotent, so every
 * test file may call it). `npm test` runs the preflight first (test/preflight/), which installs
 * or names whatever is missing, so a skip here means a test file was run on its own.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TEST_DEPENDENCIES } from '../preflight/test-deps';

/** CI=1 (or any value but empty, 0 or false), as `.ci/run` sets it. */
export function inCI(): boolean {
  const v = (process.env.CI ?? '').toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

/** A skip message outside CI; in CI, throws: the test file fails instead of skipping. */
export function skipUnlessCI(why: string): string {
  if (inCI()) throw new Error(`CI must run every test, and this file cannot: ${why} (see test/preflight/test-deps.ts)`);
  return `skipped: ${why}; with CI=1 this is a failure`;
}

let cached: string | false | undefined;

/** A skip message, or false when Docker is usable. Throws in CI when Docker is missing. */
export function dockerSkipReason(): string | false {
  if (cached !== undefined) return cached;
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    cached = skipUnlessCI('`docker info` failed (no Docker Engine answers; `npm test` installs and starts one as root)');
    return cached;
  }
  // The images are busybox and nothing else: a dynamic one would build, then fail in every container.
  const busybox = TEST_DEPENDENCIES.find((d) => d.aptPackage === 'busybox-static')!;
  if (!busybox.present()) throw new Error(`the test images need ${busybox.what}: apt-get install -y ${busybox.aptPackage} (npm test does so as root)`);
  execFileSync(join(__dirname, 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  cached = false;
  return cached;
}
