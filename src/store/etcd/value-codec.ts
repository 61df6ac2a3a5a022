/**
 * How EtcdStore lays values out in etcd. Every value is JSON text, except task records, which are
 * most of what distributed mode writes (each task is written when placed and again at each state
 * report, and every replica's watch decodes every write) and whose JSON repeats itself: the task
 * ARN twice, the cluster's ARN prefix in five ARNs, long member names. A task record is stored
 * compact instead: a marker byte (0x01, which JSON text never starts with) and then JSON in which
 *
 *   - member names are short aliases (TOP, CONTAINER, WHARF below), in the record's own order;
 *   - ARNs derived from the cluster ARN and the task's id are 0 (taskArn, each container's
 *     taskArn, containerInstanceArn), a container ARN is its last segment and a task definition
 *     ARN its `family:revision`;
 *   - the default `overrides` is 0.
 *
 * Expanding gives back exactly the same JSON text, key order included: members keep their places
 * (a derived value is 0 where it was), and a record the steps could not undo exactly (a member
 * named like an alias, a 0 where an ARN goes, an ARN of another shape) stays plain JSON. So does
 * everything else, and every value written before this encoding existed reads as before.
 *
 * The alias tables are part of the stored format: entries may be appended, never changed or
 * reordered, or records already stored would expand into other members.
 */

/** Stored-format marker of a compact task record. */
const COMPACT_TASK = 0x01;

/** Member names of a task record and their aliases (append only). */
const TOP = [
  'taskArn', 'clusterArn', 'taskDefinitionArn', 'attachments', 'attributes', 'containers', 'overrides', 'lastStatus',
  'desiredStatus', 'launchType', 'group', 'createdAt', 'version', 'connectivity', 'healthStatus', 'enableExecuteCommand',
  'tags', 'wharf', 'startedBy', 'cpu', 'memory', 'ephemeralStorage', 'platformVersion', 'platformFamily',
  'fargateEphemeralStorage', 'containerInstanceArn', 'availabilityZone', 'pullStartedAt', 'pullStoppedAt', 'connectivityAt',
  'startedAt', 'stoppingAt', 'stoppedAt', 'executionStoppedAt', 'stopCode', 'stoppedReason', 'capacityProviderName',
  'inferenceAccelerators',
];

/** Member names of a container of a task record (append only). */
const CONTAINER = [
  'containerArn', 'taskArn', 'name', 'image', 'lastStatus', 'networkInterfaces', 'healthStatus', 'cpu', 'memory',
  'memoryReservation', 'runtimeId', 'imageDigest', 'networkBindings', 'exitCode', 'reason', 'gpuIds', 'managedAgents',
];

/** Member names of a task record's Wharf bookkeeping (append only). */
const WHARF = [
  'id', 'cluster', 'clientToken', 'serviceName', 'instanceId', 'instanceCluster', 'reservation', 'released', 'expiresAt',
  'protectedUntil', 'waiting', 'securityGroups', 'assignPublicIp', 'deactivating',
];

/** Aliases: base-36 digits of the index, prefixed so no real member name looks like one. */
function aliases(names: string[]): { to: Map<string, string>; from: Map<string, string> } {
  const to = new Map<string, string>();
  const from = new Map<string, string>();
  names.forEach((n, i) => {
    const a = `_${i.toString(36)}`;
    to.set(n, a);
    from.set(a, n);
  });
  return { to, from };
}

