#!/bin/sh
# Run Debian's dockerd 20.10 inside a throwaway network + mount namespace, for side-by-side
# comparisons with cove (never in CI).  Usage: bench/refs/docker-sandbox.sh CMD...
# Inside, DOCKER_HOST points at the private daemon; an image "bb" is imported from busybox-static.
# CMD's exit status is returned.  Whatever happens (CMD fails, SIGINT/SIGTERM), the containers
# are removed and this dockerd (and its containerd) are stopped, by their PIDs; the pid file is
# inside the private /run/docker, so several of these sandboxes can run at once.
set -eu
for d in /run/netns /run/docker /run/containerd /var/lib/docker /var/lib/containerd /etc/docker /run/cove /var/lib/cove /etc/cove; do mkdir -p "$d"; done
exec unshare --net --mount --propagation private -- sh -c '
  set -e
  for d in /run/netns /run/docker /run/containerd /var/lib/docker /var/lib/containerd /etc/docker /run/cove /var/lib/cove /etc/cove; do
    mount -t tmpfs -o mode=0755 refs-sandbox "$d"
  done
  ip link set lo up
  export DOCKER_HOST=unix:///run/docker/ref.sock
  dpid=""
  cleanup() {
    docker rm -f $(docker ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    [ -n "$dpid" ] || return 0
    cpid=$(cat /run/docker/containerd/containerd.pid 2>/dev/null || true)
    kill "$dpid" 2>/dev/null || true
    i=0; while kill -0 "$dpid" 2>/dev/null && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.1; done
    kill -9 "$dpid" 2>/dev/null || true
    if [ -n "$cpid" ]; then
      i=0; while kill -0 "$cpid" 2>/dev/null && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done
      kill -9 "$cpid" 2>/dev/null || true
    fi
  }
  trap cleanup EXIT
  trap "exit 130" INT TERM
  dockerd --storage-driver vfs -H "$DOCKER_HOST" --pidfile /run/docker/docker.pid --iptables=true \
    >/run/docker/dockerd.log 2>&1 &
  dpid=$!
  i=0; until docker version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 200 ] || { cat /run/docker/dockerd.log; exit 1; }; sleep 0.1; done
  tmp=$(mktemp -d); mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp"
  cp /bin/busybox "$tmp/bin/"; for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
  tar -C "$tmp" -c . | docker import - bb >/dev/null; rm -rf "$tmp"
  export COVE_SANDBOX=1
  rc=0; "$@" || rc=$?
  exit $rc' refs-sandbox "$@"
