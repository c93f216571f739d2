#!/usr/bin/env bash
# The one test entry point (`make check` calls it after building):
#   1. host unit tests: `cargo test` in include/ and userspace/ (when they have
#      a Cargo.toml), counted from cargo's "test result:" lines, and the C
#      shim's declarations checked against the Rust glue's (host:shim-*);
#   2. every tests/guest/*.sh in QEMU guests (scripts/guest-run.py), each
#      sub-result ("RESULT: PASS|FAIL name") counted on its own.
# Prints one "PASS name" / "FAIL name (reason)" line per test, each guest
# test's wall time, boots and kernel next to its results, a table of the
# slowest tests and of those over their declared budget ("# budget:" in the
# header: reported, not failed), then exactly one line "N passed, N failed".
# Exit status 1 if anything failed.
#
# Usage: tests/run-tests.sh [PATTERN]      (make check TESTS=PATTERN)
#   CHECK_JOBS=N: guest tests at once (default 2; "# exclusive: yes" alone).
#   PATTERN (an extended regex) selects guest tests by name, e.g. '^1' or
#   passthrough; host tests run only when no PATTERN is given or it matches
#   "host:include" / "host:userspace" / "host:shim".
# Logs: build/logs/host-<crate>.log, build/logs/<guest test>/.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pattern=${1:-}
passed=0
failed=0
mkdir -p "$root/build/logs"

# Wall times: "seconds name boots budget kernel" per guest test.
timings=()
suite_start=$(date +%s)

selected() { [ -z "$pattern" ] || grep -Eq -- "$pattern" <<<"$1"; }

# record LINE: print a result line and count it.
record() {
  echo "$1"
  case "$1" in
    PASS\ *) passed=$((passed + 1)) ;;
    FAIL\ *) failed=$((failed + 1)) ;;
  esac
}

# timed NAME SECONDS BOOTS BUDGET KERNEL CPU: the guest runner's timing of
# one test, printed under its results and kept for the summary.
timed() {
  local name=$1 secs=$2 boots=$3 budget=$4 kernel=$5 cpu=$6 over=""
  [ "$budget" != - ] && [ "${secs%.*}" -ge "$budget" ] && over="  OVER BUDGET"
  printf '    %s: %s s, %s guest boot(s), %s kernel, %s CPU s, budget %s s%s\n' \
    "$name" "$secs" "$boots" "$kernel" "$cpu" "$budget" "$over"
  timings+=("$secs $name $boots $budget $kernel $cpu")
}

