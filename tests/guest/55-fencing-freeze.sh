#!/bin/bash
# `fencing resource-and-stonith` freezes I/O (issue #12, defect 2). Two
# rdrbd nodes; the usermode helper is the recording script of lib.sh, here
# also sleeping before it exits. The Primary (guest 0) loses its peer
# (guest 1 disconnects):
# 1. I/O freezes (`s` in /proc/drbd, `suspended:fencing` in events2) while
#    fence-peer runs (10 s); a write issued meanwhile does not complete
#    before the helper has returned; exit 7 ("peer was stonithed") outdates the peer
#    and thaws, and the write completes.
# 2. After a reconnect and a second loss, a broken helper (exit 1) leaves
#    I/O frozen; a write waits until `resume-io`.
# The peer reconnects and resyncs what the Primary wrote alone; the data
# areas end equal.
# guests: 2
# disks: 32M
# timeout: 600
# budget: 100
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
step recording-helper use_recording_helper
step stonith "$S" disk-options 0 --fencing=resource-and-stonith
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1
poll() { local n=$(( $1 * 10 )); shift; until "$@" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done; "$@"; }
frozen() { proc_has 'ro:Primary/Unknown ds:UpToDate/DUnknown C s'; }
head -c $((2 << 20)) /dev/urandom > /tmp/data
# start_write MIB: writes 1 MiB at MIB in the background (WRITER: its pid).
start_write() {
  dd if=/tmp/data of=/dev/drbd0 bs=1M seek="$1" count=1 oflag=direct status=none &
  WRITER=$!
}
writer_waiting() { kill -0 "$WRITER" 2>/dev/null; }
helper_done() { [ -s "$HELPER_DONE" ]; }

# --- 1. frozen while fence-peer runs; exit 7 thaws ------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  echo 7 > "$HELPER_EXIT"
  # Long enough for the checks below on a loaded CI machine (each step
  # there takes about a second).
  echo 10 > "$HELPER_SLEEP"
  step primary "$S" primary 0
  step write-connected dd if=/tmp/data of=/dev/drbd0 bs=1M count=1 oflag=direct status=none
fi
barrier primary || die "barrier primary"
[ "$GUEST_INDEX" = 1 ] && step disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier peer-gone || die "barrier peer-gone"
if [ "$GUEST_INDEX" = 0 ]; then
  step frozen poll 20 frozen
  start_write 4
  grep -A1 '^ *0:' /proc/drbd
  step events2-fencing sh -c "$S events2 --now r0 | grep 'suspended:fencing'"
  step fence-peer-running poll 10 grep -q "^fence-peer r0" "$HELPER_LOG"
  sleep 1
  step write-held-while-helper-runs sh -c "kill -0 $WRITER && ! [ -s $HELPER_DONE ]"
  wait "$WRITER"
  step write-completed test $? = 0
  step helper-returned-first helper_done
  step thawed poll 10 proc_has 'ds:UpToDate/Outdated C r'
  grep -A1 '^ *0:' /proc/drbd
  step stonith-logged sh -c "dmesg | grep -q 'fence-peer helper returned 7 (peer was stonithed)'"
  step thaw-logged sh -c "dmesg | grep -q 'susp( 1 -> 0 )'"
fi
barrier thawed || die "barrier thawed"
[ "$GUEST_INDEX" = 1 ] && step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
step resynced-1 wait_synced 60 || exit 1
barrier resynced-1 || die "barrier resynced-1"

# --- 2. a broken helper leaves I/O frozen until resume-io -------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  echo 1 > "$HELPER_EXIT"
  echo 0 > "$HELPER_SLEEP"
  : > "$HELPER_DONE"
fi
barrier broken-helper || die "barrier broken-helper"
[ "$GUEST_INDEX" = 1 ] && step disconnect-2 "$S" disconnect "$LOCAL" "$PEER"
barrier peer-gone-2 || die "barrier peer-gone-2"
if [ "$GUEST_INDEX" = 0 ]; then
  step helper-failed poll 20 helper_done
  step broken-logged poll 10 sh -c "dmesg | grep -q 'fence-peer helper broken, returned 1'"
  step still-frozen frozen
  start_write 5
  sleep 2
  step write-held-until-resume writer_waiting
  step resume-io "$S" resume-io 0
  wait "$WRITER"
  step write-completed-2 test $? = 0
  step resumed poll 10 proc_has 'ds:UpToDate/DUnknown C r'
  step secondary "$S" secondary 0
fi
barrier resumed || die "barrier resumed"
[ "$GUEST_INDEX" = 1 ] && step reconnect-2 "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
step resynced-2 wait_synced 60 || exit 1
barrier resynced-2 || die "barrier resynced-2"
down_with_equal_data
finish
