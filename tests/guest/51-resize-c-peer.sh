#!/bin/bash
# Online grow with the in-tree C DRBD 8.4 driver as the peer: rdrbd
# Primary (guest 0), C Secondary (guest 1, drbdsetup-84), both on a 64 MiB
# loop device over a tmpfs file with internal metadata, the initial sync
# skipped. Both files grow to 96 MiB; `resize` on the rdrbd Primary sends
# P_SIZES, the C node grows (its metadata moves), answers with its sizes
# and waits for the sync UUID; rdrbd grows and resyncs exactly the new
# area as SyncSource. Then the C node shrinks to 80 MiB while connected
# (`resize --size`), rdrbd follows ("Peer sets u_size"); a write to the
# new last MiB is replicated. Both end with 80 MiB and equal data.
# guests: 2
# disks: none
# memory: 1G
# timeout: 900
# budget: 150
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
IMG=/tmp/backing.img
MIB=$((1 << 20))
SIZE64=$(md_data_bytes $((64 * MIB)))
SIZE96=$(md_data_bytes $((96 * MIB)))

truncate -s 64M "$IMG"
LO=$(losetup -f --show "$IMG") || die "no loop device"
if [ "$GUEST_INDEX" = 0 ]; then
  S=$DRBDSETUP
  step insmod load_drbd || exit 1
  step create-md create_md "$LO" || exit 1
  step new-resource "$S" new-resource r0 || exit 1
  step new-minor "$S" new-minor r0 0 0 || exit 1
  step attach "$S" attach 0 "$LO" || exit 1
else
  S=/lib/drbd/drbdsetup-84
  step modprobe-c-drbd modprobe drbd || exit 1
  step create-md create_md "$LO" "$DEBIAN_DRBDMETA" || exit 1
  step new-resource "$S" new-resource r0 || exit 1
  step new-minor "$S" new-minor r0 0 0 || exit 1
  step attach "$S" attach 0 "$LO" "$LO" internal || exit 1
fi
barrier attached || die "peer never attached"
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1
if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0 || exit 1
  step write-8M dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=4 oflag=direct status=none
fi
barrier written || die "barrier written"
truncate -s 96M "$IMG"
step grow-backing losetup -c "$LO"
barrier grown || die "barrier grown"
[ "$GUEST_INDEX" = 0 ] && step resize "$S" resize 0
wait_size() {
  local n=600 s
  until [ "$(size_of /dev/drbd0)" = "$1" ] || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  s=$(size_of /dev/drbd0); echo "/dev/drbd0: $s bytes, expected $1"; [ "$s" = "$1" ]
}
step size-96M wait_size "$SIZE96"
began_resync() {
  local n=600
  until dmesg | grep -q 'Began resync as Sync' || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  dmesg | grep 'Began resync as Sync'
}
step resync-began began_resync
step new-area-resynced wait_synced 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  resync_of_new_area() {
    local kb want=$(( (SIZE96 - SIZE64) / 1024 ))
    kb=$(resynced_kb)
    echo "resynced $kb KB, the new area is $want KB"
    [ "$kb" = "$want" ]
  }
  step resync-only-new-area resync_of_new_area
  step write-new-end dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=$(( SIZE96 / MIB - 1 )) oflag=direct status=none
  step still-connected wait_cs Connected 5
fi
barrier grown || die "barrier grown"
# Connected shrink by the C node (its resize --size while we are Primary):
# rdrbd follows its P_SIZES.
[ "$GUEST_INDEX" = 1 ] && step c-shrinks-connected "$S" resize 0 --size=80M
step size-80M wait_size $((80 * MIB))
step connected-after-shrink wait_synced 30
if [ "$GUEST_INDEX" = 0 ]; then
  step peer-usize-logged sh -c "dmesg | grep 'Peer sets u_size to 163840 sectors'"
  step write-shrunk-end dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=79 oflag=direct status=none
  step secondary "$S" secondary 0
fi
barrier done || die "barrier done"
dmesg | grep -iE 'size|resync|grow' | grep -v 'Command line' | tail -20
step down "$S" down r0
share_put "sum.$GUEST_INDEX" "$(checksum_head "$LO" $((80 * MIB)))"
barrier summed || die "barrier summed"
step data-identical same_data $((80 * MIB))
losetup -d "$LO"
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