# timing_summary: the slowest guest tests, those over budget, the totals.
timing_summary() {
  local line secs name boots budget kernel total=0 nboots=0 over=()
  echo "Guest test wall times, slowest first (seconds, name, boots, kernel, CPU seconds, budget):"
  while read -r secs name boots budget kernel cpu; do
    printf '  %7s  %-28s %2s  %-5s %5s  %s\n' "$secs" "$name" "$boots" "$kernel" "$cpu" "$budget"
  done < <(printf '%s\n' "${timings[@]}" | sort -rn | head -n 12)
  for line in "${timings[@]}"; do
    read -r secs name boots budget kernel cpu <<<"$line"
    total=$((total + ${secs%.*}))
    nboots=$((nboots + boots))
    [ "$budget" != - ] && [ "${secs%.*}" -ge "$budget" ] && over+=("$name (${secs} s, budget ${budget} s)")
  done
  [ ${#over[@]} = 0 ] || printf 'Over budget: %s\n' "${over[*]}"
  echo "Guest tests: ${#timings[@]} in ${total} s, ${nboots} guest boots; whole run $(( $(date +%s) - suite_start )) s"
}

# host_tests CRATE_DIR: cargo test, counting every unit/doc test.
host_tests() {
  local dir=$1 name="host:$1" logf="$root/build/logs/host-$1.log" rc np=0 nf=0 line t0=$SECONDS
  (cd "$root/$dir" && cargo test --no-fail-fast --color never 2>&1) > "$logf"
  rc=$?
  echo "    $name: $((SECONDS - t0)) s"
  # "test result: ok. 12 passed; 0 failed; 0 ignored; ..." once per test binary.
  while read -r line; do
    [[ $line =~ ([0-9]+)\ passed\;\ ([0-9]+)\ failed ]] || continue
    np=$((np + BASH_REMATCH[1]))
    nf=$((nf + BASH_REMATCH[2]))
  done < <(grep -E '^test result: ' "$logf")
  passed=$((passed + np))
  failed=$((failed + nf))
  # One line stands for all passed tests of the crate (counted above).
  if [ "$np" != 0 ]; then echo "PASS $name ($np unit tests)"; elif [ $rc = 0 ]; then echo "    $name: no unit tests"; fi
  # Name each failed test: "test path::to::name ... FAILED".
  sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$logf" | while read -r line; do
    echo "FAIL $name/$line (cargo test; see build/logs/host-$dir.log)"
  done
  if [ $rc != 0 ] && [ "$nf" = 0 ]; then
    # Did not build, or a test binary crashed: no per-test failure to count.
    record "FAIL $name (cargo test exited $rc; see build/logs/host-$dir.log)"
    tail -n 15 "$logf" | sed 's/^/    /'
  fi
}

for crate in include userspace; do
  [ -f "$root/$crate/Cargo.toml" ] || continue
  selected "host:$crate" || continue
  host_tests "$crate"
done

# The C shim's API as drbd_shim.h and the Rust glue declare it, and the
# check's own mutations (scripts/check-shim.py).
if selected "host:shim"; then
  for mode in check self-test; do
    args=(); [ $mode = self-test ] && args=(--self-test)
    if out=$(python3 "$root/scripts/check-shim.py" "${args[@]}" 2>&1); then
      record "PASS host:shim-$mode"
    else
      record "FAIL host:shim-$mode (${out//$'\n'/; })"
    fi
  done
fi

# report NAME: the results of a finished guest test, counted.
report() {
  local name=$1 line
  cat "$results/$name.err"
  while IFS= read -r line; do
    if [[ $line =~ ^TIME\ ([^ ]+)\ ([0-9.]+)\ ([0-9]+)\ ([^ ]+)\ ([^ ]+)\ ([0-9]+)$ ]]; then
      timed "${BASH_REMATCH[@]:1}"
    else
      record "$line"
    fi
  done < "$results/$name.out"
  [ -s "$results/$name.out" ] || record "FAIL $name (guest runner printed nothing, exit $(cat "$results/$name.rc"))"
}

# budget_of SCRIPT: its declared "# budget:" in seconds (0 if none).
budget_of() { sed -n '1,40s/^#[[:space:]]*budget:[[:space:]]*\([0-9]*\).*/\1/p' "$1" | head -n 1 | grep . || echo 0; }

# exclusive SCRIPT: the test declares "# exclusive: yes" (its timing must
# not share the CPUs with another test, e.g. a default 500 ms ping-timeout).
exclusive() { grep -Eq '^#[[:space:]]*exclusive:[[:space:]]*yes' <(head -n 40 "$1"); }

# run_guest_tests: every selected guest test, CHECK_JOBS (default 2, the CI
# machine's cores) at a time; an exclusive test runs alone. With several at
# once the exclusive tests go first, one after another (placed between
# others, each would leave a CPU idle until the test before it ended), then
# the others, longest budgets first, so that the long tests do not end up
# last and alone; results are printed as tests end.
run_guest_tests() {
  local jobs=${CHECK_JOBS:-2} running=0 t name order=() alone
  results=$root/build/logs/results
  rm -rf "$results" && mkdir -p "$results"
  if [ "$jobs" -gt 1 ]; then
    while read -r _ _ t; do order+=("$t"); done < <(
      for t in "${guest_tests[@]}"; do
        if exclusive "$t"; then echo "0 $(budget_of "$t") $t"; else echo "1 $(budget_of "$t") $t"; fi
      done | sort -s -k1,1n -k2,2rn)
  else
    order=("${guest_tests[@]}")
  fi
  flush() {
    local f n
    for f in "${order[@]}"; do
      n=$(basename "$f" .sh)
      [ -e "$results/$n.rc" ] && [ -z "${reported_set[$n]:-}" ] || continue
      reported_set[$n]=1
      report "$n"
    done
  }
  declare -A reported_set=()
  for t in "${order[@]}"; do
    alone=0
    exclusive "$t" && alone=1
    while [ "$running" -ge "$jobs" ] || { [ $alone = 1 ] && [ "$running" -gt 0 ]; }; do
      wait -n
      running=$((running - 1))
      flush
    done
    name=$(basename "$t" .sh)
    (python3 "$root/scripts/guest-run.py" "$t" > "$results/$name.out" 2> "$results/$name.err"
     echo $? > "$results/$name.rc") &
    running=$((running + 1))
    if [ $alone = 1 ]; then
      wait
      running=0
      flush
    fi
  done
  wait
  flush
}

shopt -s nullglob
guest_tests=()
for t in "$root"/tests/guest/*.sh; do
  name=$(basename "$t" .sh)
  case "$name" in lib | _*) continue ;; esac   # helpers, not tests
  selected "$name" && guest_tests+=("$t")
done

if [ ${#guest_tests[@]} -gt 0 ]; then
  if [ ! -f "$root/build/out/bzImage" ]; then
    record "FAIL guest-tests (no build/out/bzImage: scripts/build-kernel.sh builds it)"
  elif ! "$root/scripts/make-initramfs.sh" > /dev/null; then
    record "FAIL guest-tests (scripts/make-initramfs.sh failed)"
  else
    run_guest_tests
  fi
fi

[ ${#timings[@]} = 0 ] || timing_summary
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
