#!/bin/bash
# Resync with the in-tree C DRBD 8.4 driver (guest 1, drbdsetup-84) as the
# peer of rdrbd (guest 0), protocol C, both directions: the C node is forced
# Primary on fresh metadata and fully syncs rdrbd (rdrbd as SyncTarget);
# then rdrbd is Primary, writes, the C node disconnects, rdrbd writes 8 MiB
# more, and after reconnecting only those blocks go to the C node (rdrbd as
# SyncSource). Then the C node detaches and re-attaches while connected,
# rdrbd writing 4 MiB meanwhile: the handshake on its Negotiating disk
# resyncs those 4 MiB; and the same with rdrbd's disk, the C node Primary.
# Both disks' data areas must end equal.
# Mostly moves data (full syncs with the C driver in both directions): runs on the non-debug twin
# kernel (tests/README.md, "Which kernel").
# kernel: fast
# guests: 2
# disks: 128M
# timeout: 900
# budget: 50
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
attach_mixed_pair || exit 1

connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1

[ "$GUEST_INDEX" = 1 ] && step c-force-primary "$S" primary 0 --force
step full-sync-from-c wait_synced 600 || { dmesg | grep -i drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 0 ] && step we-were-target sh -c "dmesg | grep 'Began resync as SyncTarget'"
[ "$GUEST_INDEX" = 1 ] && step c-secondary "$S" secondary 0
barrier synced || die "barrier synced"

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=16 seek=32 oflag=direct status=none
fi
barrier written || die "barrier written"
[ "$GUEST_INDEX" = 1 ] && step c-disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier disconnected || die "barrier disconnected"
if [ "$GUEST_INDEX" = 0 ]; then
  step lost-peer wait_cs WFConnection 30
  step write-disconnected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=100 oflag=direct status=none
  step oos-8M test "$(proc_field oos)" = 8192
fi
barrier written2 || die "barrier written2"
[ "$GUEST_INDEX" = 1 ] && step c-reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
step resync-to-c wait_synced 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  resync_size() {
    local kb
    kb=$(resynced_kb)
    echo "resynced $kb KB after 8192 KB changed"
    [ -n "$kb" ] && [ "$kb" -ge 8192 ] && [ "$kb" -le 9011 ]
  }
  step resync-only-changed resync_size
fi
barrier resynced || die "barrier resynced"

# The C node's disk goes and comes back while connected (8.4 attaches it
# as Negotiating and both run the sync handshake): rdrbd, Primary, marks
# what it writes meanwhile, gives the C node its UUIDs when the disk comes
# back, and resyncs just that as SyncSource.
if [ "$GUEST_INDEX" = 1 ]; then
  step c-detach "$S" detach 0
  step c-diskless wait_ds Diskless/UpToDate 10
fi
barrier c-detached || die "barrier c-detached"
if [ "$GUEST_INDEX" = 0 ]; then
  step peer-diskless wait_ds UpToDate/Diskless 10
  step write-peer-diskless dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=120 oflag=direct status=none
  step oos-4M test "$(proc_field oos)" = 4096
fi
barrier written3 || die "barrier written3"
if [ "$GUEST_INDEX" = 1 ]; then
  # drbdadm attach replays the activity log first (the detach left it).
  step c-apply-al "$DEBIAN_DRBDMETA" --force 0 v08 /dev/vda internal apply-al
  step c-attach-connected "$S" attach 0 /dev/vda /dev/vda internal
fi
step resync-after-attach wait_synced 120 || { dmesg | grep -i drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  step still-connected wait_cs Connected 5
  step source-after-attach sh -c "dmesg | grep 'Began resync as SyncSource' | tail -1 | grep 'will sync 4096 KB'"
  step secondary "$S" secondary 0
fi
barrier c-attached || die "barrier c-attached"

# The other way round: rdrbd's disk goes, the C node (Primary now) writes
# 4 MiB, and rdrbd attaches while connected: Negotiating, its sizes,
# UUIDs and state to the C node, whose handshake answers with its UUIDs
# and state, then ours: those 4 MiB resync to rdrbd as SyncTarget.
if [ "$GUEST_INDEX" = 0 ]; then
  step detach "$S" detach 0
  step diskless wait_ds Diskless/UpToDate 10
fi
barrier rdrbd-detached || die "barrier rdrbd-detached"
if [ "$GUEST_INDEX" = 1 ]; then
  step c-primary "$S" primary 0
  step c-write-peer-diskless dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=60 oflag=direct status=none
  step c-oos-4M test "$(proc_field oos)" = 4096
fi
barrier written4 || die "barrier written4"
if [ "$GUEST_INDEX" = 0 ]; then
  step attach-connected "$S" attach 0 /dev/vda
  step target-after-attach wait_synced 120
  step target-of-4M sh -c "dmesg | grep 'Began resync as SyncTarget' | tail -1 | grep 'will sync 4096 KB'"
  step connected-throughout wait_cs Connected 5
else
  step resync-from-c wait_synced 120
  step c-secondary "$S" secondary 0
fi
barrier done || die "barrier done"
down_with_equal_data
finish
