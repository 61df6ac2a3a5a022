import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { controlTestContext } from '../control/control-test-context';
import { healthKey, healthOf, listenerKey, loadBalancerKey, targetGroupKey, targetKeyOf, type ListenerRecord, type LoadBalancerRecord, type TargetGroupRecord, type TargetHealthRecord } from '../control/elbv2-records';
import type { ControlContext } from '../control/context';
import type { DesiredState } from '../loadbalancer/model';
import type { TargetHealthDescription } from '../loadbalancer/reconciler';
import { LoadBalancerController, type LoadBalancerAddresses, type LoadBalancerDataPlane } from './load-balancer-controller';

const A = (r: string) => `arn:aws:elasticloadbalancing:eu-west-3:123456789012:${r}`;
const LB = A('loadbalancer/app/one/00000000000000a1');
const TG = A('targetgroup/web/00000000000000b1');
const L = A('listener/app/one/00000000000000a1/00000000000000c1');

class FakeDataPlane implements LoadBalancerDataPlane {
  applied: DesiredState[] = [];
  health_ = new Map<string, TargetHealthDescription[]>();
  async apply(desired: DesiredState) {
    this.applied.push(desired);
    return { reloaded: false, added: [], draining: [], freed: [] };
  }
  async health() {
    return this.health_;
  }
}

class FakeAddresses implements LoadBalancerAddresses {
  on = new Set<string>();
  async add(a: string[]) {
    for (const x of a) this.on.add(x);
  }
  async retain(keep: string[]) {
    for (const x of [...this.on]) if (!keep.includes(x)) this.on.delete(x);
  }
}

async function put(ctx: ControlContext, key: string, value: unknown): Promise<void> {
  await ctx.state.waitFor(await ctx.store.create(key, value));
}

async function seed(ctx: ControlContext): Promise<void> {
  const lb = { LoadBalancerArn: LB, LoadBalancerName: 'one', DNSName: 'One-1.eu-west-3.elb.amazonaws.com', Type: 'application', address: '10.99.24.1', Attributes: {}, Tags: [] } as unknown as LoadBalancerRecord;
  const tg = {
    TargetGroupArn: TG,
    TargetGroupName: 'web',
    Protocol: 'HTTP',
    Port: 80,
    TargetType: 'ip',
    HealthCheckEnabled: true,
    HealthCheckProtocol: 'HTTP',
    HealthCheckPort: 'traffic-port',
    HealthCheckIntervalSeconds: 5,
    HealthCheckTimeoutSeconds: 2,
    HealthyThresholdCount: 2,
    UnhealthyThresholdCount: 2,
    Attributes: {},
    Tags: [],
  } as unknown as TargetGroupRecord;
  const l: ListenerRecord = { ListenerArn: L, LoadBalancerArn: LB, Port: 80, Protocol: 'HTTP', DefaultActions: [{ Type: 'forward', TargetGroupArn: TG }], Tags: [] };
  await put(ctx, loadBalancerKey('one'), lb);
  await put(ctx, targetGroupKey('web'), tg);
  await put(ctx, listenerKey('00000000000000a1', '00000000000000c1'), l);
}

async function setup() {
  const ctx = await controlTestContext();
  const dataPlane = new FakeDataPlane();
  const addresses = new FakeAddresses();
  const controller = new LoadBalancerController({ dataPlane, addresses, clock: ctx.clock, log: ctx.log, instanceHostAddress: '172.17.0.1' });
  return { ctx, dataPlane, addresses, controller };
}

const stored = (ctx: ControlContext): TargetHealthRecord[] => healthOf(ctx, '00000000000000b1');

