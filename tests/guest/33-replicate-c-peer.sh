#!/bin/bash
# Protocol C replication between rdrbd (guest 0) and the in-tree C DRBD
# 8.4 driver (guest 1, drbdsetup-84), both ways: rdrbd's new-current-uuid
# --clear-bitmap makes both UpToDate (skip initial sync, P_UUIDS flag 8);
# the rdrbd Primary writes (fio with verification) and the C Secondary
# receives every byte (nr); then the C node is promoted and demoted while
# connected (cluster-wide state changes rdrbd grants). Then the protocol
# changes on the live connection both ways (P_PROTOCOL_UPDATE: C node to
# A, rdrbd back to C). The data areas of both disks must end equal. (C Primary writing to rdrbd works too, see
# tests/guest-extra/34-replicate-c-both-ways.sh for why it is not here.)
# Mostly moves data (fio with verification against the C driver and whole-disk checksums): runs on the non-debug twin
# kernel (tests/README.md, "Which kernel").
# kernel: fast
# ping-timeout 2 s: it shares the CPUs with another test.
# guests: 2
# disks: 256M
# timeout: 900
# budget: 30
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"

attach_mixed_pair || exit 1

connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
[ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
both_uptodate() {
  local n=300
  until proc_has 'ds:UpToDate/UpToDate' || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
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
  step c-still-connected wait_cs Connected 5
fi
# The C node stays Primary until we have seen it (it was Primary for only
# 0.1 s once, between two of our looks).
barrier c-primary || die "barrier c-primary"
if [ "$GUEST_INDEX" = 0 ]; then
  peer_primary_seen() { local n=100; until proc_has 'ro:Secondary/Primary'; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.2; done; }
  step peer-primary-seen peer_primary_seen
fi
barrier peer-primary-seen || die "barrier peer-primary-seen"
[ "$GUEST_INDEX" = 1 ] && step c-secondary "$S" secondary 0
barrier c-wrote || die "barrier c-wrote"
step still-connected wait_cs Connected 5
barrier checked || die "barrier checked"

# P_PROTOCOL_UPDATE both ways: the C node switches the live connection to
# protocol A (rdrbd adopts it and replicates a write under it), rdrbd
# switches it back to C (the C node adopts it).
ADDRS=("ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789")
shows_protocol() { "$S" show --show-defaults r0 | grep -E "^[[:space:]]*protocol[[:space:]]+$1;"; }
proc_protocol() { grep '^ *0:' /proc/drbd | grep " $1 r"; }
oos_zero() { test "$(proc_field oos)" = 0; }
eventually() { local n=50; until "$@"; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.2; done; }
[ "$GUEST_INDEX" = 1 ] && step c-net-options-protocol-A "$S" net-options "${ADDRS[@]}" --protocol=A
barrier protocol-a || die "barrier protocol-a"
step shows-protocol-A eventually shows_protocol A
step proc-protocol-A eventually proc_protocol A
if [ "$GUEST_INDEX" = 0 ]; then
  step rdrbd-adopted-A sh -c "dmesg | grep 'peer changed the connection settings: protocol C -> A'"
  step rdrbd-primary-A "$S" primary 0
  step rdrbd-write-A dd if=/dev/urandom of=/dev/drbd0 bs=64k count=16 oflag=direct status=none
  step rdrbd-in-sync-A eventually oos_zero
  step rdrbd-secondary-A "$S" secondary 0
  step rdrbd-net-options-protocol-C "$S" net-options "${ADDRS[@]}" --protocol=C
fi
barrier protocol-c || die "barrier protocol-c"
step shows-protocol-C eventually shows_protocol C
step proc-protocol-C eventually proc_protocol C
step still-connected-after-updates wait_cs Connected 5
barrier updated || die "barrier updated"

down_with_equal_data
finish
