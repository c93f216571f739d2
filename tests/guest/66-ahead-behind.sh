#!/bin/bash
# on-congestion (issue #14; 8.4's maybe_pull_ahead, Ahead/Behind): guest 1's
# backing disk is behind a dm-delay that holds each write 100 ms, so with
# protocol A the replicated writes pile up in flight.
# - pull-ahead, congestion-fill 1 MiB: guest 0 (Primary) writes 8 MiB;
#   past 1 MiB in flight it logs "Congestion-fill threshold reached" and
#   goes Ahead, guest 1 Behind with its disk Outdated; the writes after
#   that only mark their blocks out of sync at the peer (P_OUT_OF_SYNC).
#   Once the link drained, guest 0 resyncs them as SyncSource by itself;
#   both end UpToDate. drbdsetup show reports the policy; protocol C
#   with pull-ahead is refused (8.4's ERR_CONG_NOT_PROTO_A).
# - disconnect (set live with net-options): the next 8 MiB make guest 0
#   drop the connection and go StandAlone, as 8.4; a plain connect resyncs.
# - The in-tree C driver Behind: guest 1 swaps rdrbd for it on the same
#   metadata; guest 0 pulls ahead again, the C node goes Behind, takes the
#   P_OUT_OF_SYNC and the resync.
# The data areas are equal at the end.
# guests: 2
# disks: 16M
# timeout: 400
# budget: 170
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
if [ "$GUEST_INDEX" = 1 ]; then
  SECTORS=$(( $(size_of /dev/vda) / 512 ))
  step slow-disk dm_create slow "0 $SECTORS delay /dev/vda 0 0 /dev/vda 0 100" || exit 1
  BACKING=/dev/mapper/slow
else
  BACKING=/dev/vda
fi
attach_rdrbd "$BACKING" || exit 1
barrier attached || die "peer never attached"
LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
step connect "$S" connect r0 "$LOCAL" "$PEER" --protocol=A --ping-timeout=20 --socket-check-timeout=5 \
  --on-congestion=pull-ahead --congestion-fill=1M || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"
skip_initial_sync || exit 1

# --- pull-ahead --------------------------------------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  shows_policy() { "$S" show r0 | tee /tmp/show; grep -qE 'on-congestion\s+pull-ahead;' /tmp/show; }
  step show-on-congestion shows_policy
  refused_with_c() {
    local out
    if out=$("$S" net-options "$LOCAL" "$PEER" --protocol=C 2>&1); then echo "accepted"; return 1; fi
    echo "$out"
  }
  step protocol-c-refused refused_with_c
  step primary "$S" primary 0
  step write-8m dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 oflag=direct status=none
  step fill-reached wait_kernel_log 1 30 'Congestion-fill threshold reached'
  step went-ahead wait_kernel_log 1 30 'conn\( Connected -> Ahead \) pdsk\( UpToDate -> Consistent \)'
  step resync-as-source wait_kernel_log 1 60 'conn\( Ahead -> SyncSource \)'
else
  step went-behind wait_kernel_log 1 60 'conn\( Connected -> Behind \) disk\( UpToDate -> Outdated \)'
  step resync-as-target wait_kernel_log 1 60 'conn\( Behind -> SyncTarget \)'
fi
step synced-after-ahead wait_synced 120 || { dmesg | grep drbd | tail -30; exit 1; }
step no-protocol-error sh -c "! dmesg | grep -E 'protocol error|BAD! BarrierAck|ASSERT'"
barrier ahead-done || die "barrier ahead-done"

# --- disconnect --------------------------------------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step set-disconnect "$S" net-options "$LOCAL" "$PEER" --on-congestion=disconnect
  step write-8m-again dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=4 oflag=direct status=none
  step fill-reached-again wait_kernel_log 2 30 'Congestion-fill threshold reached'
  step standalone wait_cs StandAlone 30
fi
barrier dropped || die "barrier dropped"
if [ "$GUEST_INDEX" = 0 ]; then
  step connect-again "$S" connect r0 "$LOCAL" "$PEER" --protocol=A --ping-timeout=20 --socket-check-timeout=5
fi
step synced-after-disconnect wait_synced 120 || { dmesg | grep drbd | tail -30; exit 1; }
barrier reconnected || die "barrier reconnected"

# --- the C driver Behind -----------------------------------------------------
# Guest 1 swaps rdrbd for the in-tree driver on the same metadata (guest 0,
# Primary, moved its UUID on when guest 1 left: an empty resync); guest 0
# turns pull-ahead on again, live.
if [ "$GUEST_INDEX" = 1 ]; then
  step down-rdrbd "$S" down r0
  step rmmod-rdrbd rmmod drbd
  S=/lib/drbd/drbdsetup-84
  step modprobe-c-drbd modprobe drbd
  step c-new-resource "$S" new-resource r0
  step c-new-minor "$S" new-minor r0 0 0
  step c-attach-kept-md "$S" attach 0 "$BACKING" "$BACKING" internal
  step c-connect "$S" connect r0 "$LOCAL" "$PEER" --protocol=A --ping-timeout=20 --socket-check-timeout=5
fi
step synced-with-c wait_synced 90 || { dmesg | grep drbd | tail -30; exit 1; }
barrier c-connected || die "barrier c-connected"
if [ "$GUEST_INDEX" = 0 ]; then
  step pull-ahead-again "$S" net-options "$LOCAL" "$PEER" --on-congestion=pull-ahead --congestion-fill=1M
  step write-8m-c dd if=/dev/urandom of=/dev/drbd0 bs=1M count=8 seek=2 oflag=direct status=none
  step went-ahead-c wait_kernel_log 2 30 'conn\( Connected -> Ahead \)'
  step resync-as-source-c wait_kernel_log 2 60 'conn\( Ahead -> SyncSource \)'
else
  step c-went-behind wait_kernel_log 1 60 'conn\( Connected -> Behind \) disk\( UpToDate -> Outdated \)'
  step c-resync-as-target wait_kernel_log 1 60 'conn\( Behind -> SyncTarget \)'
fi
step synced-after-ahead-c wait_synced 120 || { dmesg | grep drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0

down_and_compare
step rmmod rmmod drbd
[ "$GUEST_INDEX" = 1 ] && step slow-disk-gone dm_remove slow
step kernel-log-clean dmesg_clean
finish