describe('LoadBalancerController', () => {
  test('a target record written reaches the data plane after the debounce, not on the next tick', async () => {
    const { ctx, dataPlane, addresses, controller } = await setup();
    await seed(ctx);
    controller.addRegion(ctx);
    controller.start();
    ctx.clock.advance(20);
    await controller.runPass();
    assert.deepEqual(dataPlane.applied.at(-1)!.targetGroups[0]!.targets, []);
    assert.deepEqual([...addresses.on], ['10.99.24.1']);
    const before = dataPlane.applied.length;
    await put(ctx, targetKeyOf('00000000000000b1', '10.0.0.5', 8080), { Id: '10.0.0.5', Port: 8080, registeredAt: 0 });
    ctx.clock.advance(20); // well before the 1 s tick
    await controller.runPass();
    assert.ok(dataPlane.applied.length > before);
    assert.deepEqual(dataPlane.applied.at(-1)!.targetGroups[0]!.targets, [{ id: '10.0.0.5', port: 8080 }]);
    await controller.stop();
  });

  test('changes that arrive during a pass give one more pass, not one each', async () => {
    const { ctx, dataPlane, controller } = await setup();
    await seed(ctx);
    controller.addRegion(ctx);
    const first = controller.runPass();
    for (let i = 0; i < 5; i++) void controller.runPass();
    await first;
    assert.equal(dataPlane.applied.length, 2);
    await controller.stop();
  });

  test('health goes to the store on change only; a target neither registered nor draining loses its record', async () => {
    const { ctx, dataPlane, controller } = await setup();
    await seed(ctx);
    await put(ctx, targetKeyOf('00000000000000b1', '10.0.0.5', 8080), { Id: '10.0.0.5', Port: 8080, registeredAt: 0 });
    controller.addRegion(ctx);
    const t = { id: '10.0.0.5', port: 8080 };
    dataPlane.health_.set('00000000000000b1', [{ target: t, health: { state: 'initial', reason: 'Elb.InitialHealthChecking', description: 'Initial health checks in progress' } }]);
    await controller.runPass();
    assert.deepEqual(stored(ctx).map((h) => [h.Id, h.Port, h.State, h.Reason]), [['10.0.0.5', 8080, 'initial', 'Elb.InitialHealthChecking']]);
    dataPlane.health_.set('00000000000000b1', [{ target: t, health: { state: 'healthy' } }]);
    await controller.runPass();
    const rev = (await ctx.store.get(healthKey('00000000000000b1', '10.0.0.5', 8080)))!.modRevision;
    assert.equal(stored(ctx)[0]!.State, 'healthy');
    assert.equal(stored(ctx)[0]!.Reason, undefined);
    await controller.runPass();
    assert.equal((await ctx.store.get(healthKey('00000000000000b1', '10.0.0.5', 8080)))!.modRevision, rev, 'an unchanged state is not written again');
    // Deregistered: draining while the data plane says so, then gone.
    const key = targetKeyOf('00000000000000b1', '10.0.0.5', 8080);
    await ctx.state.waitFor(await ctx.store.delete(key));
    dataPlane.health_.set('00000000000000b1', [{ target: t, health: { state: 'draining', reason: 'Target.DeregistrationInProgress', description: 'Target deregistration is in progress' } }]);
    await controller.runPass();
    assert.equal(stored(ctx)[0]!.State, 'draining');
    dataPlane.health_.set('00000000000000b1', []);
    await controller.runPass();
    assert.deepEqual(stored(ctx), []);
    await controller.stop();
  });

  test('the load balancer DNS name and dualstack.<DNS name> answer its address; a deleted load balancer takes its address off', async () => {
    const { ctx, addresses, controller } = await setup();
    await seed(ctx);
    controller.addRegion(ctx);
    await controller.runPass();
    assert.deepEqual(controller.hostNames(), [
      { name: 'one-1.eu-west-3.elb.amazonaws.com', ipv4: ['10.99.24.1'], ttl: 60 },
      { name: 'dualstack.one-1.eu-west-3.elb.amazonaws.com', ipv4: ['10.99.24.1'], ttl: 60 },
    ]);
    await ctx.state.waitFor(await ctx.store.delete(loadBalancerKey('one')));
    await controller.runPass();
    assert.deepEqual([...addresses.on], []);
    assert.deepEqual(controller.hostNames(), []);
    await controller.stop();
  });
});
