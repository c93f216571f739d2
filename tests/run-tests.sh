#!/usr/bin/env bash
# The one test entry point (`make check` calls it after building):
#   1. host unit tests: `cargo test` in include/ and userspace/ (when they have
#      a Cargo.toml), counted from cargo's "test result:" lines;
#   2. every tests/guest/*.sh in QEMU guests (scripts/guest-run.py), each
#      sub-result ("RESULT: PASS|FAIL name") counted on its own.
# Prints one "PASS name" / "FAIL name (reason)" line per test, then exactly one
# line "N passed, N failed". Exit status 1 if anything failed.
#
# Usage: tests/run-tests.sh [PATTERN]
#   PATTERN (an extended regex) selects guest tests by name, e.g. '^1' or
#   passthrough; host tests run only when no PATTERN is given or it matches
#   "host:include" / "host:userspace".
# Logs: build/logs/host-<crate>.log, build/logs/<guest test>/.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pattern=${1:-}
passed=0
failed=0
mkdir -p "$root/build/logs"

selected() { [ -z "$pattern" ] || grep -Eq -- "$pattern" <<<"$1"; }

# record LINE: print a result line and count it.
record() {
  echo "$1"
  case "$1" in
    PASS\ *) passed=$((passed + 1)) ;;
    FAIL\ *) failed=$((failed + 1)) ;;
  esac
}

# host_tests CRATE_DIR: cargo test, counting every unit/doc test.
host_tests() {
  local dir=$1 name="host:$1" logf="$root/build/logs/host-$1.log" rc np=0 nf=0 line
  (cd "$root/$dir" && cargo test --no-fail-fast --color never 2>&1) > "$logf"
  rc=$?
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
    for t in "${guest_tests[@]}"; do
      while IFS= read -r line; do
        record "$line"
      done < <(python3 "$root/scripts/guest-run.py" "$t")
    done
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
