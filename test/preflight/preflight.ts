/**
 * The test preflight: the first step of `npm test` (through scripts/test-preflight.js), and of
 * `.ci/run`. It makes sure the machine has everything in TEST_DEPENDENCIES and a Docker Engine
 * that answers, before minutes go into lint, typecheck and build:
 *
 *   all there, Docker answers       -> go on
 *   root, apt-get                   -> apt-get update, apt-get install the missing packages (one
 *                                      call), start dockerd if it does not answer; check again
 *   otherwise                       -> stop at once, naming each missing piece and the commands
 *                                      that install and start it
 *
 * Docker is installed and started by src/cmd/docker-setup.ts, the code `wharf up` uses.
 */
import { aptInstall, dockerAnswers, hasApt, isRoot, startDockerd } from '../../src/cmd/docker-setup';
import { TEST_DEPENDENCIES, forgetPython, type TestDependency } from './test-deps';

/** What the preflight may look at and do; the real machine below, a fake in the unit test. */
export interface PreflightHost {
  isRoot: boolean;
  hasApt: boolean;
  present(dep: TestDependency): boolean;
  dockerAnswers(): boolean;
  /** apt-get update, then apt-get install -y the packages; false when that failed. */
  aptInstall(packages: string[]): boolean;
  /** Starts dockerd and waits for it; throws when it does not answer. */
  startDockerd(): Promise<void>;
  say(line: string): void;
}

export type PreflightResult =
  | { ok: true; installed: string[]; startedDockerd: boolean }
  /** `problems`: one line per missing piece; `commands`: what a person runs to fix them. */
  | { ok: false; problems: string[]; commands: string[] };

const DOCKER_DOWN = 'the Docker Engine does not answer (`docker info` fails), for every test that runs containers';
const startCommand = (sudo = '') => `${sudo}dockerd &   (or: ${sudo}systemctl start docker; to use Docker without root, join the docker group)`;

export async function preflight(deps: readonly TestDependency[], host: PreflightHost): Promise<PreflightResult> {
  const missing = deps.filter((d) => !host.present(d));
  if (missing.length === 0 && host.dockerAnswers()) return { ok: true, installed: [], startedDockerd: false };

  if (!host.isRoot || !host.hasApt) {
    const dockerDown = !host.dockerAnswers();
    const sudo = host.isRoot ? '' : 'sudo ';
    const problems = missing.map(describe);
    if (dockerDown) problems.push(DOCKER_DOWN);
    const commands: string[] = [];
    const packages = missing.map((d) => d.aptPackage);
    if (packages.length > 0) {
      commands.push(
        host.hasApt
          ? `${sudo}apt-get update && ${sudo}apt-get install -y ${packages.join(' ')}`
          : `install the equivalent of Debian's ${packages.join(' ')} with this system's package manager`,
      );
    }
    if (dockerDown) commands.push(startCommand(sudo));
    return { ok: false, problems, commands };
  }

  const packages = [...new Set(missing.map((d) => d.aptPackage))];
  if (packages.length > 0) {
    if (!host.aptInstall(packages)) {
      return { ok: false, problems: missing.map(describe), commands: [`apt-get update && apt-get install -y ${packages.join(' ')}   (it failed here: see above)`] };
    }
    const still = deps.filter((d) => !host.present(d));
    if (still.length > 0) {
      return {
        ok: false,
        problems: still.map((d) => `${describe(d)}: still missing after installing ${d.aptPackage}`),
        commands: [`dpkg -L ${still.map((d) => d.aptPackage).join(' ')}   (what the packages installed, and where)`],
      };
    }
  }
  let startedDockerd = false;
  if (!host.dockerAnswers()) {
    try {
      await host.startDockerd();
      startedDockerd = true;
    } catch (e) {
      return { ok: false, problems: [`${DOCKER_DOWN}: ${(e as Error).message}`], commands: [startCommand()] };
    }
  }
  return { ok: true, installed: packages, startedDockerd };
}

function describe(d: TestDependency): string {
  return `${d.what} (Debian package ${d.aptPackage}), for ${d.neededBy}`;
}

export function formatFailure(r: Extract<PreflightResult, { ok: false }>): string {
  return [
    'npm test: this machine lacks what the tests need:',
    ...r.problems.map((p) => `  - ${p}`),
    'Fix it with:',
    ...r.commands.map((c) => `  ${c}`),
    '(Run as root on Debian, `npm test` installs and starts these itself.)',
  ].join('\n');
}

/** The real machine. */
export function machineHost(say: (line: string) => void): PreflightHost {
  return {
    isRoot: isRoot(),
    hasApt: hasApt(),
    present: (d) => d.present(),
    dockerAnswers,
    aptInstall: (packages) => {
      const ok = aptInstall(packages, say);
      forgetPython();
      return ok;
    },
    startDockerd: () => startDockerd(say),
    say,
  };
}

if (require.main === module) {
  const say = (line: string) => process.stderr.write(line + '\n');
  preflight(TEST_DEPENDENCIES, machineHost(say)).then(
    (r) => {
      if (!r.ok) {
        say(formatFailure(r));
        process.exit(1);
      }
      if (r.installed.length > 0 || r.startedDockerd) say('npm test: the machine now has what the tests need');
    },
    (e) => {
      say(`npm test: preflight failed: ${(e as Error).stack ?? e}`);
      process.exit(1);
    },
  );
}
