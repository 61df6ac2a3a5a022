/**
 * LoadBalancerReconciler: `apply(desired)` makes the running HAProxy carry `desired`, level-
 * triggered (it re-reads HAProxy every time, and remembers only what HAProxy cannot tell it:
 * when a target was registered and when a drain ends). Safe to call again and again; `start`
 * calls it every second so drains end on time.
 *
 * One pass:
 *   1. generate the config (throws on bad input before anything changes)
 *   2. read every slot from `show servers state` + `show stat`
 *   3. per target group, plan: keep slots whose target is still registered, drain the ones that
 *      are not (deregistration delay), free drained slots whose delay is over or that carry no
 *      more requests, and place new targets in free slots
 *   4. if the structure changed (listeners, rules, groups, settings, slot counts): hitless
 *      reload with the current targets, then
 *   5. the slot changes through the Runtime API, no reload.
 *
 * A new target goes maint -> drain -> forced DOWN -> ready: HAProxy would otherwise treat a slot
 * leaving maintenance as UP at once; forced DOWN it must pass a check first (ELB's initial). That
 * first check is made at once by the reconciler (first-check.ts: HAProxy's own would wait for the
 * slot's timer, up to one interval); a pass puts the slot up.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Clock } from '../lib/clock';
import { systemClock } from '../lib/clock';
import type { Logger } from '../lib/logger';
import { firstCheck } from './first-check';
import { backendName, failOpenName, generateConfig, isSlotServer, responseBodies, responseDirOf, slotName, slotsFor, type SlotContent, type SlotLayout } from './haproxy-config';
import { HaproxySupervisor, structureFile } from './haproxy-supervisor';
import type { DesiredState, Target, TargetGroup } from './model';
import { targetKey } from './model';
import { ADMIN_DRAIN, ADMIN_MAINT, type ServerState } from './runtime-api';
import { serverStateForReload } from './server-state';
import { DRAINING, targetHealth, type TargetHealth, type TargetRecord } from './target-health';

export interface TargetHealthDescription {
  target: Target;
  health: TargetHealth;
}

/** What one pass did, for logs and tests. */
export interface ApplyResult {
  reloaded: boolean;
  added: string[];
  draining: string[];
  freed: string[];
}

type SlotOp =
  | { kind: 'add'; slot: number; target: Target }
  | { kind: 'drain'; slot: number; key: string }
  | { kind: 'free'; slot: number; key: string };

const EMPTY: DesiredState = { loadBalancers: [], targetGroups: [] };

export class LoadBalancerReconciler {
  readonly supervisor: HaproxySupervisor;
  private desired: DesiredState = EMPTY;
  /** Per group, per target key: when it was registered, whether it was ever seen UP. */
  private records = new Map<string, Map<string, TargetRecord>>();
  /**
   * Per group, per target key: when its drain began. It ends the group's current deregistration
   * delay later (reported `draining` until then), so lowering the delay shortens drains under way.
   */
  private drainSince = new Map<string, Map<string, number>>();
  /** The slot layout HAProxy runs (what a restart after a crash must bring back). */
  private layout: SlotLayout = new Map();
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** Set by detach/stop: a first check answering later changes nothing. */
  private closed = false;

  constructor(
    dataDir: string,
    private readonly opts: {
      clock?: Clock;
      log?: Logger;
      haproxy?: string;
      /** Called when a new target passed its first check and was put up between passes. */
      onTargetHealthy?: () => void;
    } = {},
  ) {
    this.supervisor = new HaproxySupervisor(dataDir, () => this.restartConfig(), opts.log, opts.haproxy);
  }

  private get now(): number {
    return (this.opts.clock ?? systemClock).now();
  }

  private paths() {
    return { runtimeSocket: this.supervisor.paths.runtimeSocket, serverStateFile: this.supervisor.paths.serverStateFile };
  }

