#!/bin/bash
# Resync between two rdrbd nodes (protocol C). Fresh metadata on both, connect;
# `primary --force` on guest 0 starts a full initial sync of the 256 MiB
# device (progress visible in /proc/drbd), then both are UpToDate. Guest 1
# drops the connection while guest 0 keeps writing 8 MiB; after reconnecting
# only the changed blocks are resynced (within 10% of 8 MiB, not the device
# size). Finally both go down and the data areas of the backing disks match.
# Mostly moves data (a full sync of 256 MiB, then a bitmap resync): runs on the non-debug twin
# kernel (tests/README.md, "Which kernel").
# kernel: fast
# guests: 2
# disks: 256M
# timeout: 900
# budget: 55
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes

connect() { "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C --ping-timeout=20 --socket-check-timeout=5 "$@"; }
step connect connect || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

[ "$GUEST_INDEX" = 0 ] && step force-primary "$S" primary 0 --force
step full-sync wait_synced 600 || { dmesg | grep drbd | tail -30; exit 1; }
step oos-zero test "$(proc_field oos)" = 0
barrier synced || die "barrier synced"

if [ "$GUEST_INDEX" = 0 ]; then
  step began-full-sync sh -c "dmesg | grep 'Began resync as SyncSource'"
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=16 seek=32 oflag=direct status=none
  step oos-still-zero test "$(proc_field oos)" = 0
fi
barrier written || die "barrier written"
[ "$GUEST_INDEX" = 1 ] && step disconnect "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"
barrier disconnected || die "barrier disconnected"
if [ "$GUEST_INDEX" = 0 ]; then
  step lost-peer wait_cs WFConnection 30
  step write-disconnected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=100 oflag=direct status=none
  step oos-8M test "$(proc_field oos)" = 8192
fi
barrier written2 || die "barrier written2"
[ "$GUEST_INDEX" = 1 ] && step reconnect connect
step resync wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  resync_size() {
    local kb
    kb=$(resynced_kb)
    echo "resynced $kb KB after 8192 KB changed"
    [ -n "$kb" ] && [ "$kb" -ge 8192 ] && [ "$kb" -le 9011 ]
  }
  step resync-only-changed resync_size
  step secondary "$S" secondary 0
fi
barrier done || die "barrier done"
down_with_equal_data
finish
