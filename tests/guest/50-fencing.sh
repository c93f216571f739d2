#!/bin/bash
# Resource-level fencing (disk option `fencing resource-only`) between two
# rdrbd nodes; the usermode helper (module parameter usermode_helper) is
# replaced by a script that logs its calls and exits with a code the test
# chooses, as a fence-peer handler would (lib.sh use_recording_helper):
# - the Primary loses its peer (guest 1 disconnects): `fence-peer r0` runs
#   with the peer's address, exit 4 ("peer was fenced") marks the peer
#   Outdated (ds:UpToDate/Outdated);
# - a disconnected Secondary is promoted only if fence-peer outdates the
#   peer: a broken helper (exit 1) refuses the promotion, exit 6 (the
#   peer is Primary) outdates our own disk and refuses;
# - after reconnecting the Outdated node resyncs what the Primary wrote
#   meanwhile, and the data areas are equal.
# Runs alone under CHECK_JOBS (times the fence-peer helper against frozen I/O).
# exclusive: yes
# guests: 2
# disks: 64M
# timeout: 600
# budget: 50
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
step recording-helper use_recording_helper
step fencing-resource-only "$S" disk-options 0 --fencing=resource-only
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
[ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
step uptodate wait_synced 60 || exit 1
barrier synced || die "barrier synced"

# --- the Primary loses its peer: fence-peer outdates it ----------------------
if [ "$GUEST_INDEX" = 0 ]; then
  echo 4 > "$HELPER_EXIT"
  step primary "$S" primary 0
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 oflag=direct status=none
fi
barrier primary || die "barrier primary"
[ "$GUEST_INDEX" = 1 ] && step disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier peer-gone || die "barrier peer-gone"
poll() { local n=$(( $1 * 10 )); shift; until "$@" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done; "$@"; }
if [ "$GUEST_INDEX" = 0 ]; then
  step fence-peer-called poll 30 grep -qx "fence-peer r0 ipv4 $PEER_ADDR" "$HELPER_LOG"
  cat "$HELPER_LOG"
  step peer-outdated poll 10 grep -q 'ds:UpToDate/Outdated' /proc/drbd
  grep -A1 '^ *0:' /proc/drbd
  step fenced-logged sh -c "dmesg | grep -q 'fence-peer helper returned 4 (peer was fenced)'"
  step write-alone dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=8 oflag=direct status=none
fi
barrier fenced || die "barrier fenced"

# --- promoting a disconnected Secondary needs the peer outdated --------------
if [ "$GUEST_INDEX" = 1 ]; then
  echo 1 > "$HELPER_EXIT"
  step broken-helper-refuses sh -c "! $S primary 0"
  step broken-logged sh -c "dmesg | grep -q 'fence-peer helper broken, returned 1'"
  step still-uptodate grep -q 'ds:UpToDate/DUnknown' /proc/drbd
  echo 6 > "$HELPER_EXIT"
  step peer-active-refuses sh -c "! $S primary 0"
  step outdated-myself grep -q 'ro:Secondary/Unknown ds:Outdated/DUnknown' /proc/drbd
  grep -A1 '^ *0:' /proc/drbd
  two_fence_calls() { cat "$HELPER_LOG"; [ "$(grep -c '^fence-peer r0' "$HELPER_LOG")" = 2 ]; }
  step helper-calls two_fence_calls
  step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
fi
step resynced wait_synced 120 || exit 1
[ "$GUEST_INDEX" = 1 ] && step sync-target sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
barrier resynced || die "barrier resynced"
down_with_equal_data
finish
