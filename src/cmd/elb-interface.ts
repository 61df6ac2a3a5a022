/**
 * Load balancers' addresses on this host: `wharf-elb0`, a Linux bridge with no ports that Wharf
 * owns, carries each load balancer's address as a /32. An address on any interface of the host is
 * a local address, so HAProxy can bind it and both the host and tasks (whose traffic to a local
 * address is routed to the host's INPUT, not forwarded) reach it. A bridge rather than a `dummy`
 * link because the dummy driver is not in every kernel (it is not here); a bridge with no ports
 * is as inert.
 *
 * Several Wharf servers (different data dirs) may share a host: each takes off only the
 * addresses it put on, listed in `<haproxy dir>/addresses`, so a restart also removes the
 * addresses of load balancers deleted while it was down. Only this interface is ever touched.
 * Their ELBv2 APIs must not hand out the same address twice (HAProxy binds with SO_REUSEPORT, so
 * two servers' listeners on one address would split its traffic): `onHost` is what the interface
 * carried at the last pass, which CreateLoadBalancer allocates around.
 * iproute2 (`ip`) through execFile; every step is idempotent.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LoadBalancerAddresses } from '../controllers/load-balancer-controller';
import type { Logger } from '../lib';

export const ELB_INTERFACE = 'wharf-elb0';

function ip(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', args, { timeout: 10_000 }, (err, stdout, stderr) => resolve({ ok: !err, stdout: String(stdout), stderr: String(stderr).trim() || (err?.message ?? '') }));
  });
}

/** The IPv4 addresses on the interface (empty when it does not exist). */
export async function interfaceAddresses(name = ELB_INTERFACE): Promise<string[]> {
  const r = await ip(['-4', '-o', 'addr', 'show', 'dev', name]);
  if (!r.ok) return [];
  return [...r.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\/\d+/g)].map((m) => m[1]!);
}

export class ElbInterface implements LoadBalancerAddresses {
  private readonly ownedFile: string;
  private ready = false;
  private seen: readonly string[] = [];

  constructor(
    dir: string,
    private readonly log: Logger,
    private readonly name = ELB_INTERFACE,
  ) {
    this.ownedFile = path.join(dir, 'addresses');
  }

  private owned(): Set<string> {
    try {
      return new Set(fs.readFileSync(this.ownedFile, 'utf8').split('\n').filter(Boolean));
    } catch {
      return new Set();
    }
  }

  private saveOwned(s: Set<string>): void {
    fs.mkdirSync(path.dirname(this.ownedFile), { recursive: true, mode: 0o700 });
    fs.writeFileSync(`${this.ownedFile}.new`, [...s].sort().join('\n') + '\n', { mode: 0o600 });
    fs.renameSync(`${this.ownedFile}.new`, this.ownedFile);
  }

  private async ensureLink(): Promise<void> {
    if (this.ready) return;
    const show = await ip(['link', 'show', 'dev', this.name]);
    if (!show.ok) {
      const add = await ip(['link', 'add', this.name, 'type', 'bridge']);
      if (!add.ok && !/exists/i.test(add.stderr)) throw new Error(`cannot create ${this.name} (ip link add ${this.name} type bridge): ${add.stderr}`);
    }
    const up = await ip(['link', 'set', 'dev', this.name, 'up']);
    if (!up.ok) throw new Error(`cannot bring ${this.name} up: ${up.stderr}`);
    this.ready = true;
  }

  /** The addresses on the interface at the last `add`: this server's and other servers' on this host. */
  onHost(): readonly string[] {
    return this.seen;
  }

  async add(addresses: string[]): Promise<void> {
    this.seen = await interfaceAddresses(this.name);
    if (addresses.length === 0) return;
    await this.ensureLink();
    const have = new Set(this.seen);
    const owned = this.owned();
    const missing = addresses.filter((a) => !have.has(a));
    // Recorded before it is added: a crash in between leaves an address we will still take off.
    if (addresses.some((a) => !owned.has(a))) this.saveOwned(new Set([...owned, ...addresses]));
    for (const a of missing) {
      const r = await ip(['addr', 'add', `${a}/32`, 'dev', this.name]);
      if (!r.ok && !/exists/i.test(r.stderr)) throw new Error(`cannot add ${a} to ${this.name}: ${r.stderr}`);
      this.log.info({ address: a, interface: this.name }, 'load balancer address added');
    }
  }

  async retain(keep: string[]): Promise<void> {
    const owned = this.owned();
    const wanted = new Set(keep);
    const gone = [...owned].filter((a) => !wanted.has(a));
    if (gone.length === 0) return;
    const have = new Set(await interfaceAddresses(this.name));
    for (const a of gone) {
      if (have.has(a)) {
        const r = await ip(['addr', 'del', `${a}/32`, 'dev', this.name]);
        if (!r.ok && !/cannot assign/i.test(r.stderr)) throw new Error(`cannot remove ${a} from ${this.name}: ${r.stderr}`);
        this.log.info({ address: a, interface: this.name }, 'load balancer address removed');
      }
      owned.delete(a);
    }
    this.saveOwned(owned);
  }
}
