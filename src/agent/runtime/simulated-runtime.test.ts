import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimulatedRuntime } from './simulated-runtime';
import type { ContainerSpec } from './container-runtime';

const LABEL = { 'io.wharf.network': 'awsvpc' };

function spec(name: string, networkMode: string): ContainerSpec {
  return { name, image: 'img', labels: {}, host: { networkMode } };
}

test('networks: listed by label with every container configured on them, whatever its state', async () => {
  const rt = new SimulatedRuntime();
  await rt.ensureNetwork('wharf-subnet-a', LABEL);
  await rt.ensureNetwork('wharf-subnet-b', LABEL);
  await rt.ensureNetwork('someone-elses', { owner: 'ops' });
  const created = await rt.createContainer(spec('created', 'wharf-subnet-a'));
  const running = await rt.createContainer(spec('running', 'wharf-subnet-a'));
  await rt.startContainer(running);
  const exited = await rt.createContainer(spec('exited', 'wharf-subnet-a'));
  await rt.startContainer(exited);
  rt.exitContainer(exited, 0);
  await rt.createContainer(spec('shares', `container:${running}`));

  const nets = await rt.listNetworks(LABEL);
  assert.deepEqual(nets.map((n) => n.name).sort(), ['wharf-subnet-a', 'wharf-subnet-b']);
  const a = nets.find((n) => n.name === 'wharf-subnet-a')!;
  assert.deepEqual(a.labels, LABEL);
  assert.deepEqual([...a.containerIds].sort(), [created, running, exited].sort());
  assert.deepEqual(nets.find((n) => n.name === 'wharf-subnet-b')!.containerIds, []);
  assert.deepEqual((await rt.listNetworks({ owner: 'ops' })).map((n) => n.name), ['someone-elses']);
});

test('networks: removal is refused only while a running container is attached, like Docker', async () => {
  const rt = new SimulatedRuntime();
  await rt.ensureNetwork('n', LABEL);
  const id = await rt.createContainer(spec('c', 'n'));
  await rt.startContainer(id);
  assert.equal(await rt.removeNetwork('n'), 'in-use');
  assert.deepEqual(rt.networkNames(), ['n']);
  rt.exitContainer(id, 0);
  assert.equal(await rt.removeNetwork('n'), 'removed');
  assert.equal(await rt.removeNetwork('n'), 'absent');
  assert.deepEqual(rt.networkNames(), []);
});

test('networks: a container whose network is gone cannot start until the network is made again', async () => {
  const rt = new SimulatedRuntime();
  await rt.ensureNetwork('n', LABEL);
  const id = await rt.createContainer(spec('c', 'n'));
  await rt.removeNetwork('n');
  await assert.rejects(rt.startContainer(id), (e: Error & { statusCode?: number }) => e.statusCode === 404 && /network n not found/.test(e.message));
  assert.equal((await rt.inspectContainer(id))!.status, 'created');
  await rt.ensureNetwork('n', LABEL);
  await rt.startContainer(id);
  assert.equal((await rt.inspectContainer(id))!.running, true);
});
