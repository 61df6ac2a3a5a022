/**
 * A container instance's resources in ECS's own wire form (`Resource` lists), and the arithmetic
 * placement and task stops do on them. Pure.
 *
 *   name       type       registeredResources          remainingResources
 *   CPU        INTEGER    CPU units of the host        units not reserved by placed tasks
 *   MEMORY     INTEGER    MiB of the host              MiB not reserved by placed tasks
 *   PORTS      STRINGSET  TCP ports the host reserves  ...plus static host ports of placed tasks
 *   PORTS_UDP  STRINGSET  UDP ports the host reserves  ...plus static UDP host ports of tasks
 *   GPU        STRINGSET  every GPU id of the host     GPU ids not given to a placed task
 *
 * Note the asymmetry, which is ECS's: CPU, MEMORY and GPU count what is still FREE, while the
 * port sets list what is TAKEN. Other resources an agent may send (e.g. NEURON_CORES) are kept as
 * they were registered and never debited.
 *
 * Worked example (ECS API reference): 2048 CPU / 3768 MiB registered, one task with cpu 100,
 * memory 100 and hostPort 80 placed -> remaining CPU 1948, MEMORY 3668, PORTS gains "80".
 */
import { invalidParameter } from './errors';
import type { Reservation } from './resources';
import type { Resource } from './shapes/ecs';

/** TCP ports the ECS agent reserves on every host (ssh, Docker, the agent's own endpoints). */
export const DEFAULT_RESERVED_PORTS: readonly number[] = [22, 2375, 2376, 51678, 51679];

export type ResourceFailureReason = 'RESOURCE:CPU' | 'RESOURCE:MEMORY' | 'RESOURCE:PORTS' | 'RESOURCE:GPU';

/** The same resources as plain numbers and sets. */
export interface HostResources {
  cpu: number;
  memory: number;
  ports: number[];
  portsUdp: number[];
  gpuIds: string[];
}

const RESOURCE_TYPES = ['INTEGER', 'DOUBLE', 'LONG', 'STRINGSET'];

/** An INTEGER resource as ECS sends it: every numeric member present, the unused ones 0. */
export function integerResource(name: string, value: number): Resource {
  return { name, type: 'INTEGER', doubleValue: 0, longValue: 0, integerValue: value };
}

export function stringSetResource(name: string, values: readonly string[]): Resource {
  return { name, type: 'STRINGSET', doubleValue: 0, longValue: 0, integerValue: 0, stringSetValue: [...values] };
}

/** The wire list for a host: CPU, MEMORY, PORTS, PORTS_UDP, and GPU when the host has any. */
export function resourceList(h: HostResources): Resource[] {
  const out = [
    integerResource('CPU', h.cpu),
    integerResource('MEMORY', h.memory),
    stringSetResource('PORTS', h.ports.map(String)),
    stringSetResource('PORTS_UDP', h.portsUdp.map(String)),
  ];
  if (h.gpuIds.length > 0) out.push(stringSetResource('GPU', h.gpuIds));
  return out;
}

/** Reads a wire list; absent entries read as zero / empty. */
export function readResources(list: readonly Resource[] | undefined): HostResources {
  const h: HostResources = { cpu: 0, memory: 0, ports: [], portsUdp: [], gpuIds: [] };
  for (const r of list ?? []) {
    switch (r.name) {
      case 'CPU': h.cpu = r.integerValue ?? 0; break;
      case 'MEMORY': h.memory = r.integerValue ?? 0; break;
      case 'PORTS': h.ports = (r.stringSetValue ?? []).map(Number); break;
      case 'PORTS_UDP': h.portsUdp = (r.stringSetValue ?? []).map(Number); break;
      case 'GPU': h.gpuIds = [...(r.stringSetValue ?? [])]; break;
    }
  }
  return h;
}

function isPort(s: string): boolean {
  if (!/^\d{1,5}$/.test(s)) return false;
  const n = Number(s);
  return n >= 0 && n <= 65535;
}

/**
 * Validates RegisterContainerInstance's `totalResources` and returns the canonical list the
 * instance is registered with. CPU and MEMORY must be non-negative INTEGERs (absent: 0); PORTS
 * and PORTS_UDP STRINGSETs of port numbers (absent PORTS: the agent's default reserved ports).
 */
