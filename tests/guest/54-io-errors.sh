#!/bin/bash
# Local I/O errors and the on-io-error policies (issue #12, defect 3). Each
# guest's backing device is a dm-linear mapping over /dev/vda whose table
# the test switches to fail one MiB (dm "error" target) and back:
# 1. detach (the default), under the Primary (guest 0): writes over the
#    failing MiB (fio, 16 in flight) reach the peer, the disk goes
#    Failed -> Diskless, and the Diskless Primary goes on through the peer:
#    reads come back from it (P_DATA_REQUEST), writes are replicated and
#    marked out of sync on the peer, which makes a new current UUID. Healed
#    and attached again, guest 0 resyncs as SyncTarget.
# 2. pass_on, under the Primary: a read of the failing MiB returns the
#    peer's data without an error (the read is retried there), the disk
#    becomes Inconsistent and stays attached; a write over the failing MiB
#    reaches the peer and leaves its blocks out of sync, so a read of them
#    goes to the peer too, and so does a discard there (its blocks stay out
#    of sync). Healed and reconnected, guest 0 is SyncTarget (disk
#    states).
# 3. call-local-io-error, under the Secondary (guest 1): the Primary's
#    writes succeed, the `local-io-error` helper runs, guest 1 detaches;
#    the Primary marks what it writes alone out of sync and resyncs guest 1
#    once it is healed and attached again.
# 4. pass_on, under the Secondary: the Primary's writes succeed, guest 1's
#    disk becomes Inconsistent and stays attached, the Primary marks the
#    blocks guest 1 failed; healed and reconnected, guest 1 is SyncTarget.
# After each recovery both are UpToDate; at the end the data areas of both
# backing disks are equal.
# guests: 2
# disks: 32M
# timeout: 900
# budget: 170
set -uo pipefail
. "$(dirname "$0")/lib.sh"

MiB=$((1 << 20))
SECTORS=$(( $(size_of /dev/vda) / 512 ))

step lower-mapping dm_create lower "0 $SECTORS linear /dev/vda 0" || exit 1
# lower_fail MIB: that MiB of the backing device fails every read and write.
lower_fail() {
  local s=$(( $1 * 2048 )) n=2048
  printf '0 %d linear /dev/vda 0\n%d %d error\n%d %d linear /dev/vda %d\n' \
    "$s" "$s" "$n" $((s + n)) $((SECTORS - s - n)) $((s + n)) | dmsetup load lower &&
    dmsetup resume --noudevsync lower
}
# lower_heal: the backing device works again.
lower_heal() {
  echo "0 $SECTORS linear /dev/vda 0" | dmsetup load lower && dmsetup resume --noudevsync lower
}
# reattach: the disk healed, r0 down and up again on it (its metadata
# kept), connected to the peer.
reattach() { step heal lower_heal && reattach_rdrbd /dev/mapper/lower; }
# write_file FILE MIB [COUNT]: COUNT MiB (4) of FILE onto /dev/drbd0 at MIB.
write_file() { dd if="$1" of=/dev/drbd0 bs=1M seek="$2" count="${3:-4}" oflag=direct status=none; }
# drbd_sum MIB COUNT: checksum of COUNT MiB of /dev/drbd0 at MIB.
drbd_sum() { checksum_range /dev/drbd0 $(($1 * MiB)) $(($2 * MiB)); }
# file_sum FILE MIB COUNT: the same for COUNT MiB of FILE at MIB.
file_sum() { checksum_range "$1" $(($2 * MiB)) $(($3 * MiB)); }
# reads_back WHAT_FILE FILE_MIB DRBD_MIB COUNT: /dev/drbd0 has that data.
reads_back() {
  local want got
  want=$(file_sum "$1" "$2" "$4") got=$(drbd_sum "$3" "$4")
  echo "want $want got $got"
  [ -n "$got" ] && [ "$want" = "$got" ]
}
oos_at_least() { local oos; oos=$(proc_field oos); echo "oos:$oos KiB"; [ "${oos:-0}" -ge "$1" ]; }
for f in a b c d e f; do head -c $((4 * MiB)) /dev/urandom > "/tmp/$f"; done

two_rdrbd_nodes /dev/mapper/lower
step recording-helper use_recording_helper
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

# --- 1. detach: the Primary's disk fails a write -------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  step write-a write_file /tmp/a 0
  step fail-mib-1 lower_fail 1
  # 16 writes in flight over the failing MiB: several fail while the
  # worker detaches (it must finish them while it waits for the disk's
  # I/O to drain). Each reaches the peer, so each succeeds (8.4: ok if
  # either disk has it), whether the local failure or the peer's ack
  # comes first.
  step writes-succeed fio --name=b --filename=/dev/drbd0 --size=2M --rw=randwrite --bs=4k --iodepth=16 \
    --ioengine=libaio --direct=1
  step diskless wait_ds Diskless/UpToDate 30
  step failure-logged sh -c "dmesg | grep -q 'Local IO failed. Detaching'"
  # Diskless: through the peer only.
  step write-b-diskless write_file /tmp/b 0 2
  step b-reads-back reads_back /tmp/b 0 0 2
  step a-reads-back reads_back /tmp/a 2 2 2
  step write-c-diskless dd if=/tmp/c of=/dev/drbd0 bs=1M seek=4 count=1 oflag=direct status=none
  step c-reads-back reads_back /tmp/c 0 4 1
  share_put diskless-done 1
