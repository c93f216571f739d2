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
# without it grows again; detach + attach keeps the new size.
# guests: 2
# disks: none
# memory: 1G
# timeout: 900
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
size_is() { local s; s=$(blockdev --getsize64 /dev/drbd0); echo "/dev/drbd0: $s bytes, expected $1"; [ "$s" = "$1" ]; }
step size-64M size_is "$SIZE64"
step write-8M dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 oflag=direct status=none
HEAD=$(md5_head /dev/drbd0 $((8 * MIB)))
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
step size-logged sh -c "dmesg | grep 'drbd0: size = '"
step data-intact test "$(md5_head /dev/drbd0 $((8 * MIB)))" = "$HEAD"
new_area_oos() {
  local want=$(( OOS_BEFORE + (SIZE96 - SIZE64) / 1024 )) oos
  oos=$(proc_field oos)
  echo "oos $oos KiB, expected $want (new area out of sync)"
  [ "$oos" = "$want" ]
}
step new-area-out-of-sync new_area_oos
step write-new-end dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=$(( SIZE96 / MIB - 1 )) oflag=direct status=none
TAIL_MD5=$(md5_of /dev/drbd0)

# An explicit --size shrinks; without it the device grows back.
step resize-shrink "$S" resize 0 --assume-peer-has-space --size=80M
step size-80M size_is $((80 * MIB))
step resize-regrow "$S" resize 0 --assume-peer-has-space
step size-96M-again size_is "$SIZE96"
step data-after-regrow test "$(md5_of /dev/drbd0)" = "$TAIL_MD5"

step secondary drbd_secondary 0
step detach "$S" detach 0
check_dump() {
  local dump
  dump=$(dump_md "$LO") || { echo "$dump"; return 1; }
  grep -E '^la-size-sect' <<<"$dump"
  grep -qx "la-size-sect $((SIZE96 / 512));" <<<"$dump"
}
step dump-md-new-layout check_dump
step reattach "$S" attach 0 "$LO"
step size-after-reattach size_is "$SIZE96"
step primary-again drbd_primary 0
step data-after-reattach test "$(md5_of /dev/drbd0)" = "$TAIL_MD5"
step secondary-again drbd_secondary 0
step down "$S" down r0
barrier standalone-done || die "barrier standalone-done"

step rmmod rmmod drbd
losetup -d "$LO"
step kernel-log-clean dmesg_clean
finish
