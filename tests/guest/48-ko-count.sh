#!/bin/bash
# ko-count and the request timer: a Secondary that keeps answering pings
# but stops finishing writes must not hang the Primary. Both nodes keep
# their backing device on a loop device over a file in an ext4 file system
# (on /dev/vda); guest 1 (Secondary) freezes that file system (fsfreeze),
# so its receiver blocks in the write while its meta socket still answers
# pings. Guest 0's (Primary) 4 KiB write must complete locally after about
# ko-count * timeout (here 3 * 2 s), with 8.4's "Remote failed to finish a
# request within ..." and conn Timeout, the block out of sync. After the
# thaw guest 1 reconnects by itself and the block is resynced. Then
# net-options switches the protocol on the live connection (C -> A from
# the Primary, back from the Secondary: P_PROTOCOL_UPDATE), both sides
# show it, writes replicate under it; at the end the data areas of both
# backing devices are identical.
# Runs alone under CHECK_JOBS (measures ko-count x timeout).
# exclusive: yes
# guests: 2
# disks: 256M
# timeout: 900
# budget: 70
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
attach_rdrbd "$BDEV" || exit 1
barrier attached || die "peer never attached"

connect_pair \
  --ping-timeout=20 --socket-check-timeout=5 --timeout=$TIMEOUT_DS --ko-count=$KO_COUNT --connect-int=2 || exit 1
skip_initial_sync || exit 1

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
barrier resynced || die "barrier resynced"

# P_PROTOCOL_UPDATE: net-options changes the protocol on the live
# connection; the peer adopts it (show and /proc/drbd on both sides) and
# writes replicate under it. C -> A from the Primary, back to C from the
# Secondary.
shows_protocol() { "$S" show --show-defaults r0 | grep -E "^[[:space:]]*protocol[[:space:]]+$1;"; }
proc_protocol() { grep '^ *0:' /proc/drbd | grep " $1 r"; }
eventually() { local n=50; until "$@"; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.2; done; }
oos_zero() { test "$(proc_field oos)" = 0; }
change_protocol() {
  step "net-options-protocol-$1" "$S" net-options "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol="$1"
}
[ "$GUEST_INDEX" = 0 ] && change_protocol A
barrier protocol-a || die "barrier protocol-a"
step shows-protocol-A eventually shows_protocol A
step proc-protocol-A eventually proc_protocol A
[ "$GUEST_INDEX" = 1 ] && step peer-logged-update-A sh -c "dmesg | grep 'peer changed the connection settings: protocol C -> A'"
if [ "$GUEST_INDEX" = 0 ]; then
  step write-protocol-A dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 seek=200 oflag=direct status=none
  step in-sync-after-barrier-ack-A eventually oos_zero
  step still-connected-A wait_cs Connected 5
fi
barrier written-a || die "barrier written-a"
[ "$GUEST_INDEX" = 1 ] && change_protocol C
barrier protocol-c || die "barrier protocol-c"
step shows-protocol-C eventually shows_protocol C
step proc-protocol-C eventually proc_protocol C
[ "$GUEST_INDEX" = 0 ] && step peer-logged-update-C sh -c "dmesg | grep 'peer changed the connection settings: protocol A -> C'"
if [ "$GUEST_INDEX" = 0 ]; then
  step write-protocol-C dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 seek=300 oflag=direct status=none
  step in-sync-after-ack-C oos_zero
  step still-connected-C wait_cs Connected 5
fi
if [ "$GUEST_INDEX" = 0 ]; then
  step resynced-the-block sh -c "dmesg | grep 'Began resync as SyncSource' | tail -1"
  step secondary "$S" secondary 0
fi
barrier done || die "barrier done"
cat /proc/drbd
step down "$S" down r0
n=$(md_data_bytes "$(size_of "$BDEV")")
share_put "sum.$GUEST_INDEX" "$(checksum_head "$BDEV" "$n")"
barrier summed || die "barrier summed"
same_loop_data() {
  local a b; a=$(share_get sum.0) b=$(share_get sum.1)
  echo "guest0 $a guest1 $b (first $n bytes of $BDEV)"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
step data-identical same_loop_data
step rmmod rmmod drbd
losetup -d "$BDEV"
umount "$LOWER"
step kernel-log-clean dmesg_clean
finish
