#!/bin/bash
# Protocol C replication between rdrbd (guest 0) and the in-tree C DRBD
# 8.4 driver (guest 1, drbdsetup-84), both ways: rdrbd's new-current-uuid
# --clear-bitmap makes both UpToDate (skip initial sync, P_UUIDS flag 8);
# the rdrbd Primary writes (fio with verification) and the C Secondary
# receives every byte (nr); then the C node is promoted (a cluster-wide
# state change rdrbd grants) and writes to rdrbd (P_DATA, P_BARRIER /
# P_BARRIER_ACK). The data areas of both disks must end equal.
# Not in tests/guest/: on the debug guest kernel the in-tree C driver, as
# a Primary, warns "do not call blocking ops when !TASK_RUNNING" (its
# worker takes a mutex in maybe_send_barrier() inside prepare_to_wait()),
# which fails the harness's kernel-log check on the C guest. Run it with
# scripts/guest-run.py tests/guest-extra/34-replicate-c-both-ways.sh; every
# step passes, and only that C warning is reported.
# guests: 2
# disks: 256M
# timeout: 900
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"

if [ "$GUEST_INDEX" = 0 ]; then
  attach_rdrbd || exit 1
else
  attach_c_drbd || exit 1
fi
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

FIO="fio --name=t --filename=/dev/drbd0 --size=16M"
if [ "$GUEST_INDEX" = 0 ]; then
  step rdrbd-primary "$S" primary 0
  step rdrbd-fio-verify $FIO --rw=randwrite --bs=4k --verify=crc32c --ioengine=libaio --iodepth=8 --direct=1
  step rdrbd-still-connected wait_cs Connected 5
  step rdrbd-secondary "$S" secondary 0
fi
barrier rdrbd-wrote || die "barrier rdrbd-wrote"
if [ "$GUEST_INDEX" = 1 ]; then
  step c-received-all bash -c 'grep -A1 "^ *0:" /proc/drbd; grep -q " nr:16384 " /proc/drbd'
  step c-primary "$S" primary 0
  step c-writes $FIO --rw=write --bs=64k --ioengine=libaio --iodepth=4 --direct=1 --offset=32M
  step c-still-connected wait_cs Connected 5
  step c-secondary "$S" secondary 0
else
  step peer-primary-seen bash -c 'for i in $(seq 100); do grep -q "ro:Secondary/Primary" /proc/drbd && exit 0; sleep 0.2; done; exit 1'
fi
barrier c-wrote || die "barrier c-wrote"
step still-connected wait_cs Connected 5
barrier checked || die "barrier checked"

step down "$S" down r0
n=$(md_data_bytes "$(size_of /dev/vda)")
share_put "sum.$GUEST_INDEX" "$(checksum_head /dev/vda "$n")"
barrier summed || die "barrier summed"
same_data() {
  local a b; a=$(share_get sum.0) b=$(share_get sum.1)
  echo "rdrbd $a C $b (first $n bytes of /dev/vda)"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
step data-identical same_data
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
