#!/bin/bash
# Harness self-test: sub-results are counted one by one; with rc 0 and no
# splat, the test adds no line of its own. Two guests: names carry the guest.
# guests: 2
# disks: 16M
# timeout: 120
. "$(dirname "$0")/../guest/lib.sh"
pass one
step two true
step three false
[ "$(blockdev --getsize64 /dev/vda)" = $((16 << 20)) ] && pass disk-size || fail disk-size "wrong size"
barrier end
exit 0
