#!/bin/sh
# Run a command inside a throwaway network + mount namespace that plays "the host".
#
# Everything cove's integration tests do to the kernel (links, bridges, routes,
# nftables/iptables rules, sysctls under /proc/sys/net, named namespaces in /run/netns)
# happens in this namespace and vanishes with it.  /run/netns, /run/cove, /var/lib/cove
# and /etc/cove are tmpfs mounts of this namespace only (its mounts are shared among the
# namespaces made from it, as on a systemd host, but with nothing outside), so state never
# touches the real host either.
#
#   tests/sandbox.sh pytest tests/integration
#
# When the command ends (normally, failing, or because this script got SIGTERM/SIGHUP,
# which it passes on to the command), the processes it left behind are killed before
# the script exits with the command's status: every process whose network namespace
# is the sandbox's own or one mounted under the sandbox's private /run/netns (a
# SIGKILLed daemon's runtime shims and zygote, containers, anything detached with
# setsid or a double fork).  Namespaces are compared as device:inode of
# /proc/PID/ns/net, so a process in any other namespace -- the machine's own, or the
# one a nested sandbox.sh was started from -- is never touched; the network namespace
# this script was started in is left out even if someone mounted it under /run/netns.
# Only a SIGKILL of this script itself leaves them running.
#
# Containers started in here get their cgroups under a parent of this sandbox's own,
# /cove-sandbox-PID in every cgroup hierarchy (COVE_CGROUP_PARENT, the daemon's
# --cgroup-parent default), and that subtree goes at the end too: cgroups are the
# machine's, not the namespace's, so a container the reap killed (runc never deleted it)
# would otherwise leave an empty cgroup behind for good.  Thousands of those (from
# earlier test and bench runs) made every `runc run` on a cgroup v1 machine 2x slower.
set -eu

if [ "${1-}" != "--inside-sandbox" ]; then
  for d in /run/netns /run/cove /var/lib/cove /etc/cove; do mkdir -p "$d"; done
  COVE_OUTER_NETNS=$(stat -L -c %i /proc/self/ns/net)
  export COVE_OUTER_NETNS
  # unshare execs this script again (same pid) in the new namespaces, without --fork.
  exec unshare --net --mount --propagation private -- sh "$0" --inside-sandbox "$@"
fi
shift

for d in /run/netns /run/cove /var/lib/cove /etc/cove; do mount -t tmpfs -o mode=0755 cove-sandbox "$d"; done
# Shared, as systemd makes a host's mounts (the copies above were made private: nothing is shared
# with the machine's namespace): what is mounted here later reaches namespaces copied from this one
# as slaves (cove's shims and their zygote, cove.kernel.netns).
mount --make-rshared /
ip link set lo up
export COVE_SANDBOX=1
COVE_CGROUP_PARENT=/cove-sandbox-$$
export COVE_CGROUP_PARENT

# device:inode of the network namespaces this sandbox owns, space-separated.
owned_netns() {
  for f in /proc/$$/ns/net /run/netns/*; do
    [ -e "$f" ] || continue
    id=$(stat -L -c %d:%i "$f" 2>/dev/null) || continue
    [ "${id#*:}" = "$COVE_OUTER_NETNS" ] || printf '%s ' "$id"
  done
}

# The pids among the given /proc/PID/ns/net files that are in one of $owned (not this shell).
members() {
  stat -L -c '%d:%i %n' "$@" 2>/dev/null | awk -v own="$owned" -v self="$$" '
    BEGIN { n = split(own, a, " "); for (i = 1; i <= n; i++) o[a[i]] = 1 }
    ($1 in o) { split($2, p, "/"); if (p[3] != self) print p[3] }' | sort -un
}

# SIGKILL every process in the owned namespaces until none is left.  A first pass over
# all of /proc also lists this pipeline's own short-lived helpers; a second pass over
# the first one's pids drops those (gone by then) right before the kill.
reap() {
  owned=$(owned_netns)
  rounds=0
  while :; do
    set -- $(members /proc/[0-9]*/ns/net)
    [ "$#" -gt 0 ] || return 0
    files=""
    for pid in "$@"; do files="$files /proc/$pid/ns/net"; done
    # shellcheck disable=SC2086  # one word per file
    pids=$(members $files)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    settle $pids
    rounds=$((rounds + 1))
    if [ "$rounds" -ge 20 ]; then
      echo "tests/sandbox.sh: could not reap" $pids >&2
      return 1
    fi
  done
}

