#!/usr/bin/env bash
# `make demo`: boot two QEMU guests with the freshly built kernel, drbd.ko and
# tools: replication, a failover after the Primary dies, and the resync when
# it returns (see scripts/demo-guest.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
echo "demo: two guests (QEMU, TCG): sync, failover, resync; this takes a few minutes"
rc=0
python3 scripts/guest-run.py scripts/demo-guest.sh || rc=$?
for boot in 0 1; do
  for guest in 0 1; do
    out=build/logs/demo-guest/guest$guest/boot$boot/output.txt
    [ -f "$out" ] || continue
    echo
    echo "======== boot $boot, guest $guest ========"
    grep -v '^RESULT:' "$out" || true
  done
done
echo
[ $rc = 0 ] && echo "demo: done; full logs in build/logs/demo-guest/" || echo "demo: FAILED (see build/logs/demo-guest/)"
exit $rc
