/**
 * A headless Debian Chromium driven by playwright-core, for the web console's tests, and the
 * console's build: the tests need dist/console (npm test builds it first; a file run on its own
 * builds it here).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { CHROMIUM } from '../../preflight/test-deps';
import { skipUnlessCI } from '../../images/docker-test-env';
import { REPO } from './wharf-server';
import { waitUntil } from './processes';

export const ARTIFACTS = path.join(REPO, 'test-artifacts', 'console');

/** A skip message (outside CI) when there is no Chromium to drive, else false. */
export function browserSkipReason(): string | false {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return false;
  } catch {
    return skipUnlessCI(`no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
  }
}

/** Builds dist/console when it is missing or older than a source of src/console. */
export function ensureConsoleBuilt(): void {
  const index = path.join(REPO, 'dist', 'console', 'index.html');
  const src = path.join(REPO, 'src', 'console');
  const built = fs.existsSync(index) ? fs.statSync(index).mtimeMs : 0;
  if (fs.readdirSync(src).every((f) => fs.statSync(path.join(src, f)).mtimeMs <= built)) return;
  execFileSync(process.execPath, [path.join(REPO, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'src/console/vite.config.ts'], { cwd: REPO, stdio: 'inherit' });
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Waits until the locator's text satisfies `pred` (the page polls the API on its own). */
export async function waitText(loc: Locator, pred: (text: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
  let last = '';
  return waitUntil(
    async () => {
      last = (await loc.first().textContent({ timeout: 1000 }).catch(() => null)) ?? '';
      return pred(last) ? last : false;
    },
    what,
    { timeoutMs, intervalMs: 100, describe: () => last },
  );
}
