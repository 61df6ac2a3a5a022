/**
 * The in-memory cache of every object in the store, with the indexes the API and the controllers
 * read. It is rebuilt from a store snapshot at start and kept current by the store's watch, so
 * API reads never scan the store. Objects handed out are the cached values: callers must not
 * mutate them (copy, change, write through the store).
 */
import type { Store, StoreEntry, WatchEvent, Watcher } from '../store/store';
import type {
  AccountSettingRecord,
  CapacityProviderRecord,
  ClusterRecord,
  AgentPresenceRecord,
  ContainerInstanceRecord,
  FamilyRecord,
  InstanceUsageRecord,
  ServiceRecord,
  TaskDefinitionRecord,
  TaskRecord,
} from '../core/resources';
import { keys } from '../core/resources';

export type Entry<T> = StoreEntry<T>;

/** A two-level map: kind/<parent>/<child>. Single-level kinds use parent ''. */
class Table<T> {
  readonly byParent = new Map<string, Map<string, Entry<T>>>();
  size = 0;
  get(parent: string, child: string): Entry<T> | undefined {
    return this.byParent.get(parent)?.get(child);
  }
  children(parent: string): Map<string, Entry<T>> {
    return this.byParent.get(parent) ?? EMPTY;
  }
  set(parent: string, child: string, e: Entry<T>): Entry<T> | undefined {
    let m = this.byParent.get(parent);
    if (!m) this.byParent.set(parent, (m = new Map()));
    const prev = m.get(child);
    if (!prev) {
      this.size++;
      // `child` is a slice of the store key; kept as a map key it would pin that whole key string
      // for as long as the object exists. A flat copy holds only itself.
      child = flat(child);
    }
    m.set(child, e);
    return prev;
  }
  delete(parent: string, child: string): Entry<T> | undefined {
    const m = this.byParent.get(parent);
    const prev = m?.get(child);
    if (prev && m) {
      m.delete(child);
      this.size--;
      if (m.size === 0) this.byParent.delete(parent);
    }
    return prev;
  }
  *all(): IterableIterator<Entry<T>> {
    for (const m of this.byParent.values()) yield* m.values();
  }
}
const EMPTY = new Map<string, never>();

/** A copy of `s` that does not share storage with the string it was sliced from. */
function flat(s: string): string {
  return s.length < 13 ? s : [...s].join('');
}

export type StateKind = 'capacityproviders' | 'clusters' | 'families' | 'taskdefs' | 'tasks' | 'instances' | 'usage' | 'services' | 'settings' | 'tokens' | 'secrets' | 'sdnamespaces' | 'sdservices' | 'sdinstances' | 'sdoperations' | 'network' | 'elbloadbalancers' | 'elbtargetgroups' | 'elblisteners' | 'elbrules' | 'elbtargets' | 'elbhealth' | 'presence';

export interface StateChange {
  kind: StateKind;
  key: string;
  parent: string;
  child: string;
  /** The entry after the change (undefined when deleted). */
  current?: Entry<unknown>;
  /** The entry before the change (undefined when created). */
  previous?: Entry<unknown>;
}

export type StateListener = (change: StateChange) => void;

export interface ClusterTaskCounts {
  runningEC2: number;
  runningFargate: number;
  pendingEC2: number;
  pendingFargate: number;
}

const NO_TASKS: Readonly<ClusterTaskCounts> = Object.freeze({ runningEC2: 0, runningFargate: 0, pendingEC2: 0, pendingFargate: 0 });

