#!/usr/bin/env bash
# `make demo`: boot two QEMU guests with the freshly built kernel, drbd.ko and
# tools, and show /dev/drbd0 in use in each (see scripts/demo-guest.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
echo "demo: booting two guests (QEMU, TCG); this takes about a minute"
rc=0
python3 scripts/guest-run.py scripts/demo-guest.sh || rc=$?
for out in build/logs/demo-guest/guest*/output.txt; do
  echo
  echo "======== ${out%/output.txt} ========"
  grep -v '^RESULT:' "$out" || true
done
echo
[ $rc = 0 ] && echo "demo: done; full logs in build/logs/demo-guest/" || echo "demo: FAILED (see build/logs/demo-guest/)"
exit $rc
