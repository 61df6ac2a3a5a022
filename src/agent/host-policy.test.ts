import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerDefinition, TaskDefinition } from '../core/shapes/ecs';
import { computeRequiresAttributes } from '../core/task-definition-attributes';
import {
  hostPathAllowed,
  hostPolicyViolation,
  parseAllowedHostPaths,
  parseDisabledCapabilities,
  resolveHostPath,
  type HostPolicy,
} from './host-policy';
import { instanceAttributes } from './instance-resources';

const info = { cpus: 2, memoryBytes: 4 << 30, serverVersion: '24.0.0', apiVersion: '1.43', os: 'linux', architecture: 'x86_64', loggingDrivers: ['json-file'], cgroupDriver: 'cgroupfs', cgroupVersion: '2', runtimes: ['runc'] };

const pathCases: { name: string; source: string; allowed: string[]; ok: boolean }[] = [
  { name: 'the allowed path itself', source: '/data', allowed: ['/data'], ok: true },
  { name: 'a path below it', source: '/data/app/logs', allowed: ['/data'], ok: true },
  { name: 'a trailing slash on either side', source: '/data/', allowed: ['/data/'], ok: true },
  { name: 'a sibling sharing the prefix (/data2 is not under /data)', source: '/data2', allowed: ['/data'], ok: false },
  { name: 'a sibling sharing the prefix, deeper', source: '/database/x', allowed: ['/data'], ok: false },
  { name: '.. climbing out', source: '/data/../etc', allowed: ['/data'], ok: false },
  { name: '.. climbing out from deeper', source: '/data/a/../../etc/shadow', allowed: ['/data'], ok: false },
  { name: '.. staying inside', source: '/data/a/../b', allowed: ['/data'], ok: true },
  { name: 'doubled slashes and dots', source: '//data/./x//y', allowed: ['/data'], ok: true },
  { name: 'the root', source: '/', allowed: ['/data'], ok: false },
  { name: 'a parent of the allowed path', source: '/var', allowed: ['/var/log'], ok: false },
  { name: 'the second entry of the list', source: '/var/log/app', allowed: ['/data', '/var/log'], ok: true },
  { name: 'everything under an allowed /', source: '/etc', allowed: ['/'], ok: true },
  { name: 'a relative path (Docker would take it for a volume name)', source: 'data', allowed: ['/'], ok: false },
  { name: 'a relative path climbing', source: '../data', allowed: ['/data'], ok: false },
];
for (const c of pathCases) {
  test(`host path: ${c.name} -> ${c.ok ? 'allowed' : 'refused'}`, () => assert.equal(hostPathAllowed(c.source, c.allowed), c.ok));
}

test('host path: a symbolic link under an allowed path that points outside it is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-host-policy-'));
  try {
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, 'secret'));
    symlinkSync(join(dir, 'secret'), join(dir, 'data', 'escape'));
    const allowed = [join(dir, 'data')];
    assert.equal(hostPathAllowed(join(dir, 'data', 'escape'), allowed, resolveHostPath), false);
    assert.equal(hostPathAllowed(join(dir, 'data', 'escape', 'not-yet', 'made'), allowed, resolveHostPath), false, 'below the link, not existing yet');
    assert.equal(hostPathAllowed(join(dir, 'data', 'new', 'dir'), allowed, resolveHostPath), true, 'a path Docker will create inside');
    assert.equal(hostPathAllowed(join(dir, 'data', 'escape'), allowed), true, 'without resolving, the link looks inside');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--allowed-host-paths is normalised and must be absolute', () => {
  assert.deepEqual(parseAllowedHostPaths('/data/, /var/log,/data'), ['/data', '/var/log']);
  assert.throws(() => parseAllowedHostPaths('data'), /absolute paths, not 'data'/);
  assert.throws(() => parseAllowedHostPaths(' , '), /absolute paths separated by commas/);
});

test('--disable-capabilities takes ALL or known capabilities, CAP_ and case optional', () => {
  assert.equal(parseDisabledCapabilities('ALL'), 'ALL');
  assert.equal(parseDisabledCapabilities('sys_admin,all'), 'ALL');
  assert.deepEqual(parseDisabledCapabilities('CAP_SYS_ADMIN, net_admin,SYS_ADMIN'), ['SYS_ADMIN', 'NET_ADMIN']);
  assert.throws(() => parseDisabledCapabilities('SYS_WIZARD'), /unknown capabilities SYS_WIZARD/);
});

const td = (o: Partial<TaskDefinition> = {}): { taskDefinition: TaskDefinition } => ({ taskDefinition: { family: 'f', revision: 1, containerDefinitions: [], ...o } });
const app = (o: Partial<ContainerDefinition> = {}): ContainerDefinition => ({ name: 'app', image: 'busybox', ...o });