export class State {
  readonly clusters = new Table<ClusterRecord>();
  /** Auto Scaling group capacity providers, by name (parent ''). */
  readonly capacityProviders = new Table<CapacityProviderRecord>();
  readonly families = new Table<FamilyRecord>();
  readonly taskDefinitions = new Table<TaskDefinitionRecord>();
  readonly tasks = new Table<TaskRecord>();
  /**
   * Container instances as the API shows them: the registration record merged with its usage
   * record (InstanceUsageRecord). An entry's modRevision is the registration's, for
   * compare-and-swap on the instance key; placements compare `usage` entries.
   */
  readonly instances = new Table<ContainerInstanceRecord>();
  /** Usage records, by cluster and instance id. */
  readonly usage = new Table<InstanceUsageRecord>();
  /** The registration records as stored (instances holds them merged with usage). */
  private readonly registrations = new Table<ContainerInstanceRecord>();
  readonly services = new Table<ServiceRecord>();
  readonly settings = new Table<AccountSettingRecord>();
  readonly tokens = new Table<unknown>();
  /** Secrets Manager secrets (control/secrets.ts), by url-encoded name. */
  readonly secrets = new Table<unknown>();
  /** Cloud Map (control/cloudmap-*.ts): namespaces by id; services by namespace id and id;
   * instances by service id and url-encoded instance id; operations by id. */
  readonly sdNamespaces = new Table<unknown>();
  readonly sdServices = new Table<unknown>();
  readonly sdInstances = new Table<unknown>();
  readonly sdOperations = new Table<unknown>();
  /** The region's VPC, subnets and security groups (control/vpc.ts): parent `vpcs`, `subnets` or `groups`, child the id. */
  readonly network = new Table<unknown>();
  /** ELBv2 (control/elbv2-records.ts): load balancers and target groups by name; listeners by load
   * balancer id; rules by listener id; registered targets and their health by target group id. */
  readonly elbLoadBalancers = new Table<unknown>();
  readonly elbTargetGroups = new Table<unknown>();
  readonly elbListeners = new Table<unknown>();
  readonly elbRules = new Table<unknown>();
  readonly elbTargets = new Table<unknown>();
  readonly elbHealth = new Table<unknown>();
  /** Distributed mode: which replica holds each instance's agent channel (`presence/<instance id>`). */
  readonly agentPresence = new Table<AgentPresenceRecord>();
  /** family -> its highest ACTIVE revision (families without one are absent). */
  readonly latestActiveRevision = new Map<string, number>();
  /**
   * containerInstance id -> the non-released tasks placed on it: task id -> the task's cluster.
   * A task's cluster is its instance's, except for Fargate tasks, which run in their own
   * cluster on hosts of the region's Fargate pool (core/fargate.ts).
   */
  readonly tasksByInstance = new Map<string, Map<string, string>>();
  /**
   * cluster -> its RUNNING and pending tasks by launch type, kept as tasks change: DescribeClusters
   * and ListClusters' counters read them instead of walking every task of the cluster (100,000
   * tasks each time before).
   */
  private readonly taskCounts = new Map<string, ClusterTaskCounts>();

  private applied = 0;
  private readonly interned = new Map<string, string>();
  private watcher?: Watcher;
  private listeners = new Set<StateListener>();
  private revisionWaiters: { rev: number; resolve: () => void }[] = [];

  constructor(private readonly store: Store) {}

  /** Loads everything and follows the store's changes. */
  async start(): Promise<void> {
    const snap = await this.store.snapshot('');
    for (const e of snap.entries) this.applyPut(e.key, e, false);
    this.applied = snap.revision;
    // Deletes are applied from the key alone (the cache holds the last value).
    this.watcher = this.store.watch('', snap.revision, (events) => this.applyEvents(events), undefined, { deleteValues: false });
  }

  stop(): void {
    this.watcher?.cancel();
  }

  /** The store revision this cache reflects. */
  get revision(): number {
    return this.applied;
  }

  /** Resolves once the cache reflects the given store revision (read-your-writes). */
  waitFor(revision: number): Promise<void> {
    if (revision <= this.applied) return Promise.resolve();
    return new Promise((resolve) => this.revisionWaiters.push({ rev: revision, resolve }));
  }

