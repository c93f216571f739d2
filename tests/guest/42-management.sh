#!/bin/bash
# Management commands between two rdrbd nodes (protocol C, verify-alg
# crc32c), through our drbdsetup and drbd-utils' drbdsetup-84:
# - verify on equal data finds nothing; after one 4 KiB block is changed
#   directly on the Secondary's backing disk, verify finds exactly that
#   block (oos 4 KiB on both, the 8.4 log lines), and a reconnect resyncs it;
# - invalidate (guest 1) and invalidate-remote (guest 0) each run a full
#   resync, after which the data areas of both backing disks are equal;
# - pause-sync before invalidate: the resync shows PausedSyncT/PausedSyncS
#   and makes no progress until resume-sync; pause/resume errors;
# - resize: a size beyond the backing disk is logged and ignored (8.4),
#   a new AL layout that would shrink the device without --size, resizing
#   during a resync and without a Primary are refused with the 8.4 error
#   codes;
# - refusals: verify/invalidate while a resync runs, invalidate-remote on
#   a StandAlone Secondary (invalidate on a Primary: 53-resync-under-writes).
# guests: 2
# 16 MiB disks: every invalidate is a full resync, on the debug kernel.
# disks: 16M
# timeout: 600
# budget: 280
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
S84=/lib/drbd/drbdsetup-84
attach_rdrbd || exit 1
barrier attached || die "peer never attached"

connect() {
  "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C --ping-timeout=20 --socket-check-timeout=5 --verify-alg=crc32c "$@"
}
step connect connect || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

# Both disks are fresh (zeros): skip the initial sync, as drbdadm's
# new-current-uuid --clear-bitmap does.
if [ "$GUEST_INDEX" = 0 ]; then
  step skip-initial-sync "$S" new-current-uuid 0 --clear-bitmap
  step primary "$S" primary 0
  step write dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=4 oflag=direct status=none
fi
barrier written || die "barrier written"

DATA_BYTES=$(md_data_bytes "$(size_of /dev/vda)")
# same_data TAG: the data areas of both backing disks are equal.
same_data() {
  share_put "sum.$1.$GUEST_INDEX" "$(checksum_head /dev/vda "$DATA_BYTES")"
  local a b; a=$(share_get "sum.$1.0") b=$(share_get "sum.$1.1")
  echo "guest0 $a guest1 $b"
  [ -n "$a" ] && [ "$a" = "$b" ]
}

# --- verify on equal data ---------------------------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  # The first 12 MiB (the written data is at 4..12 MiB): verify compares
  # block by block, which takes long under TCG.
  step verify-start "$S" verify 0 --stop=12M
fi
step verify-done-logged wait_verify_done 1 300
step verify-done-connected wait_cs Connected 60
step verify-equal-no-oos test "$(proc_field oos)" = 0
step verify-equal-found-nothing sh -c "! dmesg | grep -q 'Online verify found'"
barrier verified1 || die "barrier verified1"

# --- verify finds one changed block -----------------------------------------
# 4 KiB at 1 MiB (sector 2048) on the Secondary's backing disk, behind drbd's back.
if [ "$GUEST_INDEX" = 1 ]; then
  step corrupt-block dd if=/dev/urandom of=/dev/vda bs=4096 count=1 seek=256 oflag=direct status=none
fi
barrier corrupted || die "barrier corrupted"
if [ "$GUEST_INDEX" = 0 ]; then
  # The first 2 MiB around it (the first verify covered the 12 MiB).
  step verify84-start "$S84" verify 0 --stop=2M
fi
step verify2-done-logged wait_verify_done 2 300
step verify2-connected wait_cs Connected 60
step verify-found-one-block sh -c "dmesg | grep -q 'Online verify found 1 4k block out of sync'"
step verify-logged-range sh -c "dmesg | grep -q 'Out of sync: start=2048, size=8 (sectors)'"
step verify-oos-4k test "$(proc_field oos)" = 4
barrier verified2 || die "barrier verified2"
# As 8.4: the blocks found are resynced at the next connect.
if [ "$GUEST_INDEX" = 1 ]; then
  step disconnect "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"
  step reconnect connect
