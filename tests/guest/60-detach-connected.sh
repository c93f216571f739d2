#!/bin/bash
# `detach` of the Secondary's disk while connected: as 8.4's after_state_ch
# does, the peer is told at once (our disk Failed, then Diskless), so the
# Primary makes a new current UUID and marks what it writes from then on;
# after a re-attach the Secondary resyncs exactly that as SyncTarget and
# both data areas end equal. (Before the state engine sent it, an admin
# detach left the Primary believing the peer UpToDate.) Replicated writes
# while the Primary has a disk write no activity-log transaction on the
# Secondary (8.4). Then the Primary detaches its own disk and writes on:
# the Secondary holds the only copy, so those writes pass its activity log
# and are marked out of sync for the Primary (8.4's receive_Data with
# pdsk < D_INCONSISTENT). As Secondary it attaches while connected as 8.4
# does: Negotiating, the sync handshake with the peer, and the 4 MiB it
# missed resync to it as SyncTarget without a reconnect (a disk smaller
# than the device is refused, and a disk with unrelated data is refused by
# the sync handshake and goes again, the connection up). Last, the disk
# replacement under a running application: guest 0, Primary again,
# detaches, and attaches while fio writes 4 KiB blocks at random and reads
# each back to verify it (before, during and after the attach): the writes
# it sent the peer alone reach the peer before the attach does, it becomes
# SyncTarget as Primary, fio finds every block it wrote, the connection
# stays up, and the data areas end equal.
# guests: 2
# disks: 32M 8M 32M
# timeout: 300
# budget: 150
set -uo pipefail
. "$(dirname "$0")/lib.sh"

MiB=$((1 << 20))
two_rdrbd_nodes /dev/vda
# ping-timeout 2 s: the resyncs on the debug kernel, with another test
# running beside this one, can keep a PingAck past 8.4's default 0.5 s.
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

# resynced_what_was_missed: the last resync as SyncTarget covered the
# 4 MiB written while this node was diskless, not the whole disk.
resynced_what_was_missed() {
  local kib
  kib=$(dmesg | grep -o 'Began resync as SyncTarget (will sync [0-9]* KB' | tail -1 | grep -o '[0-9]* KB' | cut -d' ' -f1)
  echo "resynced ${kib:-no} KB"
  [ -n "$kib" ] && [ "$kib" -ge 4096 ] && [ "$kib" -le 8192 ]
}