  /** Listeners see every change after it is applied (controllers enqueue keys from here). */
  subscribe(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private applyEvents(events: WatchEvent[]): void {
    let rev = this.applied;
    for (const ev of events) {
      if (ev.type === 'put') {
        this.applyPut(ev.key, { key: ev.key, value: ev.value, modRevision: ev.revision, createRevision: ev.createRevision }, true);
      } else {
        this.applyDelete(ev.key);
      }
      rev = Math.max(rev, ev.revision);
    }
    this.applied = rev;
    if (this.revisionWaiters.length > 0) {
      const still: typeof this.revisionWaiters = [];
      for (const w of this.revisionWaiters) (w.rev <= rev ? w.resolve() : still.push(w));
      this.revisionWaiters = still;
    }
  }

  private tableOf(kind: string): Table<unknown> | undefined {
    switch (kind) {
      case 'clusters': return this.clusters;
      case 'capacityproviders': return this.capacityProviders;
      case 'families': return this.families;
      case 'taskdefs': return this.taskDefinitions;
      case 'tasks': return this.tasks;
      case 'instances': return this.instances;
      case 'usage': return this.usage;
      case 'services': return this.services;
      case 'settings': return this.settings;
      case 'tokens': return this.tokens;
      case 'secrets': return this.secrets;
      case 'sdnamespaces': return this.sdNamespaces;
      case 'sdservices': return this.sdServices;
      case 'sdinstances': return this.sdInstances;
      case 'sdoperations': return this.sdOperations;
      case 'network': return this.network;
      case 'elbloadbalancers': return this.elbLoadBalancers;
      case 'elbtargetgroups': return this.elbTargetGroups;
      case 'elblisteners': return this.elbListeners;
      case 'elbrules': return this.elbRules;
      case 'elbtargets': return this.elbTargets;
      case 'elbhealth': return this.elbHealth;
      case 'presence': return this.agentPresence;
      default: return undefined;
    }
  }

  private split(key: string): { kind: StateKind; parent: string; child: string } | undefined {
    const i = key.indexOf('/');
    if (i < 0) return undefined;
    const kind = key.slice(0, i) as StateKind;
    const rest = key.slice(i + 1);
    const j = rest.lastIndexOf('/');
    return j < 0 ? { kind, parent: '', child: rest } : { kind, parent: rest.slice(0, j), child: rest.slice(j + 1) };
  }

  private applyPut(key: string, entry: Entry<unknown>, notify: boolean): void {
    const k = this.split(key);
    if (k && (k.kind === 'instances' || k.kind === 'usage')) return this.applyInstance(k, key, entry, notify);
    const table = k && this.tableOf(k.kind);
    if (!k || !table) return;
    if (k.kind === 'tasks') this.internTask(entry.value as TaskRecord);
    const previous = table.set(k.parent, k.child, entry);
    if (k.kind === 'tasks') this.indexTask(k.parent, previous as Entry<TaskRecord> | undefined, entry as Entry<TaskRecord>);
    if (k.kind === 'taskdefs') this.indexTaskDefinition(k.parent, entry as Entry<TaskDefinitionRecord>);
    if (notify) this.emit({ ...k, key, current: entry, previous });
  }

  private applyDelete(key: string): void {
    const k = this.split(key);
    if (k && (k.kind === 'instances' || k.kind === 'usage')) return this.applyInstance(k, key, undefined, true);
    const table = k && this.tableOf(k.kind);
    if (!k || !table) return;
    const previous = table.delete(k.parent, k.child);
    if (k.kind === 'tasks') this.indexTask(k.parent, previous as Entry<TaskRecord> | undefined, undefined);
    if (k.kind === 'taskdefs') this.indexTaskDefinition(k.parent, previous as Entry<TaskDefinitionRecord> | undefined, true);
    this.emit({ ...k, key, previous });
  }

  /**
   * A registration or usage record changed: store it, and replace the merged instance entry. The
   * change is announced as one of `instances`, whichever half moved, so listeners need not know
   * the instance is kept in two records.
   */
  private applyInstance(k: { kind: StateKind; parent: string; child: string }, key: string, entry: Entry<unknown> | undefined, notify: boolean): void {
    const { parent, child } = k;
    if (k.kind === 'usage') {
      if (entry) this.usage.set(parent, child, entry as Entry<InstanceUsageRecord>);
      else this.usage.delete(parent, child);
    } else if (entry) this.registrations.set(parent, child, entry as Entry<ContainerInstanceRecord>);
    else this.registrations.delete(parent, child);
    const reg = this.registrations.get(parent, child);
    const previous = reg ? this.instances.get(parent, child) : this.instances.delete(parent, child);
    let current: Entry<ContainerInstanceRecord> | undefined;
    if (reg) {
      const use = this.usage.get(parent, child)?.value;
      current = use
        ? { ...reg, value: { ...reg.value, remainingResources: use.remainingResources, version: reg.value.version + use.version } }
        : reg;
      this.instances.set(parent, child, current);
    }
    if (notify && (current || previous)) this.emit({ kind: 'instances', parent, child, key: keys.instance(parent, child), current, previous });
  }

  /**
   * Tasks are most of the cache, and every one carries the same few strings as separately parsed
   * copies (cluster, definition and instance ARNs, group, zone, statuses): share one copy of each.
   * Only fields with few distinct values are interned, so the table stays small. The record is
   * this cache's own (the store parses one per watcher), so rewriting its fields is safe.
   */
  private internTask(t: TaskRecord): void {
    if (!t || typeof t !== 'object') return;
    const i = <V extends string | undefined>(v: V): V => (typeof v === 'string' ? (this.intern(v) as V) : v);
    t.clusterArn = i(t.clusterArn);
    t.taskDefinitionArn = i(t.taskDefinitionArn);
    t.containerInstanceArn = i(t.containerInstanceArn);
    t.group = i(t.group);
    t.availabilityZone = i(t.availabilityZone);
    t.lastStatus = i(t.lastStatus);
    t.desiredStatus = i(t.desiredStatus);
    if (t.wharf) {
      t.wharf.cluster = this.intern(t.wharf.cluster);
      t.wharf.instanceId = i(t.wharf.instanceId);
      t.wharf.serviceName = i(t.wharf.serviceName);
    }
    for (const c of t.containers ?? []) {
      if (c.taskArn === t.taskArn) c.taskArn = t.taskArn;
      c.name = i(c.name);
      c.image = i(c.image);
      c.lastStatus = i(c.lastStatus);
    }
  }

  private intern(v: string): string {
    const have = this.interned.get(v);
    if (have !== undefined) return have;
    this.interned.set(v, v);
    return v;
  }

  private indexTaskDefinition(family: string, changed: Entry<TaskDefinitionRecord> | undefined, deleted = false): void {
    const latest = this.latestActiveRevision.get(family);
    const td = changed?.value;
    if (td && !deleted && td.status === 'ACTIVE') {
      if (latest === undefined || td.revision > latest) this.latestActiveRevision.set(family, td.revision);
      return;
    }
    // Only a change to the current latest can lower it; then scan back from the newest.
    if (td && latest !== undefined && td.revision !== latest) return;
    const revs = [...this.taskDefinitions.children(family).values()];
    for (let i = revs.length - 1; i >= 0; i--) {
      if (revs[i]!.value.status === 'ACTIVE') {
        this.latestActiveRevision.set(family, revs[i]!.value.revision);
        return;
      }
    }
    this.latestActiveRevision.delete(family);
  }

  /** A cluster's RUNNING and pending (PROVISIONING, PENDING, ACTIVATING) tasks by launch type. */
  taskCountsOf(cluster: string): Readonly<ClusterTaskCounts> {
    return this.taskCounts.get(cluster) ?? NO_TASKS;
  }

  private countTask(cluster: string, t: TaskRecord, delta: 1 | -1): void {
    const running = t.lastStatus === 'RUNNING';
    if (!running && t.lastStatus !== 'PENDING' && t.lastStatus !== 'PROVISIONING' && t.lastStatus !== 'ACTIVATING') return;
    let c = this.taskCounts.get(cluster);
    if (!c) this.taskCounts.set(cluster, (c = { ...NO_TASKS }));
    const fargate = t.launchType === 'FARGATE';
    if (running) fargate ? (c.runningFargate += delta) : (c.runningEC2 += delta);
    else fargate ? (c.pendingFargate += delta) : (c.pendingEC2 += delta);
    if (c.runningEC2 === 0 && c.runningFargate === 0 && c.pendingEC2 === 0 && c.pendingFargate === 0) this.taskCounts.delete(cluster);
  }

  private indexTask(cluster: string, prev: Entry<TaskRecord> | undefined, cur: Entry<TaskRecord> | undefined): void {
    if (prev) this.countTask(cluster, prev.value, -1);
    if (cur) this.countTask(cluster, cur.value, 1);
    const holds = (e?: Entry<TaskRecord>) => (e && e.value.wharf.instanceId && !e.value.wharf.released ? e.value.wharf.instanceId : undefined);
    const before = holds(prev);
    const after = holds(cur);
    const t = (cur ?? prev)!.value;
    const id = t.wharf.id;
    if (before && before !== after) {
      const s = this.tasksByInstance.get(before);
      s?.delete(id);
      if (s && s.size === 0) this.tasksByInstance.delete(before);
    }
    if (after) {
      let s = this.tasksByInstance.get(after);
      if (!s) this.tasksByInstance.set(after, (s = new Map()));
      s.set(id, t.wharf.cluster);
    }
  }

  private emit(change: StateChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // A listener's failure must not stop the cache from applying changes; controllers log
        // their own errors.
      }
    }
  }
}
