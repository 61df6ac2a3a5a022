/**
 * Puts container instances, tasks and services into a running server's store, the way the agent
 * and the service controller would, for tests of cluster operations that only look at what a
 * cluster holds (counters, DeleteCluster's refusals) while those operations' own APIs are still
 * being built. Each returns a function that removes what it added.
 */
import { containerInstanceArn, serviceArn, taskArn, clusterArn } from '../../../src/core/arn';
import { keys } from '../../../src/core/resources';
import { hexId } from '../../../src/lib';
import type { TestServer } from './wharf-server';

async function put(srv: TestServer, key: string, value: unknown): Promise<() => Promise<void>> {
  const { store, state } = srv.server.ctx;
  await state.waitFor(await store.create(key, value));
  return async () => {
    await state.waitFor(await store.delete(key));
  };
}

export function seedInstance(srv: TestServer, cluster: string, status = 'ACTIVE') {
  const id = hexId();
  const p = srv.server.partition;
  return put(srv, keys.instance(cluster, id), {
    containerInstanceArn: containerInstanceArn(p, cluster, id),
    ec2InstanceId: `i-${id.slice(0, 17)}`,
    status,
    agentConnected: true,
    version: 1,
    registeredResources: [],
    remainingResources: [],
    attributes: [],
    wharf: { id, cluster },
  });
}

export function seedTask(srv: TestServer, cluster: string, lastStatus: string, launchType: 'EC2' | 'FARGATE' = 'EC2') {
  const id = hexId();
  const p = srv.server.partition;
  return put(srv, keys.task(cluster, id), {
    taskArn: taskArn(p, cluster, id),
    clusterArn: clusterArn(p, cluster),
    lastStatus,
    desiredStatus: lastStatus === 'STOPPED' ? 'STOPPED' : 'RUNNING',
    launchType,
    version: 1,
    containers: [],
    wharf: { id, cluster, released: true },
  });
}

export function seedService(srv: TestServer, cluster: string, name: string, status = 'ACTIVE', launchType: 'EC2' | 'FARGATE' = 'EC2') {
  const p = srv.server.partition;
  return put(srv, keys.service(cluster, name), {
    serviceArn: serviceArn(p, cluster, name),
    serviceName: name,
    clusterArn: clusterArn(p, cluster),
    status,
    launchType,
    desiredCount: 0,
    runningCount: 0,
    pendingCount: 0,
    deployments: [],
    wharf: {},
  });
}
