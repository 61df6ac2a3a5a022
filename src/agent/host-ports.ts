/**
 * Whether a port of the host is free to publish a task's port on (assignPublicIp ENABLED): the
 * task's container port is used as the host port where it can be, as Fargate's public IP carries
 * the container's own ports; otherwise the engine picks one and networkBindings say which.
 */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

export function hostPortFree(bindIp: string): (port: number, protocol: string) => Promise<boolean> {
  return (port, protocol) =>
    new Promise((resolve) => {
      if (protocol === 'udp') {
        const s = createSocket(bindIp.includes(':') ? 'udp6' : 'udp4');
        s.once('error', () => resolve(false));
        s.bind(port, bindIp, () => s.close(() => resolve(true)));
        return;
      }
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, bindIp, () => srv.close(() => resolve(true)));
    });
}
