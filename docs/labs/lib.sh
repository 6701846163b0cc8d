# Sourced by every lab script in docs/labs/: a private cove daemon and a transcript.
#
#   tests/sandbox.sh sh docs/labs/001-netns-veth.sh      # from the top of the repository
#
# A lab runs only where it cannot hurt the machine: inside the throwaway namespace of
# tests/sandbox.sh (COVE_SANDBOX=1 in a network namespace that is not the one that
# started it), or inside the guest kernel of tests/kernel (cove_guest= in /proc/cmdline).
# It starts its own daemon with its own socket, --data-root and --exec-root under a temp
# directory, and on exit (success, failure or Ctrl-C) removes every container, network,
# namespace and link it made, stops that daemon and deletes the temp directory.
#
#   x 'CMD'        print "$ CMD", run it, print its output; the lab fails if CMD fails
#   x_fails 'CMD'  the same, but CMD must fail (a blocked ping, a refused name)
#   seen 'TEXT'    the last command's output must contain TEXT
#   say 'TEXT'     a heading in the transcript
#   ok 'TEXT'      a checked observation: printed as "ok: TEXT" (the tests look for these lines)
#
# Graphs and captures go to $LAB_OUT (default /tmp/cove-labs), the lab's working directory.

set -eu

LABS_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$LABS_DIR/../.." && pwd)
LAB=$(basename "$0" .sh)

lab_refuse() { echo "$LAB: $1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || lab_refuse "needs root"
if grep -q 'cove_guest=' /proc/cmdline 2>/dev/null; then
    LAB_WHERE=guest
elif [ "${COVE_SANDBOX:-}" = 1 ] && [ -n "${COVE_OUTER_NETNS:-}" ] \
        && [ "$(stat -L -c %i /proc/self/ns/net)" != "$COVE_OUTER_NETNS" ]; then
    LAB_WHERE=sandbox
else
    lab_refuse "run it inside tests/sandbox.sh (or the guest kernel), never in the host's own namespace"
fi

if [ -z "${COVE_PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then COVE_PYTHON=$ROOT/.venv/bin/python; else COVE_PYTHON=python3; fi
fi
LAB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cove-lab-XXXXXX")
LAB_OUT=${LAB_OUT:-/tmp/cove-labs}
mkdir -p "$LAB_OUT"
# no iputils here? busybox's ping (and friends) under their own names, for `ip netns exec` too
mkdir "$LAB_TMP/bin"
for t in ping nc; do
    command -v $t >/dev/null 2>&1 || ln -s "$(command -v busybox)" "$LAB_TMP/bin/$t"
done
# `cove` is this checkout's CLI (a program, not a function, so `timeout cove ...` works too)
printf '#!/bin/sh\nexec "%s" -m cove "$@"\n' "$COVE_PYTHON" >"$LAB_TMP/bin/cove"
chmod +x "$LAB_TMP/bin/cove"
PATH="$LAB_TMP/bin:$PATH"
export COVE_HOST="unix://$LAB_TMP/cove.sock" COVE_NO_AUTOSTART=1 PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
LAB_DAEMON_PID=""
LAB_NETNS=""          # namespaces the lab made by hand (deleted at exit)
LAB_LINKS=""          # links the lab made by hand in the host namespace
LAB_EXIT=""           # extra shell to run at exit (before the links go)

# what a daemon leaves when it stops (as dockerd leaves docker0): removed at exit unless it was here before
LAB_LEFT=""
ip link show cove0 >/dev/null 2>&1 || LAB_LEFT="$LAB_LEFT link:cove0"
nft list table ip cove >/dev/null 2>&1 || LAB_LEFT="$LAB_LEFT nft:ip"
nft list table ip6 cove >/dev/null 2>&1 || LAB_LEFT="$LAB_LEFT nft:ip6"

lab_netns() { LAB_NETNS="$LAB_NETNS $1"; }
lab_link() { LAB_LINKS="$LAB_LINKS $1"; }

lab_cleanup() {
    rc=$?
    set +e
    trap - EXIT INT TERM
    if [ -n "$LAB_DAEMON_PID" ]; then
        ids=$(cove ps -aq 2>/dev/null)
        [ -z "$ids" ] || cove rm -f $ids >/dev/null 2>&1
        for n in $(cove network ls --format '{{.Name}}' 2>/dev/null); do
            case $n in bridge|host|none) ;; *) cove network rm "$n" >/dev/null 2>&1 ;; esac
        done
        kill "$LAB_DAEMON_PID" 2>/dev/null
        i=0
        while kill -0 "$LAB_DAEMON_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$LAB_DAEMON_PID" 2>/dev/null
        wait "$LAB_DAEMON_PID" 2>/dev/null
    fi
    [ -z "$LAB_EXIT" ] || eval "$LAB_EXIT" >/dev/null 2>&1
    for l in $LAB_LEFT; do
        case $l in
            link:*) ip link del "${l#link:}" >/dev/null 2>&1 ;;
            nft:*) nft delete table "${l#nft:}" cove >/dev/null 2>&1 ;;
        esac
    done
    for l in $LAB_LINKS; do ip link del "$l" >/dev/null 2>&1; done
    for n in $LAB_NETNS; do ip netns del "$n" >/dev/null 2>&1; done
    if [ $rc -ne 0 ] && [ -f "$LAB_TMP/daemon.log" ]; then
        echo "--- $LAB failed (exit $rc); the daemon's log ends with:" >&2
        tail -n 20 "$LAB_TMP/daemon.log" >&2
    fi
    rm -rf "$LAB_TMP"
    exit $rc
}
trap lab_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_fail() { echo "FAILED: $1" >&2; exit 1; }