const TOP_A = aliases(TOP);
const CONTAINER_A = aliases(CONTAINER);
const WHARF_A = aliases(WHARF);
/** The reverse tables as plain objects without a prototype: the fastest lookup for the decode loop. */
const lookup = (m: Map<string, string>): Record<string, string> => Object.assign(Object.create(null) as Record<string, string>, Object.fromEntries(m));
const TOP_FROM = lookup(TOP_A.from);
const CONTAINER_FROM = lookup(CONTAINER_A.from);
const WHARF_FROM = lookup(WHARF_A.from);

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The ARN prefix the record's ARNs share (`arn:aws:ecs:<region>:<account>:`), from its cluster ARN. */
function arnPrefix(clusterArn: unknown, cluster: unknown): string | undefined {
  if (typeof clusterArn !== 'string' || typeof cluster !== 'string') return undefined;
  const tail = `cluster/${cluster}`;
  return clusterArn.endsWith(tail) ? clusterArn.slice(0, -tail.length) : undefined;
}

/** Thrown (and caught in encodeValue) when a record has something the compact form cannot carry. */
const UNSAFE = new Error('not compactable');

/** `o` with its members renamed by `to` (aliases); `value` is given each member's real name. */
function renamed(o: Json, to: Map<string, string>, value: (name: string, v: unknown) => unknown): Json {
  // Its JSON text is what toJSON returns, which a renamed copy would not call.
  if (typeof o.toJSON === 'function') throw UNSAFE;
  const out: Json = {};
  for (const k of Object.keys(o)) {
    const alias = to.get(k);
    // A real member named like an alias would be read back as another member.
    if (alias === undefined && k.startsWith('_')) throw UNSAFE;
    out[alias ?? k] = value(k, o[k]);
  }
  return out;
}

function isDefaultOverrides(v: unknown): boolean {
  if (!isObject(v)) return false;
  const keys = Object.keys(v);
  return (
    keys.length === 2 && keys[0] === 'containerOverrides' && keys[1] === 'inferenceAcceleratorOverrides' &&
    Array.isArray(v.containerOverrides) && v.containerOverrides.length === 0 &&
    Array.isArray(v.inferenceAcceleratorOverrides) && v.inferenceAcceleratorOverrides.length === 0
  );
}

const instanceClusterOf = (w: Json): unknown => (typeof w.instanceCluster === 'string' ? w.instanceCluster : w.cluster);

/** `v` as 0 when it is `derived`; a real 0 there could not be told from it. */
function derivedOrSelf(v: unknown, derived: string | undefined): unknown {
  if (v === 0) throw UNSAFE;
  return derived !== undefined && v === derived ? 0 : v;
}

/** `v` without `prefix` when it has it; a string that would not read back as it is cannot be stored. */
function suffixOrSelf(v: unknown, prefix: string): unknown {
  if (typeof v !== 'string') return v;
  if (!v.startsWith('arn:')) throw UNSAFE;
  if (!v.startsWith(prefix)) return v;
  const rest = v.slice(prefix.length);
  if (rest.startsWith('arn:')) throw UNSAFE;
  return rest;
}

/**
 * The compact form of something shaped like a task record, or undefined. Each step is undone
 * exactly by expandTask, so what is stored reads back as the same JSON; what it could not undo
 * (the guards above) leaves the record as plain JSON.
 */
function compactTask(t: Json): Json | undefined {
  const w = t.wharf;
  if (!isObject(w) || typeof w.id !== 'string' || typeof w.cluster !== 'string' || !Array.isArray(t.containers)) return undefined;
  const p = arnPrefix(t.clusterArn, w.cluster);
  if (p === undefined) return undefined;
  const taskArn = `${p}task/${w.cluster}/${w.id}`;
  const containerPrefix = `${p}container/${w.cluster}/${w.id}/`;
  const instanceArn = typeof w.instanceId === 'string' ? `${p}container-instance/${String(instanceClusterOf(w))}/${w.instanceId}` : undefined;
  const tdPrefix = `${p}task-definition/`;
  try {
    return renamed(t, TOP_A.to, (k, v) => {
      switch (k) {
        case 'taskArn':
          return derivedOrSelf(v, taskArn);
        case 'containerInstanceArn':
          return derivedOrSelf(v, instanceArn);
        case 'taskDefinitionArn':
          return suffixOrSelf(v, tdPrefix);
        case 'overrides':
          if (v === 0) throw UNSAFE;
          return isDefaultOverrides(v) ? 0 : v;
        case 'wharf':
          return renamed(v as Json, WHARF_A.to, (_k, x) => x);
        case 'containers':
          return (v as unknown[]).map((c) =>
            isObject(c)
              ? renamed(c, CONTAINER_A.to, (ck, cv) => (ck === 'taskArn' ? derivedOrSelf(cv, taskArn) : ck === 'containerArn' ? suffixOrSelf(cv, containerPrefix) : cv))
              : c,
          );
        default:
          return v;
      }
    });
  } catch (e) {
    if (e === UNSAFE) return undefined;
    throw e;
  }
}

