#!/bin/bash
# Replication between two rdrbd nodes with protocols A, B and C: fresh
# metadata on both (rule 10: no resync), connect, `new-current-uuid
# --clear-bitmap` on guest 0 skips the initial sync (both UpToDate). Then
# for each protocol: connect with it, guest 0 becomes Primary, fio writes
# with verification through /dev/drbd0; the Primary's out-of-sync count
# must then be 0 (P_WRITE_ACK under C, P_BARRIER_ACK under A and B cleared
# the bits), also after a blkdiscard (discarded here, sent as P_TRIM,
# discarded there: both backing disks count the discard, but guest 1's in
# round B, where discard-zeroes-if-aligned is off and it zeroes) and
# unaligned writes (their partial blocks are not marked, as 8.4); both
# disconnect and the data areas of both backing disks must be identical.
# The rounds run with write ordering flush (A), drain (B) and none (C),
# set by disk-options and shown as wo: in /proc/drbd. Round C also checks
# that in-sync extents leave the activity log without a bitmap write
# (al-extents 67, writes to 68 extents). At the end, an
# unaligned write while disconnected marks every block it touches.
# Mostly moves data (fio with verification under three protocols and whole-disk checksums): runs on the non-debug twin
# kernel (tests/README.md, "Which kernel").
# kernel: fast
# guests: 2
# disks: 288M
# timeout: 900
# budget: 100
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes

