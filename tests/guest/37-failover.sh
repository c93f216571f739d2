#!/bin/bash
# Failover after a crash of the Primary (protocol C, issue #5 test 4).
# Boot 0: fresh metadata on both (zeroed disks), the initial sync skipped
# with new-current-uuid --clear-bitmap (full syncs are 35's and 36's
# subject, on the fast kernel: one here would take a minute), guest 0
# Primary writes a stream of numbered 4 KiB records (tests/guest/records.py: O_DIRECT +
# O_DSYNC, each acknowledged record logged in /shared) and is power-cut in
# the middle of it. Guest 1 notices the lost peer, is promoted without
# --force, and every acknowledged record is on its disk (raw records, no
# filesystem). Guest 1 then writes 9 MiB more as the new Primary, goes
# Secondary and down cleanly: the harness boots all guests together, so
# guest 1 cannot stay up while guest 0 comes back; its persisted metadata
# stands for the survivor. Boot 1: both attach their kept metadata (no
# create-md; guest 0 replays its activity log), guest 1 is Primary again
# (no --force), guest 0 connects as Secondary and must be resynced from
# guest 1 by a bitmap-based resync (guest 1's changes plus guest 0's
# replayed extents, not the device), end UpToDate/UpToDate with identical
# data areas.
# guests: 2
# disks: 128M
# timeout: 900
# budget: 200
# boots: 2
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
S=$DRBDSETUP
LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
connect() { "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 --ping-int=3 "$@"; }
RECORDS="python3 $(dirname "$0")/records.py"
STATE=$SHARED/failover
mkdir -p "$STATE"
RUNID=run$$

if [ "$BOOT_INDEX" = 0 ]; then
  attach_rdrbd || exit 1
  barrier attached || die "peer never attached"
  wait_for_dev /dev/drbd0
  step connect connect || exit 1
  step connected wait_cs Connected 90 || exit 1
  barrier connected || die "barrier connected"
  [ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
  step initial-sync wait_synced 600 || { dmesg | grep drbd | tail -30; exit 1; }
  [ "$GUEST_INDEX" = 0 ] && step primary "$S" primary 0
  barrier synced || die "barrier synced"

  if [ "$GUEST_INDEX" = 0 ]; then
    echo "$RUNID" > "$STATE/runid"
    : > "$STATE/acked"
    $RECORDS write /dev/drbd0 "$RUNID" "$STATE/acked" &
    writer=$!
    sleep 8
    if kill -0 $writer 2>/dev/null; then pass writer-running; else fail writer-running "the record writer ended early"; fi
    log "acknowledged so far: $(grep -c ' ok$' "$STATE/acked")"
    grep -A2 '^ *0:' /proc/drbd
    share_put cut 1
    power_cut "Primary, Connected, record stream in flight"
  fi

  # Guest 1: the surviving Secondary.
  share_get cut 300 > /dev/null || die "guest 0 never reached its power cut"
  step lost-peer wait_cs WFConnection 120 || { dmesg | grep drbd | tail -20; exit 1; }
  dmesg | grep drbd | tail -8
  RUNID=$(cat "$STATE/runid")
  step promote "$S" primary 0 || exit 1
  step acked-records-present $RECORDS check /dev/drbd0 "$RUNID" "$STATE/acked"
  # Writes of the new Primary: over the first 1 MiB of records and 8 MiB at 96 MiB.
  step write-after-failover-1 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 oflag=direct status=none
  step write-after-failover-2 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=96 oflag=direct status=none
  oos_is() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB, want 9216"; [ "$o" = 9216 ]; }
  step oos-marked oos_is
  proc_field oos > "$STATE/oos-boot0"
  step secondary "$S" secondary 0
  step down "$S" down r0
  step rmmod rmmod drbd
  step kernel-log-clean dmesg_clean
  finish
fi

# --- boot 1: guest 0 comes back -----------------------------------------------------
rejoin_after_boot
if [ "$GUEST_INDEX" = 0 ]; then
  step al-replayed sh -c "dmesg | grep 'activity log replayed'"
else
  oos_kept() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB, boot 0 left $(cat "$STATE/oos-boot0")"; [ "$o" = "$(cat "$STATE/oos-boot0")" ]; }
  step oos-persisted oos_kept
  step primary-again "$S" primary 0 || exit 1
fi
barrier attached || die "barrier attached"
step reconnect connect || exit 1
step resync wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
dmesg | grep -E 'drbd.*(uuid_compare|Began resync|Resync done)' | tail -8
if [ "$GUEST_INDEX" = 1 ]; then
  resync_size() {
    local kb oos1
    oos1=$(cat "$STATE/oos-boot0")
    kb=$(resynced_kb)
    echo "resynced ${kb:-?} KB; guest 1 had $oos1 KiB out of sync; device $(( $(size_of /dev/drbd0) / 1024 )) KiB"
    # guest 1's changes plus guest 0's replayed AL extents (the records
    # live in the first 64 MiB): below a full sync of the 128 MiB device.
    [ -n "$kb" ] && [ "$kb" -ge "$oos1" ] && [ "$kb" -le $(( oos1 + 65536 )) ]
  }
  step bitmap-based-resync resync_size
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=112 oflag=direct status=none
  step oos-zero test "$(proc_field oos)" = 0
  step secondary "$S" secondary 0
else
  step sync-target sh -c "dmesg | grep 'Began resync as SyncTarget' | tail -1 | grep ."
fi
barrier done || die "barrier done"
cat /proc/drbd
step down "$S" down r0
N=$(md_data_bytes "$(size_of /dev/vda)")
share_data_sum "$N" || die "barrier summed"
step data-identical same_data "$N"
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