# Wait (5 s at most in all) until the given pids are gone or zombies: a killed process
# leaves its namespaces before it has released its files (a pipe's write end, say).
settle() {
  waited=0
  for pid in "$@"; do
    while [ "$waited" -lt 100 ] && read -r st 2>/dev/null <"/proc/$pid/stat"; do
      st=${st##*) }
      [ "${st%% *}" != Z ] || break
      sleep 0.05
      waited=$((waited + 1))
    done
  done
}

# The sandbox's cgroup parent in every mounted cgroup hierarchy (v1 controllers, v2, hybrid).
cgroup_dirs() {
  sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .* - cgroup2\{0,1\} .*/\1/p' /proc/self/mountinfo |
    while read -r mp; do
      [ -d "$mp$COVE_CGROUP_PARENT" ] && printf '%s\n' "$mp$COVE_CGROUP_PARENT"
    done
}

# Kill what is still in the sandbox's cgroups (a container whose namespaces the reap did not
# see), then remove them, deepest first.
reap_cgroups() {
  dirs=$(cgroup_dirs)
  [ -n "$dirs" ] || return 0
  rounds=0
  while :; do
    # shellcheck disable=SC2086  # one word per directory
    pids=$(find $dirs -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    settle $pids
    rounds=$((rounds + 1))
    [ "$rounds" -lt 20 ] || break
  done
  # shellcheck disable=SC2086
  find $dirs -depth -type d -exec rmdir {} + 2>/dev/null || true
  left=$(cgroup_dirs)
  [ -z "$left" ] || echo "tests/sandbox.sh: could not remove the cgroups" $left >&2
}

# The command runs in the background so that a SIGTERM/SIGHUP sent to this shell is
# passed on at once (a foreground command would delay the trap until it ended).  Its
# stdin is this script's, through a spare descriptor (an asynchronous command's is
# /dev/null otherwise; the caller's other descriptors pass through untouched), and env
# restores the SIGINT/SIGQUIT an asynchronous command starts with ignored, so ^C at a
# terminal still reaches it (it shares this shell's process group, so this shell does
# not pass SIGINT on: the command would get two).
child="" pending=""
# Whether the command is running (or a zombie not yet waited for): its pid is this shell's
# child, so not a pid the system gave to someone else after the command was collected.
running() {
  [ -n "$child" ] && read -r st 2>/dev/null <"/proc/$child/stat" || return 1
  # shellcheck disable=SC2086  # the fields after "(comm) ": state, ppid, ...
  set -- ${st##*) }
  [ "${2-}" = "$$" ]
}
# A signal sent to the whole process group (^C, killpg, timeout(1)) reaches the command
# directly as well: SIGTERM and SIGHUP then arrive twice (cove's handlers ignore a second).
forward() {
  pending=$1
  if running; then kill -s "$1" "$child" 2>/dev/null || true; fi
}
trap 'forward TERM' TERM
trap 'forward HUP' HUP
trap ':' INT QUIT
spare=""
for n in 9 8 7 6 5 4 3; do
  [ -e "/proc/$$/fd/$n" ] || { spare=$n; break; }
done
if [ -z "$spare" ] || ! [ -e /proc/$$/fd/0 ]; then
  env --default-signal=INT,QUIT "$@" &
else
  eval "exec $spare<&0"
  eval 'env --default-signal=INT,QUIT "$@" <&'"$spare $spare"'<&- &'
fi
child=$!
[ -z "$spare" ] || eval "exec $spare<&-"
[ -z "$pending" ] || forward "$pending"
status=0
while :; do
  wait "$child" && status=0 || status=$?
  running || break      # else a trap interrupted the wait: the command still runs
done
trap '' TERM HUP INT QUIT
reap || true
reap_cgroups || true
exit "$status"
