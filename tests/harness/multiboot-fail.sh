#!/bin/bash
# Harness self-test: with several boots, a kernel splat in a boot that ends
# in a power cut still fails the test, and a power cut in the last boot is
# a failure (nothing would check what it left).
# boots: 2
# disks: none
# timeout: 120
. "$(dirname "$0")/../guest/lib.sh"
pass "reached-$BOOT_INDEX"
[ "$BOOT_INDEX" = 0 ] && echo "<4>WARNING: CPU: 0 PID: 1 at rdrbd/selftest.c:2 fake_multiboot_splat+0x0/0x10" > /dev/kmsg
power_cut "selftest"
