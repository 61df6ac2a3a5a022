/**
 * The service deployment history API: ListServiceDeployments, DescribeServiceDeployments,
 * DescribeServiceRevisions. Answered from the history and revisions each service record keeps
 * (bounded: the newest 50 deployments and every revision they refer to).
 */
import { clusterNameOf } from '../core/arn';
import { invalidParameter } from '../core/errors';
import type { ServiceRecord } from '../core/resources';
import type {
  DescribeServiceDeploymentsRequest,
  DescribeServiceDeploymentsResponse,
  DescribeServiceRevisionsRequest,
  DescribeServiceRevisionsResponse,
  Failure,
  ListServiceDeploymentsRequest,
  ListServiceDeploymentsResponse,
  ServiceDeployment,
  ServiceRevision,
} from '../core/shapes/ecs';
import { ServiceDeploymentStatusValues as STATUSES } from '../core/shapes/ecs';
import { requireActiveCluster } from './clusters';
import type { ControlContext } from './context';
import { paginate } from './pagination';
import { digitsOf, parseServiceChildArn, requireService, revisionToWire, serviceDeploymentArn, serviceDeploymentToWire } from './service-records';

const MAX_DESCRIBE = 20;

export async function listServiceDeployments(ctx: ControlContext, input: ListServiceDeploymentsRequest): Promise<ListServiceDeploymentsResponse> {
  const cluster = requireActiveCluster(ctx, input.cluster);
  const s = requireService(ctx, cluster.clusterName, input.service).value;
  for (const st of input.status ?? []) if (!STATUSES.includes(st)) throw invalidParameter(`Invalid service deployment status '${st}'.`);
  const wanted = input.status?.length ? new Set(input.status) : undefined;
  const after = input.createdAt?.after;
  const before = input.createdAt?.before;
  const items = s.wharf.history.filter(
    (h) => (!wanted || wanted.has(h.status)) && (after === undefined || h.createdAt >= after) && (before === undefined || h.createdAt <= before),
  );
  // Newest first: the key counts down with the creation time, ties broken by id.
  const key = (h: (typeof items)[number]) => `${String(1e13 - Math.round(h.createdAt * 1000)).padStart(14, '0')}/${h.id}`;
  const { page, nextToken } = paginate(items, key, input, { default: 20, max: 100, operation: 'ListServiceDeployments' });
  return {
    serviceDeployments: page.map((h) => {
      const out = {
        serviceDeploymentArn: serviceDeploymentArn(ctx, s, h.id),
        serviceArn: s.serviceArn,
        clusterArn: s.clusterArn,
        startedAt: h.startedAt,
        createdAt: h.createdAt,
        targetServiceRevisionArn: serviceDeploymentToWire(ctx, s, h).targetServiceRevision?.arn,
        status: h.status,
      } as NonNullable<ListServiceDeploymentsResponse['serviceDeployments']>[number];
      if (h.finishedAt !== undefined) out.finishedAt = h.finishedAt;
      if (h.statusReason) out.statusReason = h.statusReason;
      return out;
    }),
    nextToken,
  };
}

function serviceFor(ctx: ControlContext, cluster: string, name: string): ServiceRecord | undefined {
  return ctx.state.services.get(clusterNameOf(cluster), name)?.value;
}

export async function describeServiceDeployments(ctx: ControlContext, input: DescribeServiceDeploymentsRequest): Promise<DescribeServiceDeploymentsResponse> {
  const refs = input.serviceDeploymentArns ?? [];
  if (refs.length < 1 || refs.length > MAX_DESCRIBE) throw invalidParameter(`serviceDeploymentArns must contain between 1 and ${MAX_DESCRIBE} ARNs.`);
  const serviceDeployments: ServiceDeployment[] = [];
  const failures: Failure[] = [];
  for (const ref of refs) {
    const p = parseServiceChildArn(ref, 'service-deployment');
    const s = p && serviceFor(ctx, p.cluster, p.service);
    const h = s && s.wharf.history.find((x) => digitsOf(x.id) === p!.id);
    if (s && h) serviceDeployments.push(serviceDeploymentToWire(ctx, s, h));
    else failures.push({ arn: ref, reason: 'MISSING' });
  }
  return { serviceDeployments, failures };
}

export async function describeServiceRevisions(ctx: ControlContext, input: DescribeServiceRevisionsRequest): Promise<DescribeServiceRevisionsResponse> {
  const refs = input.serviceRevisionArns ?? [];
  if (refs.length < 1 || refs.length > MAX_DESCRIBE) throw invalidParameter(`serviceRevisionArns must contain between 1 and ${MAX_DESCRIBE} ARNs.`);
  const serviceRevisions: ServiceRevision[] = [];
  const failures: Failure[] = [];
  for (const ref of refs) {
    const p = parseServiceChildArn(ref, 'service-revision');
    const s = p && serviceFor(ctx, p.cluster, p.service);
    const r = s && s.wharf.revisions.find((x) => x.id === p!.id);
    if (s && r) serviceRevisions.push(revisionToWire(ctx, s, r));
    else failures.push({ arn: ref, reason: 'MISSING' });
  }
  return { serviceRevisions, failures };
}
