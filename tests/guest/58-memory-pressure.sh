#!/bin/bash
# Replicated writes under memory pressure (issue #12). Guest 0 (384 MiB of
# RAM, Primary) swaps to /dev/drbd0: a process that fills more memory than
# the guest has free with a pattern and reads it back pushes pages out
# through rdrbd (each swap write replicated, protocol C, from the reclaim
# path: sockets and allocations on the write path must not recurse into
# I/O) and back in. The pattern must read back intact, swap must really
# have been used (and replicated), no kernel splat (lockdep: no lock the
# write path takes may be held while allocating with reclaim) or hang may
# occur; after swapoff both are connected and in sync again (under this
# pressure a guest under TCG may miss a ping) and both replicas' data
# areas are equal. Guest 1's backing device stalls for 3 s while the swap
# writes stream in: the Primary's unacknowledged writes pile up in the
# socket buffers (beyond what the write path may allocate for under
# reclaim: tracking a write must not need memory, or a write is sent but
# never marked in sync on one side only, found by CI: oos and differing
# data areas while Connected). /dev/drbd0 requires stable writes (found by
# CI too: without, a page swapped back in and changed while its write was
# in flight reached the two disks differently). On the fast kernel: under KASAN every page fault and
# replicated 4 KiB write is ~10x slower and the hog crawls for many
# minutes; lockdep's view of the reclaim path was checked on the debug
# kernel when it found the allocation under Replica::pending (session 7).
# guests: 2
# disks: 160M
# memory: 384M
# kernel: fast
# timeout: 600
# budget: 170
set -uo pipefail
. "$(dirname "$0")/lib.sh"

# Guest 1 gets a backing device it can suspend; guest 0 uses /dev/vda.
BDEV=/dev/vda
if [ "$GUEST_INDEX" = 1 ]; then
  step lower-mapping dm_create lower "0 $(( $(size_of /dev/vda) / 512 )) linear /dev/vda 0" || exit 1
  BDEV=/dev/mapper/lower
fi
two_rdrbd_nodes "$BDEV"
# Under memory pressure on the debugging kernel under TCG the Primary's
# threads stall for seconds: the pings get 10 s.
connect_pair --ping-timeout=100 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  # Pages under writeback stay unchanged (else a page swapped back in and
  # modified mid-write reaches the two disks differently).
  step stable-writes test "$(cat /sys/block/drbd0/queue/stable_writes)" = 1
  step mkswap mkswap /dev/drbd0
  # Swap over a network needs memory to receive the acks that complete
  # the swap writes (the NIC refills its receive ring with atomic
  # allocations): reserves as for swap over nbd or NFS, which rdrbd's
  # sockets may use (SOCK_MEMALLOC).
  step min-free-kbytes sh -c 'echo 16384 > /proc/sys/vm/min_free_kbytes'
  step swapon swapon /dev/drbd0
  cat /proc/swaps
  before=$(proc_field dw)
  # Free memory plus 32 MiB, one byte per page set to a function of the
  # page number, then all checked (pages come back in from swap).
  hog() {
    python3 -c '
import sys
avail = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemAvailable:")) * 1024
n = avail + (32 << 20)
buf = bytearray(n)
for off in range(0, n, 4096):
    buf[off] = (off >> 12) * 7 & 0xff
bad = sum(1 for off in range(0, n, 4096) if buf[off] != (off >> 12) * 7 & 0xff)
print(f"{n >> 20} MiB filled, {bad} pages wrong")
sys.exit(1 if bad else 0)
'
  }
  step pattern-intact hog
  after=$(proc_field dw)
  # Swapped out: written to drbd0 (KiB), and sent to the peer.
  step swapped-out sh -c "echo 'swapped out: $((after - before)) KiB'; [ $((after - before)) -ge 4096 ]"
  step replicated wait_proc_at_least ns 4096 5
  step swapoff swapoff /dev/drbd0
  # A connection the pressure broke (the peer's pings unanswered for 10 s
  # while this guest crawls under TCG) has come back and resynced.
  echo "connection losses: $(kernel_log_count 'connection lost')"
  step synced-after wait_synced 120
  step nothing-out-of-sync test "$(proc_field oos)" = 0
  step every-write-replicated sh -c '! dmesg | grep -E "not replicated|out of memory tracking"'
  step secondary "$S" secondary 0
else
  # 32 MiB into the swap-out, the disk stalls for 3 s (writes queue in
  # the block layer, the receiver waits, the Primary's sends pile up).
  step swapping wait_proc_at_least nr 32768 240
  step stall-disk dmsetup suspend --noudevsync lower
  sleep 3
  step resume-disk dmsetup resume --noudevsync lower
fi
barrier swapped || die "barrier swapped"
down_with_equal_data
finish
