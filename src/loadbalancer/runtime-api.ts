/**
 * A client of HAProxy's Runtime API (the `stats socket ... level admin`): one connection per
 * command, which HAProxy answers and then closes (its non-interactive mode).
 *
 * Slot states (srv_admin_state bits of `show servers state`, from HAProxy's server.h):
 *   0x01 forced maintenance   0x02 inherited maintenance   0x04 configured `disabled` (a marker)
 *   0x08 forced drain         0x10 inherited drain         0x20 maintenance from DNS resolution
 */
import net from 'node:net';

export const ADMIN_MAINT = 0x01 | 0x02 | 0x20;
export const ADMIN_DRAIN = 0x08 | 0x10;

/** One server line of `show servers state` joined with its `show stat` row. */
export interface ServerState {
  backend: string;
  server: string;
  address: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping. */
  opState: number;
  adminState: number;
  /** `show stat` status: UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/3", "DOWN 1/2", "no check". */
  status: string;
  /** Last check result: L4OK, L4CON, L4TOUT, L7OK, L7STS, L7TOUT, L7RSP, SOCKERR, ... ("" before any). */
  checkStatus: string;
  /** The HTTP code of the last HTTP check, if any. */
  checkCode: string;
  /** Sessions on the server now (in-flight requests and open TCP streams). */
  currentSessions: number;
}

export class RuntimeApiError extends Error {}

/** Sends one line to a HAProxy CLI socket and returns everything it answers. */
export function sendCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new RuntimeApiError(`haproxy did not answer "${command}" on ${socketPath} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(command + '\n'));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new RuntimeApiError(`haproxy socket ${socketPath}: ${e.message}`));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** Parses HAProxy's "# a b c" header + space-separated lines (show servers state). */
function parseSpaced(text: string): Record<string, string>[] {
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const cols = header.slice(2).trim().split(/\s+/);
  return lines
    .filter((l) => l.trim() && !l.startsWith('#') && /^\d/.test(l))
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return Object.fromEntries(cols.map((c, i) => [c, f[i] ?? '']));
    });
}

/** Parses `show stat` CSV ("# pxname,svname,..."). */
function parseCsv(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim());
  const header = lines.shift();
  if (!header?.startsWith('# ')) return [];
  const cols = header.slice(2).split(',');
  return lines.map((l) => {
    const f = l.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, f[i] ?? '']));
  });
}

export class RuntimeApi {
  constructor(readonly socketPath: string) {}

  send(command: string): Promise<string> {
    return sendCommand(this.socketPath, command);
  }

  /** A command that answers nothing on success (or one of `okPrefixes`); anything else is an error. */
  private async expectOk(command: string, okPrefixes: string[] = []): Promise<void> {
    const answer = (await this.send(command)).trim();
    if (answer && !okPrefixes.some((p) => answer.startsWith(p))) throw new RuntimeApiError(`haproxy refused "${command}": ${answer}`);
  }

  /** The worker's pid, which changes when a reload's new worker takes over the socket. */
  async workerPid(): Promise<number> {
    const m = /^Pid: (\d+)$/m.exec(await this.send('show info'));
    if (!m) throw new RuntimeApiError('haproxy "show info" has no Pid');
    return Number(m[1]);
  }

  setAddress(backend: string, server: string, address: string, port: number): Promise<void> {
    return this.expectOk(`set server ${backend}/${server} addr ${address} port ${port}`, ['IP changed', 'no need to change', 'nothing changed', 'port changed']);
  }

  /** ready | drain | maint. */
  setState(backend: string, server: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
    return this.expectOk(`set server ${backend}/${server} state ${state}`);
  }

  /** Forces the check result: `down` makes a new target earn `rise` good checks before traffic. */
  setHealth(backend: string, server: string, health: 'up' | 'down'): Promise<void> {
    return this.expectOk(`set server ${backend}/${server} health ${health}`);
  }

  /** Closes every connection still open on the server (a drain that outlived its delay). */
  shutdownSessions(backend: string, server: string): Promise<void> {
    return this.expectOk(`shutdown sessions server ${backend}/${server}`);
  }

  /** Every server of every backend (BACKEND/FRONTEND rows left out). */
  async servers(): Promise<ServerState[]> {
    const [stateText, statText] = await Promise.all([this.send('show servers state'), this.send('show stat')]);
    const stats = new Map(parseCsv(statText).map((r) => [`${r.pxname}/${r.svname}`, r]));
    return parseSpaced(stateText).map((r) => {
      const s = stats.get(`${r.be_name}/${r.srv_name}`) ?? {};
      return {
        backend: r.be_name!,
        server: r.srv_name!,
        address: r.srv_addr!,
        port: Number(r.srv_port),
        opState: Number(r.srv_op_state),
        adminState: Number(r.srv_admin_state),
        status: s.status ?? '',
        checkStatus: (s.check_status ?? '').replace(/^\* /, ''),
        checkCode: s.check_code ?? '',
        currentSessions: Number(s.scur || 0),
      };
    });
  }

  /** The text `load-server-state-from-file` reads back after a reload. */
  serverStateFile(): Promise<string> {
    return this.send('show servers state');
  }
}
