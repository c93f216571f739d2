#!/bin/bash
# Random and mutated DRBD generic netlink requests (valid templates with
# flipped bytes, truncated attributes, bad lengths, wrong nesting, huge
# minors, random commands) for a bounded time, as root and as an
# unprivileged user: every request is answered, unprivileged changes are
# refused with EPERM, the guest stays healthy (no kernel warning; the
# harness fails on any splat) and the module still works and unloads.
# guests: 1
# disks: 256M
# timeout: 600
# budget: 110
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
FUZZ=$RDRBD_ROOT/build/out/bin/drbd-nl-fuzz
[ -x "$FUZZ" ] || { fail build-artifacts "missing $FUZZ (make tools)"; exit 1; }
drbd_loaded && die "a drbd module is already loaded"
S=$DRBDSETUP

step insmod load_drbd || exit 1
# Something to find for the fuzzer's templates (resource fz0, minor 0).
step new-resource "$S" new-resource fz0
step new-minor "$S" new-minor fz0 0 0

step fuzz-root "$FUZZ" --seconds 40
# nobody has no capabilities: every changing command must fail with EPERM.
step fuzz-unprivileged setpriv --reuid=65534 --regid=65534 --clear-groups "$FUZZ" --seconds 20 --unprivileged

# The module still answers and works: a fresh resource attaches and
# serves I/O.
step status "$S" status
create_md /dev/vda > /dev/null 2>&1
step new-resource-after "$S" new-resource r0
step new-minor-after "$S" new-minor r0 7 0
step attach-after "$S" attach 7 /dev/vda
step primary-after "$(role_tool)" primary 7 --force
step io-after bash -c 'dd if=/dev/urandom of=/dev/drbd7 bs=64k count=16 oflag=direct status=none && dd if=/dev/drbd7 of=/dev/null bs=64k count=16 iflag=direct status=none'
step secondary-after "$(role_tool)" secondary 7
step down-after "$S" down r0
# rmmod tears down whatever the fuzzer left configured.
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
