#!/bin/bash
# Link faults during writes (issues #12, #13). Guest 0 (Primary) runs fio:
# 4 KiB random writes at queue depth 32, each pass verified by reading
# back, under protocol C and then, switched on the live connection
# (net-options), protocol A. Meanwhile guest 1 takes its network link down
# twice under each protocol
# (`ip link set down`: the virtual link drops every packet), long enough
# for both nodes to declare the connection lost, then up again: the nodes
# reconnect and resync what guest 0 wrote alone, while fio goes on. fio
# must see no error and no wrong data; at the end both are UpToDate with
# nothing out of sync and the data areas of both backing disks are equal:
# every acknowledged write is on both. With c-min-rate 0 the resyncs never
# step aside for fio's writes.
# guests: 2
# disks: 64M
# kernel: fast
# timeout: 600
# budget: 75
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
# Pings every second, answered within 1 s; a send blocked 1 s times out.
connect_pair --ping-int=1 --ping-timeout=10 --socket-check-timeout=5 --timeout=10 || exit 1
skip_initial_sync || exit 1
CUTS=4            # the first two under protocol C, the others under A

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  # No c-min-rate: the resyncs never step aside for the writes (with the
  # default they would; 53-resync-under-writes checks that).
  step no-c-min-rate "$S" disk-options 0 --c-min-rate=0
  # fio runs one after another until told to stop, each writing 16 MiB
  # in random order and verifying it.
  fio_loop() {
    local runs=0
    while [ ! -e /tmp/stop ]; do
      fio --name=t --filename=/dev/drbd0 --size=16M --rw=randwrite --bs=4k --iodepth=32 \
        --ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 > /tmp/fio.out 2>&1 ||
        { tail -30 /tmp/fio.out; echo "fio run $((runs + 1)) failed"; return 1; }
      runs=$((runs + 1))
    done
    grep -E 'write: IOPS=' /tmp/fio.out
    echo "$runs fio runs, each verified"
  }
  fio_loop > /tmp/fio-loop.out 2>&1 &
  fio_pid=$!
  share_put writing 1
  share_get protocol-a 300 > /dev/null || fail protocol-a "guest 1 never asked for protocol A"
  step protocol-a "$S" net-options "$LOCAL" "$PEER" --protocol=A
  share_put protocol-a-set 1
  share_get cuts-done 300 > /dev/null || fail cuts "guest 1 never finished its link cuts"
  # One more run of writes and its verification after the last resync.
  step resynced-under-writes wait_synced 120
  touch /tmp/stop
  wait "$fio_pid"
  rc=$?
  cat /tmp/fio-loop.out
  step fio-runs-clean test "$rc" = 0
  losses=$(kernel_log_count 'conn\( (Connected|SyncSource|SyncTarget) -> (NetworkFailure|Timeout|BrokenPipe) \)')
  step lost-each-time test "$losses" -ge "$CUTS"
  step never-stepped-aside sh -c "! dmesg | grep 'resync steps aside'"
  step secondary "$S" secondary 0
else
  share_get writing 120 > /dev/null || die "guest 0 never started writing"
  for i in $(seq 1 $CUTS); do
    step "writes-arriving-$i" wait_proc_at_least nr $((i * 2048))
    step "link-down-$i" ip link set "$PEER_IF" down
    lost() { [ "$(proc_field cs)" != Connected ] && [ "$(proc_field cs)" != SyncTarget ]; }
    n=300; until lost || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
    step "connection-lost-$i" lost
    sleep 2
    step "link-up-$i" ip link set "$PEER_IF" up
    step "reconnected-$i" wait_cs Connected 120
    if [ "$i" = 2 ]; then
      share_put protocol-a 1
      share_get protocol-a-set 120 > /dev/null || die "guest 0 never switched to protocol A"
      step protocol-a-in-force sh -c "grep -q ' A r' /proc/drbd || { cat /proc/drbd; false; }"
    fi
  done
  share_put cuts-done 1
fi
barrier fio-done || die "barrier fio-done"
step in-sync wait_synced 120
step nothing-out-of-sync test "$(proc_field oos)" = 0
down_with_equal_data
finish
