/**
 * A real `Agent` on Docker in its own process, for the kill -9 / restart test. Its control plane
 * is files: desired state is read from argv[3] (re-read when it changes), every submission is
 * appended as a JSON line to argv[4]. argv[2] is the data dir.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import type { RegisterContainerInstanceRequest } from '../../core/shapes/ecs';
import type { AgentTask, WharfSubmitContainerStateChange, WharfTaskStateChange } from '../../api/agent/protocol';
import { Agent } from '../agent';
import type { ChannelHandlers, ControlPlaneClient } from '../control-plane-client';
import { DockerRuntime } from '../runtime/docker-runtime';

const [dataDir, desiredFile, reportFile, instanceArn] = process.argv.slice(2) as [string, string, string, string];

class FileControlPlane implements ControlPlaneClient {
  async registerContainerInstance(req: RegisterContainerInstanceRequest) {
    appendFileSync(reportFile, JSON.stringify({ kind: 'register', pid: process.pid, arn: req.containerInstanceArn }) + '\n');
    return { containerInstanceArn: req.containerInstanceArn ?? instanceArn };
  }
  async submitTaskStateChange(req: WharfTaskStateChange) {
    appendFileSync(reportFile, JSON.stringify({ kind: 'task', pid: process.pid, ...req }) + '\n');
  }
  async submitContainerStateChange(req: WharfSubmitContainerStateChange) {
    appendFileSync(reportFile, JSON.stringify({ kind: 'container', pid: process.pid, ...req }) + '\n');
  }
  connect(p: { containerInstanceArn: string }, h: ChannelHandlers) {
    let last = '';
    let seq = 0;
    const poll = () => {
      let text = '';
      try {
        text = readFileSync(desiredFile, 'utf8');
      } catch {
        return;
      }
      if (text === last) return;
      last = text;
      h.onMessage({ type: 'desiredState', seq: ++seq, containerInstanceArn: p.containerInstanceArn, tasks: JSON.parse(text) as AgentTask[] });
    };
    const timer = setInterval(poll, 100);
    poll();
    return { connected: true, close: () => clearInterval(timer) };
  }
}

const agent = new Agent({ client: new FileControlPlane(), runtime: new DockerRuntime(), region: 'us-east-1', dataDir, pullBehaviour: 'prefer-cached', runner: { pollIntervalMs: 500 } });
agent.start().catch((err) => {
  console.error(err);
  process.exit(1);
});
