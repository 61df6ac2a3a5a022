/**
 * `wharf agent --simulated N`: N hollow container instances in one process, each with its own
 * SimulatedRuntime, registration and agent channel. For scale tests of the control plane only:
 * nothing runs in the "containers".
 */
import type { Logger } from '../lib/logger';
import { Agent, type AgentOptions } from './agent';
import type { ControlPlaneClient } from './control-plane-client';
import { SimulatedRuntime, type SimulatedRuntimeOptions } from './runtime/simulated-runtime';

export interface SimulatedFleetOptions {
  count: number;
  /** One client per instance (each holds its own channel). */
  makeClient: (index: number) => ControlPlaneClient;
  cluster?: string;
  region: string;
  runtime?: SimulatedRuntimeOptions;
  /** Per-instance resources (default 4 vCPU / 16 GiB). */
  resources?: { cpu?: number; memory?: number };
  /** Availability zones to spread instances over (default `<region>a..c`). */
  availabilityZones?: string[];
  /** How many instances register at once. */
  registerConcurrency?: number;
  logger?: Logger;
  agent?: Partial<AgentOptions>;
}

export class SimulatedFleet {
  readonly agents: Agent[] = [];

  constructor(private readonly o: SimulatedFleetOptions) {}

  async start(): Promise<void> {
    const zones = this.o.availabilityZones ?? ['a', 'b', 'c'].map((z) => `${this.o.region}${z}`);
    const next = { i: 0 };
    const worker = async () => {
      while (next.i < this.o.count) {
        const i = next.i++;
        const agent = new Agent({
          region: this.o.region,
          cluster: this.o.cluster,
          client: this.o.makeClient(i),
          runtime: new SimulatedRuntime(this.o.runtime),
          availabilityZone: zones[i % zones.length],
          instanceType: 'wharf.simulated',
          resources: this.o.resources ?? { cpu: 4096, memory: 16384 },
          attributes: { 'wharf.simulated': 'true', 'wharf.simulated-index': String(i) },
          logger: this.o.logger,
          ...this.o.agent,
          // The simulated engine announces every container change as an event, so the runners'
          // safety-net re-inspection can be rare: at 5 s, 100,000 hollow tasks would mean
          // 20,000 inspections a second in this one process.
          runner: { pollIntervalMs: 60_000, ...this.o.agent?.runner },
          // All instances share this process's sockets: ten reports in flight per instance
          // would mean ten thousand connections to the control plane for a thousand instances.
          reporter: { concurrency: 2, ...this.o.agent?.reporter },
        });
        this.agents[i] = agent;
        await agent.start();
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.registerConcurrency ?? 50, this.o.count) }, worker));
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
  }
}
