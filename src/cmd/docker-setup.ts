/**
 * For `wharf up`: make sure a Docker Engine answers. When it does not and we are root on Debian,
 * say so, install Debian's docker.io and start dockerd ourselves (there may be no systemd).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';

const dockerAnswers = () => spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0;

export async function ensureDocker(say: (s: string) => void): Promise<void> {
  if (dockerAnswers()) return;
  const isRoot = process.getuid?.() === 0;
  const isDebian = existsSync('/etc/debian_version');
  if (!isRoot || !isDebian) {
    throw new Error(
      'Wharf runs containers on a Docker Engine, and none answers here.\n' +
        'On Debian: sudo apt-get install -y docker.io && sudo dockerd &   (or: sudo systemctl start docker)\n' +
        'Elsewhere: install Docker Engine, start it, and run `wharf up` again.',
    );
  }
  if (!existsSync('/usr/bin/dockerd') && !existsSync('/usr/sbin/dockerd')) {
    say("wharf: no Docker Engine found; installing Debian's docker.io (apt-get install -y docker.io)");
    const upd = spawnSync('apt-get', ['update'], { stdio: 'inherit' });
    const inst = spawnSync('apt-get', ['install', '-y', 'docker.io'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (upd.status !== 0 || inst.status !== 0) throw new Error('installing docker.io failed; install it yourself and run `wharf up` again');
  }
  say('wharf: starting dockerd (log: /var/log/wharf-dockerd.log)');
  const out = openSync('/var/log/wharf-dockerd.log', 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  for (let i = 0; i < 60; i++) {
    if (dockerAnswers()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error('dockerd did not answer within 60 s; see /var/log/wharf-dockerd.log');
}
