/**
 * Task-level cpu/memory as hard limits for the whole task: a parent cgroup `<prefix>/<taskId>`
 * with memory and CFS quota set, used as every container's CgroupParent, so the containers
 * together can never exceed the task's share. This needs the engine's cgroupfs driver (with
 * systemd, parents must be slices managed by systemd) and the agent on the same host as the
 * engine with the cgroup filesystem writable; otherwise it says why not and the TaskRunner falls
 * back to per-container limits.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskCgroupResult } from './container-runtime';

export interface TaskCgroupPlace {
  /** The cgroup filesystem's mount point (/sys/fs/cgroup). */
  root: string;
  prefix: string;
  taskId: string;
  version: '1' | '2';
}

export function writeTaskCgroup(p: TaskCgroupPlace, limits: { cpuUnits?: number; memoryMiB?: number }): TaskCgroupResult {
  const { root, prefix, taskId } = p;
  const rel = `${prefix}/${taskId}`;
  const quotaUs = limits.cpuUnits ? Math.max(1000, Math.round((limits.cpuUnits / 1024) * 100_000)) : undefined;
  try {
    if (p.version === '2') {
      const parent = join(root, prefix);
      mkdirSync(join(parent, taskId), { recursive: true });
      // Controllers must be delegated down the tree before the leaf can use them.
      for (const dir of [root, parent]) {
        const avail = readFileSync(join(dir, 'cgroup.controllers'), 'utf8');
        const want = ['cpu', 'memory'].filter((c) => avail.split(/\s+/).includes(c));
        if (want.length) writeFileSync(join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
      }
      if (limits.memoryMiB) writeFileSync(join(parent, taskId, 'memory.max'), String(limits.memoryMiB * 1024 * 1024));
      if (quotaUs) writeFileSync(join(parent, taskId, 'cpu.max'), `${quotaUs} 100000`);
    } else {
      if (limits.memoryMiB) {
        const dir = join(root, 'memory', rel);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limits.memoryMiB * 1024 * 1024));
      }
      if (quotaUs) {
        const dir = join(root, 'cpu', rel);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'cpu.cfs_period_us'), '100000');
        writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
      }
    }
  } catch (err) {
    return { unsupportedReason: `cannot write task cgroup: ${(err as Error).message}` };
  }
  return { cgroupParent: `/${rel}` };
}

export async function removeTaskCgroupDirs(p: TaskCgroupPlace): Promise<void> {
  const rel = `${p.prefix}/${p.taskId}`;
  const controllers = p.version === '2' ? [''] : ['memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'pids', 'devices', 'freezer', 'net_cls', 'perf_event', 'hugetlb', 'systemd'];
  // Right after its containers are removed the kernel may still be tearing their cgroups down
  // (EBUSY), so retry briefly.
  let left = controllers.map((c) => join(p.root, c, rel)).filter((d) => existsSync(d));
  for (let attempt = 0; left.length && attempt < 20; attempt++) {
    if (attempt) await new Promise((r) => setTimeout(r, 100));
    left = left.filter((dir) => {
      try {
        rmdirSync(dir);
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    });
  }
}
