/**
 * Security groups on the subnet bridges: a task accepts only the connections its groups allow.
 *
 * Every awsvpc task's pause container carries its groups and their ingress rules (a label,
 * LABELS.securityGroups, written when it is made). The firewall of an engine is one iptables
 * chain, WHARF-SG, jumped to first from DOCKER-USER (which Docker consults for everything it
 * forwards, bridged traffic between containers of one bridge included), rebuilt as a whole from
 * the engine's running pause containers whenever one starts or goes: per task address, the
 * sources its rules allow (a CIDR, or the addresses of the running members of a group) are
 * returned to Docker's own rules, and anything else to that address is dropped. Replies to
 * connections a task made are allowed (conntrack), and egress is everything, as with AWS's
 * default egress rule.
 *
 * Rebuilding from the engine rather than adding and removing rules per task makes it
 * level-triggered: an agent restart, a crash, or several agents on one engine (each rebuilds the
 * same chain from the same containers) leave no orphan rule. The chain is replaced atomically
 * (`iptables-restore --noflush`).
 *
 * Link-local addresses (169.254.0.0/16: on a cloud VM the instance metadata service and its role
 * credentials, ECS's own 169.254.170.2) are out of a Fargate task's reach, as on Fargate: a second
 * chain, LINK_LOCAL_CHAIN, rebuilt in the same restore, drops what a Fargate task's address sends
 * there, jumped to first from WHARF-SG (forwarded traffic) and from INPUT (the host's own link-local
 * addresses). DNS (port 53) stays allowed: the host's resolver may be there (GCE's is its metadata
 * server, Route 53's is 169.254.169.253), and Docker's embedded DNS forwards a task's queries from
 * the task's own network namespace. Wharf serves nothing there (the agent's task endpoint is on
 * the Docker bridge gateway). EC2 tasks keep reaching it, as on ECS without
 * ECS_AWSVPC_BLOCK_IMDS. A Fargate task is one whose pause container belongs to a Fargate pool
 * instance (its container-instance label).
 *
 * Limits: rules are the groups' rules as they were when the task was started (a later
 * AuthorizeSecurityGroupIngress applies to tasks started after it); group members are the tasks
 * on this engine (tasks on other hosts are not reachable over the subnet bridges anyway); traffic
 * from the host itself (published ports, the host's own connections) does not pass the bridge's
 * forwarding path and is not filtered.
 */
import { execFile } from 'node:child_process';
import { LABELS, type IngressRule } from '../api/agent/protocol';
import { FARGATE_POOL } from '../core/fargate-pool';
import type { Logger } from '../lib';
import type { ContainerRuntime } from './runtime/container-runtime';

export const FIREWALL_CHAIN = 'WHARF-SG';
/** Drops what Fargate tasks send to link-local addresses (see the top of this file). */
export const LINK_LOCAL_CHAIN = 'WHARF-LINK-LOCAL';
const LINK_LOCAL = '169.254.0.0/16';

/** A running task as the firewall sees it: its address and what its groups let in. */
export interface FirewallMember {
  ip: string;
  groups: string[];
  ingress: IngressRule[];
  /** A Fargate task: nothing it sends reaches a link-local address but DNS. */
  fargate?: boolean;
}

function ports(r: IngressRule): string {
  if (r.protocol === '-1') return '';
  const proto = `-p ${r.protocol}`;
  if ((r.protocol === 'tcp' || r.protocol === 'udp') && r.fromPort !== undefined && r.toPort !== undefined) {
    return `${proto} -m ${r.protocol} --dport ${r.fromPort === r.toPort ? r.fromPort : `${r.fromPort}:${r.toPort}`}`;
  }
  return proto;
}

/**
 * The chain's rules (iptables-restore lines, without the table and chain headers) for these
 * tasks. Pure: the same members give the same lines, in address order.
 */
