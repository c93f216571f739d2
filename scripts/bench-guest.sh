#!/bin/bash
# The guest side of `make bench` (scripts/bench.sh): the same workloads on
# guest 0, one after the other, against
#   raw    its backing disk /dev/vda, no DRBD (the ceiling);
#   rdrbd  /dev/drbd0 of rdrbd, Primary, connected to rdrbd on guest 1;
#   C      /dev/drbd0 of the in-tree C DRBD 8.4, connected to the C driver;
# each replicated run with protocol C, then A. Workloads: 4 KiB random writes
# at queue depth 1 (IOPS and mean completion latency in µs), 8 and 32
# (IOPS), 4 KiB random reads at queue depth 32 (IOPS), 1 MiB sequential
# writes (queue depth 4, MB/s), and a resync of 32 MiB written while
# disconnected (MB/s from the time the peer needs to be back in sync).
# Guest 0 prints one line per figure:
#   BENCH <driver> <workload> <value> <unit>
# Figures from TCG guests only compare with each other, within one run.
# Performance is measured on the non-debug twin of the guest kernel: the
# debugging kernel's KASAN and lockdep cost 10-20x in data throughput.
# kernel: fast
# guests: 2
# disks: 256M
# timeout: 1200
set -uo pipefail
. "$RDRBD_ROOT/tests/guest/lib.sh"

LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
SECS=${BENCH_SECONDS:-10}

# fio_figure KINDS FIO-ARGS...: runs fio for $SECS s on guest 0; prints,
# space-separated, for each of the comma-separated KINDS: iops, mbs (MB/s)
# or lat (mean completion latency, µs), of the reads for --rw=randread and
# of the writes otherwise.
fio_figure() {
  local kinds=$1; shift
  fio --name=bench --direct=1 --ioengine=libaio --time_based --runtime="$SECS" \
      --size=64M --output-format=json "$@" 2>/dev/null |
    python3 -c '
import json, sys
job = json.load(sys.stdin)["jobs"][0]
d = job["read"] if job["read"]["io_bytes"] else job["write"]
fig = {"iops": round(d["iops"]), "mbs": round(d["bw_bytes"] / 1e6, 1), "lat": round(d["clat_ns"]["mean"] / 1e3)}
print(" ".join(str(fig[k]) for k in sys.argv[1].split(",")))' "$kinds"
}

# workloads DRIVER DEV: the fio figures for DEV.
workloads() {
  local qd1
  read -r -a qd1 <<<"$(fio_figure iops,lat --filename="$2" --rw=randwrite --bs=4k --iodepth=1)"
  echo "BENCH $1 randwrite-4k-qd1 ${qd1[0]:-0} IOPS"
  echo "BENCH $1 randwrite-4k-qd1-lat ${qd1[1]:-0} us"
  echo "BENCH $1 randwrite-4k-qd8 $(fio_figure iops --filename="$2" --rw=randwrite --bs=4k --iodepth=8) IOPS"
  echo "BENCH $1 randwrite-4k-qd32 $(fio_figure iops --filename="$2" --rw=randwrite --bs=4k --iodepth=32) IOPS"
  echo "BENCH $1 randread-4k-qd32 $(fio_figure iops --filename="$2" --rw=randread --bs=4k --iodepth=32) IOPS"
  echo "BENCH $1 seqwrite-1m-qd4 $(fio_figure mbs --filename="$2" --rw=write --bs=1M --iodepth=4) MB/s"
}

# synced SECONDS: connected and UpToDate on both sides.
synced() {
  local n=$(( $1 * 10 ))
  until grep -q 'cs:Connected .* ds:UpToDate/UpToDate' /proc/drbd || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep -q 'cs:Connected .* ds:UpToDate/UpToDate' /proc/drbd
}

# replicated DRIVER TAG: both guests have DRIVER's r0 attached ($S is its
# drbdsetup); connect with each protocol, guest 0 Primary, the workloads,
# then (protocol C) a resync of 32 MiB; ends with r0 down.
replicated() {
  local driver=$1 proto t0 t1
  for proto in C A; do
    "$S" connect r0 "$LOCAL" "$PEER" --protocol=$proto --ping-timeout=20 >/dev/null
    wait_cs Connected 90 >/dev/null || die "$driver: no connection"
    barrier "$driver-$proto-connected"
    [ "$GUEST_INDEX" = 0 ] && [ $proto = C ] && "$S" new-current-uuid --clear-bitmap 0
    synced 60 || die "$driver: not UpToDate"
    if [ "$GUEST_INDEX" = 0 ]; then
      "$S" primary 0 >/dev/null || die "$driver: primary"
      workloads "$driver-proto$proto" /dev/drbd0
    fi
    barrier "$driver-$proto-written"
    if [ $proto = C ]; then
      [ "$GUEST_INDEX" = 1 ] && "$S" disconnect "$LOCAL" "$PEER"
      barrier "$driver-disconnected"
      if [ "$GUEST_INDEX" = 0 ]; then
        wait_cs WFConnection 30 >/dev/null
        dd if=/dev/urandom of=/dev/drbd0 bs=1M count=32 seek=128 oflag=direct status=none
      fi
      barrier "$driver-changed"
      [ "$GUEST_INDEX" = 1 ] && "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20
      t0=$(date +%s.%N)
      synced 600 || die "$driver: resync did not finish"
      t1=$(date +%s.%N)
      [ "$GUEST_INDEX" = 0 ] && echo "BENCH $driver resync-32m $(python3 -c "print(round(32 * 1.048576 / ($t1 - $t0), 1))") MB/s"
    fi
    [ "$GUEST_INDEX" = 0 ] && "$S" secondary 0
    barrier "$driver-$proto-done"
    "$S" disconnect "$LOCAL" "$PEER" >/dev/null 2>&1
    barrier "$driver-$proto-disconnected"
  done
  "$S" down r0
}

if [ "$GUEST_INDEX" = 0 ]; then
  workloads raw /dev/vda
fi
barrier raw-done

# rdrbd on both guests.
attach_rdrbd >/dev/null || die "rdrbd attach"
barrier rdrbd-attached
replicated rdrbd
rmmod drbd
barrier rdrbd-gone

# The in-tree C driver on both guests.
attach_c_drbd >/dev/null || die "C attach"
barrier c-attached
replicated C-drbd
rmmod drbd
barrier done
exit 0
