#!/bin/sh
# Run Debian's dockerd 20.10 inside a throwaway network + mount namespace, for side-by-side
# comparisons with cove (never in CI).  Usage: bench/refs/docker-sandbox.sh CMD...
# Inside, DOCKER_HOST points at the private daemon; an image "bb" is imported from busybox-static.
set -eu
for d in /run/netns /run/docker /run/containerd /var/lib/docker /var/lib/containerd /etc/docker /run/cove /var/lib/cove /etc/cove; do mkdir -p "$d"; done
exec unshare --net --mount --propagation private -- sh -c '
  set -e
  for d in /run/netns /run/docker /run/containerd /var/lib/docker /var/lib/containerd /etc/docker /run/cove /var/lib/cove /etc/cove; do
    mount -t tmpfs -o mode=0755 refs-sandbox "$d"
  done
  ip link set lo up
  export DOCKER_HOST=unix:///run/docker/ref.sock
  dockerd --storage-driver vfs -H "$DOCKER_HOST" --iptables=true >/run/docker/dockerd.log 2>&1 &
  i=0; until docker version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 200 ] || { cat /run/docker/dockerd.log; exit 1; }; sleep 0.1; done
  tmp=$(mktemp -d); mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp"
  cp /bin/busybox "$tmp/bin/"; for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
  tar -C "$tmp" -c . | docker import - bb >/dev/null; rm -rf "$tmp"
  export COVE_SANDBOX=1
  "$@"; rc=$?
  docker rm -f $(docker ps -aq) >/dev/null 2>&1 || true
  kill $(cat /run/docker/docker.pid 2>/dev/null || pgrep -x dockerd) 2>/dev/null || true
  sleep 1
  exit $rc' refs-sandbox "$@"
