#!/bin/bash
# rdrbd (guest 0) connects to the in-tree C DRBD 8.4 driver (guest 1,
# driven by drbd-utils' drbdsetup-84): both reach cs:Connected with
# Secondary/Secondary Inconsistent/Inconsistent on fresh metadata, stay
# connected across pings, and come apart cleanly.
# Runs alone under CHECK_JOBS (checks the keepalive with the default 500 ms ping-timeout).
# exclusive: yes
# guests: 2
# disks: 256M
# timeout: 600
# budget: 40
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"

attach_mixed_pair || exit 1

connected_view() {
  wait_cs Connected 90 || return 1
  grep -q 'ro:Secondary/Secondary ds:Inconsistent/Inconsistent C' /proc/drbd
}

# ping-int 2 s (default 10 s): several keepalive rounds fit in a few seconds.
step connect "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C --ping-int=2 || exit 1
step connected connected_view
barrier connected || die "barrier connected"
# Several ping intervals (ping-int 2 s): the keepalive must hold.
sleep 9
step still-connected connected_view
barrier checked || die "barrier checked"

if [ "$GUEST_INDEX" = 0 ]; then
  step disconnect "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"
  step standalone wait_cs StandAlone 10
else
  step peer-lost wait_cs WFConnection 60
fi
barrier disconnected || die "barrier disconnected"

step down "$S" down r0
if [ "$GUEST_INDEX" = 0 ]; then step rmmod rmmod drbd; else step rmmod rmmod drbd; fi
step kernel-log-clean dmesg_clean
finish
