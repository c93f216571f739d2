#!/bin/bash
# Resync under sustained writes (issue #12, defect 5). Guest 0 (Primary)
# writes 4 KiB blocks at random into its first 4 MiB (one activity-log
# extent), 16 in flight, without a pause, while guest 1 invalidates its
# disk: a full resync with guest 0 as SyncSource. The source must not wait
# for the busy extent to go idle while new writes keep entering it (it holds
# the extent's writes off, lets those in flight drain, reads, lets them go
# on): the resync finishes while the writes go on. Afterwards nothing is
# out of sync on either node and the data areas of both backing disks are
# identical. The source's default c-min-rate (250 K/sec) makes the resync
# step aside for the writes (100 ms before each request while it runs
# faster than that), and it says so once. (Today's data path submits writes one at a time, which leaves
# the extent idle now and then: the source's old wait, for the extent only,
# also got through here, on both kernels. The test holds the promise for the
# asynchronous data path of issue #13, which keeps many writes in flight.)
# Then guest 0, still Primary, invalidates its own disk under fio writes
# that verify what they wrote (see below): a Primary SyncTarget, its data
# equal to the peer's at the end.
# guests: 2
# disks: 16M
# timeout: 600
# budget: 130
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0 || exit 1
  fio --name=busy --filename=/dev/drbd0 --rw=randwrite --bs=4k --size=4M --iodepth=16 \
    --ioengine=libaio --direct=1 --time_based --runtime=600 --output=/tmp/fio.txt > /dev/null 2>&1 &
  fio_pid=$!
  # 1 MiB sent to the peer: the writes are flowing.
  step writes-flowing wait_proc_at_least ns 1024
  share_put writing 1
  # Guest 1 says when its resync ended (or gave up waiting for it).
  share_get resync-waited 300 > /dev/null || die "guest 1 never reported the resync"
  step writes-went-on kill -0 "$fio_pid"
  kill "$fio_pid"; wait "$fio_pid" 2>/dev/null
  grep -E 'WRITE:|err=' /tmp/fio.txt | head -3
  step resync-was-source sh -c "dmesg | grep 'Began resync as SyncSource'"
  step resync-stepped-aside sh -c "dmesg | grep 'resync steps aside for application I/O'"
else
  share_get writing 300 > /dev/null || die "guest 0 never started writing"
  step invalidate "$S" invalidate 0
  step resync-under-writes wait_resync 1 120
  share_put resync-waited 1
fi
barrier writes-stopped || die "barrier writes-stopped"
step synced-after wait_synced 120
step nothing-out-of-sync test "$(proc_field oos)" = 0
barrier synced || die "barrier synced"

# --- A Primary SyncTarget: invalidate under the application ------------------
# Guest 0 stays Primary and invalidates its own disk while fio writes 4 KiB
# blocks at random into the first 8 MiB, 16 in flight, and reads each back
# to verify it: the resync requests and the application's writes meet all
# the time. A write into a range whose resync request is in flight waits
# for the reply (written after it, the older reply would overwrite it),
# and a request waits for the writes it overlaps; reads of blocks not yet
# resynced go to the peer.
if [ "$GUEST_INDEX" = 0 ]; then
  start_verifying_writer 8M
  ns_before=$(proc_field ns)
  step verify-writes-flowing wait_proc_at_least ns $((ns_before + 256))
  step invalidate-primary "$S" invalidate 0
  step primary-sync-target sh -c "grep -A2 '^ *0:' /proc/drbd | grep -E 'cs:(WFBitMapT|SyncTarget) ro:Primary/Secondary'"
  wait "$FIO_PID"; fio_rc=$?
  verifying_writer_summary
  step fio-verified-during-resync test "$fio_rc" = 0
  step resync-as-primary-target sh -c "dmesg | grep 'Began resync as SyncTarget'"
fi
step primary-resync-done wait_resync 2 300
step primary-resync-nothing-out-of-sync test "$(proc_field oos)" = 0
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0
barrier done || die "barrier done"
down_with_equal_data
finish
