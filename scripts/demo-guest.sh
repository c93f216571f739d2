#!/bin/bash
# The guest side of `make demo` (run by scripts/guest-run.py in each guest):
# load rdrbd, create v08 metadata on the guest's disk, put /dev/drbd0 on it,
# make a filesystem, write and read back, and show the metadata after detach.
# Replication between the two guests comes with the replication work; for
# now each guest shows the single-node story.
# guests: 2
# disks: 256M
# timeout: 600
set -euo pipefail
. "$RDRBD_ROOT/tests/guest/lib.sh"
S=$DRBDSETUP
R=$(role_tool)   # drbdsetup with primary/secondary (see lib.sh)
say() { echo; echo "guest$GUEST_INDEX \$ $*"; "$@"; }

say insmod "$DRBD_KO"
say "$S" new-resource r0
say "$S" new-minor r0 0 0
say "$DRBDMETA" --force 0 v08 /dev/vda internal create-md
say "$S" attach 0 /dev/vda
say "$R" primary 0 --force
say cat /proc/drbd
echo "/dev/vda: $(size_of /dev/vda) bytes; /dev/drbd0 (its data area): $(size_of /dev/drbd0) bytes"
say mkfs.ext4 -q -F /dev/drbd0
mkdir -p /mnt/demo
say mount /dev/drbd0 /mnt/demo
echo "hello from guest$GUEST_INDEX via rdrbd" > /mnt/demo/hello.txt
dd if=/dev/urandom of=/mnt/demo/blob bs=1M count=16 status=none
sum=$(md5sum < /mnt/demo/blob)
say umount /mnt/demo
echo 3 > /proc/sys/vm/drop_caches
say mount -o ro /dev/drbd0 /mnt/demo
say cat /mnt/demo/hello.txt
[ "$(md5sum < /mnt/demo/blob)" = "$sum" ] && echo "16 MiB blob read back intact"
say df -h /mnt/demo
say umount /mnt/demo
say "$S" status
say cat /proc/drbd
say "$S" down r0
# Written blocks are marked out of sync (no peer yet), as the bitmap shows.
echo; echo "guest$GUEST_INDEX \$ $DEBIAN_DRBDMETA --force 0 v08 /dev/vda internal dump-md | ..."
dump_md /dev/vda 2>/dev/null | grep -E '^(version|la-size-sect|# bits-set)'
say rmmod drbd
echo "RESULT: PASS demo-guest$GUEST_INDEX"
