#!/bin/bash
# disk-timeout (issue #12): the Primary's backing disk stops answering
# (its dm-linear mapping suspended, so requests queue in device-mapper).
# With disk-timeout 2 s, a write whose local part is stuck there makes
# rdrbd log "Local backing device failed to meet the disk-timeout" within
# 2 to 3 s and the disk Failed (under on-io-error pass_on: a missed
# timeout detaches under every policy). Meanwhile new writes and reads go
# to the peer and succeed. The stuck write itself is held until the disk
# returns it (8.4 completes it at once, and panics if the disk then
# writes into its pages: see Documentation/design.md); when the disk
# resumes it completes, the detach finishes (Diskless), and a re-attach
# resyncs what was written meanwhile. Both data areas end equal.
# guests: 2
# disks: 32M
# timeout: 300
# budget: 90
set -uo pipefail
. "$(dirname "$0")/lib.sh"

MiB=$((1 << 20))
BDEV=/dev/vda
if [ "$GUEST_INDEX" = 0 ]; then
  step lower-mapping dm_create lower "0 $(( $(size_of /dev/vda) / 512 )) linear /dev/vda 0" || exit 1
  BDEV=/dev/mapper/lower
fi
# drbd_sum MIB COUNT / file_sum FILE COUNT: checksums of COUNT MiB.
drbd_sum() { checksum_range /dev/drbd0 $(($1 * MiB)) $(($2 * MiB)); }
file_sum() { checksum_range "$1" 0 $(($2 * MiB)); }
# reads_back FILE DRBD_MIB COUNT: /dev/drbd0 holds FILE's first COUNT MiB.
reads_back() {
  local want got
  want=$(file_sum "$1" "$3") got=$(drbd_sum "$2" "$3")
  echo "want $want got $got"
  [ -n "$got" ] && [ "$want" = "$got" ]
}
for f in a b c; do head -c $((4 * MiB)) /dev/urandom > "/tmp/$f"; done

two_rdrbd_nodes "$BDEV"
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  step disk-timeout "$S" disk-options 0 --disk-timeout=20 --on-io-error=pass_on
  # The first 4 MiB: their activity-log extent is hot from now on, so the
  # stuck write below needs no metadata write first.
  step write-a dd if=/tmp/a of=/dev/drbd0 bs=1M count=4 oflag=direct status=none
  step stall-disk dmsetup suspend --noudevsync lower
  dd if=/tmp/b of=/dev/drbd0 bs=1M count=1 seek=1 oflag=direct status=none &
  stuck=$!
  step timeout-noticed wait_kernel_log 1 15 'Local backing device failed to meet the disk-timeout'
  step disk-failed wait_ds Failed/UpToDate 10
  # Served by the peer while the detach waits for the stuck write.
  step write-c-on-peer dd if=/tmp/c of=/dev/drbd0 bs=1M count=2 seek=12 oflag=direct status=none
  step c-read-from-peer reads_back /tmp/c 12 2
  step stuck-write-held kill -0 "$stuck"
  step resume-disk dmsetup resume --noudevsync lower
  wait "$stuck"
  step stuck-write-done test $? = 0
  step diskless wait_ds Diskless/UpToDate 30
  share_put diskless 1
  share_get peer-saw-diskless 60 > /dev/null || die "guest 1 never saw the disk go"
  step secondary "$S" secondary 0
  step reattach reattach_rdrbd /dev/mapper/lower
  step resynced wait_synced 60
  step sync-target sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
  step primary-again "$S" primary 0
  step b-reads-back reads_back /tmp/b 1 1
  step c-reads-back reads_back /tmp/c 12 2
  step secondary-again "$S" secondary 0
else
  share_get diskless 120 > /dev/null || die "guest 0 never went diskless"
  step peer-lost-disk wait_ds UpToDate/Diskless 10
  step new-current-uuid sh -c "dmesg | grep -q \"new current UUID: the peer's disk is Failed\""
  share_put peer-saw-diskless 1
  step peer-back wait_synced 90
fi
barrier done || die "barrier done"
down_with_equal_data
finish
