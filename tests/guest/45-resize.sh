#!/bin/bash
# Online resize (drbd_adm_resize). The backing device is a loop device on a
# tmpfs file, so it can grow inside the guest (truncate + losetup -c).
#
# Standalone, on each guest: 64 MiB with internal metadata, Primary, 8 MiB
# written; the file grows to 96 MiB. `resize` alone keeps the size (8.4's
# drbd_new_dev_size: without a peer the last agreed size stays);
# `resize --assume-peer-has-space` grows /dev/drbd0 to what 96 MiB hold,
# the metadata moves to the new end (drbdmeta dump-md reads it there after
# detach, la-size-sect is the new size), the data written before is intact,
# the new area is out of sync, an explicit `--size` shrinks and a resize
# without it grows again; detach + attach keeps the new size. A new
# activity log layout (resize --al-stripes --al-stripe-size-kB) moves the
# metadata (drbdmeta finds it) and keeps the data.
#
# Connected pair: fresh 64 MiB on both, the initial sync skipped
# (new-current-uuid --clear-bitmap), guest 0 Primary writes 8 MiB; both
# backing files grow to 96 MiB; `resize` on the Primary sends P_SIZES, the
# Secondary grows and answers with its own, the Primary grows and resyncs
# the new area as SyncSource (nothing else); then a write to the new end
# is replicated. `resize --size=80M` on the Primary while connected shrinks
# both (the Secondary follows its P_SIZES, "Peer sets u_size"), a write to
# the new last MiB is replicated, one past it fails; the data areas (80 MiB)
# are equal.
# guests: 2
# disks: none
# memory: 1G
# timeout: 900
# budget: 180
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
S=$DRBDSETUP
IMG=/tmp/backing.img
MIB=$((1 << 20))

step insmod load_drbd || exit 1
truncate -s 64M "$IMG"
LO=$(losetup -f --show "$IMG") || die "no loop device"
log "backing device $LO"
step create-md create_md "$LO" || exit 1
step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1
step attach "$S" attach 0 "$LO" || exit 1
step primary drbd_primary 0 || exit 1

SIZE64=$(md_data_bytes $((64 * MIB)))
SIZE96=$(md_data_bytes $((96 * MIB)))
# size_of reads sysfs: a Secondary cannot be opened.
size_is() { local s; s=$(size_of /dev/drbd0); echo "/dev/drbd0: $s bytes, expected $1"; [ "$s" = "$1" ]; }
step size-64M size_is "$SIZE64"
step write-8M dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 oflag=direct status=none
HEAD=$(checksum_head /dev/drbd0 $((8 * MIB)))
OOS_BEFORE=$(proc_field oos)

truncate -s 96M "$IMG"
step grow-backing losetup -c "$LO"
step backing-96M test "$(blockdev --getsize64 "$LO")" = $((96 * MIB))

# Not connected: 8.4 keeps the last agreed size unless the user assumes the
# peer has the space.
step resize-unforced "$S" resize 0
step size-unchanged size_is "$SIZE64"
step resize-grow "$S" resize 0 --assume-peer-has-space
step size-96M size_is "$SIZE96"
step size-logged sh -c "dmesg | grep ': size = 96 MB ($(( SIZE96 / 1024 )) KB)'"
step data-intact test "$(checksum_head /dev/drbd0 $((8 * MIB)))" = "$HEAD"
new_area_oos() {
  local want=$(( OOS_BEFORE + (SIZE96 - SIZE64) / 1024 )) oos
  oos=$(proc_field oos)
  echo "oos $oos KiB, expected $want (new area out of sync)"
  [ "$oos" = "$want" ]
}
step new-area-out-of-sync new_area_oos
step write-new-end dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=$(( SIZE96 / MIB - 1 )) oflag=direct status=none
TAIL_MD5=$(checksum_of /dev/drbd0)

# An explicit --size shrinks; without it the device grows back.
step resize-shrink "$S" resize 0 --assume-peer-has-space --size=80M
step size-80M size_is $((80 * MIB))
step resize-regrow "$S" resize 0 --assume-peer-has-space
step size-96M-again size_is "$SIZE96"
step data-after-regrow test "$(checksum_of /dev/drbd0)" = "$TAIL_MD5"

