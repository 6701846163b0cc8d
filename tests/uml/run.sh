#!/bin/sh
# Run tests inside a User-Mode Linux kernel (Debian's user-mode-linux, a full 6.1 kernel with
# ipvlan, 802.1q, dummy, bond, openvswitch... as modules) booted on the host's root filesystem.
#
#   tests/uml/run.sh [pytest args]      (default: -q tests/uml)
#
# The guest is its own kernel: every link, rule and namespace it makes vanishes with it, and it
# has no network device to the host. Its writes to the host filesystem are limited to the
# result directory (everything else it writes goes to tmpfs mounts, see init.sh).
set -eu
cd "$(dirname "$0")/../.."
if ! command -v linux.uml >/dev/null 2>&1 || ! command -v modprobe >/dev/null 2>&1; then
  echo "uml: installing user-mode-linux and kmod" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends user-mode-linux kmod >/dev/null
fi
result=$(mktemp -d /var/tmp/cove-uml-XXXXXX)
trap 'rm -rf "$result"' EXIT
if [ "$#" -eq 0 ]; then set -- -q tests/uml; fi
printf '%s\n' "$@" > "$result/args"
started=$(date +%s)
timeout 900 linux.uml mem=1G rootfstype=hostfs rootflags=/ rw \
  init="$(pwd)/tests/uml/init.sh" cove_result="$result" cove_repo="$(pwd)" \
  con=null con0=null,fd:2 >/dev/null 2>"$result/console" || true
if [ ! -f "$result/rc" ]; then
  echo "uml: the guest wrote no result; its console said:" >&2
  tail -n 40 "$result/console" >&2
  exit 1
fi
echo "uml: guest finished in $(( $(date +%s) - started ))s; its pytest output:" >&2
cat "$result/output"
exit "$(cat "$result/rc")"
