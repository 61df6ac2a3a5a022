/**
 * The agent's data dir (ECS_DATADIR): its identity (containerInstanceArn, so a restart stays the
 * same container instance) and the tasks it has accepted (so a restart can adopt their
 * containers). Writes go to a temp file, synced, then renamed and the directory synced, so a
 * kill -9 (or a host crash) never leaves half a file. Without a directory everything stays in
 * memory (simulated instances).
 *
 * Beside each task its runner keeps its progress (task-progress.ts): which containers it created
 * (written before any of them is started), which stopped and how, and whether the task is being
 * stopped. A restarted agent can then tell a container that was removed behind its back (it is
 * reported stopped, never made again) from one it never created (made now); see TaskRunner.adopt.
 *
 * Secret values never reach the disk: a task is kept without its `secrets` and `registryAuth`,
 * marked `credentialsWithheld`. A runner started from such a record after a restart adopts and
 * watches the containers it has, but creates and pulls nothing until the control plane sends the
 * task again (it always does: every connection starts with the full desired state).
 */
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AgentTask } from '../api/agent/protocol';
import type { TaskProgress } from './task-progress';

export interface AgentIdentity {
  containerInstanceArn: string;
  cluster: string;
  /** Key of the per-task endpoint ids in ECS_AGENT_URI (hex), kept so they survive restarts. */
  endpointKey?: string;
}

/** A task as the data dir keeps it. */
export interface StoredAgentTask extends AgentTask {
  /** Its secret values and registry credentials were left out: wait for the control plane's copy. */
  credentialsWithheld?: true;
}

/** Whether a task lacks the credentials it came with (read back from the data dir). */
export function credentialsWithheld(task: AgentTask): boolean {
  return (task as StoredAgentTask).credentialsWithheld === true;
}

/** The task without secret values or registry credentials, marked when it had any. */
export function withoutCredentials(task: AgentTask): StoredAgentTask {
  if (task.secrets === undefined && task.registryAuth === undefined) return task;
  const { secrets: _s, registryAuth: _r, ...rest } = task;
  return { ...rest, credentialsWithheld: true };
}

export class AgentStateStore {
  private identity?: AgentIdentity;
  private readonly tasks = new Map<string, AgentTask>();
  private readonly progress = new Map<string, TaskProgress>();

  constructor(private readonly dir?: string) {
    if (!dir) return;
    // Owner-only whatever the umask: task files hold what the agent was told about its tasks.
    mkdirSync(join(dir, 'tasks'), { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    chmodSync(join(dir, 'tasks'), 0o700);
    try {
      this.identity = JSON.parse(readFileSync(join(dir, 'agent.json'), 'utf8')) as AgentIdentity;
    } catch {
      // first start
    }
    for (const f of readdirSync(join(dir, 'tasks'))) {
      if (!f.endsWith('.json')) continue;
      try {
        const { progress, ...read } = JSON.parse(readFileSync(join(dir, 'tasks', f), 'utf8')) as AgentTask & { progress?: TaskProgress };
        const t = withoutCredentials(read);
        this.tasks.set(t.taskArn, t);
        if (progress) this.progress.set(t.taskArn, progress);
        // A file from before credentials were withheld: rewrite it without them.
        if (t !== read) this.writeTask(t.taskArn);
      } catch {
        // a torn write cannot happen (rename), but never let one file stop the agent
      }
    }
  }

  /**
   * Replaces the file whole: the new content is synced to disk before the rename, and the rename
   * before this returns (the directory is synced), so what a caller acts on next is on disk.
   */
  private write(path: string, value: unknown): void {
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(value));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  private writeTask(taskArn: string): void {
    if (!this.dir) return;
    const progress = this.progress.get(taskArn);
    this.write(this.taskFile(taskArn), progress ? { ...this.tasks.get(taskArn), progress } : this.tasks.get(taskArn));
  }

  private taskFile(taskArn: string): string {
    return join(this.dir!, 'tasks', `${taskArn.slice(taskArn.lastIndexOf('/') + 1)}.json`);
  }

  getIdentity(): AgentIdentity | undefined {
    return this.identity;
  }

  setIdentity(id: AgentIdentity): void {
    this.identity = id;
    if (this.dir) this.write(join(this.dir, 'agent.json'), id);
  }

  /** Forgets the identity and every accepted task (the instance was deregistered). */
  forget(): void {
    this.identity = undefined;
    if (this.dir) rmSync(join(this.dir, 'agent.json'), { force: true });
    for (const arn of [...this.tasks.keys()]) this.deleteTask(arn);
  }

  listTasks(): AgentTask[] {
    return [...this.tasks.values()];
  }

  /** A task accepted now: nothing of it has been done on this host yet. */
  putTask(task: AgentTask): void {
    this.tasks.set(task.taskArn, withoutCredentials(task));
    this.progress.set(task.taskArn, { containers: {} });
    this.writeTask(task.taskArn);
  }

  /** What the task's runner wrote down last; undefined for a task an older agent accepted. */
  progressOf(taskArn: string): TaskProgress | undefined {
    return this.progress.get(taskArn);
  }

  /** Writes the runner's progress (to disk before returning; throws when it cannot). */
  saveProgress(taskArn: string, progress: TaskProgress): void {
    // A task cleaned up already is not written back.
    if (!this.tasks.has(taskArn)) return;
    this.progress.set(taskArn, progress);
    this.writeTask(taskArn);
  }

  deleteTask(taskArn: string): void {
    this.tasks.delete(taskArn);
    this.progress.delete(taskArn);
    if (this.dir) rmSync(this.taskFile(taskArn), { force: true });
  }
}