step secondary drbd_secondary 0
step detach "$S" detach 0
# drbd-utils' drbdmeta (the reference) and ours find the metadata at the
# new end of the device, with the new size.
check_dump() {
  local dump
  dump=$(dump_md "$LO" "$1") || { echo "$dump"; return 1; }
  grep -E '^la-size-sect' <<<"$dump"
  grep -qx "la-size-sect $((SIZE96 / 512));" <<<"$dump"
}
step dump-md-new-layout check_dump "$DEBIAN_DRBDMETA"
step our-dump-md-new-layout check_dump "$OUR_DRBDMETA"
step reattach "$S" attach 0 "$LO"
step size-after-reattach size_is "$SIZE96"
step primary-again drbd_primary 0
step data-after-reattach test "$(checksum_of /dev/drbd0)" = "$TAIL_MD5"
# A new activity log layout (4 stripes of 64 KiB instead of one of 32): the
# metadata moves and the larger log leaves less room, so only with --size.
AL_OPTS="--al-stripes=4 --al-stripe-size-kB=64"
# shellcheck disable=SC2086
step al-layout-needs-size expect_fail "$S" resize 0 --assume-peer-has-space $AL_OPTS
# shellcheck disable=SC2086
step al-layout "$S" resize 0 --assume-peer-has-space $AL_OPTS --size=90M
step al-layout-logged sh -c "dmesg | grep 'Changed AL layout to al-stripes = 4, al-stripe-size-kB = 64'"
step size-90M size_is $((90 * MIB))
step data-after-al-layout test "$(checksum_head /dev/drbd0 $((8 * MIB)))" = "$HEAD"
step write-after-al-layout dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=40 oflag=direct status=none
AL_MD5=$(checksum_head /dev/drbd0 $((90 * MIB)))
step secondary-al drbd_secondary 0
step detach-al "$S" detach 0
check_al_dump() {
  local dump
  dump=$(dump_md "$LO" "$1") || { echo "$dump"; return 1; }
  grep -E '^(la-size-sect|al-stripe)' <<<"$dump"
  grep -qx "la-size-sect $((90 * 2048));" <<<"$dump" && grep -qx 'al-stripes 4;' <<<"$dump" &&
    grep -qx 'al-stripe-size-4k 16;' <<<"$dump"
}
step dump-md-al-layout check_al_dump "$DEBIAN_DRBDMETA"
step reattach-al "$S" attach 0 "$LO"
step primary-al drbd_primary 0
step data-after-al-reattach test "$(checksum_head /dev/drbd0 $((90 * MIB)))" = "$AL_MD5"
step secondary-again drbd_secondary 0
step down "$S" down r0
barrier standalone-done || die "barrier standalone-done"
losetup -d "$LO"
rm -f "$IMG"

# --- connected pair -----------------------------------------------------------
truncate -s 64M "$IMG"
LO=$(losetup -f --show "$IMG") || die "no loop device"
step pair-create-md create_md "$LO" || exit 1
step pair-new-resource "$S" new-resource r0 || exit 1
step pair-new-minor "$S" new-minor r0 0 0 || exit 1
step pair-attach "$S" attach 0 "$LO" || exit 1
barrier pair-attached || die "barrier pair-attached"
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
# Both backing files are all zeroes: no initial sync needed.
skip_initial_sync || exit 1
if [ "$GUEST_INDEX" = 0 ]; then
  step pair-primary "$S" primary 0 || exit 1
  step pair-write-8M dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=4 oflag=direct status=none
fi
barrier written || die "barrier written"
truncate -s 96M "$IMG"
step pair-grow-backing losetup -c "$LO"
barrier grown || die "barrier grown"
[ "$GUEST_INDEX" = 0 ] && step pair-resize "$S" resize 0
wait_size() {
  local n=600
  until [ "$(size_of /dev/drbd0)" = "$1" ] || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  size_is "$1"
}
step pair-size-96M wait_size "$SIZE96"
began_resync() {
  local n=600
  until dmesg | grep -q 'Began resync as Sync' || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  dmesg | grep 'Began resync as Sync'
}
step pair-resync-began began_resync
step pair-new-area-resynced wait_synced 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  resync_of_new_area() {
    local kb want=$(( (SIZE96 - SIZE64) / 1024 ))
    kb=$(resynced_kb)
    echo "resynced $kb KB, the new area is $want KB"
    [ "$kb" = "$want" ]
  }
  step resync-only-new-area resync_of_new_area
  step pair-write-new-end dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=$(( SIZE96 / MIB - 1 )) oflag=direct status=none
  step pair-still-connected wait_cs Connected 5
  # Connected shrink (8.4 allows it online): the peer follows our P_SIZES.
  step pair-shrink-connected "$S" resize 0 --size=80M
fi
step pair-size-80M wait_size $((80 * MIB))
step pair-connected-after-shrink wait_synced 30
if [ "$GUEST_INDEX" = 0 ]; then
  step pair-write-shrunk-end dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=79 oflag=direct status=none
  step pair-write-past-end-fails expect_fail dd if=/dev/zero of=/dev/drbd0 bs=1M count=1 seek=80 oflag=direct status=none
  step pair-secondary "$S" secondary 0
else
  step pair-peer-usize-logged sh -c "dmesg | grep 'Peer sets u_size to 163840 sectors'"
fi
barrier pair-done || die "barrier pair-done"
dmesg | grep -E 'drbd|r0:' | grep -iE 'size|resync|grow' | tail -20
step pair-down "$S" down r0
share_put "sum.$GUEST_INDEX" "$(checksum_head "$LO" $((80 * MIB)))"
barrier summed || die "barrier summed"
step pair-data-identical same_data $((80 * MIB))
losetup -d "$LO"

step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
