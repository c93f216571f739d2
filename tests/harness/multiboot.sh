#!/bin/bash
# Harness self-test: "# boots: 3" boots the guest three times with the same
# disk, BOOT_INDEX counting the boots. Boot 0 ends in a power cut (no exit
# code), boot 1 ends normally, boot 2 finds what both wrote; /results is per
# boot, /shared is common to all boots.
# boots: 3
# disks: 16M
# timeout: 120
. "$(dirname "$0")/../guest/lib.sh"
# marker BLOCK: the text in 4 KiB block BLOCK of /dev/vda (O_DIRECT).
marker() { dd if=/dev/vda bs=4096 count=1 skip="$1" iflag=direct status=none | tr -d '\0'; }
put_marker() { printf '%s' "$2" | dd of=/dev/vda bs=4096 seek="$1" conv=sync oflag=direct status=none; }

[ "$NBOOTS" = 3 ] && pass nboots || fail nboots "NBOOTS=$NBOOTS"
[ ! -e /results/power-cut ] && pass results-per-boot || fail results-per-boot "/results: $(ls /results)"
case $BOOT_INDEX in
  0)
    [ -z "$(marker 0)" ] && pass fresh-disk || fail fresh-disk "block 0: $(marker 0)"
    put_marker 0 boot0
    echo 0 > /shared/booted
    power_cut "selftest"
    ;;
  1)
    [ "$(marker 0)" = boot0 ] && pass disk-kept || fail disk-kept "block 0: $(marker 0)"
    [ "$(cat /shared/booted)" = 0 ] && pass shared-kept || fail shared-kept "/shared/booted: $(cat /shared/booted)"
    put_marker 1 boot1
    echo 1 > /shared/booted
    ;;
  2)
    [ "$(marker 0)$(marker 1)" = boot0boot1 ] && pass disk-kept || fail disk-kept "blocks 0, 1: $(marker 0) $(marker 1)"
    [ "$(cat /shared/booted)" = 1 ] && pass shared-kept || fail shared-kept "/shared/booted: $(cat /shared/booted)"
    ;;
  *) fail boot-index "BOOT_INDEX=$BOOT_INDEX" ;;
esac
finish
