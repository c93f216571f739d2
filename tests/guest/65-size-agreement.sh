#!/bin/bash
# Size agreement at connect (issue #14; 8.4's receive_sizes before
# Connected): guest 1's backing disk is a 24 MiB dm-linear slice of its
# 32 MiB disk.
# - Both fresh (Inconsistent): at the handshake guest 0 shrinks to the
#   smaller disk, both expose the same size; the full sync and a write to
#   the last MiB go through without an out-of-range complaint, and the
#   data areas match.
# - Guest 0 now has UpToDate data; guest 1 comes back with a fresh 16 MiB
#   disk: guest 0 refuses to shrink good data at connect ("The peer's disk
#   size is too small!") and goes StandAlone.
# On the fast kernel: its time goes into full syncs; the refusal is a
# handshake outcome, no error path of the data path.
# kernel: fast
# guests: 2
# disks: 32M
# timeout: 400
# budget: 70
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
SLICE_SECTORS=$((24 * 2048))
if [ "$GUEST_INDEX" = 1 ]; then
  step slice dm_create small "0 $SLICE_SECTORS linear /dev/vda 0" || exit 1
  BACKING=/dev/mapper/small
else
  BACKING=/dev/vda
fi
attach_rdrbd "$BACKING" || exit 1
barrier attached || die "peer never attached"
log "before connecting: /dev/drbd0 is $(size_of /dev/drbd0) bytes"
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1

# --- both fresh: the smaller disk wins -------------------------------------
share_put size.$GUEST_INDEX "$(size_of /dev/drbd0)"
same_size() {
  local a b; a=$(share_get size.0) b=$(share_get size.1)
  echo "guest0 $a bytes, guest1 $b bytes"
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" -lt $((SLICE_SECTORS * 512)) ]
}
step sizes-agree same_size
[ "$GUEST_INDEX" = 0 ] && step shrunk-logged sh -c "dmesg | grep 'size = '"
[ "$GUEST_INDEX" = 0 ] && step force-primary "$S" primary 0 --force
step full-sync wait_synced 120 || exit 1
if [ "$GUEST_INDEX" = 0 ]; then
  last_mib=$(( $(size_of /dev/drbd0) / 1048576 - 1 ))
  step write-last-mib dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=$last_mib oflag=direct status=none
  step secondary "$S" secondary 0
fi
barrier written || die "barrier written"
step still-synced wait_synced 30
step no-range-complaint sh -c "! dmesg | grep 'beyond end of local disk'"
DATA_BYTES=$(size_of /dev/drbd0)
barrier checked || die "barrier checked"
step down "$S" down r0
share_put sum.$GUEST_INDEX "$(checksum_range "$BACKING" 0 "$DATA_BYTES")"
barrier summed || die "barrier summed"
step data-identical same_data "$DATA_BYTES"

# --- good data does not shrink at connect ----------------------------------
if [ "$GUEST_INDEX" = 1 ]; then
  step slice-removed dm_remove small
  step smaller-slice dm_create smaller "0 $((16 * 2048)) linear /dev/vda 0"
  BACKING=/dev/mapper/smaller
  step fresh-md create_md "$BACKING"
  step new-resource-again "$S" new-resource r0
  step new-minor-again "$S" new-minor r0 0 0
  step reattach-smaller "$S" attach 0 "$BACKING"
  step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
else
  step new-resource-again "$S" new-resource r0
  step new-minor-again "$S" new-minor r0 0 0
  step reattach "$S" attach 0 "$BACKING"
  step reattached-uptodate sh -c "grep -q 'ds:UpToDate' /proc/drbd"
  step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
  step refused-logged wait_kernel_log 1 60 "The peer's disk size is too small! \([0-9]+ < [0-9]+ sectors\)"
  step refused-standalone wait_cs StandAlone 30
  step size-kept test "$(size_of /dev/drbd0)" = "$DATA_BYTES"
fi
barrier refused || die "barrier refused"
step down-again "$S" down r0
step rmmod rmmod drbd
[ "$GUEST_INDEX" = 1 ] && step slice-gone dm_remove smaller
step kernel-log-clean dmesg_clean
finish
