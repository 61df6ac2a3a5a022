/**
 * `wharf server`'s load balancers: one HAProxy under `<dataDir>/haproxy` serving every region's
 * ELBv2 load balancers (loadbalancer/), the controller that keeps it in line with the stored
 * records (controllers/load-balancer-controller.ts), the addresses on wharf-elb0
 * (elb-interface.ts), and the DNS names for the discovery DNS server.
 *
 * HAProxy is started (or a running one of this data dir adopted) by the first pass that has a
 * load balancer to serve, or at once when one is already running, so a server with no load
 * balancers runs no HAProxy. A normal stop detaches: HAProxy keeps serving every listener and
 * the next start adopts it. `stop()` (tests, and whoever wants it gone) stops it and takes its
 * addresses off the interface.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LoadBalancerController, type LoadBalancerDataPlane } from '../controllers/load-balancer-controller';
import type { HostNameSource } from '../discovery';
import { systemClock, type Logger } from '../lib';
import { HAPROXY, supervisorPaths } from '../loadbalancer/haproxy-supervisor';
import type { DesiredState } from '../loadbalancer/model';
import { LoadBalancerReconciler } from '../loadbalancer/reconciler';
import { ElbInterface } from './elb-interface';
import { instanceHostAddress } from './host-address';
import type { RegionRuntimes } from './regions';

export interface LoadBalancerSettings {
  /** false: no controller, no HAProxy (`--load-balancers off`). */
  enabled: boolean;
  /** The haproxy binary (`--haproxy PATH`; default $WHARF_HAPROXY or /usr/sbin/haproxy). */
  haproxy?: string;
  /** Pass interval (ms); default 1000. */
  intervalMs?: number;
}

export interface RunningLoadBalancers {
  controller: LoadBalancerController;
  reconciler: LoadBalancerReconciler;
  hostNames: HostNameSource;
  /** Stops the controller and leaves HAProxy serving (a restart adopts it). */
  detach(): Promise<void>;
  /** Stops the controller and HAProxy, and takes this data dir's addresses off wharf-elb0. */
  stop(): Promise<void>;
}

/** Starts HAProxy only once there is something to serve (or one of ours runs already). */
class LazyDataPlane implements LoadBalancerDataPlane {
  private started: Promise<unknown> | undefined;
  constructor(
    private readonly reconciler: LoadBalancerReconciler,
    private readonly log: Logger,
  ) {}

  get running(): boolean {
    return this.started !== undefined;
  }

  private ensure(desired: DesiredState): Promise<unknown> | undefined {
    if (!this.started && (desired.loadBalancers.length > 0 || fs.existsSync(this.reconciler.supervisor.paths.pidFile))) {
      // The reconciler's own timer only repeats what the controller's passes do; kept slow.
      const p = this.reconciler.start(60_000).then((how) => this.log.info({ how }, 'load balancer data plane up'));
      this.started = p;
      p.catch(() => {
        if (this.started === p) this.started = undefined;
      });
    }
    return this.started;
  }

  async apply(desired: DesiredState) {
    const starting = this.ensure(desired);
    if (!starting) return { reloaded: false, added: [], draining: [], freed: [] };
    await starting;
    return this.reconciler.apply(desired);
  }

  async health() {
    return this.started ? this.reconciler.health() : new Map();
  }
}

export function haproxyMissing(bin: string): string | undefined {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return r.error.message;
  if (r.status !== 0) return `exit ${r.status}`;
  return haproxyTooOld(r.stdout);
}

/** The config uses set-var-fmt and bc_dst (HAProxy 2.5): an older one would refuse all of it. */
export function haproxyTooOld(versionText: string): string | undefined {
  const m = /version (\d+)\.(\d+)/i.exec(versionText);
  if (!m) return `cannot tell its version from: ${versionText.split('\n')[0]}`;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 2 || (major === 2 && minor >= 5) ? undefined : `HAProxy ${major}.${minor} is too old: 2.5 or later is needed`;
}

export function startLoadBalancers(o: { dataDir: string; settings: LoadBalancerSettings; regions: RegionRuntimes; log: Logger }): RunningLoadBalancers | undefined {
  const log = o.log.child({ component: 'load-balancers' });
  if (!o.settings.enabled) return undefined;
  const bin = o.settings.haproxy ?? HAPROXY;
  const missing = haproxyMissing(bin);
  if (missing) {
    log.warn({ haproxy: bin, err: missing }, `load balancers are not served: cannot run haproxy (${bin}); install it (apt-get install haproxy) or name it with --haproxy`);
    return undefined;
  }
  const dir = path.join(o.dataDir, 'haproxy');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A target put up between passes: one pass now writes its health (DescribeTargetHealth, and
  // the deployments that wait on it) instead of at the next tick.
  let controller: LoadBalancerController | undefined;
  const reconciler = new LoadBalancerReconciler(dir, { log, haproxy: bin, onTargetHealthy: () => void controller?.runPass() });
  const addresses = new ElbInterface(dir, log);
  controller = new LoadBalancerController({
    dataPlane: new LazyDataPlane(reconciler, log),
    addresses,
    clock: systemClock,
    log,
    instanceHostAddress: instanceHostAddress(),
    intervalMs: o.settings.intervalMs,
  });
  const unsubscribe = o.regions.onUp((r) => {
    // Another Wharf server on this host may hold addresses of the same range.
    r.ctx.elbAddressesInUse = () => addresses.onHost();
    controller.addRegion(r.ctx);
  });
  controller.start();
  log.info({ haproxy: bin, dir: supervisorPaths(dir).dataDir }, 'load balancer controller running');
  return {
    controller,
    reconciler,
    hostNames: { hostNames: () => controller.hostNames() },
    async detach() {
      unsubscribe();
      await controller.stop();
      reconciler.detach();
    },
    async stop() {
      unsubscribe();
      await controller.stop();
      await reconciler.stop();
      await addresses.retain([]);
    },
  };
}
