#!/bin/bash
# Our drbd.ko loads and unloads 50 times; /proc/drbd shows the 8.4 version
# line while loaded. Leaks and warnings show up as splats (checked by the host)
# or as a loose drop in available memory.
# guests: 1
# disks: none
# timeout: 600
# budget: 85
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ -e "$DRBD_KO" ] || { fail build-artifacts "missing $DRBD_KO"; exit 1; }
drbd_loaded && die "a drbd module is already loaded"

mem_avail_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
slabinfo() { [ -r /proc/slabinfo ] && grep -E 'kmalloc|drbd' /proc/slabinfo | awk '{print $1, $2}'; }

# Warm up once (first load pulls in dependencies, fills caches), then measure.
step first-load load_drbd || exit 1
version_line() {
  local line; line=$(head -n 1 /proc/drbd) || return 1
  echo "$line"
  [ "$line" = "version: 8.4.11 (api:1/proto:86-101)" ]
}
step version-line version_line
step first-unload rmmod drbd || exit 1
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
avail0=$(mem_avail_kb) slab0=$(slab_kb)
slabinfo > /tmp/slab.before || true

cycles=50 bad=""
for ((n = 1; n <= cycles; n++)); do
  load_drbd || { bad="insmod failed in cycle $n"; break; }
  IFS= read -r line < /proc/drbd 2>/dev/null || line="no /proc/drbd"
  [ "$line" = "version: 8.4.11 (api:1/proto:86-101)" ] || { bad="cycle $n: /proc/drbd: $line"; rmmod drbd; break; }
  rmmod drbd || { bad="rmmod failed in cycle $n"; break; }
  [ ! -e /proc/drbd ] || { bad="cycle $n: /proc/drbd still there after rmmod"; break; }
done
if [ -z "$bad" ]; then pass load-unload-$cycles; else fail load-unload-$cycles "$bad"; fi

sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
avail1=$(mem_avail_kb) slab1=$(slab_kb)
log "MemAvailable ${avail0} -> ${avail1} kB, Slab ${slab0} -> ${slab1} kB (KASAN's quarantine holds freed objects: loose limit)"
if slabinfo > /tmp/slab.after; then
  # "cache before -> after" (active objects) for caches that changed.
  awk 'NR == FNR { b[$1] = $2; next } b[$1] != $2 { printf "    %s %s -> %s\n", $1, b[$1], $2 }' \
    /tmp/slab.before /tmp/slab.after
fi
# 50 cycles losing more than 64 MiB means > 1.3 MiB per load: a real leak.
if [ $((avail0 - avail1)) -lt 65536 ]; then pass memory-stable; else fail memory-stable "MemAvailable dropped $(( (avail0 - avail1) / 1024 )) MiB"; fi

step no-leftovers bash -c '! grep -q "^drbd " /proc/modules && ! ls /dev/drbd* 2>/dev/null'
step kernel-log-clean dmesg_clean
finish