  /** After a crash: the registered targets, in their slots; drains are over (their streams died). */
  private restartConfig(): string {
    const layout: SlotLayout = new Map();
    for (const g of this.desired.targetGroups) {
      const want = new Set(g.targets.map(targetKey));
      layout.set(g.id, (this.layout.get(g.id) ?? []).map((s) => (s && want.has(targetKey(s.target)) ? s : undefined)));
    }
    this.writeResponseFiles(this.desired);
    return generateConfig(this.desired, layout, this.paths());
  }

  /**
   * Puts every fixed-response body of `desired` in its file (haproxy reads them with the config).
   * Files no longer named are removed only when `prune`, after a reload: the worker that used
   * them has read them already, and the check of a new config needs only its own.
   */
  private writeResponseFiles(desired: DesiredState, prune = false): void {
    const dir = responseDirOf(this.paths());
    const bodies = responseBodies(desired);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [name, body] of bodies) {
      const file = path.join(dir, name);
      if (fs.existsSync(file)) continue;
      fs.writeFileSync(`${file}.new`, body, { mode: 0o600 });
      fs.renameSync(`${file}.new`, file);
    }
    if (!prune) return;
    for (const name of fs.readdirSync(dir)) if (!bodies.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  }

  /** Starts or adopts haproxy, then re-applies the last desired state every `intervalMs`. */
  async start(intervalMs = 1000): Promise<'adopted' | 'started'> {
    const how = await this.supervisor.start();
    this.closed = false;
    this.timer = setInterval(() => {
      this.apply(this.desired).catch((e) => this.opts.log?.warn({ err: (e as Error).message }, 'load balancer pass failed'));
    }, intervalMs);
    this.timer.unref();
    return how;
  }

  /** Leaves haproxy serving (a control-plane restart re-adopts it). */
  detach(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.supervisor.detach();
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.chain.catch(() => undefined);
    await this.supervisor.stop();
  }

  /** One pass at a time: calls queue behind each other. */
  apply(desired: DesiredState): Promise<ApplyResult> {
    return this.queue(() => this.pass(desired));
  }

