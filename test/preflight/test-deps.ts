/**
 * THE list of what the tests need from the machine beyond Node.js and node_modules: one entry per
 * piece, with the Debian package that provides it and how to tell that it is there. The test
 * preflight (`npm test`, and `.ci/run` through it) installs or names what is missing from this
 * list alone; add a piece here, nowhere else.
 *
 * On a new Debian 12 machine with Node 20, python3 with boto3 and iproute2 are usually there;
 * the Docker Engine, the AWS CLI v2, the registry and a static busybox are not (the `docker`
 * client alone may be).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readSync } from 'node:fs';
import { dockerdInstalled, findCommand } from '../../src/cmd/docker-setup';

export interface TestDependency {
  /** What it is, as a person names it. */
  what: string;
  /** The Debian package that provides it. */
  aptPackage: string;
  /** Which tests need it, for the message when it is missing. */
  neededBy: string;
  /** Whether this machine has it now. */
  present(): boolean;
}

export const AWS_CLI_V2 = '/usr/bin/aws';
/** Debian's Chromium, which playwright-core drives (Playwright's own browser builds are not downloaded). */
export const CHROMIUM = '/usr/bin/chromium';

export const TEST_DEPENDENCIES: readonly TestDependency[] = [
  {
    what: 'Docker Engine (dockerd and the docker client)',
    aptPackage: 'docker.io',
    neededBy: 'every test that runs containers; faults-docker also starts a dockerd of its own',
    present: dockerdInstalled,
  },
  {
    what: `AWS CLI v2 at ${AWS_CLI_V2}`,
    aptPackage: 'awscli',
    neededBy: 'the e2e tests that drive Wharf with the AWS CLI',
    present: () => /^aws-cli\/2\./.test(spawnSync(AWS_CLI_V2, ['--version'], { encoding: 'utf8' }).stdout ?? ''),
  },
  {
    what: 'a Docker registry (docker-registry)',
    aptPackage: 'docker-registry',
    neededBy: 'the image pull tests (test/images/local-registry.ts)',
    present: () => findCommand('docker-registry') !== undefined,
  },
  {
    what: 'a static busybox',
    aptPackage: 'busybox-static',
    neededBy: 'test/images/build.sh, which makes every test image from it',
    present: () => {
      const p = busyboxPath();
      return p !== undefined && isStaticElf(p);
    },
  },
  {
    what: 'iproute2 (ip)',
    aptPackage: 'iproute2',
    neededBy: 'faults-docker, which gives its own dockerd a bridge',
    present: () => findCommand('ip') !== undefined,
  },
  {
    what: 'gVisor (runsc)',
    aptPackage: 'runsc',
    neededBy: "the Fargate isolation tests: a dockerd the preflight starts registers it, and Fargate tasks get a kernel of their own",
    present: () => findCommand('runsc') !== undefined,
  },
  {
    what: 'HAProxy (haproxy)',
    aptPackage: 'haproxy',
    neededBy: 'the load balancer data plane tests and bench/loadbalancer.ts (src/loadbalancer/ drives it)',
    present: () => findCommand('haproxy') !== undefined,
  },
  {
    what: 'openssl',
    aptPackage: 'openssl',
    neededBy: 'the load balancer data plane test of an HTTPS listener (a self-signed certificate)',
    present: () => findCommand('openssl') !== undefined,
  },
  {
    what: 'etcd (etcd-server)',
    aptPackage: 'etcd-server',
    neededBy: 'the etcd Store backend tests (src/store/etcd), which start etcd members on loopback',
    present: () => findCommand('etcd') !== undefined,
  },
  {
    what: `Chromium at ${CHROMIUM}`,
    aptPackage: 'chromium',
    neededBy: 'the web console browser tests (test/e2e/console-*.test.ts), driven by playwright-core',
    present: () => {
      try {
        accessSync(CHROMIUM, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
  },
  {
    what: 'python3 with boto3',
    aptPackage: 'python3-boto3',
    neededBy: 'the e2e tests that drive Wharf with boto3',
    present: () => pythonWithBoto3() !== undefined,
  },
];

/** The busybox test/images/build.sh uses: $BUSYBOX, else /bin/busybox, else the one on PATH. */
function busyboxPath(): string | undefined {
  if (process.env.BUSYBOX) return process.env.BUSYBOX;
  try {
    accessSync('/bin/busybox', constants.X_OK);
    return '/bin/busybox';
  } catch {
    return findCommand('busybox');
  }
}

/**
 * An ELF executable with no PT_INTERP program header needs no dynamic loader, so it runs in an
 * image that holds nothing else. A dynamic busybox (Debian's `busybox`) would not.
 */
export function isStaticElf(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 64 || h.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(le ? h.readBigUInt64LE(32) : h.readBigUInt64BE(32)) : u32(h, 28);
    const phentsize = u16(h, is64 ? 54 : 42);
    const phnum = u16(h, is64 ? 56 : 44);
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum; i++) {
      if (readSync(fd, ph, 0, phentsize, phoff + i * phentsize) < 4) return false;
      if (u32(ph, 0) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

let python: string | undefined | null = null;

/**
 * The python3 the boto3 tests run: $WHARF_TEST_PYTHON, else `python3` on PATH, else Debian's
 * /usr/bin/python3 (where the python3-boto3 package puts boto3 when PATH's python3 is another,
 * a pyenv one say): the first that imports boto3. Undefined when none does.
 */
export function pythonWithBoto3(): string | undefined {
  if (python !== null) return python;
  const candidates = [process.env.WHARF_TEST_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  python = candidates.find((c) => spawnSync(c, ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0);
  return python;
}

/** Forget the cached answer (after installing packages). */
export function forgetPython(): void {
  python = null;
}
