#!/bin/bash
# Dual-primary (allow-two-primaries, protocol C) with 8.4's write-conflict
# resolution (handle_write_conflicts: P_SUPERSEDED / P_RETRY_WRITE).
# - Two rdrbd nodes, both Primary (Connected, UpToDate/UpToDate; drbdsetup
#   show reports allow-two-primaries), write at once for 20 s, each its own
#   random data (fio, O_DIRECT, 4 in flight), at random into the same first
#   256 KiB of /dev/drbd0. The sizes are 4-16 KiB, 4 KiB aligned: 8.4
#   supersedes an equal overlap silently, an unequal one is logged
#   ("Concurrent writes detected", counted for the log only) and, where the
#   peer's write is not inside ours, sent back with P_RETRY_WRITE. fio sees
#   no error; the nodes stay Connected, Primary/Primary and UpToDate with no
#   state change, protocol error or BarrierAck mismatch, nothing out of
#   sync; the 256 KiB read the same through /dev/drbd0 on both, and after
#   down the data areas of both backing disks are equal.
# - The in-tree C driver (guest 1, same boot, the metadata kept) with
#   allow-two-primaries too is refused at the handshake by rdrbd (guest 0),
#   which resolves write conflicts only with an rdrbd peer: rdrbd logs why
#   (a line with "two primaries") and goes StandAlone; neither node gets
#   Connected.
# guests: 2
# disks: 16M
# timeout: 300
# budget: 130
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
connect_pair --allow-two-primaries --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

# The kernel log checks below read only what was logged after a mark: the
# conflicts may log hundreds of lines and roll the ring buffer (128 KiB)
# over, so counts of older lines would not hold. If the mark itself rolled
# out, every line left is newer than it.
mark_kernel_log() { echo "rdrbd-test: $1" > /dev/kmsg; }
kernel_log_since() {
  dmesg | awk -v m="rdrbd-test: $1" 'index($0, m) { n = 0; next } { l[++n] = $0 } END { for (i = 1; i <= n; i++) print l[i] }'
}
# wait_proc REGEX SECONDS: until a line of /proc/drbd matches; shows minor 0.
wait_proc() {
  local n=$(( $2 * 10 ))
  until proc_has "$1" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep -A2 '^ *0:' /proc/drbd
  proc_has "$1"
}
BOTH='cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate'
HEAD=$((256 * 1024))

# --- two Primaries -----------------------------------------------------------
shows_two_primaries() { "$S" show r0 | tee /tmp/show; grep -qE 'allow-two-primaries\s+yes;' /tmp/show; }
step show-two-primaries shows_two_primaries
[ "$GUEST_INDEX" = 0 ] && step primary "$S" primary 0
barrier first-primary || die "barrier first-primary"
[ "$GUEST_INDEX" = 1 ] && step primary "$S" primary 0
step primary-primary wait_proc "$BOTH" 30 || exit 1
barrier primaries || die "barrier primaries"

# --- both write the same 256 KiB ----------------------------------------------
mark_kernel_log dual-writes
dual_writes() {
  fio --name="dual$GUEST_INDEX" --filename=/dev/drbd0 --size=256k --rw=randwrite \
    --bsrange=4k-16k --norandommap --randseed=$((GUEST_INDEX + 1)) --refill_buffers \
    --direct=1 --ioengine=libaio --iodepth=4 --time_based --runtime=20 --output=/tmp/fio.txt ||
    { tail -30 /tmp/fio.txt; return 1; }
  grep -E 'err=|write: IOPS=' /tmp/fio.txt
  grep -q 'err= 0:' /tmp/fio.txt
}
step dual-writes dual_writes
barrier written || die "barrier written"

step still-primary-primary wait_proc "$BOTH" 30
step nothing-out-of-sync test "$(proc_field oos)" = 0
replicated_both_ways() {
  local ns nr; ns=$(proc_field ns) nr=$(proc_field nr)
  echo "ns:$ns nr:$nr KiB"
  [ "${ns:-0}" -gt 0 ] && [ "${nr:-0}" -gt 0 ]
}
step replicated-both-ways replicated_both_ways
# Connected throughout: no state change at all since the writes began (a
# P_RETRY_WRITE or P_SUPERSEDED handled wrong ends in a protocol error or
# a BarrierAck mismatch, and the connection drops).
steady() { ! kernel_log_since dual-writes | grep -E 'conn\( |disk\( |protocol error|ProtocolError|BAD! BarrierAck|ASSERT'; }
step connection-steady steady
conflicts=$(kernel_log_since dual-writes | grep -c 'Concurrent writes detected')
log "guest $GUEST_INDEX: $conflicts 'Concurrent writes detected' lines (informational)"
kernel_log_since dual-writes | grep 'Concurrent writes detected' | head -3

# Each Primary reads its own disk: the written area must read the same.
share_put "head.$GUEST_INDEX" "$(checksum_head /dev/drbd0 "$HEAD")"
barrier head-summed || die "barrier head-summed"
same_head() {
  local a b; a=$(share_get head.0) b=$(share_get head.1)
  echo "guest0 $a guest1 $b (first $HEAD bytes of /dev/drbd0)"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
step written-area-identical same_head
step secondary "$S" secondary 0

down_and_compare

# --- the C driver with allow-two-primaries: refused ---------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step new-resource-again "$S" new-resource r0
  step new-minor-again "$S" new-minor r0 0 0
  step attach-kept-md "$S" attach 0 /dev/vda || exit 1
else
  step rmmod-rdrbd rmmod drbd
  S=/lib/drbd/drbdsetup-84
  step modprobe-c-drbd modprobe drbd || exit 1
  step c-new-resource "$S" new-resource r0
  step c-new-minor "$S" new-minor r0 0 0
  step c-attach-kept-md "$S" attach 0 /dev/vda /dev/vda internal || exit 1
fi
barrier c-attached || die "barrier c-attached"
mark_kernel_log c-connect
step c-pair-connect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --allow-two-primaries --ping-timeout=20 --socket-check-timeout=5
never_connected() {
  kernel_log_since c-connect | grep -E 'drbd|r0' | tail -8
  [ "$(proc_field cs)" != Connected ] && ! kernel_log_since c-connect | grep -qE 'conn\( [A-Za-z]+ -> Connected \)'
}
if [ "$GUEST_INDEX" = 0 ]; then
  step c-peer-standalone wait_cs StandAlone 60
  refusal_logged() { kernel_log_since c-connect | grep -E '[Tt]wo [Pp]rimaries'; }
  step c-peer-refusal-logged refusal_logged
  step c-peer-never-connected never_connected
fi
# rdrbd StandAlone, the C node cannot connect any more: its state is final.
barrier c-refused || die "barrier c-refused"
[ "$GUEST_INDEX" = 1 ] && step c-never-connected never_connected

barrier c-checked || die "barrier c-checked"
step c-down "$S" down r0
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
