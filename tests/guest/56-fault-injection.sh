#!/bin/bash
# rdrbd's fault injection (8.4's module parameters enable_faults,
# fault_rate, fault_devs, fault_count; issue #12):
# 1. Data write and read faults at 5 % on the Primary (guest 0,
#    on-io-error pass_on) during fio with verification: fio sees no error
#    and no wrong data (failed writes are on the peer, failed reads are
#    retried there), the disk becomes Inconsistent, its bitmap marks the
#    failed blocks, fault_count counts them; with the faults off a
#    reconnect resyncs guest 0 and both are UpToDate.
# 2. A metadata write fault on the Secondary (guest 1, fault_devs naming
#    its minor): replicated writes pass no activity log there while the
#    Primary has a disk (8.4), so a new al-extents (written at once) makes
#    the metadata write that fails; it detaches (metadata errors detach
#    under every policy) while guest 0 writes; attached again it resyncs.
# The data areas of both backing disks end equal.
# guests: 2
# disks: 32M
# timeout: 900
# budget: 150
set -uo pipefail
. "$(dirname "$0")/lib.sh"

P=/sys/module/drbd/parameters
two_rdrbd_nodes
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1
# faults MASK RATE [DEVS]: set the fault injection parameters.
faults() { echo "${3:-0}" > $P/fault_devs && echo "$2" > $P/fault_rate && echo "$1" > $P/enable_faults; }

# --- 1. data faults on the Primary under fio verify ------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step pass-on "$S" disk-options 0 --on-io-error=pass_on
  step primary "$S" primary 0
  # Bits 4 and 5: data write, data read.
  step faults-on faults 48 5
  step fio-verify fio --name=t --filename=/dev/drbd0 --size=4M --rw=randwrite --bs=4k \
    --verify=crc32c --ioengine=libaio --iodepth=16 --direct=1 --verify_fatal=1
  step faults-off faults 0 0
  step faults-counted sh -c "cat $P/fault_count; [ \$(cat $P/fault_count) -gt 0 ]"
  step simulated-logged sh -c "dmesg | grep -q 'Simulating Data write failure'"
  step inconsistent wait_ds Inconsistent/UpToDate 5
  step failed-blocks-marked sh -c "[ \$(grep -o 'oos:[0-9]*' /proc/drbd | cut -d: -f2) -gt 0 ]"
  step secondary "$S" secondary 0
  step disconnect "$S" disconnect "$LOCAL" "$PEER"
  step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
fi
step resynced-1 wait_synced 120 || exit 1
[ "$GUEST_INDEX" = 0 ] && step sync-target-1 sh -c "dmesg | grep -q 'Began resync as SyncTarget'"
barrier resynced-1 || die "barrier resynced-1"

# --- 2. a metadata write fault on the Secondary detaches it --------------------
if [ "$GUEST_INDEX" = 1 ]; then
  # Bit 0: metadata write; on minor 0 only (fault_devs bit 0).
  step md-faults-on faults 1 100 1
  share_put armed 1
  # The new activity log's transactions hit the fault (the command may
  # report the failure or not: the detach is what counts).
  "$S" disk-options 0 --al-extents=127 || true
else
  share_get armed 120 > /dev/null || die "guest 1 never armed its faults"
  step primary-2 "$S" primary 0
  step write-cold-extent dd if=/dev/urandom of=/dev/drbd0 bs=1M seek=28 count=1 oflag=direct status=none
  step peer-detached wait_ds UpToDate/Diskless 30
  step write-alone dd if=/dev/urandom of=/dev/drbd0 bs=1M seek=20 count=1 oflag=direct status=none
  step secondary-2 "$S" secondary 0
fi
barrier peer-detached || die "barrier peer-detached"
if [ "$GUEST_INDEX" = 1 ]; then
  step detached wait_ds Diskless/UpToDate 10
  step md-failure-logged sh -c "dmesg | grep -q 'local meta data I/O error'"
  step md-faults-off faults 0 0
  reattach_rdrbd /dev/vda --ping-timeout=20 --socket-check-timeout=5
fi
step resynced-2 wait_synced 120 || exit 1
barrier resynced-2 || die "barrier resynced-2"
down_with_equal_data
finish
