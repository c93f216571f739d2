#!/bin/bash
# Bad requests fail cleanly with a message, and leave the module usable:
# attach to a missing path, attach twice, an out-of-range minor, teardown in
# the wrong order, and rmmod while /dev/drbd0 is held open.
# guests: 1
# disks: 256M
# timeout: 600
# budget: 50
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
drbd_loaded && die "a drbd module is already loaded"
S=$DRBDSETUP
R=$(role_tool)   # drbdsetup with primary/secondary (see lib.sh)

step insmod load_drbd || exit 1
step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1
step create-md create_md /dev/vda || exit 1

# A failing command must say why: some text naming the problem.
clear_failure() {
  local out rc
  out=$("$@" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed 's/^/    | /'
  [ $rc != 0 ] || { echo "    succeeded, expected a failure: $*"; return 1; }
  [ -n "$out" ] || { echo "    failed silently (exit $rc): $*"; return 1; }
  echo "    failed as expected (exit $rc)"
}

missing_path() {
  local out rc
  out=$("$S" attach 0 /dev/rdrbd-does-not-exist 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed 's/^/    | /'
  [ $rc != 0 ] || { echo "    attach to a missing path succeeded"; return 1; }
  # The message must point at the cause (DRBD 8.4: "Can not open backing device").
  grep -Eiq 'no such|not exist|not found|rdrbd-does-not-exist|can ?not open|can.t open|backing dev|lower.?dev' <<<"$out" \
    || { echo "    the message does not name the problem"; return 1; }
}
step attach-missing-path missing_path
step missing-args expect_fail "$S" attach 0
step attach "$S" attach 0 /dev/vda || exit 1
# DRBD 8.4 drbd_open: a Secondary opens neither for writing nor reading.
step open-secondary-fails expect_fail dd if=/dev/drbd0 of=/dev/null bs=4k count=1 status=none
step primary-needs-force clear_failure "$R" primary 0
step primary-force "$R" primary 0 --force || exit 1
step attach-twice clear_failure "$S" attach 0 /dev/vda
step minor-out-of-range clear_failure "$S" new-minor r0 1048576 0
step minor-duplicate clear_failure "$S" new-minor r0 0 0
# DRBD 8.4: a configured minor cannot be deleted, nor a resource with minors.
step del-minor-attached clear_failure "$S" del-minor 0
step del-resource-in-use clear_failure "$S" del-resource r0
step still-attached bash -c 'test -b /dev/drbd0 && [ "$(blockdev --getsize64 /dev/drbd0)" -gt 0 ]'

# rmmod must refuse while the device is open.
if exec 3</dev/drbd0; then
  pass open-drbd0
  step rmmod-while-open expect_fail rmmod drbd
  step secondary-while-open clear_failure "$R" secondary 0
  exec 3<&-
else
  fail open-drbd0 "cannot open /dev/drbd0"
fi
step module-still-loaded drbd_loaded

# After the failures the minor still works.
step io-after-errors bash -c 'dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 oflag=direct status=none && dd if=/dev/drbd0 of=/dev/null bs=64k count=16 iflag=direct status=none'

step detach-primary-refused clear_failure "$S" detach 0
step secondary "$R" secondary 0
step detach "$S" detach 0
# DRBD 8.4 (drbd_request_detach_interruptible): detaching a diskless minor
# is SS_NOTHING_TO_DO, i.e. success.
step detach-twice-is-noop "$S" detach 0
step del-minor "$S" del-minor 0
step del-resource "$S" del-resource r0
step del-resource-again clear_failure "$S" del-resource r0
step rmmod rmmod drbd
step reload load_drbd && rmmod drbd
step kernel-log-clean dmesg_clean
finish
