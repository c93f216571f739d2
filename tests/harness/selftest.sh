#!/usr/bin/env bash
# Checks the guest harness itself (needs build/out/bzImage): failures,
# hangs, kernel splats, sub-results, 3-guest links, aborted barriers and
# multi-boot runs (power cuts, per-boot logs) must be reported as such.
# ~5 minutes.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bad=0

# expect SCRIPT EXIT_STATUS REGEX...: guest-run's output must match each REGEX.
# Extra guest-run options: set GR_OPTS=(...) before (and reset it after).
GR_OPTS=()
expect() {
  local script=$1 want=$2 out rc re; shift 2
  out=$(python3 "$root/scripts/guest-run.py" "${GR_OPTS[@]}" "$here/$script" 2>/dev/null); rc=$?
  last_out=$out
  for re in "$@"; do
    grep -Eq -- "$re" <<<"$out" || { echo "selftest $script: output lacks /$re/"; bad=1; }
  done
  [ "$rc" = "$want" ] || { echo "selftest $script: exit $rc, expected $want"; bad=1; }
  printf '%s\n' "$out" | sed "s/^/  $script| /"
}

expect exit1.sh 1 '^FAIL exit1 \(guest0: script exited with 1\)' 'about to fail' \
  '^TIME exit1 [0-9]+\.[0-9] 1 - debug [0-9]+$'
start=$(date +%s)
expect hang.sh 1 '^FAIL hang \(guest0: timed out after 45 s\)'
took=$(( $(date +%s) - start ))
[ $took -lt 75 ] || { echo "selftest hang.sh: took ${took}s for a 45s timeout"; bad=1; }
expect splat.sh 1 '^PASS splat/before-splat' '^FAIL splat \(guest0: kernel log: .*WARNING: CPU: 0 PID: 1 at rdrbd/selftest'
if grep -q 'userspace line' <<<"$last_out"; then
  echo "selftest splat.sh: a userspace line was taken for a kernel splat"; bad=1
fi
expect subresults.sh 1 '^PASS subresults/guest0/one' '^PASS subresults/guest1/two' \
  '^FAIL subresults/guest0/three' '^FAIL subresults/guest1/three' '^PASS subresults/guest1/disk-size'
expect mesh.sh 0 '^PASS mesh/guest0/ping-guest2' '^PASS mesh/guest2/ping-guest1'
expect abort.sh 1 '^PASS abort/guest0/barrier-aborts' '^FAIL abort \(guest1: script exited with 3\)'
expect multiboot.sh 0 '^PASS multiboot/boot0/fresh-disk' '^PASS multiboot/boot1/disk-kept' \
  '^PASS multiboot/boot1/shared-kept' '^PASS multiboot/boot2/disk-kept' '^PASS multiboot/boot2/results-per-boot'
for f in guest0.boot0.console guest0.boot2.console guest0/boot0/power-cut guest0/boot1/rc guest0/boot2/output.txt; do
  [ -e "$root/build/logs/multiboot/$f" ] || { echo "selftest multiboot.sh: no build/logs/multiboot/$f"; bad=1; }
done
[ ! -e "$root/build/logs/multiboot/guest0/boot0/rc" ] || { echo "selftest multiboot.sh: boot 0 has an rc despite its power cut"; bad=1; }
expect multiboot-fail.sh 1 '^PASS multiboot-fail/boot0/reached-0' '^PASS multiboot-fail/boot1/reached-1' \
  '^FAIL multiboot-fail \(guest0.boot0: kernel log: .*WARNING: CPU: 0 PID: 1 at rdrbd/selftest.c:2.*guest0.boot1: power cut in the last boot'
# The budget and kernel flavour from the command line reach the TIME line.
GR_OPTS=(--budget 7 --flavour fast)
expect exit1.sh 1 '^TIME exit1 [0-9]+\.[0-9] 1 7 fast [0-9]+$'
# A failed boot ends the run: the next one is not started.
GR_OPTS=(--boots 2)
expect exit1.sh 1 '^FAIL exit1 \(guest0.boot0: script exited with 1; guest0.boot1: not run \(boot 0 failed\)\)'
GR_OPTS=()
if pgrep -f "qemu-system-x86_64.*rdrbd.test=(exit1|hang|splat|subresults|mesh|abort|multiboot|multiboot-fail) " >/dev/null; then
  echo "selftest: QEMU processes left behind"; bad=1
fi
[ $bad = 0 ] && echo "harness selftest: OK" || echo "harness selftest: FAILED"
exit $bad
