#!/usr/bin/env bash
# `make bench`: rdrbd beside its baselines, measured on the same two QEMU
# guests (non-debug kernel): the TCP link between them, the raw backing
# disk and the in-tree C DRBD 8.4 (see scripts/bench-guest.sh). Prints a
# table of the median of BENCH_REPEAT runs (default 3) with each figure's
# ratio to C DRBD and to the physical limit, keeps the raw output in
# build/logs/bench/ and draws build/logs/bench/bench.png (matplotlib,
# installed with pip when missing). The figures only compare with each
# other (TCG guests, shared host).
# BENCH_SECONDS=N sets the length of each fio run (default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
repeat=${BENCH_REPEAT:-3}
mkdir -p build/logs/bench
rm -f build/logs/bench/run-*.txt build/logs/bench/runner-*.txt
echo "bench: two guests (QEMU, TCG, non-debug kernel): link, raw disk, rdrbd, C drbd; $repeat run(s) of about 10 minutes"
for ((i = 1; i <= repeat; i++)); do
  rc=0
  # The drivers take turns at going first (scripts/bench-guest.sh).
  if ((i % 2)); then echo "rdrbd C-drbd"; else echo "C-drbd rdrbd"; fi > build/bench-order
  python3 scripts/guest-run.py scripts/bench-guest.sh > build/logs/bench-run.txt 2>&1 || rc=$?
  out=build/logs/bench-guest/guest0/output.txt
  if [ ! -f "$out" ]; then
    cat build/logs/bench-run.txt; echo "bench: run $i FAILED (no output)"; exit 1
  fi
  cp "$out" "build/logs/bench/run-$i.txt"
  cp build/logs/bench-run.txt "build/logs/bench/runner-$i.txt"
  if [ $rc != 0 ]; then
    echo "note: guest run $i reported:"
    grep '^FAIL' build/logs/bench-run.txt | sed 's/^/  /' || true
  fi
  # 2 link figures; 7 workload figures for raw; per driver 2 x 6 + the
  # AL-bound workload + resync + 2 full syncs.
  want=41
  got=$(grep -c '^BENCH ' "build/logs/bench/run-$i.txt" || true)
  if [ "$got" -lt $want ]; then
    echo "bench: run $i FAILED: $got of $want figures; see build/logs/bench/run-$i.txt, runner-$i.txt"
    exit 1
  fi
done
rm -f build/bench-order
python3 -c 'import matplotlib' 2>/dev/null || pip install --quiet matplotlib >/dev/null 2>&1 || true
python3 scripts/bench-report.py build/logs/bench/run-*.txt
echo "bench: done ($repeat run(s)); raw output and chart in build/logs/bench/"
