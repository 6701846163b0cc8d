#!/bin/sh
# `sh make.sh TARGET` = `make TARGET` on a machine that may not have make yet (fresh Debian 12).
set -eu
cd "$(dirname "$0")"
if ! command -v make >/dev/null 2>&1; then
  echo "make.sh: installing make" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make >/dev/null
fi
exec make "$@"
