/**
 * A control plane for Agent tests: records registrations and reports, and hands the test the
 * agent channel to send desired states and deltas on. Also a clock whose timers keep the test's
 * event loop alive (the system clock's are unref'd), and a polling wait.
 */
import type { RegisterContainerInstanceRequest } from '../../core/shapes/ecs';
import type { AgentTask, ServerToAgentMessage, WharfSubmitContainerStateChange, WharfTaskStateChange } from '../../api/agent/protocol';
import type { Clock } from '../../lib/clock';
import { ControlPlaneError, type AgentChannel, type ChannelHandlers, type ControlPlaneClient } from '../control-plane-client';

export const testClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export class FakeControlPlane implements ControlPlaneClient {
  registrations: RegisterContainerInstanceRequest[] = [];
  tasks: WharfTaskStateChange[] = [];
  containers: WharfSubmitContainerStateChange[] = [];
  handlers?: ChannelHandlers;
  /** Channels opened (a reconnect for a full list opens another). */
  connects = 0;
  /** Fail this many submissions as if the control plane were down. */
  down = 0;
  attempts = 0;
  constructor(private arn = `arn:aws:ecs:us-east-1:123456789012:container-instance/default/${Math.random().toString(16).slice(2)}`) {}
  async registerContainerInstance(req: RegisterContainerInstanceRequest) {
    this.registrations.push(req);
    return { containerInstanceArn: req.containerInstanceArn ?? this.arn };
  }
  async submitTaskStateChange(req: WharfTaskStateChange) {
    this.attempts++;
    if (this.down > 0) {
      this.down--;
      throw new ControlPlaneError('NetworkError', 'connect ECONNREFUSED');
    }
    this.tasks.push(req);
  }
  async submitContainerStateChange(req: WharfSubmitContainerStateChange) {
    this.containers.push(req);
  }
  connect(_p: { cluster: string; containerInstanceArn: string }, handlers: ChannelHandlers): AgentChannel {
    this.connects++;
    this.handlers = handlers;
    return {
      connected: true,
      close: () => {
        this.handlers = undefined;
      },
    };
  }
  send(tasks: AgentTask[], seq: number) {
    const m: ServerToAgentMessage = { type: 'desiredState', seq, containerInstanceArn: this.arn, tasks };
    this.handlers!.onMessage(m);
  }
  delta(seq: number, baseSeq: number, upsert: AgentTask[], remove: string[] = []) {
    this.handlers!.onMessage({ type: 'desiredStateDelta', seq, baseSeq, containerInstanceArn: this.arn, upsert, remove });
  }
}

export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