test('a privileged container is refused where privileged is disabled, with the reason and the flag', () => {
  const why = hostPolicyViolation({ disablePrivileged: true }, td(), [app(), app({ name: 'root', privileged: true })]);
  assert.equal(why, 'CannotStartContainerError: privileged containers are disabled on this container instance; container root is privileged (wharf agent --disable-privileged)');
  assert.equal(hostPolicyViolation({ disablePrivileged: true }, td(), [app({ privileged: false })]), undefined);
  assert.equal(hostPolicyViolation({}, td(), [app({ privileged: true })]), undefined, 'no policy, no refusal');
  assert.equal(hostPolicyViolation({ disablePrivileged: true }, td(), []), undefined, 'nothing left to create (adopted)');
});

test('host networking is refused where disallowed; bridge and awsvpc are not', () => {
  assert.match(hostPolicyViolation({ disallowHostNetwork: true }, td({ networkMode: 'host' }), [app()]) ?? '', /^CannotStartContainerError: the host network mode is disallowed .*--disallow-host-network\)$/);
  assert.equal(hostPolicyViolation({ disallowHostNetwork: true }, td({ networkMode: 'bridge' }), [app()]), undefined);
  assert.equal(hostPolicyViolation({ disallowHostNetwork: true }, td({ networkMode: 'awsvpc' }), [app()]), undefined);
});

test('added capabilities are refused when disabled (all, or those listed, or ALL itself); dropped ones never', () => {
  const adds = (...add: string[]) => [app({ linuxParameters: { capabilities: { add } } })];
  assert.match(hostPolicyViolation({ disabledCapabilities: 'ALL' }, td(), adds('CHOWN')) ?? '', /adds Linux capabilities CHOWN, which this container instance disables \(wharf agent --disable-capabilities ALL\)/);
  assert.match(hostPolicyViolation({ disabledCapabilities: ['SYS_ADMIN'] }, td(), adds('NET_ADMIN', 'CAP_SYS_ADMIN')) ?? '', /capabilities SYS_ADMIN,/);
  assert.match(hostPolicyViolation({ disabledCapabilities: ['SYS_ADMIN'] }, td(), adds('ALL')) ?? '', /capabilities ALL,/, 'ALL includes the disabled ones');
  assert.equal(hostPolicyViolation({ disabledCapabilities: ['SYS_ADMIN'] }, td(), adds('NET_ADMIN')), undefined);
  assert.equal(hostPolicyViolation({ disabledCapabilities: 'ALL' }, td(), [app({ linuxParameters: { capabilities: { drop: ['ALL'] } } })]), undefined);
});

test('bind mounts outside the allowed host paths are refused; Docker-managed volumes are not bind mounts', () => {
  const policy: HostPolicy = { allowedHostPaths: ['/data', '/var/log'] };
  const volumes = [
    { name: 'ok', host: { sourcePath: '/data/app' } },
    { name: 'etc', host: { sourcePath: '/etc' } },
    { name: 'sneaky', host: { sourcePath: '/data/../etc' } },
    { name: 'managed', host: {} },
    { name: 'docker', dockerVolumeConfiguration: { scope: 'task' as const, driver: 'local' } },
    { name: 'localbind', dockerVolumeConfiguration: { scope: 'task' as const, driver: 'local', driverOpts: { type: 'none', o: 'bind', device: '/root' } } },
    { name: 'unused', host: { sourcePath: '/boot' } },
  ];
  const mounting = (...names: string[]) => [app({ mountPoints: names.map((n) => ({ sourceVolume: n, containerPath: `/mnt/${n}` })) })];
  assert.equal(hostPolicyViolation(policy, td({ volumes }), mounting('ok', 'managed', 'docker')), undefined);
  assert.equal(
    hostPolicyViolation(policy, td({ volumes }), mounting('ok', 'etc')),
    "CannotStartContainerError: container app mounts host path /etc (volume etc), which is outside this container instance's allowed host paths /data, /var/log (wharf agent --allowed-host-paths)",
  );
  assert.match(hostPolicyViolation(policy, td({ volumes }), mounting('sneaky')) ?? '', /host path \/data\/\.\.\/etc \(volume sneaky\)/);
  assert.match(hostPolicyViolation(policy, td({ volumes }), mounting('localbind')) ?? '', /host path \/root \(volume localbind\)/, 'a local volume with o=bind is a bind mount');
  assert.equal(hostPolicyViolation(policy, td({ volumes }), mounting('ok')), undefined, 'a declared volume no container mounts is no bind mount');
  assert.equal(hostPolicyViolation({}, td({ volumes }), mounting('etc')), undefined, 'without --allowed-host-paths every path is allowed');
});

