#!/bin/bash
# Harness self-test: three guests, one link per pair; every guest reaches
# every peer at the address the environment names.
# guests: 3
# disks: none
# timeout: 180
. "$(dirname "$0")/../guest/lib.sh"
[ "$PEERS" = "$(seq -s ' ' 0 2 | tr ' ' '\n' | grep -vx "$GUEST_INDEX" | paste -sd' ')" ] && pass peers || fail peers "PEERS=$PEERS"
barrier up
for j in $PEERS; do
  addr_var=PEER_ADDR_$j
  step "ping-guest$j" busybox ping -c 2 -W 3 "${!addr_var}"
done
barrier done
finish