export function registeredResourcesFrom(total: readonly Resource[] | undefined): Resource[] {
  const seen = new Set<string>();
  const known = new Map<string, Resource>();
  const others: Resource[] = [];
  for (const r of total ?? []) {
    if (typeof r.name !== 'string' || r.name.length === 0) throw invalidParameter('Every resource in totalResources needs a name.');
    if (seen.has(r.name)) throw invalidParameter(`Resource '${r.name}' appears more than once in totalResources.`);
    seen.add(r.name);
    const type = r.type ?? (r.stringSetValue !== undefined ? 'STRINGSET' : 'INTEGER');
    if (!RESOURCE_TYPES.includes(type)) {
      throw invalidParameter(`Resource '${r.name}' has type '${type}'; the type must be one of ${RESOURCE_TYPES.join(', ')}.`);
    }
    switch (r.name) {
      case 'CPU':
      case 'MEMORY': {
        const v = r.integerValue ?? 0;
        if (type !== 'INTEGER' || !Number.isInteger(v) || v < 0) {
          throw invalidParameter(`Resource '${r.name}' must be an INTEGER of at least 0.`);
        }
        known.set(r.name, integerResource(r.name, v));
        break;
      }
      case 'PORTS':
      case 'PORTS_UDP':
      case 'GPU': {
        const values = r.stringSetValue ?? [];
        if (type !== 'STRINGSET') throw invalidParameter(`Resource '${r.name}' must be a STRINGSET.`);
        if (r.name !== 'GPU') {
          const bad = values.find((p) => !isPort(p));
          if (bad !== undefined) throw invalidParameter(`Resource '${r.name}' holds '${bad}', which is not a port number.`);
        }
        known.set(r.name, stringSetResource(r.name, [...new Set(values)]));
        break;
      }
      default:
        // Kept as sent (with the numeric members ECS always fills in) and never debited.
        others.push({ doubleValue: 0, longValue: 0, integerValue: 0, ...r, type });
    }
  }
  const out = [
    known.get('CPU') ?? integerResource('CPU', 0),
    known.get('MEMORY') ?? integerResource('MEMORY', 0),
    known.get('PORTS') ?? stringSetResource('PORTS', DEFAULT_RESERVED_PORTS.map(String)),
    known.get('PORTS_UDP') ?? stringSetResource('PORTS_UDP', []),
  ];
  const gpu = known.get('GPU');
  if (gpu) out.push(gpu);
  return [...out, ...others];
}

/**
 * Returns the first resource the reservation does not fit in, as ECS names it in `failures[]`,
 * or undefined when it fits. Order: CPU, MEMORY, PORTS (TCP then UDP), GPU.
 */
export function fits(remaining: readonly Resource[], reservation: Reservation): ResourceFailureReason | undefined {
  const h = readResources(remaining);
  if (reservation.cpu > h.cpu) return 'RESOURCE:CPU';
  if (reservation.memory > h.memory) return 'RESOURCE:MEMORY';
  const tcp = new Set(h.ports);
  const udp = new Set(h.portsUdp);
  if (reservation.ports.some((p) => tcp.has(p)) || reservation.portsUdp.some((p) => udp.has(p))) return 'RESOURCE:PORTS';
  const gpus = new Set(h.gpuIds);
  if (reservation.gpuIds.some((g) => !gpus.has(g))) return 'RESOURCE:GPU';
  return undefined;
}

type Sign = 1 | -1;

/** Applies a reservation to a remaining list (sign 1 takes it, -1 gives it back). */
function apply(remaining: readonly Resource[], r: Reservation, sign: Sign): Resource[] {
  const want = new Set(['CPU', 'MEMORY']);
  if (r.ports.length > 0) want.add('PORTS');
  if (r.portsUdp.length > 0) want.add('PORTS_UDP');
  if (r.gpuIds.length > 0) want.add('GPU');
  const out = remaining.map((res): Resource => {
    switch (res.name) {
      case 'CPU':
        want.delete('CPU');
        return { ...res, integerValue: (res.integerValue ?? 0) - sign * r.cpu };
      case 'MEMORY':
        want.delete('MEMORY');
        return { ...res, integerValue: (res.integerValue ?? 0) - sign * r.memory };
      case 'PORTS':
        want.delete('PORTS');
        return { ...res, stringSetValue: portsAfter(res.stringSetValue ?? [], r.ports, sign) };
      case 'PORTS_UDP':
        want.delete('PORTS_UDP');
        return { ...res, stringSetValue: portsAfter(res.stringSetValue ?? [], r.portsUdp, sign) };
      case 'GPU':
        want.delete('GPU');
        // GPU lists the free ids, so taking removes and giving back adds (the reverse of ports).
        return { ...res, stringSetValue: portsAfter(res.stringSetValue ?? [], r.gpuIds, (-sign) as Sign) };
      default:
        return res;
    }
  });
  // A list registered without some entry still gets one when a task needs it.
  for (const name of want) {
    if (name === 'CPU') out.push(integerResource('CPU', -sign * r.cpu));
    else if (name === 'MEMORY') out.push(integerResource('MEMORY', -sign * r.memory));
    else if (name === 'PORTS') out.push(stringSetResource('PORTS', portsAfter([], r.ports, sign)));
    else if (name === 'PORTS_UDP') out.push(stringSetResource('PORTS_UDP', portsAfter([], r.portsUdp, sign)));
    else if (name === 'GPU') out.push(stringSetResource('GPU', portsAfter([], r.gpuIds, (-sign) as Sign)));
  }
  return out;
}

/** Adds (sign 1) or removes (sign -1) values from a string set, keeping the order of the rest. */
function portsAfter(set: readonly string[], values: readonly (number | string)[], sign: Sign): string[] {
  if (values.length === 0) return [...set];
  const vs = values.map(String);
  if (sign > 0) {
    const out = [...set];
    const have = new Set(set);
    for (const v of vs) {
      if (!have.has(v)) {
        have.add(v);
        out.push(v);
      }
    }
    return out;
  }
  const drop = new Set(vs);
  return set.filter((v) => !drop.has(v));
}

/** The remaining resources after a task's reservation is taken. Does not check `fits`. */
export function reserve(remaining: readonly Resource[], reservation: Reservation): Resource[] {
  return apply(remaining, reservation, 1);
}

/** The remaining resources after a stopped task's reservation is given back. */
export function release(remaining: readonly Resource[], reservation: Reservation): Resource[] {
  return apply(remaining, reservation, -1);
}
