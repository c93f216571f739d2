#!/bin/bash
# Crash of the Primary, then both come back with equal UUIDs (8.4's
# "common power failure", uuid_compare rule 40). Boot 0: fresh metadata on
# both, initial sync, guest 0 Primary runs a stream of 4 KiB O_DIRECT writes
# and is power-cut in the middle of it; guest 1 (Secondary) sees the peer
# go, keeps its UUIDs (a Secondary makes no new one) and goes down cleanly.
# Boot 1: both attach their kept metadata; guest 0 replays its activity
# log (the extents the stream had hot) and remembers that it went down as
# Primary (MDF_PRIMARY_IND → crashed primary, sent as P_UUIDS flag 2).
# Connected, the UUIDs are equal, so only that flag decides: guest 0 must
# become SyncSource of what its activity log marked ("Began resync as
# SyncSource (will sync N KB" with 0 < N below the device), both end
# UpToDate, the crashed-primary mark is gone from guest 0's metadata, and
# the data areas of both backing disks are identical. Before the mark was
# kept and sent, both went straight to Connected: writes the Primary had on
# its disk and not yet on the peer's stayed different, with bits set only
# on the Primary.
# guests: 2
# disks: 64M
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

if [ "$BOOT_INDEX" = 0 ]; then
  attach_rdrbd || exit 1
  barrier attached || die "peer never attached"
  wait_for_dev /dev/drbd0
  step connect connect || exit 1
  step connected wait_cs Connected 90 || exit 1
  barrier connected || die "barrier connected"
  [ "$GUEST_INDEX" = 0 ] && step force-primary "$S" primary 0 --force
  step initial-sync wait_synced 600 || { dmesg | grep drbd | tail -30; exit 1; }
  barrier synced || die "barrier synced"

  if [ "$GUEST_INDEX" = 0 ]; then
    # A stream of 4 KiB O_DIRECT writes over the first 32 MiB, cut by a
    # power failure while it runs.
    stream() {
      local i=0
      while :; do
        dd if=/dev/urandom of=/dev/drbd0 bs=4k count=1 seek=$(( (i * 37) % 8192 )) oflag=direct status=none || exit 1
        i=$((i + 1))
      done
    }
    stream &
    sleep 4
    grep -A2 '^ *0:' /proc/drbd
    power_cut "Primary, Connected, writing"
  fi

  step lost-peer wait_cs WFConnection 120
  step still-secondary test "$(proc_field ro)" = Secondary
  step down "$S" down r0
  step rmmod rmmod drbd
  step kernel-log-clean dmesg_clean
  finish
fi

# --- boot 1: both come back ------------------------------------------------------------
rejoin_after_boot
if [ "$GUEST_INDEX" = 0 ]; then
  step al-replayed sh -c "dmesg | grep 'activity log replayed' | tail -1 | grep ."
  oos_marked() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB"; [ -n "$o" ] && [ "$o" -gt 0 ]; }
  step replay-marked oos_marked
fi
barrier attached || die "barrier attached"
step reconnect connect || exit 1
step resync wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
dmesg | grep -E 'drbd.*(uuid_compare|Began resync|Resync done)' | tail -6
if [ "$GUEST_INDEX" = 0 ]; then
  crashed_primary_resyncs() {
    local kb; kb=$(resynced_kb)
    echo "resynced ${kb:-none} KB of a $(( $(size_of /dev/drbd0) / 1024 )) KiB device"
    [ -n "$kb" ] && [ "$kb" -gt 0 ] && [ "$kb" -lt $(( $(size_of /dev/drbd0) / 1024 )) ]
  }
  step source-of-its-al crashed_primary_resyncs
  step rule-40 sh -c "dmesg | grep 'uuid_compare()=1 by rule 40' | grep ."
else
  step sync-target sh -c "dmesg | grep 'Began resync as SyncTarget' | tail -1 | grep ."
fi
barrier done || die "barrier done"
cat /proc/drbd
step down "$S" down r0
if [ "$GUEST_INDEX" = 0 ]; then
  # MDF_CRASHED_PRIMARY (0x40) and MDF_PRIMARY_IND (0x2) are gone, the
  # disk is Consistent and was UpToDate (0x11). Our drbdmeta: Debian's
  # drbd-utils 9 prints 0 for a v08 superblock's flags.
  no_crash_mark() {
    local flags; flags=$(dump_md /dev/vda "$DRBDMETA" 2>/dev/null | sed -n 's/^ *flags \(0x[0-9A-Fa-f]*\);.*/\1/p')
    echo "flags ${flags:-?}"
    [ -n "$flags" ] && [ $(( flags & 0x42 )) = 0 ] && [ $(( flags & 0x11 )) = $(( 0x11 )) ]
  }
  step crash-mark-cleared no_crash_mark
fi
N=$(md_data_bytes "$(size_of /dev/vda)")
share_data_sum "$N" || die "barrier summed"
step data-identical same_data "$N"
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
