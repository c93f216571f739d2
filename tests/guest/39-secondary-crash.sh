#!/bin/bash
# Crash of the Secondary (protocol C, issue #5 test 5). Boot 0: fresh
# metadata on both, initial full sync, guest 0 Primary runs a stream of 4 KiB
# O_DIRECT writes; guest 1 (Secondary) is power-cut in the middle of it.
# Guest 0 notices the lost peer (WFConnection, new current UUID), keeps
# writing (the stream plus 8 MiB at 40 MiB, all marked out of sync), then
# goes Secondary and down cleanly (the harness boots both guests together,
# so guest 0 cannot stay up while guest 1 comes back: its persisted
# metadata stands for the Primary that kept running). Boot 1: both attach
# their disks without create-md (guest 1 replays its activity log), guest 0
# becomes Primary again without --force and both connect: guest 1 must come
# back by a bitmap-based resync ("Began resync as SyncSource (will sync N
# KB" on guest 0 with N below the 64 MiB device: guest 0's changes, which
# include the writes guest 1 had in flight (not barrier-acked when the
# connection went: replicated writes bypass the Secondary's activity log
# while the Primary has a disk, as in 8.4), plus the extents of guest 1's
# replayed activity log, if any: resync writes must not make extents hot,
# or the initial sync would leave every extent hot), end UpToDate, and the
# data areas of both backing disks must be identical.
# guests: 2
# disks: 64M
# timeout: 900
# budget: 220
# boots: 2
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
S=$DRBDSETUP
LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
connect() { "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 --ping-int=3 "$@"; }
STATE=$SHARED/secondary-crash
mkdir -p "$STATE"

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

  if [ "$GUEST_INDEX" = 1 ]; then
    # Cut while guest 0's stream runs (it tells us it has started).
    share_get writing 120 > /dev/null || die "guest 0 never started writing"
    sleep 4
    grep -A2 '^ *0:' /proc/drbd
    power_cut "Secondary, Connected, replicated writes arriving"
  fi

  # Guest 0: a stream of 4 KiB O_DIRECT writes in the first 32 MiB.
  stream() {
    local i=0
    while :; do
      dd if=/dev/urandom of=/dev/drbd0 bs=4k count=1 seek=$(( (i * 37) % 8192 )) oflag=direct status=none || exit 1
      i=$((i + 1))
      echo "$i" > /tmp/stream-count
    done
  }
  stream &
  loop=$!
  share_put writing 1
  step lost-peer wait_cs WFConnection 120
  dmesg | grep drbd | tail -8
  sleep 2
  kill $loop; wait $loop 2>/dev/null
  log "stream writes: $(cat /tmp/stream-count)"
  step write-disconnected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=40 oflag=direct status=none
  oos_at_least() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB"; [ -n "$o" ] && [ "$o" -ge 8192 ]; }
  step oos-marked oos_at_least
  proc_field oos > "$STATE/oos-boot0"
  new_uuid() { dmesg | grep -iE 'drbd.*(new current UUID|uuid)' | tail -3; "$S" show-gi 0 2>&1 | head -5 || true; }
  new_uuid
  step secondary "$S" secondary 0
  step down "$S" down r0
  step rmmod rmmod drbd
  step kernel-log-clean dmesg_clean
  finish
fi

# --- boot 1: guest 1 comes back --------------------------------------------------------
rejoin_after_boot
dmesg | grep -E 'drbd.*(activity log|attach)' | tail -3
if [ "$GUEST_INDEX" = 0 ]; then
  uptodate() { local d; d=$(proc_field ds); echo "ds:$d"; [ "$d" = UpToDate ]; }
  step attached-uptodate uptodate
  step primary-again "$S" primary 0 || exit 1
  oos_kept() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB, boot 0 left $(cat "$STATE/oos-boot0")"; [ "$o" = "$(cat "$STATE/oos-boot0")" ]; }
  step oos-persisted oos_kept
fi
barrier attached || die "barrier attached"
step reconnect connect || exit 1
step resync wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
dmesg | grep -E 'drbd.*(uuid_compare|Began resync|Resync done|bitmap)' | tail -8
if [ "$GUEST_INDEX" = 0 ]; then
  resync_size() {
    local kb oos0
    oos0=$(cat "$STATE/oos-boot0")
    kb=$(resynced_kb)
    echo "resynced ${kb:-?} KB; guest 0 had $oos0 KiB out of sync; device $(( $(size_of /dev/drbd0) / 1024 )) KiB"
    # guest 0's own changes, plus at most guest 1's active AL extents
    # (32 MiB of stream area; none since replicated writes bypass it):
    # below the 64 MiB of a full sync.
    [ -n "$kb" ] && [ "$kb" -ge "$oos0" ] && [ "$kb" -le $(( oos0 + 32768 + 4096 )) ]
  }
  step bitmap-based-resync resync_size
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=56 oflag=direct status=none
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
