#!/bin/sh
# Run a command inside a throwaway network + mount namespace that plays "the host".
#
# Everything cove's integration tests do to the kernel (links, bridges, routes,
# nftables/iptables rules, sysctls under /proc/sys/net, named namespaces in /run/netns)
# happens in this namespace and vanishes with it.  /run/netns, /run/cove, /var/lib/cove
# and /etc/cove are private tmpfs mounts, so state never touches the real host either.
#
#   tests/sandbox.sh pytest tests/integration
set -eu
for d in /run/netns /run/cove /var/lib/cove /etc/cove; do mkdir -p "$d"; done
COVE_OUTER_NETNS=$(stat -L -c %i /proc/self/ns/net)
export COVE_OUTER_NETNS
exec unshare --net --mount --propagation private -- sh -c '
  set -e
  for d in /run/netns /run/cove /var/lib/cove /etc/cove; do mount -t tmpfs -o mode=0755 cove-sandbox "$d"; done
  ip link set lo up
  export COVE_SANDBOX=1
  exec "$@"' cove-sandbox "$@"
