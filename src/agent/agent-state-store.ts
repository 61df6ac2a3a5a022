/**
 * The agent's data dir (ECS_DATADIR): its identity (containerInstanceArn, so a restart stays the
 * same container instance) and the tasks it has accepted (so a restart can adopt their
 * containers). Writes go to a temp file and are renamed, so a kill -9 never leaves half a file.
 * Without a directory everything stays in memory (simulated instances).
 *
 * Secret values never reach the disk: a task is kept without its `secrets` and `registryAuth`,
 * marked `credentialsWithheld`. A runner started from such a record after a restart adopts and
 * watches the containers it has, but creates and pulls nothing until the control plane sends the
 * task again (it always does: every connection starts with the full desired state).
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentTask } from '../api/agent/protocol';

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
        const read = JSON.parse(readFileSync(join(dir, 'tasks', f), 'utf8')) as AgentTask;
        const t = withoutCredentials(read);
        this.tasks.set(t.taskArn, t);
        // A file from before credentials were withheld: rewrite it without them.
        if (t !== read) this.write(this.taskFile(t.taskArn), t);
      } catch {
        // a torn write cannot happen (rename), but never let one file stop the agent
      }
    }
  }

  private write(path: string, value: unknown): void {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
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

  putTask(task: AgentTask): void {
    const kept = withoutCredentials(task);
    this.tasks.set(task.taskArn, kept);
    if (this.dir) this.write(this.taskFile(task.taskArn), kept);
  }

  deleteTask(taskArn: string): void {
    this.tasks.delete(taskArn);
    if (this.dir) rmSync(this.taskFile(taskArn), { force: true });
  }
}
