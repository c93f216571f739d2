#!/bin/bash
# ko-count and the request timer: a Secondary that keeps answering pings
# but stops finishing writes must not hang the Primary. Both nodes keep
# their backing device on a loop device over a file in an ext4 file system
# (on /dev/vda); guest 1 (Secondary) freezes that file system (fsfreeze),
# so its receiver blocks in the write while its meta socket still answers
# pings. Guest 0's (Primary) 4 KiB write must complete locally after about
# ko-count * timeout (here 3 * 2 s), with 8.4's "Remote failed to finish a
# request within ..." and conn Timeout, the block out of sync. After the
# thaw guest 1 reconnects by itself, the block is resynced, and the data
# areas of both backing devices are identical.
# guests: 2
# disks: 256M
# timeout: 900
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"

# The timer under test: 2 s (timeout 20 tenths) times ko-count 3.
TIMEOUT_DS=20
KO_COUNT=3

LOWER=/mnt/lower
loop_backing() {
  mkfs.ext4 -q -F /dev/vda && mkdir -p "$LOWER" && mount -t ext4 /dev/vda "$LOWER" &&
    dd if=/dev/zero of="$LOWER/backing" bs=1M count=64 status=none &&
    BDEV=$(losetup -f --show "$LOWER/backing") && echo "backing device $BDEV"
}
step loop-backing loop_backing || exit 1
BDEV=$(losetup -j "$LOWER/backing" | cut -d: -f1)
S=$DRBDSETUP
step insmod load_drbd || exit 1
step create-md create_md "$BDEV" || exit 1
step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1
step attach "$S" attach 0 "$BDEV" || exit 1
barrier attached || die "peer never attached"

step connect "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C \
  --ping-timeout=20 --timeout=$TIMEOUT_DS --ko-count=$KO_COUNT --connect-int=2 || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"
[ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
step both-uptodate wait_synced 60 || exit 1
barrier uptodate || die "barrier uptodate"

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0 || exit 1
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 oflag=direct status=none
  step in-sync-after-ack test "$(proc_field oos)" = 0
fi
barrier written || die "barrier written"

[ "$GUEST_INDEX" = 1 ] && step freeze fsfreeze -f "$LOWER"
barrier frozen || die "barrier frozen"

if [ "$GUEST_INDEX" = 0 ]; then
  timed_write() {
    local t0 t1
    t0=$(date +%s.%N)
    dd if=/dev/urandom of=/dev/drbd0 bs=4k count=1 seek=1000 oflag=direct status=none || return 1
    t1=$(date +%s.%N)
    awk "BEGIN { print \"the write took \" $t1 - $t0 \" s\" }"
    # ko-count * timeout is 6 s; TCG may add some, a hang would be far more.
    awk "BEGIN { d = $t1 - $t0; exit !(d >= 5 && d < 30) }"
  }
  step write-completes-after-ko-timeout timed_write
  step timeout-logged sh -c "dmesg | grep 'Remote failed to finish a request within .* > ko-count ($KO_COUNT) \* timeout ($TIMEOUT_DS \* 0.1s)'"
  step conn-timeout-logged sh -c "dmesg | grep 'conn( Connected -> Timeout )'"
  step not-connected sh -c "! grep -q 'cs:Connected' /proc/drbd; grep -A1 '^ *0:' /proc/drbd"
  step block-out-of-sync test "$(proc_field oos)" = 4
  # The peer still answers pings: nothing but the timer dropped it.
  step no-ping-timeout sh -c "! dmesg | grep 'PingAck did not arrive'"
fi
barrier timed-out || die "barrier timed-out"

[ "$GUEST_INDEX" = 1 ] && step thaw fsfreeze -u "$LOWER"
step resync wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  step resynced-the-block sh -c "dmesg | grep 'Began resync as SyncSource' | tail -1"
  step secondary "$S" secondary 0
fi
barrier done || die "barrier done"
cat /proc/drbd
step down "$S" down r0
n=$(md_data_bytes "$(size_of "$BDEV")")
share_put "md5.$GUEST_INDEX" "$(md5_head "$BDEV" "$n")"
barrier summed || die "barrier summed"
same_loop_data() {
  local a b; a=$(share_get md5.0) b=$(share_get md5.1)
  echo "guest0 $a guest1 $b (first $n bytes of $BDEV)"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
step data-identical same_loop_data
step rmmod rmmod drbd
losetup -d "$BDEV"
umount "$LOWER"
step kernel-log-clean dmesg_clean
finish