# stayed_connected LINE: no connection drop in the kernel log after its
# line LINE (from any state).
stayed_connected() {
  ! dmesg | tail -n +$(($1 + 1)) | grep -E 'conn\( [A-Za-z]+ -> (TearDown|NetworkFailure|ProtocolError|Disconnecting|Timeout|BrokenPipe)'
}

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  step write-a dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 oflag=direct status=none
  share_put written-a 1
  share_get detached 120 > /dev/null || die "guest 1 never detached"
  step peer-diskless wait_ds UpToDate/Diskless 10
  step new-current-uuid sh -c "dmesg | grep -q \"new current UUID: the peer's disk is Failed\""
  step write-b dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=8 oflag=direct status=none
  step b-marked sh -c "[ \$(grep -o 'oos:[0-9]*' /proc/drbd | cut -d: -f2) -ge $((4 * 1024)) ]"
  share_put written-b 1
  step resynced wait_synced 90
  # Part 2: our own disk goes; the writes reach only guest 1.
  share_get checked-b 120 > /dev/null || die "guest 1 never checked"
  step self-detach "$S" detach 0
  step self-diskless wait_ds Diskless/UpToDate 10
  step write-c dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=16 oflag=direct status=none
  step secondary "$S" secondary 0
  share_put written-c 1
  share_get checked-c 120 > /dev/null || die "guest 1 never checked"
  # A disk smaller than the connected device is refused.
  step create-md-small create_md /dev/vdb
  step attach-too-small-refused expect_fail "$S" attach 0 /dev/vdb
  step still-diskless wait_ds Diskless/UpToDate 5
  # A disk with unrelated data: the sync handshake refuses it, it goes
  # again, the connection stays (8.4's receive_state).
  step create-md-unrelated create_md /dev/vdc
  step unrelated-uuid "$DRBDMETA" --force 0 v08 /dev/vdc internal set-gi D1E5E1F0D1E5E1F0:0:0:0:1:1
  seen=$(dmesg | wc -l)
  step attach-unrelated "$S" attach 0 /dev/vdc
  step unrelated-detached wait_ds Diskless/UpToDate 30
  step unrelated-refused sh -c "dmesg | tail -n +$((seen + 1)) | grep -E 'Unrelated data|refused the disk attached while connected'"
  step unrelated-kept-connection stayed_connected "$seen"
  seen=$(dmesg | wc -l)
  step attach-connected "$S" attach 0 /dev/vda
  step resynced-c wait_synced 90
  # The connection stayed up through the attach and its resync.
  step never-disconnected stayed_connected "$seen"
  # What we wrote while diskless (4 MiB), resynced from guest 1.
  step only-c-resynced resynced_what_was_missed
  # Part 3: a diskless Primary attaches under its application.
  step primary-again "$S" primary 0
  step self-detach-again "$S" detach 0
  step self-diskless-again wait_ds Diskless/UpToDate 10
  start_verifying_writer 3M
  ns_before=$(proc_field ns)
  step diskless-writes-flowing wait_proc_at_least ns $((ns_before + 1024))
  seen=$(dmesg | wc -l)
  step attach-as-primary "$S" attach 0 /dev/vda
  step still-primary sh -c "grep -A2 '^ *0:' /proc/drbd | grep 'ro:Primary/Secondary'"
  wait "$FIO_PID"; fio_rc=$?
  verifying_writer_summary
  step fio-verified-across-attach test "$fio_rc" = 0
  step resynced-under-primary wait_synced 120
  step primary-never-disconnected stayed_connected "$seen"
  step resync-as-primary-target sh -c "dmesg | tail -n +$((seen + 1)) | grep 'Began resync as SyncTarget'"
  step secondary-at-last "$S" secondary 0
  share_put replaced 1
else
  AL0=$(proc_field al)
  share_get written-a 120 > /dev/null || die "guest 0 never wrote"
  al_unchanged() { local al; al=$(proc_field al); echo "al: $AL0 before, $al after"; [ -n "$al" ] && [ "$al" = "$AL0" ]; }
  step no-al-for-replicated-writes al_unchanged
  step detach "$S" detach 0
  step diskless wait_ds Diskless/UpToDate 10
  share_put detached 1
  share_get written-b 120 > /dev/null || die "guest 0 never wrote again"
  step reattach reattach_rdrbd /dev/vda --ping-timeout=20 --socket-check-timeout=5
  step resynced wait_synced 90
  # What guest 0 wrote while we were diskless (4 MiB), not the whole disk.
  step only-b-resynced resynced_what_was_missed
  AL1=$(proc_field al)
  share_put checked-b 1
  share_get written-c 120 > /dev/null || die "guest 0 never wrote while diskless"
  al_grew() { local al; al=$(proc_field al); echo "al: $AL1 before, $al after"; [ -n "$al" ] && [ "$al" -gt "$AL1" ]; }
  step al-for-diskless-primary al_grew
  step c-marked sh -c "[ \$(grep -o 'oos:[0-9]*' /proc/drbd | cut -d: -f2) -ge $((4 * 1024)) ]"
  share_put checked-c 1
  step resynced-c wait_synced 90
  step peer-attach-aborted sh -c "dmesg | grep 'Disk attach process on the peer node was aborted'"
  share_get replaced 300 > /dev/null || die "guest 0 never replaced its disk"
  step resynced-replaced wait_synced 30
fi
barrier done || die "barrier done"
down_with_equal_data
finish
