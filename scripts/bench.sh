#!/usr/bin/env bash
# `make bench`: write and resync throughput of rdrbd beside its baselines,
# measured in one run on the same two QEMU guests: the raw backing disk and
# the in-tree C DRBD 8.4 (see scripts/bench-guest.sh). Prints a table; the
# figures only compare with each other (TCG guests, shared host).
# BENCH_SECONDS=N sets the length of each fio run (default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
echo "bench: two guests (QEMU, TCG, non-debug kernel): raw disk, rdrbd, C drbd; this takes a few minutes"
rc=0
python3 scripts/guest-run.py scripts/bench-guest.sh > build/logs/bench-run.txt 2>&1 || rc=$?
out=build/logs/bench-guest/guest0/output.txt
[ -f "$out" ] || { cat build/logs/bench-run.txt; echo "bench: FAILED (no output)"; exit 1; }
python3 - "$out" <<'PY'
import sys, collections
figures = collections.OrderedDict()
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 5 and parts[0] == "BENCH":
        _, driver, workload, value, unit = parts
        figures.setdefault(workload, {})[driver] = (float(value), unit)
drivers = ["raw", "rdrbd-protoC", "C-drbd-protoC", "rdrbd-protoA", "C-drbd-protoA", "rdrbd", "C-drbd"]
print(f"{'workload':<18} {'driver':<15} {'value':>9}  unit   vs raw  vs C")
for workload, by in figures.items():
    raw = by.get("raw")
    for d in drivers:
        if d not in by:
            continue
        v, unit = by[d]
        c = by.get(d.replace("rdrbd", "C-drbd")) if d.startswith("rdrbd") else None
        vs_raw = f"{v / raw[0]:6.2f}" if raw and raw[0] and d != "raw" else "      "
        vs_c = f"{v / c[0]:5.2f}" if c and c[0] else ""
        print(f"{workload:<18} {d:<15} {v:>9}  {unit:<5} {vs_raw}  {vs_c}")
PY
# Only missing figures fail here: a failure the guest runner reports (a
# kernel warning, say) is shown, but every figure present is still a figure.
# 6 workload figures for raw, 2 x (6 + 6 + resync) for rdrbd and C.
want=32
got=$(grep -c '^BENCH ' "$out" || true)
if [ $rc != 0 ]; then
  echo "note: the guest run reported:"
  grep '^FAIL' build/logs/bench-run.txt | sed 's/^/  /' || true
fi
if [ "$got" -ge $want ]; then
  echo "bench: done ($got figures); logs in build/logs/bench-guest/"
else
  echo "bench: FAILED: $got of $want figures; see build/logs/bench-guest/ and build/logs/bench-run.txt"
  exit 1
fi