else
  share_get diskless-done 120 > /dev/null || die "guest 0 never went diskless"
  step peer-diskless wait_ds UpToDate/Diskless 10
  step new-current-uuid sh -c "dmesg | grep -q \"new current UUID: the peer's disk is Failed\""
  step writes-marked oos_at_least 1024
fi
barrier diskless || die "barrier diskless"
if [ "$GUEST_INDEX" = 0 ]; then
  step secondary "$S" secondary 0
  reattach
fi
step resynced-1 wait_synced 120 || exit 1
[ "$GUEST_INDEX" = 0 ] && step sync-target-1 sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
barrier resynced-1 || die "barrier resynced-1"

# --- 2. pass_on: read retried on the peer, disk Inconsistent -------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step pass-on "$S" disk-options 0 --on-io-error=pass_on
  step primary-2 "$S" primary 0
  step fail-mib-2 lower_fail 2
  step read-retried reads_back /tmp/a 2 2 1
  step inconsistent wait_ds Inconsistent/UpToDate 30
  # Fails locally, succeeds on the peer: no error.
  step write-d-succeeds write_file /tmp/d 2 1
  step d-reads-back reads_back /tmp/d 0 2 1
  step d-marked oos_at_least 1024
  # A discard there fails here and reaches the peer: it succeeds, and its
  # blocks stay out of sync (the peer's ack does not clear them).
  step discard-failing-mib blkdiscard -o $((2 * MiB)) -l $MiB /dev/drbd0
  step discard-stays-marked oos_at_least 1024
  step secondary-2 "$S" secondary 0
  step heal-2 lower_heal
  step disconnect "$S" disconnect "$LOCAL" "$PEER"
  step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C
fi
step resynced-2 wait_synced 120 || exit 1
barrier resynced-2 || die "barrier resynced-2"

# --- 3. call-local-io-error under the Secondary ---------------------------------
if [ "$GUEST_INDEX" = 1 ]; then
  step call-helper "$S" disk-options 0 --on-io-error=call-local-io-error
  step fail-mib-3 lower_fail 3
  share_put failing 1
else
  share_get failing 120 > /dev/null || die "guest 1 never set up its failing disk"
  step primary-3 "$S" primary 0
  step write-e-succeeds dd if=/tmp/e of=/dev/drbd0 bs=1M seek=2 count=3 oflag=direct status=none
  step peer-detached wait_ds UpToDate/Diskless 30
  step write-f-alone dd if=/tmp/f of=/dev/drbd0 bs=1M seek=6 count=1 oflag=direct status=none
  step e-f-marked oos_at_least 1024
  step secondary-3 "$S" secondary 0
fi
barrier peer-detached || die "barrier peer-detached"
if [ "$GUEST_INDEX" = 1 ]; then
  helper_ran() { cat "$HELPER_LOG"; grep -q '^local-io-error minor-0' "$HELPER_LOG"; }
  step helper-called helper_ran
  step detached-after-helper wait_ds Diskless/UpToDate 10
  reattach
fi
step resynced-3 wait_synced 120 || exit 1
[ "$GUEST_INDEX" = 1 ] && step sync-target-3 sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
barrier resynced-3 || die "barrier resynced-3"

# --- 4. pass_on under the Secondary ----------------------------------------------
if [ "$GUEST_INDEX" = 1 ]; then
  step pass-on-4 "$S" disk-options 0 --on-io-error=pass_on
  step fail-mib-5 lower_fail 5
  share_put failing-4 1
else
  share_get failing-4 120 > /dev/null || die "guest 1 never set up its failing disk"
  step primary-4 "$S" primary 0
  step write-g-succeeds dd if=/tmp/a of=/dev/drbd0 bs=1M seek=4 count=2 oflag=direct status=none
  step peer-inconsistent wait_ds UpToDate/Inconsistent 30
  step g-marked oos_at_least 1024
  step secondary-4 "$S" secondary 0
fi
barrier peer-inconsistent || die "barrier peer-inconsistent"
if [ "$GUEST_INDEX" = 1 ]; then
  step still-attached wait_ds Inconsistent/UpToDate 10
  step heal-4 lower_heal
  step disconnect-4 "$S" disconnect "$LOCAL" "$PEER"
  step reconnect-4 "$S" connect r0 "$LOCAL" "$PEER" --protocol=C
fi
step resynced-4 wait_synced 120 || exit 1
[ "$GUEST_INDEX" = 1 ] && step sync-target-4 sh -c "[ \$(dmesg | grep -c 'Began resync as SyncTarget') -ge 2 ]"
barrier resynced-4 || die "barrier resynced-4"
down_with_equal_data
step lower-removed dm_remove lower
finish
