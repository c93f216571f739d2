#!/bin/bash
# The guest side of `make demo` (run by scripts/guest-run.py in each guest):
# the two-node story. Boot 0: both nodes bring up r0 on fresh metadata and
# connect; guest 0 is forced Primary and fully syncs guest 1; guest 0 makes
# a filesystem, writes a file and a 16 MiB blob, and then dies (power cut,
# nothing flushed or detached). Guest 1 sees the peer gone, is promoted,
# mounts the filesystem and finds the data there. Boot 1: guest 1 comes back
# as Primary, guest 0 returns as Secondary: its activity log is replayed
# (every extent it may have been writing is marked), and a bitmap-based
# resync from guest 1 brings it up to date. (On this small disk the
# activity log spans the whole device, so that is all of it.)
# guests: 2
# disks: 64M
# timeout: 600
# boots: 2
set -euo pipefail
. "$RDRBD_ROOT/tests/guest/lib.sh"
S=$DRBDSETUP
say() { echo; echo "guest$GUEST_INDEX \$ $*"; "$@"; }
LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
synced() {
  local n=3000 shown=0
  until grep -q 'cs:Connected .* ds:UpToDate/UpToDate' /proc/drbd || [ $n = 0 ]; do
    if [ $shown = 0 ] && grep -q "sync'ed" /proc/drbd; then echo; echo "guest$GUEST_INDEX \$ cat /proc/drbd   # during the resync"; grep -A3 '^ *0:' /proc/drbd; shown=1; fi
    sleep 0.1; n=$((n - 1))
  done
  grep -q 'cs:Connected .* ds:UpToDate/UpToDate' /proc/drbd
}
up() {
  say insmod "$DRBD_KO"
  say "$S" new-resource r0
  say "$S" new-minor r0 0 0
  [ "$BOOT_INDEX" = 0 ] && say "$DRBDMETA" --force 0 v08 /dev/vda internal create-md
  say "$S" attach 0 /dev/vda
}
mkdir -p /mnt/demo

if [ "$BOOT_INDEX" = 0 ]; then
  up
  barrier attached
  say "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20
  wait_cs Connected 90 >/dev/null
  barrier connected
  [ "$GUEST_INDEX" = 0 ] && say "$S" primary 0 --force
  synced
  say cat /proc/drbd
  barrier synced
  if [ "$GUEST_INDEX" = 0 ]; then
    say mkfs.ext4 -q -F /dev/drbd0
    say mount /dev/drbd0 /mnt/demo
    echo "hello from guest0, written through rdrbd" > /mnt/demo/hello.txt
    dd if=/dev/urandom of=/mnt/demo/blob bs=1M count=16 status=none
    sync
    share_put blob-md5 "$(md5sum < /mnt/demo/blob)"
    say ls -l /mnt/demo
    echo; echo "guest0: the Primary dies now (power cut: nothing flushed, nothing detached)"
    barrier written
    power_cut "the Primary dies"
  fi
  barrier written
  wait_cs WFConnection 120 >/dev/null
  echo; echo "guest1: the peer is gone:"; grep -A1 '^ *0:' /proc/drbd
  say "$S" primary 0
  say mount /dev/drbd0 /mnt/demo
  say cat /mnt/demo/hello.txt
  [ "$(md5sum < /mnt/demo/blob)" = "$(share_get blob-md5)" ] && echo "guest1: the 16 MiB blob is intact (md5 matches what guest0 wrote)"
  echo "guest1 took over" > /mnt/demo/failover.txt
  say umount /mnt/demo
  say "$S" down r0
  say rmmod drbd
  echo "RESULT: PASS demo-failover"
  exit 0
fi

# Boot 1: guest 1 is the Primary now; guest 0 returns as Secondary.
up
[ "$GUEST_INDEX" = 1 ] && say "$S" primary 0
say "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20
synced
say cat /proc/drbd
if [ "$GUEST_INDEX" = 0 ]; then
  echo; echo "guest0 \$ dmesg | grep resync"
  dmesg | grep -E 'activity log replayed|uuid_compare|Began resync|Resync done' | sed 's/^/    /'
fi
barrier resynced
if [ "$GUEST_INDEX" = 1 ]; then
  say mount -o ro /dev/drbd0 /mnt/demo
  say cat /mnt/demo/hello.txt /mnt/demo/failover.txt
  say umount /mnt/demo
fi
barrier shown
say "$S" down r0
say rmmod drbd
echo "RESULT: PASS demo-guest$GUEST_INDEX"