export function firewallRules(members: readonly FirewallMember[]): string[] {
  const out = [`-A ${FIREWALL_CHAIN} -j ${LINK_LOCAL_CHAIN}`, `-A ${FIREWALL_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`];
  const sorted = [...members].sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
  for (const m of sorted) {
    const seen = new Set<string>();
    for (const r of m.ingress) {
      const sources = r.cidr !== undefined ? [r.cidr] : sorted.filter((n) => r.group !== undefined && n.groups.includes(r.group)).map((n) => `${n.ip}/32`);
      for (const src of sources) {
        const line = `-A ${FIREWALL_CHAIN} -s ${src} -d ${m.ip}/32 ${ports(r)}`.trimEnd() + ' -j RETURN';
        if (!seen.has(line)) out.push(line);
        seen.add(line);
      }
    }
    out.push(`-A ${FIREWALL_CHAIN} -d ${m.ip}/32 -j DROP`);
  }
  return out;
}

/**
 * The link-local chain's rules: anything not to a link-local address returns at once, then DNS,
 * then a DROP per Fargate task address. Pure, in address order.
 */
export function linkLocalRules(members: readonly FirewallMember[]): string[] {
  const c = LINK_LOCAL_CHAIN;
  const out = [`-A ${c} ! -d ${LINK_LOCAL} -j RETURN`, `-A ${c} -p udp -m udp --dport 53 -j RETURN`, `-A ${c} -p tcp -m tcp --dport 53 -j RETURN`];
  const ips = [...new Set(members.filter((m) => m.fargate).map((m) => m.ip))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  for (const ip of ips) out.push(`-A ${c} -s ${ip}/32 -j DROP`);
  return out;
}

/** The whole input of iptables-restore that replaces both chains. */
export function restoreInput(members: readonly FirewallMember[]): string {
  return ['*filter', `:${FIREWALL_CHAIN} - [0:0]`, `:${LINK_LOCAL_CHAIN} - [0:0]`, ...linkLocalRules(members), ...firewallRules(members), 'COMMIT', ''].join('\n');
}

/** Whether a pause container belongs to a Fargate pool host (its container-instance label). */
export function isFargatePause(labels: Record<string, string>): boolean {
  return (labels[LABELS.containerInstance] ?? '').includes(`:container-instance/${FARGATE_POOL}/`);
}

/** Reads a pause container's label back; undefined when it is not one (or not readable). */
export function parseGroupsLabel(v: string | undefined): { groups: string[]; ingress: IngressRule[] } | undefined {
  if (!v) return undefined;
  try {
    const o = JSON.parse(v) as { groups?: unknown; ingress?: unknown };
    if (!Array.isArray(o.groups) || !Array.isArray(o.ingress)) return undefined;
    return { groups: o.groups.filter((g): g is string => typeof g === 'string'), ingress: o.ingress as IngressRule[] };
  } catch {
    return undefined;
  }
}

type Exec = (cmd: string, args: string[], input?: string) => Promise<void>;

const execTool: Exec = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve()));
    if (input !== undefined) child.stdin?.end(input);
  });

/** Whether this host can be firewalled: iptables answers for Docker's DOCKER-USER chain. */
export async function firewallAvailable(exec: Exec = execTool): Promise<boolean> {
  try {
    await exec('iptables', ['-w', '-n', '-L', 'DOCKER-USER']);
    return true;
  } catch {
    return false;
  }
}

