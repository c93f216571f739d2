#!/bin/bash
# resync-after (issue #14; 8.4's _drbd_may_sync_now, drbd_pause_after,
# drbd_resume_next): each guest has two resources on two 16 MiB slices of
# its disk, r0 (minor 0) and r1 (minor 1, resync-after 0, on both guests
# as drbdadm sets it). A dependency cycle (minor 0 after minor 1) is
# refused. Guest 0, Primary on both, writes 8 and 4 MiB while guest 1 is
# disconnected; guest 1 resyncs minor 0 slowly (resync-rate 1M): minor 1
# waits meanwhile, PausedSyncS/T with the aftr_isp flag ("a" in
# /proc/drbd), and resyncs after minor 0. Both end UpToDate with equal data.
# On the fast kernel: its time goes into resyncs at a set rate; the
# pause and resume are state changes the debug kernel runs in 42.
# kernel: fast
# guests: 2
# disks: 32M
# timeout: 400
# budget: 90
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
SLICE=$((16 * 2048))
step slice-a dm_create a "0 $SLICE linear /dev/vda 0" || exit 1
step slice-b dm_create b "0 $SLICE linear /dev/vda $SLICE" || exit 1
S=$DRBDSETUP
# drbdmeta refuses to touch minor 0's metadata once minor 0 is configured.
step create-md-0 create_md /dev/mapper/a || exit 1
step create-md-1 create_md /dev/mapper/b || exit 1
step insmod load_drbd || exit 1
for r in 0 1; do
  dev=/dev/mapper/$([ $r = 0 ] && echo a || echo b)
  step new-resource-$r "$S" new-resource r$r || exit 1
  step new-minor-$r "$S" new-minor r$r $r 0 || exit 1
  step attach-$r "$S" attach $r "$dev" || exit 1
done
step resync-after "$S" disk-options 1 --resync-after=0
cycle_refused() {
  local out
  if out=$("$S" disk-options 0 --resync-after=1 2>&1); then echo "accepted"; return 1; fi
  echo "$out"
  echo "$out" | grep -q 'resync-after dependency cycle'
}
step cycle-refused cycle_refused
shows_after() { "$S" show r1 | tee /tmp/show; grep -qE 'resync-after\s+0;' /tmp/show; }
step show-resync-after shows_after
barrier attached || die "peer never attached"

endpoints() { echo "ipv4:$LOCAL_ADDR:$((7789 + $1)) ipv4:$PEER_ADDR:$((7789 + $1))"; }
# minor_line N: minor N's state line of /proc/drbd.
minor_line() { grep -E "^ *$1: cs:" /proc/drbd; }
# wait_minor N REGEX SECONDS: until minor N's state line matches REGEX.
wait_minor() {
  local n=$(( $3 * 10 ))
  until minor_line "$1" | grep -qE -- "$2" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  minor_line "$1"
  minor_line "$1" | grep -qE -- "$2"
}
for r in 0 1; do
  # shellcheck disable=SC2046
  step connect-$r "$S" connect r$r $(endpoints $r) --protocol=C --ping-timeout=20 --socket-check-timeout=5 || exit 1
done
for r in 0 1; do
  step connected-$r wait_minor $r 'cs:Connected' 90 || exit 1
done
barrier connected || die "barrier connected"
if [ "$GUEST_INDEX" = 0 ]; then
  for r in 0 1; do step skip-initial-sync-$r "$S" new-current-uuid --clear-bitmap $r; done
fi
for r in 0 1; do
  step uptodate-$r wait_minor $r 'cs:Connected .*ds:UpToDate/UpToDate' 60 || exit 1
done
barrier uptodate || die "barrier uptodate"

if [ "$GUEST_INDEX" = 1 ]; then
  for r in 0 1; do
    # shellcheck disable=SC2046
    step disconnect-$r "$S" disconnect $(endpoints $r)
  done
  step slow-resync-0 "$S" disk-options 0 --c-plan-ahead=0 --resync-rate=1M
fi
barrier disconnected || die "barrier disconnected"
if [ "$GUEST_INDEX" = 0 ]; then
  for r in 0 1; do
    step primary-$r "$S" primary $r
    # Minor 0's resync (8 MiB at 1 MiB/s) leaves time to see minor 1 wait.
    step write-$r dd if=/dev/urandom of=/dev/drbd$r bs=1M count=$((8 >> r)) oflag=direct status=none
  done
fi
barrier written || die "barrier written"
if [ "$GUEST_INDEX" = 1 ]; then
  for r in 0 1; do
    # shellcheck disable=SC2046
    step reconnect-$r "$S" connect r$r $(endpoints $r) --protocol=C --ping-timeout=20 --socket-check-timeout=5
  done
  step minor-1-waits wait_minor 1 'cs:PausedSyncT .* [rs]a' 60
  step minor-0-resyncs sh -c "dmesg | grep -E 'drbd0: conn\( WFSyncUUID -> SyncTarget \)'"
else
  step minor-1-waits wait_minor 1 'cs:PausedSyncS .* [rs]a' 60
  step minor-0-resyncs sh -c "dmesg | grep -E 'drbd0: conn\( WFBitMapS -> SyncSource \)'"
fi
for r in 0 1; do
  step synced-$r wait_minor $r 'cs:Connected .*ds:UpToDate/UpToDate' 120
done
step aftr-isp-logged sh -c "dmesg | grep -E 'drbd1: .*aftr_isp\( 0 -> 1 \)' && dmesg | grep -E 'drbd1: .*aftr_isp\( 1 -> 0 \)'"
if [ "$GUEST_INDEX" = 0 ]; then
  # Minor 1's resync ended after minor 0's began its own.
  order_ok() {
    dmesg | grep -E 'drbd[01]: conn\( (Sync|PausedSync)' | tail -8
    local end0 start1
    end0=$(dmesg | grep -nE 'drbd0: conn\( SyncSource -> Connected \)' | tail -1 | cut -d: -f1)
    start1=$(dmesg | grep -nE 'drbd1: .*aftr_isp\( 1 -> 0 \)' | tail -1 | cut -d: -f1)
    echo "minor 0 done at log line $end0, minor 1 resumed at $start1"
    [ -n "$end0" ] && [ -n "$start1" ] && [ "$start1" -ge "$end0" ]
  }
  step minor-1-after-minor-0 order_ok
  for r in 0 1; do step secondary-$r "$S" secondary $r; done
fi
barrier checked || die "barrier checked"
for r in 0 1; do step down-$r "$S" down r$r; done
n=$(md_data_bytes $((SLICE * 512)))
share_put "sum.$GUEST_INDEX" "$(checksum_head /dev/mapper/a "$n") $(checksum_head /dev/mapper/b "$n")"
barrier summed || die "barrier summed"
step data-identical same_data "$n"
step rmmod rmmod drbd
step slices-gone sh -c "dmsetup remove --noudevsync a && dmsetup remove --noudevsync b"
step kernel-log-clean dmesg_clean
finish
