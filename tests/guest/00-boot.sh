#!/bin/bash
# The guest boots, its disk works (ext4 round trip on the raw disk), and the
# in-tree C drbd module loads through modprobe (validates the modules staging
# that interop tests rely on).
# guests: 1
# disks: 256M
# timeout: 300
# budget: 40
set -uo pipefail
. "$(dirname "$0")/lib.sh"

step disk-present test -b /dev/vda
step disk-size bash -c '[ "$(blockdev --getsize64 /dev/vda)" = $((256 << 20)) ]'

ext4_roundtrip() {
  mkfs.ext4 -q -F /dev/vda
  mkdir -p /mnt/t
  mount /dev/vda /mnt/t
  dd if=/dev/urandom of=/mnt/t/data bs=1M count=8 status=none
  local sum; sum=$(md5sum < /mnt/t/data)
  umount /mnt/t
  mount -o ro /dev/vda /mnt/t
  [ "$(md5sum < /mnt/t/data)" = "$sum" ] || { echo "data changed across remount"; return 1; }
  umount /mnt/t
  fsck.ext4 -n -f /dev/vda
}
step ext4-roundtrip ext4_roundtrip

intree_drbd() {
  modprobe drbd || return 1
  head -n 1 /proc/drbd
  head -n 1 /proc/drbd | grep -q '^version: 8\.4\.11 ' || { echo "unexpected /proc/drbd"; rmmod drbd; return 1; }
  rmmod drbd
  ! grep -q '^drbd ' /proc/modules
}
step modprobe-intree-drbd intree_drbd

step kernel-log-clean dmesg_clean
finish