/** The security-group firewall of one engine (see the top of this file). */
export class TaskFirewall {
  private running?: Promise<void>;
  private unwatch?: () => void;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly rt: ContainerRuntime,
    private readonly o: { logger?: Logger; exec?: Exec } = {},
  ) {}

  /**
   * Rebuilds at once and whenever a pause container starts, dies or goes (debounced). Events of
   * other containers (the tasks' own, which do not change any address) are ignored when the
   * engine says whose they are; an event that a rebuild begun after it has already covered (the
   * starting task's own sync) does not cause another.
   */
  watch(): void {
    this.unwatch ??= this.rt.watchEvents((e) => {
      if (e.action !== 'start' && e.action !== 'die' && e.action !== 'destroy' && e.action !== 'resync') return;
      if (e.labels && e.labels[LABELS.pause] !== 'true') return;
      const seen = ++this.events;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        if (this.covered >= seen) return;
        void this.sync().catch((err) => this.o.logger?.warn({ err }, 'security group rules not updated'));
      }, 100);
      this.timer.unref?.();
    });
    void this.sync().catch((err) => this.o.logger?.warn({ err }, 'security group rules not updated'));
  }

  /** Engine events the watcher has heard, and how many of them a rebuild has begun after. */
  private events = 0;
  private covered = 0;

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    clearTimeout(this.timer);
  }

  /**
   * Rebuilds the chain from the engine now, one rebuild at a time. Resolves once a rebuild that
   * began after this call has been applied: a call made while one runs waits for the next, but
   * not for any asked for after it (the watcher's debounced rebuild after a task's own start
   * would otherwise double the wait of the task that asked).
   */
  sync(): Promise<void> {
    const ticket = this.started + 1;
    this.wanted = Math.max(this.wanted, ticket);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ ticket, resolve, reject }));
    if (!this.running) this.running = this.loop();
    return done;
  }

  private started = 0;
  private wanted = 0;
  private waiters: { ticket: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  private async loop(): Promise<void> {
    while (this.wanted > this.started) {
      const gen = ++this.started;
      // This rebuild reads the engine after every event heard so far.
      this.covered = this.events;
      let failure: unknown;
      let failed = false;
      try {
        await this.apply(await this.members());
      } catch (err) {
        failure = err;
        failed = true;
      }
      const settled = this.waiters.filter((w) => w.ticket <= gen);
      this.waiters = this.waiters.filter((w) => w.ticket > gen);
      for (const w of settled) (failed ? w.reject(failure) : w.resolve());
    }
    this.running = undefined;
  }

  /**
   * The running awsvpc tasks of the engine, from their pause containers (one list call). A pause
   * container started ahead of its task (agent/pause-pool.ts) has its task's groups on the
   * task's containers instead (LABELS.pauseId names it; a second list call), which exist, created
   * if not started, before any of them starts; while no task has it, nothing may reach it.
   */
  async members(): Promise<FirewallMember[]> {
    const out: FirewallMember[] = [];
    const pauses = await this.rt.listContainers({ [LABELS.pause]: 'true' });
    const assigned = new Map<string, { groups: string[]; ingress: IngressRule[] } | undefined>();
    if (pauses.some((c) => c.labels[LABELS.pausePool] !== undefined && c.status === 'running')) {
      for (const c of await this.rt.listContainers({}, [LABELS.pauseId])) {
        const id = c.labels[LABELS.pauseId]!;
        if (!assigned.get(id)) assigned.set(id, parseGroupsLabel(c.labels[LABELS.securityGroups]));
      }
    }
    for (const c of pauses) {
      const pooled = c.labels[LABELS.pausePool] !== undefined;
      const sg = pooled ? (assigned.has(c.id) ? assigned.get(c.id) : { groups: [], ingress: [] }) : parseGroupsLabel(c.labels[LABELS.securityGroups]);
      if (!sg || c.status !== 'running') continue;
      // The engine's list carries the addresses; a runtime whose list does not is asked per container.
      const ips = c.ipAddresses ?? (await this.rt.inspectContainer(c.id))?.ipAddresses ?? {};
      const fargate = isFargatePause(c.labels);
      for (const ip of Object.values(ips)) if (ip) out.push(fargate ? { ip, ...sg, fargate } : { ip, ...sg });
    }
    return out;
  }

  private async apply(members: FirewallMember[]): Promise<void> {
    const exec = this.o.exec ?? execTool;
    // iptables-restore creates the chains it declares when missing (and flushes them otherwise),
    // so no `iptables -N` first. Whether DOCKER-USER and INPUT jump to them is asked at the same
    // time; a missing jump goes in after the chains hold the rules, first in its chain.
    const has = (chain: string, target: string) =>
      exec('iptables', ['-w', '-C', chain, '-j', target]).then(
        () => true,
        () => false,
      );
    const [, forward, input] = await Promise.all([exec('iptables-restore', ['-w', '--noflush'], restoreInput(members)), has('DOCKER-USER', FIREWALL_CHAIN), has('INPUT', LINK_LOCAL_CHAIN)]);
    if (!forward) await exec('iptables', ['-w', '-I', 'DOCKER-USER', '1', '-j', FIREWALL_CHAIN]);
    if (!input) await exec('iptables', ['-w', '-I', 'INPUT', '1', '-j', LINK_LOCAL_CHAIN]);
  }
}
