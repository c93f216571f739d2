#!/bin/bash
# Protocol C replication between two rdrbd nodes: fresh metadata on both
# (rule 10: no resync), connect, `new-current-uuid --clear-bitmap` on guest 0
# skips the initial sync (both UpToDate), guest 0 becomes Primary, fio
# writes with verification through /dev/drbd0, then both go down and the
# data areas of both backing disks must be identical.
# guests: 2
# disks: 256M
# timeout: 900
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
attach_rdrbd || exit 1
barrier attached || die "peer never attached"

step connect "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"
[ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
both_uptodate() {
  local n=300
  until grep -q 'ds:UpToDate/UpToDate' /proc/drbd || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep '^ *0:' /proc/drbd; grep -q 'cs:Connected .* ds:UpToDate/UpToDate' /proc/drbd
}
step both-uptodate both_uptodate || exit 1
barrier uptodate || die "barrier uptodate"

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0 || exit 1
  FIO="fio --name=t --filename=/dev/drbd0 --size=32M"
  step fio-randwrite-verify $FIO --rw=randwrite --bs=4k --verify=crc32c --ioengine=libaio --iodepth=8 --direct=1
  step fio-seq-verify $FIO --rw=write --bs=1M --verify=crc32c --ioengine=libaio --iodepth=4 --direct=1 --offset=64M
  step fua-write dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 seek=2000 oflag=direct,dsync conv=fsync status=none
  step still-connected wait_cs Connected 5
  step secondary "$S" secondary 0
fi
barrier written || die "barrier written"
cat /proc/drbd
step down "$S" down r0
n=$(md_data_bytes "$(size_of /dev/vda)")
sum=$(md5_head /dev/vda "$n")
share_put "md5.$GUEST_INDEX" "$sum"
barrier summed || die "barrier summed"
same_data() {
  local a b; a=$(share_get md5.0) b=$(share_get md5.1)
  echo "guest0 $a guest1 $b (first $n bytes of /dev/vda)"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
step data-identical same_data
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