fi
step resync-after-verify wait_resync 1 120
step oos-zero-after-resync test "$(proc_field oos)" = 0
barrier resynced1 || die "barrier resynced1"
step data-equal-after-verify same_data verify

# --- refusals while Connected -----------------------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step resize-too-big-ignored "$S" resize 0 --size=1G
  step resize-too-big-logged sh -c "dmesg | grep -q 'Requested disk size is too big'"
  # A 4 MiB activity log leaves less room: only with an explicit --size.
  step resize-al-layout-implicit-shrink-refused expect_fail "$S" resize 0 --al-stripes=4 --al-stripe-size-kB=1024
  step pause-clear-refused expect_fail "$S" resume-sync 0
fi
barrier refusals1 || die "barrier refusals1"

# --- invalidate (guest 1), paused first -------------------------------------
if [ "$GUEST_INDEX" = 1 ]; then
  step pause-sync "$S" pause-sync 0
  step pause-twice-refused expect_fail "$S" pause-sync 0
  step invalidate "$S" invalidate 0
  step paused-target wait_cs PausedSyncT 60
fi
barrier invalidated || die "barrier invalidated"
if [ "$GUEST_INDEX" = 0 ]; then
  step paused-source wait_cs PausedSyncS 60
  step verify-during-resync-refused expect_fail "$S" verify 0
  step invalidate-remote-during-resync-refused expect_fail "$S" invalidate-remote 0
  step resize-during-resync-refused expect_fail "$S" resize 0
  step resume-peer-paused-refused expect_fail "$S" resume-sync 0
fi
barrier checked-paused || die "barrier checked-paused"
if [ "$GUEST_INDEX" = 1 ]; then
  before=$(proc_field oos)
  sleep 3
  step paused-no-progress test "$(proc_field oos)" = "$before"
  step paused-shows-progress sh -c "grep -q \"sync'ed\" /proc/drbd"
  step resume-sync "$S84" resume-sync 0
fi
step invalidate-resync wait_resync 2 300
step invalidate-oos-zero test "$(proc_field oos)" = 0
barrier synced-invalidate || die "barrier synced-invalidate"
step data-equal-after-invalidate same_data invalidate
[ "$GUEST_INDEX" = 1 ] && step began-sync-target sh -c "dmesg | grep -q 'Began resync as SyncTarget'"

# --- invalidate-remote (guest 0, drbdsetup-84) ------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step write2 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=13 oflag=direct status=none
  step invalidate-remote "$S84" invalidate-remote 0
fi
barrier invalidated-remote || die "barrier invalidated-remote"
step invalidate-remote-resync wait_resync 3 300
barrier synced-remote || die "barrier synced-remote"
step data-equal-after-invalidate-remote same_data remote
if [ "$GUEST_INDEX" = 0 ]; then
  # The whole data area.
  step full-resync-as-source sh -c "dmesg | grep 'Began resync as SyncSource' | tail -1 | grep -q 'will sync $((DATA_BYTES / 1024)) KB'"
  step secondary "$S" secondary 0
fi
barrier secondaries || die "barrier secondaries"

# --- without a Primary, and StandAlone --------------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step resize-no-primary-refused expect_fail "$S" resize 0
fi
barrier no-primary || die "barrier no-primary"
step disconnect-end "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"
if [ "$GUEST_INDEX" = 1 ]; then
  step invalidate-remote-standalone-refused expect_fail "$S" invalidate-remote 0
  step verify-standalone-refused expect_fail "$S" verify 0
  step invalidate-standalone "$S" invalidate 0
  step standalone-inconsistent test "$(proc_field ds)" = Inconsistent
fi
cat /proc/drbd
step down "$S" down r0
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
