#!/bin/bash
# The guest side of `make bench` (scripts/bench.sh): the same workloads on
# guest 0, one after the other, against
#   raw    its backing disk /dev/vda, no DRBD (the ceiling);
#   rdrbd  /dev/drbd0 of rdrbd, Primary, connected to rdrbd on guest 1;
#   C      /dev/drbd0 of the in-tree C DRBD 8.4, connected to the C driver;
# each replicated run with protocol C, then A. Workloads: 4 KiB random writes
# at queue depth 1 (IOPS and mean completion latency in µs), 8 and 32
# (IOPS), 4 KiB random reads at queue depth 32 (IOPS), 1 MiB sequential
# writes (queue depth 4, MB/s), an activity-log-bound workload (4 KiB random
# writes at queue depth 8 over all of a 1 GiB device, 256 AL extents, with
# al-extents 67, 8.4's least: most writes need an AL transaction first;
# protocol C, on the second disk /dev/vdb), a resync of 64 MiB written while
# disconnected (MB/s from the reconnection's handshake until both are in
# sync), and
# the full initial sync of the device (MB/s) with the default resync options
# and with a fixed rate of 400 MiB/s. First, the link itself: a TCP stream
# from guest 0 to guest 1 (MB/s) and its round trip (µs, 1-byte ping-pong).
# Guest 0 prints one line per figure:
#   BENCH <driver> <workload> <value> <unit>
# Figures from TCG guests only compare with each other, within one run.
# Performance is measured on the non-debug twin of the guest kernel: the
# debugging kernel's KASAN and lockdep cost 10-20x in data throughput.
# kernel: fast
# guests: 2
# disks: 256M 1G
# timeout: 1800
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

# link_figures: guest 1 serves, guest 0 measures the TCP link between them.
LINK_PORT=7795
link_figures() {
  if [ "$GUEST_INDEX" = 1 ]; then
    rm -f /tmp/link-listening
    python3 - "$LINK_PORT" <<'PY' &
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("", int(sys.argv[1]))); srv.listen(2); srv.settimeout(300)
open("/tmp/link-listening", "w").close()
for kind in ("stream", "pingpong"):
    c, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        if kind == "pingpong":
            c.sendall(b)
    c.close()
PY
    local n=100
    until [ -e /tmp/link-listening ] || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  fi
  barrier link-listening
  if [ "$GUEST_INDEX" = 0 ]; then
    python3 - "$PEER_ADDR" "$LINK_PORT" "$SECS" <<'PY'
import socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((addr, port)); buf = b"\0" * (1 << 20); sent = 0
t0 = time.monotonic()
while time.monotonic() - t0 < secs:
    s.sendall(buf); sent += len(buf)
