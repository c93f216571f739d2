#!/bin/bash
# A single-node minor attached to a disk with internal v08 metadata passes
# I/O through unchanged: ext4 on /dev/drbd0, fio with verification, flush,
# discard, and the data on /dev/drbd0 is byte-identical to the data area of
# /dev/vda (its first `blockdev --getsize64 /dev/drbd0` bytes; the metadata
# lives behind it).
# Mostly moves data (ext4, 64 MiB fio runs with verification and whole-device checksums): runs on the non-debug twin
# kernel (tests/README.md, "Which kernel").
# kernel: fast
# guests: 1
# disks: 256M
# timeout: 900
# budget: 60
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
drbd_loaded && die "a drbd module is already loaded"
S=$DRBDSETUP
R=$(role_tool)   # drbdsetup with primary/secondary (see lib.sh)

# Setup: every later step needs these, so stop at the first failure.
step insmod load_drbd || exit 1
step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1
step create-md create_md /dev/vda || exit 1
step attach "$S" attach 0 /dev/vda || exit 1
step device-node wait_for_dev /dev/drbd0 || exit 1
# DRBD 8.4: a Secondary cannot be opened; fresh metadata is Inconsistent.
step primary-force "$R" primary 0 --force || exit 1
role_primary() { grep '^ *0:' /proc/drbd; [ "$(proc_field ro)" = Primary ] && [ "$(proc_field ds)" = UpToDate ]; }
step role-primary role_primary
data_size() {
  local got want; got=$(size_of /dev/drbd0) want=$(md_data_bytes "$(size_of /dev/vda)")
  echo "/dev/drbd0 $got bytes, /dev/vda $(size_of /dev/vda) bytes, data area $want bytes"
  [ "$got" = "$want" ]
}
step size-is-data-area data_size

step mkfs mkfs.ext4 -q -F /dev/drbd0

files_roundtrip() {
  mkdir -p /mnt/d
  mount /dev/drbd0 /mnt/d || return 1
  dd if=/dev/urandom of=/mnt/d/random bs=1M count=20 status=none || return 1
  local sum i; sum=$(checksum_of /mnt/d/random)
  for i in 1 2 3; do cp /mnt/d/random "/mnt/d/copy$i" || return 1; done
  mkdir -p /mnt/d/tree && cp -a /etc/. /mnt/d/tree/ 2>/dev/null
  sync
  umount /mnt/d || return 1
  # Remount so the checks read from the device, not the page cache.
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  mount -o ro /dev/drbd0 /mnt/d || return 1
  for i in 1 2 3; do
    [ "$(checksum_of "/mnt/d/copy$i")" = "$sum" ] || { echo "copy$i differs"; umount /mnt/d; return 1; }
  done
  [ "$(checksum_of /mnt/d/random)" = "$sum" ] || { echo "random differs"; umount /mnt/d; return 1; }
  umount /mnt/d
}
step files-roundtrip files_roundtrip
step fsck-clean fsck.ext4 -n -f /dev/drbd0

# The data area of /dev/vda (in front of the metadata) holds what drbd0 shows.
same_data() {
  local a b n
  n=$(size_of /dev/drbd0)
  a=$(checksum_of /dev/drbd0) b=$(checksum_head /dev/vda "$n")
  echo "drbd0 $a vda[0, $n) $b"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
step data-drbd-equals-vda same_data

FIO="fio --name=t --filename=/dev/drbd0 --size=64M"
step fio-randwrite-verify $FIO --rw=randwrite --bs=4k --verify=crc32c --ioengine=libaio --iodepth=8 --direct=1
step fio-seq-buffered-verify $FIO --rw=write --bs=1M --verify=crc32c --ioengine=psync --end_fsync=1
step fio-randread-direct $FIO --rw=randread --bs=64k --ioengine=libaio --iodepth=4 --direct=1 --runtime=10 --time_based

flush() {
  # A buffered write followed by fsync sends a flush (REQ_PREFLUSH) down.
  dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 conv=fsync status=none || return 1
  sync
  blockdev --flushbufs /dev/drbd0
}
step flush flush
step data-after-fio same_data

discard() {
  local max; max=$(cat /sys/block/drbd0/queue/discard_max_bytes)
  if [ "${max:-0}" = 0 ]; then
    echo "discard not supported (discard_max_bytes 0): skipped"
    return 0
  fi
  blkdiscard /dev/drbd0 && blkdiscard -o 4096 -l 1048576 /dev/drbd0
}
step discard discard

status_shows_minor() {
  local out; out=$("$S" status 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  grep -Eq 'minor[: ]*0|volume[: ]*0|drbd0' <<<"$out"
}
step status status_shows_minor

step secondary "$R" secondary 0
step detach "$S" detach 0
step del-minor "$S" del-minor 0
step del-resource "$S" del-resource r0
step rmmod rmmod drbd
step no-leftovers bash -c '! grep -q "^drbd " /proc/modules && ! ls /dev/drbd* 2>/dev/null'
step kernel-log-clean dmesg_clean
finish
