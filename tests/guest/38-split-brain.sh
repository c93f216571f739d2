#!/bin/bash
# Split brain between two rdrbd nodes (protocol C, issue #5 test 6). Fresh
# metadata on zeroed disks, the initial sync skipped with new-current-uuid
# --clear-bitmap (full syncs are 35's and 36's subject), guest 0 Primary and
# Secondary again; then both sides disconnect, both become Primary and write
# different data (guest 0: 4 MiB at 32 MiB; guest 1: 2 MiB at 32 MiB and
# 4 MiB at 64 MiB), then both go Secondary and connect again: the handshake
# must report "Split-Brain detected" in the kernel log and refuse the
# connection (StandAlone on at least one side) without touching either
# side's data. Then `connect --discard-my-data` on guest 1 (and a plain
# connect on guest 0 if it went StandAlone too) resolves it: guest 1 becomes
# SyncTarget of a bitmap-based resync of the union of both sides' changes
# (8 MiB, not the device), guest 0's data stays as it was, and the data
# areas of both backing disks end identical. Each side that detects the
# split brain runs the usermode helper (initial-split-brain, split-brain),
# and events2 listeners (ours and drbd-utils') see the calls.
# guests: 2
# disks: 128M
# timeout: 900
# budget: 130
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
wait_for_dev /dev/drbd0
# The usermode helper (module parameter usermode_helper, normally drbdadm)
# records how it is called.
step recording-helper use_recording_helper
LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
connect() { "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 "$@"; }
step connect connect || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

[ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
step initial-sync wait_synced 600 || { dmesg | grep drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 0 ] && step primary "$S" primary 0
[ "$GUEST_INDEX" = 0 ] && step secondary-after-sync "$S" secondary 0
barrier synced || die "barrier synced"
# The demotion reaches the peer (drbd_set_role sends the new state).
both_secondary() {
  local n=100
  until proc_has 'ro:Secondary/Secondary' || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep '^ *0:' /proc/drbd; grep -q 'ro:Secondary/Secondary' /proc/drbd
}
step peer-sees-demotion both_secondary
barrier demoted || die "barrier demoted"

# --- both sides go their own way --------------------------------------------------
step disconnect "$S" disconnect "$LOCAL" "$PEER"
step standalone wait_cs StandAlone 30
barrier disconnected || die "barrier disconnected"
step primary-alone "$S" primary 0 || exit 1
if [ "$GUEST_INDEX" = 0 ]; then
  step write-a dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=32 oflag=direct status=none
else
  step write-b1 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=32 oflag=direct status=none
  step write-b2 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=64 oflag=direct status=none
fi
oos_is() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB, want $1"; [ "$o" = "$1" ]; }
step oos-own-changes oos_is $([ "$GUEST_INDEX" = 0 ] && echo 4096 || echo 6144)
step secondary-alone "$S" secondary 0
N=$(md_data_bytes "$(size_of /dev/vda)")
# The backing disk's data area, read beside the attached minor (O_DIRECT).
data_sum() { checksum_head /dev/vda "$N"; }
BEFORE=$(data_sum)
log "data area checksum before reconnecting: $BEFORE"
[ -n "$BEFORE" ] || fail read-data-area "reading /dev/vda failed"
share_put "before.$GUEST_INDEX" "$BEFORE"
barrier diverged || die "barrier diverged"
differ() { local a b; a=$(share_get before.0) b=$(share_get before.1); echo "guest0 $a guest1 $b"; [ "$a" != "$b" ]; }
step data-diverged differ

# --- reconnect: split brain, refused ----------------------------------------------
# Both events2 listeners (ours and drbd-utils') must see the helper calls.
"$S" events2 all > /tmp/events-ours 2>&1 &
EV_OURS=$!
/lib/drbd/drbdsetup-84 events2 all > /tmp/events-utils 2>&1 &
EV_UTILS=$!
sleep 1
step reconnect connect
split_brain_reported() {
  local n=600
  until dmesg | grep -q 'Split-Brain detected' || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  dmesg | grep -E 'drbd.*(uuid_compare|Split-Brain)' | tail -5
  dmesg | grep -q 'Split-Brain detected'
}
step split-brain-reported split_brain_reported
# The connection of a side that detected it goes StandAlone and stays there.
sleep 3
CS=$(proc_field cs)
log "cs now: $CS"
grep -A1 '^ *0:' /proc/drbd
share_put "cs.$GUEST_INDEX" "$CS"
barrier refused || die "barrier refused"
some_standalone() {
  local a b; a=$(share_get cs.0) b=$(share_get cs.1)
  echo "guest0 cs:$a guest1 cs:$b"
  [ "$a" = StandAlone ] || [ "$b" = StandAlone ]
}
step connection-refused some_standalone
# Each side that detected the split brain ran the helper for
# initial-split-brain and, with the default after-sb policy (disconnect),
# split-brain: `<helper> <event> minor-0` with the peer's address.
helpers_called() {
  cat "$HELPER_LOG"
  grep -qx "initial-split-brain minor-0 ipv4 $PEER_ADDR" "$HELPER_LOG" &&
    grep -qx "split-brain minor-0 ipv4 $PEER_ADDR" "$HELPER_LOG"
}
[ "$CS" = StandAlone ] && step split-brain-helpers-called helpers_called
kill $EV_OURS $EV_UTILS 2>/dev/null
helper_events_match() {
  grep helper /tmp/events-ours > /tmp/helper-ours; grep helper /tmp/events-utils > /tmp/helper-utils
  cat /tmp/helper-ours
  diff /tmp/helper-utils /tmp/helper-ours && grep -q '^call helper name:r0 .*helper:split-brain$' /tmp/helper-ours &&
    grep -q '^response helper name:r0 .*helper:split-brain status:0$' /tmp/helper-ours
}
[ "$CS" = StandAlone ] && step helper-events helper_events_match
never_connected() { local c; c=$(proc_field cs); echo "cs:$c"; case $c in Connected|Sync*|WFBitMap*|WFSyncUUID) return 1;; esac; }
step not-connected never_connected
unchanged() { local now; now=$(data_sum); echo "data area checksum $now, before $BEFORE"; [ -n "$now" ] && [ "$now" = "$BEFORE" ]; }
step data-unchanged-after-split-brain unchanged
barrier checked || die "barrier checked"

# --- resolve: guest 1 discards its changes ----------------------------------------
if [ "$GUEST_INDEX" = 1 ]; then
  [ "$CS" = StandAlone ] || step disconnect-again "$S" disconnect "$LOCAL" "$PEER"
  step connect-discard-my-data connect --discard-my-data
fi
barrier discard-connect || die "barrier discard-connect"
if [ "$GUEST_INDEX" = 0 ] && [ "$(proc_field cs)" = StandAlone ]; then
  step connect-again connect
fi
step resync-after-split-brain wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
dmesg | grep -E 'drbd.*(uuid_compare|Split-Brain|Began resync|Resync done)' | tail -8
if [ "$GUEST_INDEX" = 0 ]; then
  resync_size() {
    local kb
    kb=$(resynced_kb)
    echo "resynced ${kb:-?} KB; the union of both sides' changes is 8192 KB"
    [ -n "$kb" ] && [ "$kb" -ge 8192 ] && [ "$kb" -le 9011 ]
  }
  step bitmap-based-resync resync_size
  step survivor-data-unchanged unchanged
else
  step sync-target sh -c "dmesg | grep 'Began resync as SyncTarget' | tail -1 | grep ."
fi
barrier resynced || die "barrier resynced"
step down "$S" down r0
sum=$(data_sum)
share_put "sum.$GUEST_INDEX" "$sum"
barrier summed || die "barrier summed"
same_data_as_before() {
  local a b a0; a=$(share_get sum.0) b=$(share_get sum.1) a0=$(share_get before.0)
  echo "guest0 $a guest1 $b, guest0 before the reconnect $a0 (first $N bytes of /dev/vda)"
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$a0" ]
}
step data-identical same_data_as_before
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
