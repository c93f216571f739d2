#!/bin/bash
# Management commands with the in-tree C DRBD 8.4 driver (guest 1,
# drbdsetup-84) as the peer of rdrbd (guest 0), protocol C, verify-alg
# crc32c: the initial full sync after rdrbd's forced promotion; online
# verify in both directions (rdrbd VerifyS, then C VerifyS
# finding one block changed on the C node's backing disk, resynced by a
# reconnect); invalidate on the C node (rdrbd grants P_STATE_CHG_REQ and
# becomes SyncSource); invalidate-remote on rdrbd (the C node grants and
# becomes SyncTarget); invalidate on rdrbd (C becomes SyncSource). After
# each resync the data areas of both backing disks are equal.
# guests: 2
# Mostly moves data (a full resync for every invalidate, online verify, both
# with the C driver): runs on the non-debug twin kernel (tests/README.md,
# "Which kernel"); rdrbd's own management state changes run on the debug
# kernel in 42. 32 MiB disks: each invalidate is a full resync.
# kernel: fast
# disks: 32M
# timeout: 900
# budget: 125
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
attach_mixed_pair || exit 1

NET_OPTIONS="--ping-timeout=20 --socket-check-timeout=5 --verify-alg=crc32c"
connect_pair $NET_OPTIONS || exit 1

DATA_BYTES=$(md_data_bytes "$(size_of /dev/vda)")
same_data() {
  share_put "sum.$1.$GUEST_INDEX" "$(checksum_head /dev/vda "$DATA_BYTES")"
  local a b; a=$(share_get "sum.$1.0") b=$(share_get "sum.$1.1")
  echo "guest0 $a guest1 $b"
  [ -n "$a" ] && [ "$a" = "$b" ]
}

# The initial sync from rdrbd, forced Primary (its promotion request is
# cluster-wide, so the C node considers a resync and becomes SyncTarget;
# test 36 covers the other direction).
[ "$GUEST_INDEX" = 0 ] && step rdrbd-force-primary "$S" primary 0 --force
step initial-sync wait_resync 1 400 || { dmesg | grep -i drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 1 ] && step c-was-sync-target sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
barrier initial-synced || die "barrier initial-synced"
step initial-data-equal same_data initial
[ "$GUEST_INDEX" = 0 ] && step write dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=4 oflag=direct status=none
barrier written || die "barrier written"

# rdrbd VerifyS, C VerifyT: equal data.
[ "$GUEST_INDEX" = 0 ] && step verify-from-rdrbd "$S" verify 0 --stop=16M
step verify1-done wait_verify_done 1 300
step verify1-connected wait_cs Connected 60
step verify1-no-oos test "$(proc_field oos)" = 0
barrier verified1 || die "barrier verified1"

# C VerifyS, rdrbd VerifyT: one block changed on the C node's disk.
[ "$GUEST_INDEX" = 1 ] && step corrupt-block dd if=/dev/urandom of=/dev/vda bs=4096 count=1 seek=256 oflag=direct status=none
barrier corrupted || die "barrier corrupted"
# The C driver resumes from its last verify position unless told.
[ "$GUEST_INDEX" = 1 ] && step verify-from-c "$S" verify 0 --start=0 --stop=16M
step verify2-done wait_verify_done 2 300
step verify2-connected wait_cs Connected 60
step verify2-found-one sh -c "dmesg | grep -q 'Online verify found 1 4k block out of sync'"
step verify2-oos-4k test "$(proc_field oos)" = 4
barrier verified2 || die "barrier verified2"
if [ "$GUEST_INDEX" = 1 ]; then
  step c-disconnect "$S" disconnect "$LOCAL" "$PEER"
  step c-reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C $NET_OPTIONS
fi
step resync-after-verify wait_resync 2 120
barrier resynced || die "barrier resynced"
step data-equal-after-verify same_data verify

# invalidate on the C node: rdrbd becomes SyncSource.
[ "$GUEST_INDEX" = 1 ] && step c-invalidate "$S" invalidate 0
barrier c-invalidated || die "barrier c-invalidated"
step c-invalidate-resync wait_resync 3 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
barrier synced2 || die "barrier synced2"
step data-equal-after-c-invalidate same_data c-invalidate

# invalidate-remote on rdrbd (Primary): the C node becomes SyncTarget.
[ "$GUEST_INDEX" = 0 ] && step invalidate-remote "$S" invalidate-remote 0
barrier invalidated-remote || die "barrier invalidated-remote"
step invalidate-remote-resync wait_resync 4 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
barrier synced3 || die "barrier synced3"
step data-equal-after-invalidate-remote same_data remote

# invalidate on rdrbd (Secondary): the C node becomes SyncSource.
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0
barrier secondary || die "barrier secondary"
[ "$GUEST_INDEX" = 0 ] && step invalidate "$S" invalidate 0
barrier invalidated || die "barrier invalidated"
step invalidate-resync wait_resync 5 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
barrier synced4 || die "barrier synced4"
step data-equal-after-invalidate same_data invalidate
[ "$GUEST_INDEX" = 0 ] && step began-sync-target sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
# Two Primaries without allow-two-primaries: the C node's promotion is
# refused by rdrbd (Primary again), and rdrbd's by the C node.
[ "$GUEST_INDEX" = 0 ] && step primary-again "$S" primary 0
barrier primary-again || die "barrier primary-again"
[ "$GUEST_INDEX" = 1 ] && step c-promotion-refused sh -c "! $S primary 0"
barrier c-refused || die "barrier c-refused"
[ "$GUEST_INDEX" = 0 ] && step secondary-again "$S" secondary 0
barrier secondary-again || die "barrier secondary-again"
[ "$GUEST_INDEX" = 1 ] && step c-primary "$S" primary 0
barrier c-primary || die "barrier c-primary"
[ "$GUEST_INDEX" = 0 ] && step rdrbd-promotion-refused sh -c "! $S primary 0"
barrier rdrbd-refused || die "barrier rdrbd-refused"
[ "$GUEST_INDEX" = 1 ] && step c-secondary "$S" secondary 0
step still-connected wait_cs Connected 10
# Neither side goes down before both have checked.
barrier checked-connected || die "barrier checked-connected"

cat /proc/drbd
step down "$S" down r0
[ "$GUEST_INDEX" = 0 ] && step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