# One round per protocol: connect, write through the Primary, check that
# every write was confirmed by the peer, disconnect, compare the disks.
round() {
  local p=$1 first=$2 discarded_before
  discarded_before=$(backing_discarded)
  step "connect-$p" "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol="$p" --ping-timeout=20 --socket-check-timeout=5 || return 1
  step "connected-$p" wait_cs Connected 90 || return 1
  barrier "connected-$p" || die "barrier connected-$p"
  [ "$first" = 1 ] && [ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
  step "both-uptodate-$p" both_uptodate || return 1
  barrier "uptodate-$p" || die "barrier uptodate-$p"

  if [ "$GUEST_INDEX" = 0 ]; then
    step "primary-$p" "$S" primary 0 || return 1
    FIO="fio --name=t --filename=/dev/drbd0 --size=8M"
    step "fio-randwrite-verify-$p" $FIO --rw=randwrite --bs=4k --verify=crc32c --ioengine=libaio --iodepth=8 --direct=1 --offset=$((RANDOM_BASE))M
    step "fio-seq-verify-$p" $FIO --rw=write --bs=1M --verify=crc32c --ioengine=libaio --iodepth=4 --direct=1 --offset=$((RANDOM_BASE + 64))M
    step "fua-write-$p" dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 seek=2000 oflag=direct,dsync conv=fsync status=none
    # A discard over written data, across an activity-log extent
    # boundary: zeroed here, P_TRIM to the peer.
    step "blkdiscard-$p" discard_zeroes $((RANDOM_BASE * 1024 * 1024 + 3 * 1024 * 1024 + 4096)) "$DISCARD_BYTES"
    # Unaligned writes (1.5 KiB at sector 1, 512 bytes across a block
    # boundary): replicated, they leave their partial 4 KiB blocks as they
    # were, not out of sync (8.4).
    step "unaligned-writes-$p" sh -c "dd if=/dev/urandom of=/dev/drbd0 bs=512 count=3 seek=$((RANDOM_BASE * 2048 + 1)) oflag=direct status=none &&
      dd if=/dev/urandom of=/dev/drbd0 bs=512 count=2 seek=$((RANDOM_BASE * 2048 + 4 * 2048 + 7)) oflag=direct status=none"
    [ "$p" = C ] && step evictions-write-no-bitmap evictions_write_no_bitmap
    step "still-connected-$p" wait_cs Connected 5
    # Protocol C clears bits on each P_WRITE_ACK, A and B on the barrier
    # acks; none may stay set while connected with every write done.
    step "no-out-of-sync-$p" oos_zero
    step "secondary-$p" "$S" secondary 0
  fi
  barrier "written-$p" || die "barrier written-$p"
  cat /proc/drbd
  # The discard reached both backing disks as a discard, but on guest 1 in
  # round B (discard-zeroes-if-aligned no: it zeroed the range instead).
  if [ "$GUEST_INDEX" = 1 ] && [ "$p" = B ]; then
    step "backing-zeroed-not-discarded-$p" backing_discards "$discarded_before" no
  else
    step "backing-discarded-$p" backing_discards "$discarded_before" yes
  fi
  step "disconnect-$p" "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"
  local n sum
  n=$(md_data_bytes "$(size_of /dev/vda)")
  sum=$(checksum_head /dev/vda "$n")
  share_put "sum.$p.$GUEST_INDEX" "$sum"
  barrier "summed-$p" || die "barrier summed-$p"
  same_data() {
    local a b; a=$(share_get "sum.$p.0") b=$(share_get "sum.$p.1")
    echo "protocol $p: guest0 $a guest1 $b (first $n bytes of /dev/vda)"
    [ -n "$a" ] && [ "$a" = "$b" ]
  }
  step "data-identical-$p" same_data
}
# discard_zeroes OFFSET LENGTH: blkdiscard on /dev/drbd0, which must then
# read back zeroes there.
discard_zeroes() {
  local max; max=$(cat /sys/block/drbd0/queue/discard_max_bytes)
  echo "discard_max_bytes $max"
  [ "$max" -gt 0 ] || return 1
  blkdiscard -o "$1" -l "$2" /dev/drbd0 || return 1
  local got want
  got=$(dd if=/dev/drbd0 bs=512 skip=$(($1 / 512)) count=$(($2 / 512)) iflag=direct status=none | md5sum)
  want=$(head -c "$2" /dev/zero | md5sum)
  echo "discarded range: $got, zeroes: $want"
  [ "$got" = "$want" ]
}
# evictions_write_no_bitmap: with al-extents 67 (8.4's least), 4 KiB
# writes at queue depth 1 to 68 extents round robin, twice: from the 68th
# on each write evicts an extent (least recently used), in sync by then
# (its write was acked: the bits set at submission were cleared). The
# backing disk sees the writes and the AL transactions, no bitmap block
# (`extent_clear_on_disk`).
evictions_write_no_bitmap() {
  local w0 a0 w1 a1 i
  "$S" disk-options 0 --al-extents=67 || return 1
  w0=$(backing_writes) a0=$(proc_field al)
  for i in $(seq 0 135); do
    dd if=/dev/urandom of=/dev/drbd0 bs=4k count=1 seek=$(( (i % 68) * 1024 )) oflag=direct status=none || return 1
  done
  w1=$(backing_writes) a1=$(proc_field al)
  echo "/dev/vda writes: $((w1 - w0)) for 136 writes and $((a1 - a0)) AL transactions"
  [ $((a1 - a0)) -ge 68 ] && [ $((w1 - w0)) -le $((136 + a1 - a0 + 2)) ]
}
# backing_writes: write requests /dev/vda completed since boot.
backing_writes() { local f; read -ra f < /sys/block/vda/stat; echo "${f[4]}"; }
# The length of each round's discard.
DISCARD_BYTES=$((2 * 1024 * 1024 + 8192))
# backing_discarded: sectors /dev/vda has discarded since boot.
backing_discarded() { local f; read -ra f < /sys/block/vda/stat; echo "${f[13]:-0}"; }
# backing_discards BEFORE yes|no: since BEFORE, /dev/vda discarded the
# round's discard (all but the partial chunks of its granularity at either
# edge, which are zeroed), or nothing.
backing_discards() {
  local n g min
  n=$(( $(backing_discarded) - $1 )) g=$(( $(cat /sys/block/vda/queue/discard_granularity) / 512 ))
  min=$(( DISCARD_BYTES / 512 - 2 * g ))
  echo "/dev/vda discarded $n sectors (granularity $g sectors); expected: $([ "$2" = yes ] && echo "at least $min" || echo none)"
  if [ "$2" = yes ]; then [ "$n" -ge "$min" ]; else [ "$n" = 0 ]; fi
}
# oos_zero: /proc/drbd shows oos:0 (barrier acks may still be on the way).
oos_zero() {
  local n=100
  until [ "$(proc_field oos)" = 0 ] || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep -A2 '^ *0:' /proc/drbd
  [ "$(proc_field oos)" = 0 ]
}
both_uptodate() {
  local n=300
  until proc_has 'ds:UpToDate/UpToDate' || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep '^ *0:' /proc/drbd; grep -q 'cs:Connected .* ds:UpToDate/UpToDate' /proc/drbd
}

# wo_is LETTER: /proc/drbd shows write ordering LETTER (f, d or n).
wo_is() { grep -A1 '^ *0:' /proc/drbd; grep -q " wo:$1 " /proc/drbd; }

# Write ordering on both nodes: barriers drain and flush in round A (wo:f,
# the default), only drain in round B (disk-flushes no, md-flushes no:
# wo:d), neither in round C (disk-drain no too: wo:n); the data must be
# identical after each.
first=1 RANDOM_BASE=0
for p in A B C; do
  case $p in
    A) step write-ordering-flush wo_is f ;;
    B) trusted=yes; [ "$GUEST_INDEX" = 1 ] && trusted=no
       step disk-flushes-no "$S" disk-options 0 --disk-flushes=no --md-flushes=no --discard-zeroes-if-aligned=$trusted &&
         step write-ordering-drain wo_is d ;;
    C) step disk-drain-no "$S" disk-options 0 --disk-flushes=no --disk-drain=no --md-flushes=no --discard-zeroes-if-aligned=yes &&
         step write-ordering-none wo_is n &&
         step method-logged sh -c "dmesg | grep 'Method to ensure write ordering: none'" ;;
  esac
  round "$p" "$first" || exit 1
  first=0 RANDOM_BASE=$((RANDOM_BASE + 8))
done
# Not replicated (disconnected), an unaligned write marks every block it
# touches: 1 KiB across a block boundary is 8 KiB out of sync.
if [ "$GUEST_INDEX" = 0 ]; then
  step primary-alone "$S" primary 0
  step unaligned-write-alone dd if=/dev/urandom of=/dev/drbd0 bs=512 count=2 seek=$((100 * 2048 + 7)) oflag=direct status=none
  oos_is() { local o; o=$(proc_field oos); echo "oos:${o:-?} KiB, expected $1"; [ "$o" = "$1" ]; }
  step unaligned-alone-marks-both-blocks oos_is 8
  step secondary-alone "$S" secondary 0
fi
step down "$S" down r0
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