/** `c` with its aliased members renamed back (a plain loop: this runs for every watch event of every replica). */
function unaliased(c: Json, from: Record<string, string>): Json {
  const out: Json = {};
  for (const k in c) out[from[k] ?? k] = c[k];
  return out;
}

/** The task record a compact form stands for. */
function expandTask(c: Json): Json {
  const t = unaliased(c, TOP_FROM);
  const w = isObject(t.wharf) ? unaliased(t.wharf, WHARF_FROM) : (t.wharf as Json);
  t.wharf = w;
  const p = arnPrefix(t.clusterArn, w.cluster)!;
  const taskArn = `${p}task/${String(w.cluster)}/${String(w.id)}`;
  if (t.taskArn === 0) t.taskArn = taskArn;
  if (t.containerInstanceArn === 0) t.containerInstanceArn = `${p}container-instance/${String(instanceClusterOf(w))}/${String(w.instanceId)}`;
  if (typeof t.taskDefinitionArn === 'string' && !t.taskDefinitionArn.startsWith('arn:')) t.taskDefinitionArn = `${p}task-definition/${t.taskDefinitionArn}`;
  if (t.overrides === 0) t.overrides = { containerOverrides: [], inferenceAcceleratorOverrides: [] };
  const containers = t.containers as unknown[];
  for (let i = 0; i < containers.length; i++) {
    const x = containers[i];
    if (!isObject(x)) continue;
    const ct = unaliased(x, CONTAINER_FROM);
    if (ct.taskArn === 0) ct.taskArn = taskArn;
    if (typeof ct.containerArn === 'string' && !ct.containerArn.startsWith('arn:')) ct.containerArn = `${p}container/${String(w.cluster)}/${String(w.id)}/${ct.containerArn}`;
    containers[i] = ct;
  }
  return t;
}

/**
 * The bytes to store for a value whose JSON text is `json` (JSON.stringify(value)): a task
 * record compact, anything else `json` itself.
 */
export function encodeValue(value: unknown, json: string): Buffer {
  if (isObject(value) && 'taskArn' in value && 'wharf' in value) {
    const c = compactTask(value);
    if (c !== undefined) {
      const text = JSON.stringify(c);
      if (text.length < json.length) {
        const out = Buffer.allocUnsafe(1 + Buffer.byteLength(text));
        out[0] = COMPACT_TASK;
        out.write(text, 1, 'utf8');
        return out;
      }
    }
  }
  return Buffer.from(json);
}

/** The value stored as `bytes` (either layout). */
export function decodeValue(bytes: Buffer): unknown {
  // The expanded record is turned into text and parsed again: objects built member by member
  // under computed names (unaliased) end up in V8's dictionary mode, about twice the heap of the
  // objects JSON.parse builds, and every replica keeps every task in its cache (100,000 bench
  // records: 298 against 150 MiB; the parse again adds about 7% to a decode). The text is the
  // record's original JSON text (expandTask undoes every step exactly).
  if (bytes.length > 0 && bytes[0] === COMPACT_TASK) return JSON.parse(JSON.stringify(expandTask(JSON.parse(bytes.toString('utf8', 1)) as Json)));
  return JSON.parse(bytes.toString('utf8'));
}
