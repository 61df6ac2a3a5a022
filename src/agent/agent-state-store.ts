/**
 * The agent's data dir (ECS_DATADIR): its identity (containerInstanceArn, so a restart stays the
 * same container instance) and the tasks it has accepted (so a restart can adopt their
 * containers). Writes go to a temp file and are renamed, so a kill -9 never leaves half a file.
 * Without a directory everything stays in memory (simulated instances).
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentTask } from '../api/agent/protocol';

export interface AgentIdentity {
  containerInstanceArn: string;
  cluster: string;
}

export class AgentStateStore {
  private identity?: AgentIdentity;
  private readonly tasks = new Map<string, AgentTask>();

  constructor(private readonly dir?: string) {
    if (!dir) return;
    mkdirSync(join(dir, 'tasks'), { recursive: true });
    try {
      this.identity = JSON.parse(readFileSync(join(dir, 'agent.json'), 'utf8')) as AgentIdentity;
    } catch {
      // first start
    }
    for (const f of readdirSync(join(dir, 'tasks'))) {
      if (!f.endsWith('.json')) continue;
      try {
        const t = JSON.parse(readFileSync(join(dir, 'tasks', f), 'utf8')) as AgentTask;
        this.tasks.set(t.taskArn, t);
      } catch {
        // a torn write cannot happen (rename), but never let one file stop the agent
      }
    }
  }

  private write(path: string, value: unknown): void {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(value));
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

  listTasks(): AgentTask[] {
    return [...this.tasks.values()];
  }

  putTask(task: AgentTask): void {
    this.tasks.set(task.taskArn, task);
    if (this.dir) this.write(this.taskFile(task.taskArn), task);
  }

  deleteTask(taskArn: string): void {
    this.tasks.delete(taskArn);
    if (this.dir) rmSync(this.taskFile(taskArn), { force: true });
  }
}