  /** Runs `step` after every step queued before it (passes and first-check promotions). */
  private queue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.chain.catch(() => undefined).then(step);
    this.chain = run;
    return run;
  }

  private async pass(desired: DesiredState): Promise<ApplyResult> {
    generateConfig(desired, new Map(), this.paths()); // validation only
    await this.supervisor.settled();
    const rt = this.supervisor.runtime;
    const servers = await rt.servers();
    const now = this.now;
    const result: ApplyResult = { reloaded: false, added: [], draining: [], freed: [] };
    const layout: SlotLayout = new Map();
    const opsByGroup = new Map<string, SlotOp[]>();
    for (const g of desired.targetGroups) {
      const actual = servers.filter((s) => s.backend === backendName(g.id) && isSlotServer(s.server)).sort((a, b) => slotIndex(a) - slotIndex(b));
      const { slots, ops } = this.planGroup(g, actual, now);
      layout.set(g.id, slots);
      opsByGroup.set(g.id, ops);
    }
    for (const id of [...this.records.keys()]) if (!desired.targetGroups.some((g) => g.id === id)) this.records.delete(id);

    // Structure = the config with every slot empty: targets alone never cause a reload.
    const emptyLayout: SlotLayout = new Map([...layout].map(([id, slots]) => [id, slots.map(() => undefined)]));
    const structure = generateConfig(desired, emptyLayout, this.paths());
    const structurePath = structureFile(this.supervisor.paths);
    const previous = fs.existsSync(structurePath) ? fs.readFileSync(structurePath, 'utf8') : '';
    // The reloaded worker starts from the slots as they are now; new targets are added after.
    const current: SlotLayout = new Map(
      [...layout].map(([id, slots]) => {
        const adding = new Set((opsByGroup.get(id) ?? []).filter((o) => o.kind === 'add').map((o) => o.slot));
        return [id, slots.map((s, i) => (adding.has(i) ? undefined : s))];
      }),
    );
    this.desired = desired;
    if (structure !== previous) {
      this.writeResponseFiles(desired);
      await this.supervisor.reload(generateConfig(desired, current, this.paths()), serverStateForReload(await rt.serverStateFile(), desired));
      fs.writeFileSync(structurePath, structure, { mode: 0o600 });
      this.writeResponseFiles(desired, true);
      result.reloaded = true;
    }
    this.layout = current;
    for (const g of desired.targetGroups) {
      const be = backendName(g.id);
      for (const op of opsByGroup.get(g.id) ?? []) {
        const sv = slotName(op.slot);
        if (op.kind === 'add') {
          await rt.setAddress(be, sv, op.target.id, op.target.port);
          await rt.setState(be, sv, 'drain');
          if (g.healthCheck.enabled) await rt.setHealth(be, sv, 'down');
          await rt.setState(be, sv, 'ready');
          result.added.push(`${g.id}/${targetKey(op.target)}`);
          if (g.healthCheck.enabled) this.checkNewTarget(g, op.target);
        } else if (op.kind === 'drain') {
          await rt.setState(be, sv, 'drain');
          result.draining.push(`${g.id}/${op.key}`);
        } else {
          await rt.setState(be, sv, 'maint');
          // NLB leaves a drained target's connections open unless connection termination is on.
          if (g.protocol !== 'TCP' || g.attributes.tcpCloseOnDeregistration) await rt.shutdownSessions(be, sv);
          await rt.setAddress(be, sv, '0.0.0.0', 0);
          result.freed.push(`${g.id}/${op.key}`);
        }
      }
    }
    this.layout = layout;
    await this.promoteFirstPass(desired, servers);
    await this.failOpen(desired, await rt.servers());
    if (result.added.length || result.draining.length || result.freed.length || result.reloaded) this.opts.log?.info(result, 'load balancer pass');
    return result;
  }

  /**
   * The first check of a new target, now rather than on its slot's timer; a pass puts its slot
   * up (queued behind the passes, and only if the slot still holds the target, still DOWN and
   * never seen up). A failure changes nothing: HAProxy's checks go on at the group's interval.
   */
  private checkNewTarget(g: TargetGroup, target: Target): void {
    const key = targetKey(target);
    const record = mapOf(this.records, g.id).get(key);
    void firstCheck(g, target).then((r) => {
      if (this.closed) return;
      if (!r.passed) {
        this.opts.log?.debug({ targetGroup: g.id, target: key, result: r.detail }, 'first health check failed; HAProxy checks on');
        return;
      }
      this.queue(() => this.promoteChecked(g.id, key, record)).then(
        (promoted) => promoted && this.opts.onTargetHealthy?.(),
        (e) => this.opts.log?.warn({ err: (e as Error).message, targetGroup: g.id, target: key }, 'putting a checked target up failed'),
      );
    });
  }

  private async promoteChecked(groupId: string, key: string, record: TargetRecord | undefined): Promise<boolean> {
    // A record replaced or gone means the target was deregistered (and maybe registered again) since.
    if (!record || record.seenHealthy || mapOf(this.records, groupId).get(key) !== record) return false;
    const be = backendName(groupId);
    const rt = this.supervisor.runtime;
    const slot = (await rt.servers()).find((s) => s.backend === be && isSlotServer(s.server) && targetKey({ id: s.address, port: s.port }) === key && (s.adminState & (ADMIN_MAINT | ADMIN_DRAIN)) === 0);
    if (!slot || slot.opState === 2) return false;
    await rt.setHealth(be, slot.server, 'up');
    record.seenHealthy = true;
    return true;
  }

  /**
   * ELB: "After your target is registered, it must pass one health check to be considered
   * healthy"; healthyThreshold applies to an unhealthy target coming back. HAProxy has one `rise`
   * for both, so a new target (never seen UP) whose first check passed ("DOWN 1/N": going up) is
   * put UP here rather than left to wait for `rise` checks.
   */
  private async promoteFirstPass(desired: DesiredState, servers: ServerState[]): Promise<void> {
    for (const g of desired.targetGroups) {
      if (!g.healthCheck.enabled) continue;
      const records = mapOf(this.records, g.id);
      const be = backendName(g.id);
      for (const s of servers) {
        if (s.backend !== be || !isSlotServer(s.server) || (s.adminState & ADMIN_MAINT) !== 0 || !/^DOWN [1-9]\d*\/\d+/.test(s.status)) continue;
        const record = records.get(`${s.address}:${s.port}`);
        if (!record || record.seenHealthy) continue;
        await this.supervisor.runtime.setHealth(be, s.server, 'up');
        record.seenHealthy = true;
      }
    }
  }

  /**
   * ELB's fail-open: each slot whose target is registered (not draining) and unhealthy has its
   * twin (`failOpenName`, a backup server without checks) pointed at that target and ready;
   * every other twin is parked. HAProxy sends traffic to the twins only while no slot of the
   * group is up, so a group whose targets are all unhealthy routes to all of them, and one
   * healthy target is enough to end it. Targets still `initial` get none: they have not failed.
   * Runs after the slot changes, on the servers as they are then, so it follows HAProxy's checks
   * one pass (a second) behind.
   */
  private async failOpen(desired: DesiredState, servers: ServerState[]): Promise<void> {
    const rt = this.supervisor.runtime;
    const now = this.now;
    for (const g of desired.targetGroups) {
      if (!g.healthCheck.enabled) continue;
      const be = backendName(g.id);
      const records = mapOf(this.records, g.id);
      const mine = servers.filter((s) => s.backend === be);
      const byName = new Map(mine.map((s) => [s.server, s]));
      for (const slot of mine.filter((s) => isSlotServer(s.server))) {
        const twinName = failOpenName(slotIndex(slot) - 1);
        const twin = byName.get(twinName);
        if (!twin) continue; // a config from before fail-open: the next reload adds the twins
        const record = records.get(`${slot.address}:${slot.port}`);
        const serving = (slot.adminState & (ADMIN_MAINT | ADMIN_DRAIN)) === 0 && record !== undefined;
        const wanted = serving && targetHealth(g, slot, record, now).state === 'unhealthy';
        const parked = (twin.adminState & ADMIN_MAINT) !== 0;
        // NLB closes an unhealthy target's connections unless told not to (ALB lets them finish).
        // Not HAProxy's on-marked-down: that would also fire when a slot goes to maintenance.
        if (wanted && g.protocol === 'TCP' && g.attributes.tcpCloseOnUnhealthy !== false && slot.currentSessions > 0) await rt.shutdownSessions(be, slot.server);
        if (wanted) {
          if (!parked && twin.address === slot.address && twin.port === slot.port) continue;
          await rt.setAddress(be, twinName, slot.address, slot.port);
          await rt.setState(be, twinName, 'ready');
        } else if (!parked) {
          // No new requests; those in flight finish (a healthy target again, or a drain).
          await rt.setState(be, twinName, 'maint');
        } else if ((slot.adminState & ADMIN_MAINT) !== 0 && twin.currentSessions > 0) {
          // The slot was freed (its drain is over): the twin's streams to that target go with it.
          await rt.shutdownSessions(be, twinName);
        }
      }
    }
  }

  /** The slot plan of one target group from its actual servers. */
  private planGroup(g: TargetGroup, actual: ServerState[], now: number): { slots: (SlotContent | undefined)[]; ops: SlotOp[] } {
    const want = new Map(g.targets.map((t) => [targetKey(t), t]));
    const records = mapOf(this.records, g.id);
    const drains = mapOf(this.drainSince, g.id);
    const delayMs = g.attributes.deregistrationDelaySeconds * 1000;
    for (const key of want.keys()) {
      if (!records.has(key)) records.set(key, { registeredAt: now, seenHealthy: false });
      drains.delete(key);
    }
    const ops: SlotOp[] = [];
    const slots: (SlotContent | undefined)[] = actual.map(() => undefined);
    const placed = new Set<string>();
    actual.forEach((s, i) => {
      if ((s.adminState & ADMIN_MAINT) !== 0) return;
      const target = { id: s.address, port: s.port };
      const key = targetKey(target);
      if (want.has(key) && !placed.has(key)) {
        placed.add(key);
        slots[i] = { target };
        if ((s.adminState & ADMIN_DRAIN) !== 0) {
          // Registered again while its slot drains (a new task at the address a drained one had):
          // a new registration to ELB, so it starts over as a new target (initial, checked first),
          // not with the health HAProxy kept for the slot's previous occupant.
          records.set(key, { registeredAt: now, seenHealthy: false });
          ops.push({ kind: 'add', slot: i, target });
          return;
        }
        if (s.opState === 2) records.get(key)!.seenHealthy = true;
        return;
      }
      records.delete(key);
      const draining = (s.adminState & ADMIN_DRAIN) !== 0;
      if (!draining) {
        // Drain first, free on a later pass: a request may be on its way to the slot right now.
        if (g.attributes.deregistrationDelaySeconds > 0) {
          drains.set(key, now);
          slots[i] = { target };
          ops.push({ kind: 'drain', slot: i, key });
        } else {
          ops.push({ kind: 'free', slot: i, key });
        }
        return;
      }
      // Draining: a slot whose drain this process never saw begin (adopted) gets a full delay.
      if (!drains.has(key)) drains.set(key, now);
      // ELB completes a deregistration early once nothing is in flight; it still says draining.
      if (s.currentSessions === 0 || now >= drains.get(key)! + delayMs) ops.push({ kind: 'free', slot: i, key });
      else slots[i] = { target };
    });
    for (const [key, since] of drains) if (now >= since + delayMs) drains.delete(key);
    for (const key of [...records.keys()]) if (!want.has(key)) records.delete(key);

    const newcomers = [...want].filter(([key]) => !placed.has(key)).map(([, t]) => t);
    const needed = slots.filter((s) => s).length + newcomers.length;
    const size = slots.length >= needed && slots.length > 0 ? slots.length : slotsFor(needed);
    while (slots.length < size) slots.push(undefined);
    // A freed slot is reused only on a later pass: its in-flight streams are being shut down.
    const freeing = new Set(ops.filter((o) => o.kind === 'free').map((o) => o.slot));
    for (const t of newcomers) {
      const i = slots.findIndex((s, j) => !s && !freeing.has(j));
      const slot = i >= 0 ? i : slots.push(undefined) - 1;
      slots[slot] = { target: t };
      ops.push({ kind: 'add', slot, target: t });
    }
    return { slots, ops };
  }

  /** Per target group, per target (registered or still draining): ELB's TargetHealth. */
  async health(): Promise<Map<string, TargetHealthDescription[]>> {
    const servers = await this.supervisor.runtime.servers();
    const now = this.now;
    const out = new Map<string, TargetHealthDescription[]>();
    for (const g of this.desired.targetGroups) {
      const records = mapOf(this.records, g.id);
      const byKey = new Map(
        servers.filter((s) => s.backend === backendName(g.id) && isSlotServer(s.server) && (s.adminState & ADMIN_MAINT) === 0).map((s) => [`${s.address}:${s.port}`, s]),
      );
      const list: TargetHealthDescription[] = g.targets.map((t) => {
        const key = targetKey(t);
        const record = records.get(key) ?? { registeredAt: now, seenHealthy: false };
        records.set(key, record);
        const server = byKey.get(key);
        if (server && (server.opState === 2 || server.status.startsWith('UP'))) record.seenHealthy = true;
        return { target: t, health: targetHealth(g, server, record, now) };
      });
      for (const [key, since] of mapOf(this.drainSince, g.id)) {
        if (now < since + g.attributes.deregistrationDelaySeconds * 1000 && !g.targets.some((t) => targetKey(t) === key)) list.push({ target: parseKey(key), health: DRAINING });
      }
      out.set(g.id, list);
    }
    return out;
  }
}

function slotIndex(s: ServerState): number {
  return Number(s.server.slice(1));
}

function mapOf<V>(m: Map<string, Map<string, V>>, id: string): Map<string, V> {
  let inner = m.get(id);
  if (!inner) m.set(id, (inner = new Map()));
  return inner;
}

function parseKey(key: string): Target {
  const i = key.lastIndexOf(':');
  return { id: key.slice(0, i), port: Number(key.slice(i + 1)) };
}
