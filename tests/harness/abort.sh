#!/bin/bash
# Harness self-test: when one guest's script fails, a peer waiting at a
# barrier gives up at once instead of waiting for its timeout.
# guests: 2
# disks: none
# timeout: 150
. "$(dirname "$0")/../guest/lib.sh"
if [ "$GUEST_INDEX" = 1 ]; then
  echo "guest 1 gives up"
  exit 3
fi
start=$(date +%s)
if barrier never-complete 120; then fail barrier-aborts "barrier passed without guest 1"; fi
took=$(( $(date +%s) - start ))
[ $took -lt 60 ] && pass barrier-aborts || fail barrier-aborts "barrier waited ${took}s"
finish
