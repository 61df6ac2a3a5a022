/**
 * ELBv2 listeners: Create/Describe/Modify/DeleteListener. Application load balancers take HTTP
 * and HTTPS listeners, network ones TCP. HTTPS needs a certificate; Wharf has no ACM, so the
 * CertificateArn names a readable PEM file holding the chain and the private key
 * (`certificateFile` in elbv2-records.ts): an absolute path or a `file://` URL.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TxnOp } from '../store/store';
import type { ControlContext } from './context';
import { checkActions, checkRedirectLoop, type ActionInput } from './elbv2-actions';
import { checkTags, commit, elbError, elbWrite, loadBalancerOfListener, pageOf, requireListener, validationError } from './elbv2-common';
import { requireLoadBalancer } from './elbv2-load-balancers';
import { certificateFile, elbIdOf, listenerKey, listenersOf, newElbId, ruleKey, rulesOf, type ElbTag, type ListenerRecord, type LoadBalancerRecord } from './elbv2-records';

export const DEFAULT_SSL_POLICY = 'ELBSecurityPolicy-2016-08';

interface ListenerSettings {
  Protocol?: string;
  Port?: number;
  SslPolicy?: string;
  Certificates?: { CertificateArn?: string; IsDefault?: boolean }[];
  DefaultActions?: ActionInput[];
  AlpnPolicy?: string[];
  MutualAuthentication?: unknown;
}

/** The certificate named, if its file holds a certificate and a private key. */
function checkCertificate(arn: string | undefined): void {
  const path = arn === undefined ? undefined : certificateFile(arn);
  let ok = false;
  if (path) {
    try {
      const pem = readFileSync(path, 'utf8');
      new X509Certificate(pem);
      createPrivateKey(pem);
      ok = true;
    } catch {
      ok = false;
    }
  }
  if (!ok) throw elbError('CertificateNotFound', `Certificate '${arn ?? ''}' not found: Wharf reads certificates from a PEM file (chain and private key) named by absolute path or file:// URL`);
}

/** Protocol, port, certificates and SSL policy of a listener of `lb`, checked. */
function checkSettings(lb: LoadBalancerRecord, s: ListenerSettings, base?: ListenerRecord): Pick<ListenerRecord, 'Protocol' | 'Port' | 'Certificates' | 'SslPolicy'> {
  if (s.AlpnPolicy?.length) throw validationError('Wharf does not support ALPN policies');
  if (s.MutualAuthentication !== undefined) throw validationError('Wharf does not support mutual TLS authentication');
  const protocol = s.Protocol ?? base?.Protocol;
  const port = s.Port ?? base?.Port;
  if (protocol === undefined) throw validationError('A listener protocol must be specified');
  if (port === undefined) throw validationError('A listener port must be specified');
  const allowed = lb.Type === 'application' ? ['HTTP', 'HTTPS'] : ['TCP'];
  if (!allowed.includes(protocol)) throw elbError('IncompatibleProtocols', `Listener protocol '${protocol}' is not supported with a load balancer of type '${lb.Type}'`);
  if (protocol !== 'HTTPS') {
    if (s.Certificates?.length) throw validationError(`Certificates can be specified only for HTTPS listeners, not ${protocol}`);
    if (s.SslPolicy !== undefined) throw validationError(`An SSL policy can be specified only for HTTPS listeners, not ${protocol}`);
    return { Protocol: protocol as ListenerRecord['Protocol'], Port: port };
  }
  const certs = s.Certificates ?? base?.Certificates ?? [];
  if (certs.length === 0) throw validationError('A certificate must be specified for HTTPS listeners');
  if (certs.length > 1) throw validationError('Wharf takes one certificate per HTTPS listener');
  checkCertificate(certs[0]!.CertificateArn);
  const policy = s.SslPolicy ?? base?.SslPolicy ?? DEFAULT_SSL_POLICY;
  if (!policy.startsWith('ELBSecurityPolicy-')) throw validationError(`SSL policy '${policy}' not found`);
  return { Protocol: 'HTTPS', Port: port, Certificates: [{ CertificateArn: certs[0]!.CertificateArn! }], SslPolicy: policy };
}

function checkPortFree(ctx: ControlContext, lb: LoadBalancerRecord, port: number, except?: string): void {
  if (listenersOf(ctx, elbIdOf(lb.LoadBalancerArn)).some((l) => l.Port === port && l.ListenerArn !== except)) {
    throw elbError('DuplicateListener', 'A listener already exists on this port for this load balancer');
  }
}

