#!/bin/bash
# cram-hmac-alg peer authentication between rdrbd (guest 0) and the in-tree
# C DRBD (guest 1): with different shared secrets both sides refuse the peer
# ("Authentication of peer failed") and go StandAlone; with the same secret
# they authenticate ("Peer authenticated using 32 bytes HMAC") and connect.
# An algorithm the kernel lacks is refused at connect.
# ping-timeout 2 s: it shares the CPUs with another test.
# guests: 2
# disks: 64M
# timeout: 600
# budget: 40
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
if [ "$GUEST_INDEX" = 0 ]; then
  attach_rdrbd || exit 1
  expect_fail "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --cram-hmac-alg=nosuchdigest --shared-secret=x
  pass unknown-alg-refused
else
  attach_c_drbd || exit 1
fi
barrier attached || die "peer never attached"

LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
step connect-wrong-secret "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 --cram-hmac-alg=sha256 --shared-secret="secret-$GUEST_INDEX"
step refused wait_cs StandAlone 90
step auth-failed-logged sh -c "dmesg | grep 'Authentication of peer failed'"
barrier refused || die "barrier refused"
# The C side may still be retrying; start over on both.
"$S" disconnect "$LOCAL" "$PEER" >/dev/null 2>&1
barrier reset || die "barrier reset"
step connect-right-secret "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 --cram-hmac-alg=sha256 --shared-secret=the-same-secret
step connected wait_cs Connected 90
step authenticated sh -c "dmesg | grep 'Peer authenticated using 32 bytes HMAC'"
barrier connected || die "barrier connected"
step down "$S" down r0
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
