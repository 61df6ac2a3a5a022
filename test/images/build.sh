#!/bin/sh
# Builds the images Wharf's Docker tests use, from Debian's busybox-static: there is no internet
# registry to pull from, so every image is a tiny rootfs imported with `docker import`.
# Idempotent: an image that already exists with the same build stamp is left alone.
#
#   wharf-test/busybox:latest  sh, sleep, httpd, nc, ... (CMD sh)
#   wharf-test/exit:latest     exits with $EXIT_CODE (default 0) after $SLEEP_SECONDS (default 0)
#   wharf-test/memhog:latest   allocates $MEMHOG_MB MiB (default 256) in RAM, then sleeps: run it
#                              under a smaller memory limit and the kernel OOM-kills it
#   wharf/pause:latest         the awsvpc pause container: sleeps until SIGTERM, exits 0 on it
set -eu

BUSYBOX=${BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox)
# The stamp changes when this script or the busybox binary changes, so edits rebuild.
STAMP=$(cat "$0" "$BUSYBOX" | sha256sum | cut -c1-16)

have() {
  [ "$(docker image inspect -f '{{index .Config.Labels "io.wharf.build"}}' "$1" 2>/dev/null || true)" = "$STAMP" ]
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/rootfs
mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/etc" "$ROOT/tmp" \
  "$ROOT/var/www" "$ROOT/root" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -sf /bin/busybox "$ROOT/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
echo 'wharf test page' >"$ROOT/var/www/index.html"
tar -C "$ROOT" -cf "$WORK/rootfs.tar" .

build() { # name, then --change lines
  name=$1; shift
  if have "$name"; then echo "up to date: $name"; return; fi
  docker import --change "LABEL io.wharf.build=$STAMP" "$@" "$WORK/rootfs.tar" "$name" >/dev/null
  echo "built: $name"
}

build wharf-test/busybox:latest --change 'CMD ["sh"]'
build wharf-test/exit:latest \
  --change 'ENV EXIT_CODE=0 SLEEP_SECONDS=0' \
  --change 'ENTRYPOINT ["sh", "-c", "sleep $SLEEP_SECONDS; exit $EXIT_CODE"]'
# The command substitution makes PID 1 (the shell) itself hold MEMHOG_MB of memory, so the OOM
# killer takes the container's main process (exit 137, OOMKilled) rather than a helper in a pipe.
build wharf-test/memhog:latest \
  --change 'ENV MEMHOG_MB=256' \
  --change 'ENTRYPOINT ["sh", "-c", "x=$(head -c ${MEMHOG_MB}m /dev/zero | tr \"\\\\0\" a); echo survived; sleep 3600"]'
build wharf/pause:latest \
  --change 'ENTRYPOINT ["sh", "-c", "trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'
# A rebuild leaves the previous image untagged; drop those (only images this script made).
docker images -q -f dangling=true -f label=io.wharf.build | xargs -r docker rmi >/dev/null 2>&1 || true