export async function createListener(ctx: ControlContext, input: ListenerSettings & { LoadBalancerArn: string; DefaultActions: ActionInput[]; Tags?: ElbTag[] }): Promise<{ Listeners: ListenerRecord[] }> {
  return elbWrite(ctx, async () => {
    const { lb } = requireLoadBalancer(ctx, input.LoadBalancerArn);
    const settings = checkSettings(lb, input);
    const tags = checkTags(input.Tags);
    const actions = checkActions(ctx, lb, settings, input.DefaultActions);
    const same = listenersOf(ctx, elbIdOf(lb.LoadBalancerArn)).find((l) => l.Port === settings.Port);
    // ELB answers a repeated create with the same settings with the listener it made.
    if (same && same.Protocol === settings.Protocol && JSON.stringify(same.DefaultActions) === JSON.stringify(actions) && JSON.stringify(same.Certificates) === JSON.stringify(settings.Certificates)) {
      return { Listeners: [same] };
    }
    checkPortFree(ctx, lb, settings.Port);
    const id = newElbId();
    const listener: ListenerRecord = {
      ListenerArn: `${lb.LoadBalancerArn.replace(':loadbalancer/', ':listener/')}/${id}`,
      LoadBalancerArn: lb.LoadBalancerArn,
      ...settings,
      DefaultActions: actions,
      Tags: tags,
    };
    await commit(ctx, [{ op: 'create', key: listenerKey(elbIdOf(lb.LoadBalancerArn), id), value: listener }]);
    return { Listeners: [listener] };
  });
}

export async function describeListeners(ctx: ControlContext, input: { LoadBalancerArn?: string; ListenerArns?: string[]; Marker?: string; PageSize?: number }): Promise<{ Listeners: ListenerRecord[]; NextMarker?: string }> {
  let list: ListenerRecord[];
  if (input.ListenerArns?.length) {
    if (input.LoadBalancerArn !== undefined) throw validationError('Listener ARNs and a load balancer ARN cannot be specified at the same time');
    list = input.ListenerArns.map((arn) => requireListener(ctx, arn).listener);
  } else if (input.LoadBalancerArn !== undefined) {
    const { lb } = requireLoadBalancer(ctx, input.LoadBalancerArn);
    list = listenersOf(ctx, elbIdOf(lb.LoadBalancerArn));
  } else {
    throw validationError('You must specify either listener ARNs or a load balancer ARN');
  }
  const { page, NextMarker } = pageOf(list, (l) => l.ListenerArn, input);
  return NextMarker ? { Listeners: page, NextMarker } : { Listeners: page };
}

export async function modifyListener(ctx: ControlContext, input: ListenerSettings & { ListenerArn: string }): Promise<{ Listeners: ListenerRecord[] }> {
  return elbWrite(ctx, async () => {
    const { listener, revision, key } = requireListener(ctx, input.ListenerArn);
    const lb = loadBalancerOfListener(ctx, listener);
    const settings = checkSettings(lb, input, listener);
    if (settings.Port !== listener.Port) checkPortFree(ctx, lb, settings.Port, listener.ListenerArn);
    const actions = input.DefaultActions !== undefined ? checkActions(ctx, lb, settings, input.DefaultActions) : listener.DefaultActions;
    // A new protocol or port can turn the redirect it keeps into a loop.
    checkRedirectLoop(actions, settings);
    const next: ListenerRecord = { ListenerArn: listener.ListenerArn, LoadBalancerArn: listener.LoadBalancerArn, ...settings, DefaultActions: actions, Tags: listener.Tags };
    await commit(ctx, [{ op: 'update', key, value: next, expectedRevision: revision }]);
    return { Listeners: [next] };
  });
}

/** Deletes a listener and its rules. */
export async function deleteListener(ctx: ControlContext, input: { ListenerArn: string }): Promise<Record<string, never>> {
  return elbWrite(ctx, async () => {
    const { listener, revision, key } = requireListener(ctx, input.ListenerArn);
    const id = elbIdOf(listener.ListenerArn);
    const ops: TxnOp[] = [{ op: 'delete', key, expectedRevision: revision }, ...rulesOf(ctx, id).map((r) => ({ op: 'delete' as const, key: ruleKey(id, elbIdOf(r.RuleArn)) }))];
    await commit(ctx, ops);
    return {};
  });
}
