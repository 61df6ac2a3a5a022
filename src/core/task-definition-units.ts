/**
 * Task-level `cpu` and `memory` arrive as strings and may be written in friendly units:
 * `"1024"`, `"1 vCPU"`, `"0.25 vcpu"` for cpu; `"512"`, `"1 GB"`, `"2GB"` for memory.
 * ECS stores them as plain unit/MiB strings, so `"0.25 vcpu"` is echoed back as `"256"`.
 *
 * Worked example: "0.25 vcpu" -> 0.25 * 1024 = 256 units; "1.5 GB" -> 1.5 * 1024 = 1536 MiB.
 * A fractional result ("0.1 vcpu" = 102.4 units) is rejected rather than rounded, so the value a
 * user reads back is exactly what they asked for.
 */

/** CPU units in one vCPU. */
export const CPU_UNITS_PER_VCPU = 1024;
/** MiB in one GB as ECS counts it (ECS treats GB as GiB). */
export const MIB_PER_GB = 1024;

const NUMBER = '(\\d+(?:\\.\\d+)?|\\.\\d+)';
const CPU_RE = new RegExp(`^${NUMBER}\\s*(vcpus?)?$`, 'i');
const MEMORY_RE = new RegExp(`^${NUMBER}\\s*(gb|gib|mb|mib)?$`, 'i');

/**
 * CPU units from a task-level cpu string, or undefined if it is not a cpu value at all.
 * Plain numbers are units; a `vCPU` suffix multiplies by 1024.
 */
export function parseTaskCpu(value: string): number | undefined {
  const m = CPU_RE.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const units = m[2] ? n * CPU_UNITS_PER_VCPU : n;
  return Number.isInteger(units) ? units : undefined;
}

/**
 * MiB from a task-level memory string, or undefined if it is not a memory value at all.
 * Plain numbers and `MB`/`MiB` are MiB; `GB`/`GiB` multiply by 1024.
 */
export function parseTaskMemory(value: string): number | undefined {
  const m = MEMORY_RE.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2]?.toLowerCase();
  const mib = unit === 'gb' || unit === 'gib' ? n * MIB_PER_GB : n;
  return Number.isInteger(mib) ? mib : undefined;
}
