// Imported into every test process by scripts/run-tests.js; two guards against a test file that
// never ends, which would otherwise hold the whole run until CI's own limit.
//
// 1. Hooks get a time limit. node:test applies a suite's `timeout` to its tests but not to its
//    before/after hooks: a hook awaiting something that never comes (a process that never exits, a
//    line never printed) hangs the file forever. Every hook without a timeout of its own gets
//    WHARF_TEST_HOOK_TIMEOUT_MS (300 s): it then fails, naming the hook, and the file goes on.
// 2. In a test file's own process (node --test sets NODE_TEST_CONTEXT there), once every test
//    and hook of the file has ended, a timer
// that does not itself keep the process alive is set: if the process is still there when it
// fires, something the file opened (a server, a child process, a socket, a timer) was never
// closed. It then names what is still open and ends the process with the exit status the tests
// gave, instead of leaving the whole run waiting forever for a process that will not exit.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { after } from 'node:test';

const HOOK_TIMEOUT_MS = Number(process.env.WHARF_TEST_HOOK_TIMEOUT_MS || 300_000);
{
  // The CommonJS exports of node:test, which its ESM named exports follow after
  // syncBuiltinESMExports(): test files importing either way get the bounded hooks.
  const nodeTest = createRequire(import.meta.url)('node:test');
  for (const name of ['before', 'after', 'beforeEach', 'afterEach']) {
    const hook = nodeTest[name];
    const bounded = (fn, options) => hook(fn, { timeout: HOOK_TIMEOUT_MS, ...options });
    nodeTest[name] = bounded;
    if (typeof nodeTest.test?.[name] === 'function') nodeTest.test[name] = bounded;
  }
  syncBuiltinESMExports();
}

const GRACE_MS = Number(process.env.WHARF_TEST_EXIT_GRACE_MS || 30_000);

function describeHandle(h) {
  const name = h?.constructor?.name ?? typeof h;
  if (name === 'ChildProcess') return `ChildProcess pid ${h.pid}: ${(h.spawnargs ?? []).join(' ').slice(0, 160)}`;
  if (name === 'Socket' || name === 'TLSSocket') {
    if (h.remotePort) return `${name} ${h.localAddress}:${h.localPort} -> ${h.remoteAddress}:${h.remotePort}`;
    if (h._handle?.fd !== undefined && h._handle.fd <= 2) return undefined; // stdio
    return `${name}${h._type ? ` (${h._type})` : ''}`;
  }
  if (name === 'Server') {
    const a = h.address?.();
    return `Server listening on ${typeof a === 'string' ? a : a ? `${a.address}:${a.port}` : '?'}`;
  }
  if (name === 'Timeout' || name === 'Immediate') return `${name} ${String(h._onTimeout ?? '').slice(0, 100).replace(/\s+/g, ' ')}`;
  return name;
}

if (process.env.NODE_TEST_CONTEXT) {
  after(() => {
    const timer = setTimeout(() => {
      const handles = (process._getActiveHandles?.() ?? []).map(describeHandle).filter(Boolean);
      process.stderr.write(
        `test-guards: the file's tests ended ${GRACE_MS / 1000} s ago but its process is still alive; still open: ` +
          `${[...handles, ...process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap')].join('; ') || '(nothing node reports)'}; ending it\n`,
      );
      process.exit();
    }, GRACE_MS);
    timer.unref();
  });
}
