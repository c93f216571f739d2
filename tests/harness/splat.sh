#!/bin/bash
# Harness self-test: a splat in the kernel log fails an otherwise passing test
# (written through /dev/kmsg, so no kernel bug is needed); splat-like words in
# the script's own output must not.
# disks: none
# timeout: 120
. "$(dirname "$0")/../guest/lib.sh"
echo "WARNING: this userspace line is not a kernel splat"
pass before-splat
echo "<4>WARNING: CPU: 0 PID: 1 at rdrbd/selftest.c:1 fake_splat+0x0/0x10" > /dev/kmsg
finish
