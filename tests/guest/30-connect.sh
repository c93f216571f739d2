#!/bin/bash
# Two rdrbd nodes connect (conn_connect, feature handshake, drbd_connected,
# sync handshake on fresh metadata: rule 10, no resync) and both show
# cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent; a
# graceful disconnect on one side (the peer logs no network error) brings
# both back, reconnect works, down is clean.
# ping-timeout 2 s: it shares the CPUs with another test (31 checks the
# keepalive with the default 500 ms).
# guests: 2
# disks: 256M
# timeout: 600
# budget: 30
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes

connect() { "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C --ping-timeout=20 --socket-check-timeout=5; }
connected_view() {
  wait_cs Connected 90 || return 1
  grep -q 'ro:Secondary/Secondary ds:Inconsistent/Inconsistent C' /proc/drbd
}
status_connected() {
  local out; out=$("$S" cstate 0 2>&1); echo "$out"
  [ "$out" = Connected ]
}

step connect connect || exit 1
step connected connected_view
step status-connected status_connected
barrier connected || die "barrier connected"

# Guest 0 disconnects: it goes StandAlone, the peer back to WFConnection.
if [ "$GUEST_INDEX" = 0 ]; then
  step disconnect "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"
  step standalone wait_cs StandAlone 10
else
  step peer-lost wait_cs WFConnection 60
  # A graceful disconnect (P_CONN_ST_CHG_REQ): no network error here.
  quiet_disconnect() {
    dmesg | grep -E 'peer is disconnecting' || return 1
    ! dmesg | grep -E 'socket: error|connection lost|PingAck did not arrive'
  }
  step peer-left-gracefully quiet_disconnect
fi
barrier disconnected || die "barrier disconnected"
[ "$GUEST_INDEX" = 0 ] && step reconnect connect
step reconnected connected_view
barrier reconnected || die "barrier reconnected"

step down "$S" down r0
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