say() { printf '\n## %s\n' "$1"; }
ok() { printf 'ok: %s\n' "$1"; }

x() {
    printf '$ %s\n' "$1"
    [ "${LAB_FAIL_AT:-}" != "$1" ] || lab_fail "stopped on purpose at: $1"     # the tests' failure path
    set +e
    eval "$1" >"$LAB_TMP/out" 2>&1
    rc=$?
    set -e
    cat "$LAB_TMP/out"
    [ $rc -eq 0 ] || lab_fail "exit $rc from: $1"
}

x_fails() {
    printf '$ %s\n' "$1"
    set +e
    eval "$1" >"$LAB_TMP/out" 2>&1
    rc=$?
    set -e
    cat "$LAB_TMP/out"
    printf '(exit %s)\n' "$rc"
    [ $rc -ne 0 ] || lab_fail "expected a failure from: $1"
}

seen() { grep -qF -- "$1" "$LAB_TMP/out" || lab_fail "expected \"$1\" in the output above"; }
unseen() { ! grep -qF -- "$1" "$LAB_TMP/out" || lab_fail "did not expect \"$1\" in the output above"; }

# The lab's daemon and the busybox image `bb` (Debian's busybox-static, as `docker import`).
lab_daemon() {
    "$COVE_PYTHON" -m cove daemon --host "$COVE_HOST" --data-root "$LAB_TMP/lib" \
        --exec-root "$LAB_TMP/run" "$@" >"$LAB_TMP/daemon.log" 2>&1 &
    LAB_DAEMON_PID=$!
    i=0
    until cove version >/dev/null 2>&1; do
        kill -0 "$LAB_DAEMON_PID" 2>/dev/null || lab_fail "the daemon exited: $(tail -n 5 "$LAB_TMP/daemon.log")"
        i=$((i + 1)); [ $i -lt 600 ] || lab_fail "the daemon did not answer"
        sleep 0.1
    done
    "$COVE_PYTHON" -c 'import sys; from cove.runtime.busybox import make_busybox_tar as m; m(sys.argv[1])' \
        "$LAB_TMP/busybox.tar"
    cove import -c 'CMD ["sh"]' "$LAB_TMP/busybox.tar" bb >/dev/null
}

# "The internet": a namespace at 203.0.113.2 behind the host's 203.0.113.1, with no route
# back to any container subnet, so containers reach it only through masquerade.
lab_internet() {
    ip netns add internet; lab_netns internet
    ip link add uplink type veth peer name wan0 netns internet; lab_link uplink
    ip addr add 203.0.113.1/24 dev uplink
    ip link set uplink up
    ip -n internet addr add 203.0.113.2/24 dev wan0
    ip -n internet link set wan0 up
    ip -n internet link set lo up
}

# A graph of what the lab built: the DOT text always, the SVG when Graphviz is installed.
lab_graph() {
    x "cove graph -o $1.dot"
    grep -q 'digraph\|graph' "$LAB_OUT/$1.dot" || lab_fail "no DOT in $1.dot"
    if command -v dot >/dev/null 2>&1; then
        x "cove graph -o $1.svg"
        grep -q '<svg' "$LAB_OUT/$1.svg" || lab_fail "no SVG in $1.svg"
    fi
}

cd "$LAB_OUT"
