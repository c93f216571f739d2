#!/bin/bash
# Send retries of stacked bios (issue #12, defect 1). Guest 0 (Primary)
# writes through a dm-linear mapping stacked on /dev/drbd0, so rdrbd
# replicates dm's cloned bios (which share their parent's bio_vec array:
# bi_vcnt 0). Guest 1's (Secondary) backing device is a dm-linear mapping
# over /dev/vda that it suspends for 5 s in the middle of the writes: its
# writes in flight reach their bound, its receiver stops reading the data
# socket (the stall lasts until guest 0 saw a send time out, at most
# 60 s), guest 0's
# sends of P_DATA payloads block (64 KiB socket buffers), time out after
# `timeout` (1 s) and are resumed where they stopped while ko-count (60)
# allows. A resumed send must continue in the bio's own data: guest 0 reads
# back what it wrote and logs the send timeouts (the retries happened),
# both stay Connected with nothing out of sync, and after `down` the data
# areas of both backing disks are identical.
# guests: 2
# disks: 64M
# timeout: 600
# budget: 180
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
S=$DRBDSETUP

# Guest 1 gets a backing device it can suspend; guest 0 uses /dev/vda.
BDEV=/dev/vda
if [ "$GUEST_INDEX" = 1 ]; then
  step lower-mapping dm_create lower "0 $(( $(size_of /dev/vda) / 512 )) linear /dev/vda 0" || exit 1
  BDEV=/dev/mapper/lower
fi
attach_rdrbd "$BDEV" || exit 1
barrier attached || die "peer never attached"

connect_pair \
  --ping-timeout=20 --socket-check-timeout=5 --timeout=10 --ko-count=60 --sndbuf-size=65536 --rcvbuf-size=65536 || exit 1
# Both disks are fresh (zeros): no initial sync needed.
skip_initial_sync || exit 1

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0 || exit 1
  step upper-mapping dm_create upper "0 $(( $(size_of /dev/drbd0) / 512 )) linear /dev/drbd0 0" || exit 1
  # The data comes from a 32 MiB tmpfs file written last page first: its
  # pages lie in descending physical order, so a 1 MiB O_DIRECT write from
  # a mapping of it carries one 4 KiB bio_vec per page (as page cache
  # writeback does), not a few physically contiguous runs, and a send the
  # timeout stopped resumes inside a later bio_vec. Written twice, at 0
  # and at 31 MiB, 1 MiB at a time.
  python3 -c '
import mmap, os
from concurrent.futures import ThreadPoolExecutor
n = 32 << 20
data = os.urandom(n)
fd = os.open("/tmp/buf", os.O_RDWR | os.O_CREAT)
for off in range(n - 4096, -1, -4096):
    os.pwrite(fd, data[off:off + 4096], off)
buf = mmap.mmap(fd, n)
dev = os.open("/dev/mapper/upper", os.O_WRONLY | os.O_DIRECT)
writers = 32
def write(base, first):
    for off in range(first, n, writers << 20):
        if os.pwrite(dev, memoryview(buf)[off:off + (1 << 20)], base + off) != 1 << 20:
            raise OSError("short write")
open("/tmp/writing", "w").close()
for base in (0, 31 << 20):
    # Thirty-two writers, one MiB each: all 32 MiB in flight at once, far
    # more than the Secondary takes in (8 MiB of writes in flight), so
    # that whatever it wrote before its disk was suspended, its receiver
    # stops reading and our sends block behind it.
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, [base] * writers, [k << 20 for k in range(writers)]))
' &
  writer=$!
  started() { local n=300; until [ -e /tmp/writing ]; do n=$((n - 1)); [ $n -gt 0 ] || return 1; sleep 0.2; done; }
  step writer-started started
  # Guest 1 keeps its disk suspended until a send here has timed out (on a
  # loaded host our writes can come so slowly that a fixed stall ends
  # before its receiver's bound stops it), at most 60 s.
  ( until dmesg | grep -q 'sock_sendmsg time expired'; do sleep 0.2; done; share_put send-timed-out 1 ) &
  timed_out_watch=$!
  share_put writing 1
  wait "$writer"
  rc=$?
  [ $rc = 0 ] && pass writes || fail writes "the writer exited with $rc"
  written_back() {
    local want got
    want=$(checksum_of /tmp/buf) got=$(checksum_range /dev/drbd0 $((31 << 20)) $((32 << 20)))
    echo "written $want, drbd0 at 31 MiB $got"
    [ -n "$want" ] && [ "$want" = "$got" ]
  }
  step read-back written_back
  step send-retried sh -c "dmesg | grep 'sock_sendmsg time expired'"
  kill "$timed_out_watch" 2>/dev/null
  step still-connected wait_cs Connected 5
  step in-sync test "$(proc_field oos)" = 0
  step upper-removed dm_remove upper
  step secondary "$S" secondary 0
else
  share_get writing 120 > /dev/null || die "guest 0 never started writing"
  # Stall once replicated writes are arriving (2 MiB received).
  step writes-arriving wait_proc_at_least nr 2048
  step suspend-lower dmsetup suspend --noudevsync lower
  # Nothing here may touch /proc/drbd meanwhile: reading it waits for the
  # metadata lock, which the receiver holds while its activity-log write
  # waits for the suspended device. At least 5 s, and until guest 0's
  # sends have timed out behind our stopped receiver (at most 60 s; the
  # check is guest 0's send-retried).
  sleep 5
  share_get send-timed-out 60 > /dev/null || echo "guest 0 saw no send time out within 60 s"
  step resume-lower dmsetup resume --noudevsync lower
fi
barrier written || die "barrier written"
step in-sync-after test "$(proc_field oos)" = 0
cat /proc/drbd
step down "$S" down r0
[ "$GUEST_INDEX" = 1 ] && step lower-removed dm_remove lower
n=$(md_data_bytes "$(size_of /dev/vda)")
share_data_sum "$n" || die "barrier summed"
step data-identical same_data "$n"
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