test('the host advertises what its policy allows, and a definition that needs more cannot be placed there', () => {
  const have = (policy?: HostPolicy, custom?: Record<string, string>) =>
    new Map(instanceAttributes(info, { region: 'us-east-1', hostPolicy: policy, attributes: custom }).map((a) => [a.name, a.value]));
  const needs = (o: Partial<TaskDefinition>) => computeRequiresAttributes({ containerDefinitions: [app({ memory: 32 })], ...o }).map((a) => a.name);
  const placeable = (attrs: Map<string, string | undefined>, names: string[]) => names.every((n) => attrs.has(n));
  const privileged = needs({ containerDefinitions: [app({ memory: 32, privileged: true })] });
  const hostNet = needs({ networkMode: 'host' });
  const capAdd = needs({ containerDefinitions: [app({ memory: 32, linuxParameters: { capabilities: { add: ['NET_ADMIN'] } } })] });

  const open = have();
  assert.ok(placeable(open, privileged) && placeable(open, hostNet) && placeable(open, capAdd), 'a host with no policy runs all three');
  const locked = have({ disablePrivileged: true, disallowHostNetwork: true, disabledCapabilities: 'ALL' });
  assert.ok(!placeable(locked, privileged));
  assert.ok(!placeable(locked, hostNet));
  assert.ok(!placeable(locked, capAdd));
  assert.ok(placeable(locked, needs({})), 'a plain task still fits');
  assert.ok(!have({ disablePrivileged: true }, { 'com.amazonaws.ecs.capability.privileged-container': '' }).has('com.amazonaws.ecs.capability.privileged-container'), 'a custom attribute cannot re-advertise it');

  const listed = have({ disabledCapabilities: ['SYS_ADMIN', 'NET_ADMIN'], allowedHostPaths: ['/data', '/var/log'] });
  assert.ok(placeable(listed, capAdd), 'a list is checked by the agent, per task');
  assert.equal(listed.get('wharf.disabled-capabilities'), 'SYS_ADMIN NET_ADMIN');
  assert.equal(listed.get('wharf.allowed-host-paths'), '/data:/var/log');
  assert.ok(have({ allowedHostPaths: ['/data,x'] }).has('wharf.allowed-host-paths'), 'shown without a value when it is no valid attribute value');
  assert.equal(have({ allowedHostPaths: ['/data,x'] }).get('wharf.allowed-host-paths'), undefined);
});

test("a protected path (wharf up's data dir) cannot be reached by a bind mount: not it, nothing under it, no directory above it; other paths can", () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-protected-'));
  try {
    const data = join(dir, 'wharf', 'data');
    mkdirSync(data, { recursive: true });
    symlinkSync(data, join(dir, 'link'));
    const policy: HostPolicy = { protectedHostPaths: [{ path: data, what: "the Wharf server's data directory" }] };
    const volumes = [
      { name: 'data', host: { sourcePath: data } },
      { name: 'keys', host: { sourcePath: join(data, 'credentials.json') } },
      { name: 'parent', host: { sourcePath: join(dir, 'wharf') } },
      { name: 'root', host: { sourcePath: '/' } },
      { name: 'link', host: { sourcePath: join(dir, 'link') } },
      { name: 'bindvol', dockerVolumeConfiguration: { scope: 'task' as const, driver: 'local', driverOpts: { type: 'none', o: 'bind', device: data } } },
      { name: 'beside', host: { sourcePath: join(dir, 'other') } },
      { name: 'prefix', host: { sourcePath: `${data}2` } },
    ];
    const mounting = (n: string) => [app({ mountPoints: [{ sourceVolume: n, containerPath: '/mnt' }] })];
    for (const n of ['data', 'keys', 'parent', 'root', 'link', 'bindvol']) {
      const why = hostPolicyViolation(policy, td({ volumes }), mounting(n), resolveHostPath);
      assert.ok(why?.startsWith(`CannotStartContainerError: container app mounts host path `), `${n}: ${why}`);
      assert.ok(why!.endsWith(`(volume ${n}), which would expose the Wharf server's data directory ${data} (Wharf protects it on this host)`), `${n}: ${why}`);
    }
    for (const n of ['beside', 'prefix']) assert.equal(hostPolicyViolation(policy, td({ volumes }), mounting(n), resolveHostPath), undefined, n);
    // Allowing every path does not lift the protection.
    assert.ok(hostPolicyViolation({ ...policy, allowedHostPaths: ['/'] }, td({ volumes }), mounting('root'), resolveHostPath));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
