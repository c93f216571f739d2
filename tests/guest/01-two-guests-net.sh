#!/bin/bash
# Two guests reach each other over their point-to-point link, and barriers
# between them work.
# guests: 2
# disks: none
# timeout: 300
# budget: 40
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ "$NGUESTS" = 2 ] || die "needs 2 guests"
log "guest $GUEST_INDEX: $LOCAL_ADDR on $PEER_IF, peer $PEER_ADDR"
step link-configured bash -c "ip -4 addr show dev $PEER_IF | grep -q 'inet $LOCAL_ADDR/24'"

barrier up || die "peer never came up"
# The first packets may go out before the peer answered ARP: retry a little.
# (ping is busybox's: iputils is not installed on the host.)
step ping-peer bash -c "for n in 1 2 3 4 5; do busybox ping -c 3 -W 2 $PEER_ADDR && exit 0; sleep 1; done; exit 1"

# A barrier must really wait: guest 1 arrives late; guest 0 must not pass
# before guest 1 has written its marker.
if [ "$GUEST_INDEX" = 1 ]; then
  sleep 3
  echo late > "$SHARED/marker"
fi
barrier late || die "barrier late failed"
step barrier-waits test -e "$SHARED/marker"

# A repeated barrier name is a new barrier.
barrier late || die "second barrier late failed"
pass barrier-repeat

# Data over TCP between the guests, checked by md5: bash's /dev/tcp sends and
# closes (so the receiver sees EOF), busybox nc receives.
if [ "$GUEST_INDEX" = 0 ]; then
  dd if=/dev/urandom of=/tmp/blob bs=1M count=4 status=none
  share_put blob-md5 "$(md5sum < /tmp/blob)"
  barrier listening || die "barrier listening"
  step tcp-send bash -c "cat /tmp/blob > /dev/tcp/$PEER_ADDR/7788"
else
  (busybox nc -l -p 7788 > /tmp/blob) &
  nc_pid=$!
  sleep 0.5
  barrier listening || die "barrier listening"
  wait $nc_pid
  want=$(share_get blob-md5)
  step tcp-receive test "$(md5sum < /tmp/blob)" = "$want"
fi
barrier done
finish