s.shutdown(socket.SHUT_WR); s.recv(1); dt = time.monotonic() - t0; s.close()
print(f"BENCH link stream {sent / dt / 1e6:.1f} MB/s")
s = socket.create_connection((addr, port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n = 2000; t0 = time.monotonic()
for _ in range(n):
    s.sendall(b"x"); s.recv(1)
print(f"BENCH link rtt {(time.monotonic() - t0) / n * 1e6:.0f} us")
s.close()
PY
  fi
  barrier link-done
  wait
}

# full_sync DRIVER TAG [DISK-OPTIONS...]: both guests attached with fresh
# metadata: the initial full sync from guest 0 (primary --force) with the
# disk options given, timed; ends disconnected and down.
full_sync() {
  local driver=$1 tag=$2 t0 t1 kib; shift 2
  [ $# -gt 0 ] && { "$S" disk-options 0 "$@" || die "$driver: disk-options $*"; }
  "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 >/dev/null
  wait_cs Connected 90 >/dev/null || die "$driver: no connection"
  barrier "$driver-$tag-connected"
  t0=$EPOCHREALTIME
  [ "$GUEST_INDEX" = 0 ] && { "$S" primary 0 --force || die "$driver: primary --force"; }
  synced 900 || die "$driver: full sync did not finish"
  t1=$EPOCHREALTIME
  if [ "$GUEST_INDEX" = 0 ]; then
    kib=$(( $(blockdev --getsize64 /dev/drbd0) / 1024 ))
    echo "BENCH $driver fullsync-$tag $(python3 -c "print(round($kib * 1.024 / 1000 / ($t1 - $t0), 1))") MB/s"
    "$S" secondary 0
  fi
  barrier "$driver-$tag-synced"
  "$S" disconnect "$LOCAL" "$PEER" >/dev/null 2>&1
  "$S" down r0
  barrier "$driver-$tag-down"
}

# The waits below run while a resync is timed: they use bash builtins
# only. A TCG guest spends tens of milliseconds of CPU on starting a
# process (grep, sleep, date over 9p), and polling with them ten times a
# second took a third of both guests' CPU away from the resync it timed.
mkfifo /tmp/bench-pause 2>/dev/null
exec {PAUSE_FD}<>/tmp/bench-pause
# pause SECONDS: sleeps without starting a process (nothing is ever
# written to the fifo: the read times out).
pause() { read -r -t "$1" -u "$PAUSE_FD" _; }
# proc_drbd: /proc/drbd's text in PROC_DRBD.
proc_drbd() { PROC_DRBD=; read -r -d '' PROC_DRBD < /proc/drbd; }

# handshaken SECONDS: the connection is past its handshake (exchanging
# bitmaps, resyncing or in sync).
handshaken() {
  local n=$(( $1 * 20 ))
  while proc_drbd; [[ ! $PROC_DRBD =~ cs:(WFBitMap|SyncSource|SyncTarget|PausedSync|Connected) ]] && [ $n != 0 ]; do
    pause 0.05; n=$((n - 1))
  done
}

# synced SECONDS: connected and UpToDate on both sides.
synced() {
  local n=$(( $1 * 10 ))
  while proc_drbd; [[ ! $PROC_DRBD =~ cs:Connected\ .*\ ds:UpToDate/UpToDate ]]; do
    [ $n = 0 ] && return 1
    pause 0.1; n=$((n - 1))
  done
}

# replicated DRIVER TAG: both guests have DRIVER's r0 attached ($S is its
# drbdsetup); connect with each protocol, guest 0 Primary, the workloads,
# then (protocol C) a resync of 64 MiB; ends with r0 down.
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
        dd if=/dev/urandom of=/dev/drbd0 bs=1M count=64 seek=128 oflag=direct status=none
      fi
      barrier "$driver-changed"
      [ "$GUEST_INDEX" = 1 ] && "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20
      # From the handshake on: the connection's setup (both drivers wait
      # sock-check-timeo, here 2 s, before they use new sockets) is not
      # the resync.
      handshaken 60
      t0=$EPOCHREALTIME
      synced 600 || die "$driver: resync did not finish"
      t1=$EPOCHREALTIME
      [ "$GUEST_INDEX" = 0 ] && echo "BENCH $driver resync-64m $(python3 -c "print(round(64 * 1.048576 / ($t1 - $t0), 1))") MB/s"
    fi
    [ "$GUEST_INDEX" = 0 ] && "$S" secondary 0
    barrier "$driver-$proto-done"
    "$S" disconnect "$LOCAL" "$PEER" >/dev/null 2>&1
    barrier "$driver-$proto-disconnected"
  done
  "$S" down r0
}

# The activity-log-bound workload's fio arguments (raw /dev/vdb, then
# each driver's al_bound).
AL_FIO=(--rw=randwrite --bs=4k --iodepth=8 --size=1000M)

# Every block of the disks written once before any figure: the images
# are sparse files on the host, where the first write to a block costs an
# allocation that later ones do not. Without this the driver that ran
# first paid for it (rdrbd's first full sync wrote most of the target's
# disk for the first time; C DRBD's then rewrote allocated blocks).
for disk in /dev/vd?; do
  dd if=/dev/zero of="$disk" bs=1M count=$(( $(blockdev --getsize64 "$disk") >> 20 )) oflag=direct status=none ||
    die "prefill $disk"
done
barrier prefilled

link_figures
if [ "$GUEST_INDEX" = 0 ]; then
  workloads raw /dev/vda
  echo "BENCH raw randwrite-4k-al $(fio_figure iops --filename=/dev/vdb "${AL_FIO[@]}") IOPS"
fi
barrier raw-done

# fresh_r0 DRIVER: r0 again on the loaded DRIVER (rdrbd or C-drbd), with
# new metadata (so that the next connect starts a full sync).
fresh_r0() {
  local driver=$1 dev=${2:-/dev/vda} meta=$DRBDMETA; shift; shift || true
  local attach_args=("$dev")
  [ "$driver" = C-drbd ] && { meta=$DEBIAN_DRBDMETA; attach_args=("$dev" "$dev" internal); }
  "$S" new-resource r0 >/dev/null && "$S" new-minor r0 0 0 >/dev/null &&
    create_md "$dev" "$meta" >/dev/null && "$S" attach 0 "${attach_args[@]}" "$@" >/dev/null ||
    die "$driver: fresh r0"
}

# al_bound DRIVER: the activity-log-bound workload on /dev/vdb (1 GiB),
# al-extents 67, protocol C, from a cleared bitmap.
al_bound() {
  fresh_r0 "$1" /dev/vdb --al-extents=67
  "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 >/dev/null
  wait_cs Connected 90 >/dev/null || die "$1: no connection (AL-bound)"
  barrier "$1-al-connected"
  [ "$GUEST_INDEX" = 0 ] && "$S" new-current-uuid --clear-bitmap 0
  synced 60 || die "$1: not UpToDate (AL-bound)"
  if [ "$GUEST_INDEX" = 0 ]; then
    "$S" primary 0 >/dev/null || die "$1: primary (AL-bound)"
    echo "BENCH $1-protoC randwrite-4k-al $(fio_figure iops --filename=/dev/drbd0 "${AL_FIO[@]}") IOPS"
    "$S" secondary 0
  fi
  barrier "$1-al-written"
  "$S" disconnect "$LOCAL" "$PEER" >/dev/null 2>&1
  "$S" down r0
  barrier "$1-al-down"
}

# Each driver on both guests: the workloads, then the full syncs. The
# order alternates between the runs of `make bench` (build/bench-order,
# written by scripts/bench.sh): what the first driver pays for (a cold
# host cache, say) is not always the same driver's.
read -r -a ORDER < "$RDRBD_ROOT/build/bench-order" 2>/dev/null || ORDER=(rdrbd C-drbd)
echo "driver order: ${ORDER[*]}"
for driver in "${ORDER[@]}"; do
  if [ $driver = rdrbd ]; then
    attach_rdrbd >/dev/null || die "rdrbd attach"
  else
    attach_c_drbd >/dev/null || die "C attach"
  fi
  barrier "$driver-attached"
  replicated $driver
  al_bound $driver
  fresh_r0 $driver
  full_sync $driver default
  fresh_r0 $driver
  full_sync $driver fixed400m --c-plan-ahead=0 --resync-rate=400M
  rmmod drbd
  barrier "$driver-gone"
done
exit 0
