#!/bin/sh
# Run Debian's podman 4.3 (netavark + aardvark-dns, runc) inside a throwaway network + mount +
# PID namespace, for side-by-side comparisons with cove (never in CI).
# Usage: bench/refs/podman-sandbox.sh CMD...
# Inside: PODMAN_ARGV is the podman command line to use (podman with --root/--runroot in a temp
# dir), CONTAINERS_CONF and CONTAINERS_STORAGE_CONF point at config files in that temp dir, and an
# image "bb" is imported from busybox-static.  Nothing is written to /etc/containers,
# /var/lib/containers or the host's /run: netavark's network configs, aardvark-dns, the
# storage (vfs) and the runtime state all live in the temp dir or in private tmpfs mounts.
# CMD's exit status is returned.  On exit (or SIGINT/SIGTERM) the containers are removed; the
# PID namespace ends with its first process, so no conmon, aardvark-dns or container survives.
set -eu
for d in /run/netns /run/containers /run/libpod /var/lib/cni /run/cove /var/lib/cove /etc/cove; do mkdir -p "$d"; done
exec unshare --net --mount --pid --fork --mount-proc --propagation private -- sh -c '
  set -e
  for d in /run/netns /run/containers /run/libpod /var/lib/cni /run/cove /var/lib/cove /etc/cove; do
    mount -t tmpfs -o mode=0755 refs-sandbox "$d"
  done
  ip link set lo up
  T=$(mktemp -d /tmp/podman-bench-XXXXXX)
  # its storage (root, runroot, networks) on a tmpfs of this namespace, as dockerd'\''s data root in
  # docker-sandbox.sh and cove'\''s in the bench: no engine is timed on another filesystem
  mount -t tmpfs -o mode=0700 refs-sandbox "$T"
  PODMAN_ARGV=""
  cleanup() {
    if [ -n "$PODMAN_ARGV" ]; then
      $PODMAN_ARGV rm -af -t 0 >/dev/null 2>&1 || true
      $PODMAN_ARGV network prune -f >/dev/null 2>&1 || true
    fi
    umount -R "$T" 2>/dev/null || umount -l "$T" 2>/dev/null || true
    rm -rf "$T"
  }
  trap cleanup EXIT
  trap "exit 130" INT TERM
  mkdir -p "$T/root" "$T/runroot" "$T/tmp" "$T/networks" "$T/netns"
  nofile=$(ulimit -Hn); nproc=$(awk "/^Max processes/ {print \$4}" /proc/self/limits)
  cat > "$T/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/tmp"
[network]
network_backend = "netavark"
network_config_dir = "$T/networks"
CONF
  cat > "$T/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$T/runroot"
graphroot = "$T/root"
CONF
  export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf"
  export PODMAN_ARGV="podman --root $T/root --runroot $T/runroot"
  img=$(mktemp -d); mkdir -p "$img/bin" "$img/etc" "$img/proc" "$img/sys" "$img/dev" "$img/tmp"
  cp /bin/busybox "$img/bin/"; for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$img/bin/$a"; done
  tar -C "$img" -c . | $PODMAN_ARGV import -c "CMD [\"sh\"]" - bb >/dev/null; rm -rf "$img"
  export COVE_SANDBOX=1
  rc=0; "$@" || rc=$?
  exit $rc' refs-sandbox "$@"
