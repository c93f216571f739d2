#!/bin/bash
# Crash recovery through the activity log. Boot 0: fresh metadata, attach,
# Primary, O_DIRECT writes to six distinct 4 MiB extents and four steady
# random-write loops (several cold extents at once: the submitter admits
# them in batches, one AL transaction each), then a power cut (sysrq b)
# while the loops still run,
# without detaching. Boot 1: the attach finds the unclean metadata and
# replays the activity log ("activity log replayed: ..." in the kernel log);
# every extent written is out of sync in /proc/drbd (oos >= 4 MiB per
# extent) and, after detach, in Debian's `drbdmeta dump-md` (all 1024 bits of
# each extent); the data written before the cut is there; a second attach is
# clean (no replay). Then `al-updates no` (MDF_AL_DISABLED): Primary again,
# a write, a second power cut. Boot 2: a crashed Primary without activity
# log assumes every block out of sync ("Assuming that all blocks are out of
# sync (aka FullSync)", oos = the whole device), as 8.4's attach; a new
# al-extents applies at once (the superblock has it after detach).
# boots: 3
# guests: 1
# disks: 256M
# timeout: 900
# budget: 125
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
drbd_loaded && die "a drbd module is already loaded"
S=$DRBDSETUP
R=$(role_tool)   # drbdsetup with primary/secondary (see lib.sh)
DEV=/dev/vda
MDBITS="python3 $(dirname "$0")/md-bits.py"
EXT=$((4 << 20))                 # one activity-log extent
FIXED_MB="0 40 80 120 160 200"   # extents 0 10 20 30 40 50
RANDOM_LIMIT=60                  # random writes in extents 0..59: all full 4 MiB
STATE=$SHARED/crash-replay       # what boot 0 wrote, for boot 1

step insmod load_drbd || exit 1
step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1

if [ "$BOOT_INDEX" = 0 ]; then
  mkdir -p "$STATE"
  step create-md create_md $DEV || exit 1
  step attach "$S" attach 0 $DEV || exit 1
  wait_for_dev /dev/drbd0
  step primary "$R" primary 0 --force || exit 1

  # 64 KiB of random data at the start of each fixed extent; its checksum is kept.
  fixed_writes() {
    local mb off
    : > "$STATE/fixed"
    for mb in $FIXED_MB; do
      off=$((mb << 20))
      dd if=/dev/urandom of=/tmp/blk bs=64k count=1 status=none || return 1
      dd if=/tmp/blk of=/dev/drbd0 bs=64k seek=$((off / 65536)) oflag=direct status=none || return 1
      echo "$((off / EXT)) $off $(checksum_of /tmp/blk)" >> "$STATE/fixed"
    done
    cat "$STATE/fixed"
  }
  step fixed-writes fixed_writes || exit 1

  # Random 4 KiB O_DIRECT writes; each extent is recorded after its write
  # completed (a write cut off in flight may or may not be in the log).
  # Four loops append to one file (short O_APPEND lines stay whole).
  random_writes() {
    local e b
    while :; do
      # Blocks 16.. only: the first 64 KiB of an extent may hold fixed data.
      e=$((RANDOM % RANDOM_LIMIT)) b=$((16 + RANDOM % 1008))
      dd if=/dev/urandom of=/dev/drbd0 bs=4k count=1 seek=$((e * 1024 + b)) oflag=direct status=none || exit 1
      echo "$e done" >> "$STATE/random"   # "done": a line cut short never counts
    done
  }
  : > "$STATE/random"
  loops=()
  for _ in 1 2 3 4; do
    random_writes &
    loops+=($!)
  done
  sleep 2
  if kill -0 "${loops[@]}" 2>/dev/null; then pass random-writes-running; else fail random-writes-running "a write loop died"; fi
  log "random writes so far: $(wc -l < "$STATE/random"), /proc/drbd: $(grep oos: /proc/drbd)"
  grep '^ *0:' /proc/drbd
  # Power cut with the loop still writing: no detach, no sync.
  power_cut "with the minor attached, Primary, and writes in flight"
fi

# --- boot 1: recovery -------------------------------------------------------------
if [ "$BOOT_INDEX" = 1 ]; then
[ -s "$STATE/fixed" ] || die "boot 0 left no $STATE/fixed"
# Touched extents: the fixed ones and every completed random write's.
completed_random() { grep -Ex '[0-9]+ done' "$STATE/random" | cut -d' ' -f1; }
touched=$( { awk '{print $1}' "$STATE/fixed"; completed_random; } | sort -nu)
ntouched=$(wc -w <<<"$touched")
log "boot 0 touched $ntouched extents: $(echo $touched) ($(completed_random | wc -l) random writes)"

step attach-after-crash "$S" attach 0 $DEV || exit 1
wait_for_dev /dev/drbd0

# "activity log replayed: N transactions, M active extents, K KiB marked out of sync"
REPLAY_RE='activity log replayed: ([0-9]+) transactions, ([0-9]+) active extents, ([0-9]+) KiB marked out of sync'
replay_line() {
  local line; line=$(dmesg | grep -E "$REPLAY_RE")
  echo "${line:-no replay line in the kernel log}"
  [ "$(grep -c . <<<"$line")" = 1 ] || return 1
  [[ $line =~ $REPLAY_RE ]] || return 1
  local tx=${BASH_REMATCH[1]} ext=${BASH_REMATCH[2]} kib=${BASH_REMATCH[3]}
  echo "transactions $tx, active extents $ext (>= $ntouched touched), $kib KiB (>= $((ntouched * EXT / 1024)))"
  [ "$tx" -ge 1 ] && [ "$ext" -ge "$ntouched" ] && [ "$kib" -ge $((ntouched * EXT / 1024)) ]
}
step replay-line replay_line

oos_covers_extents() {
  local oos; oos=$(proc_field oos)
  grep '^ *0:' -A1 /proc/drbd
  echo "oos ${oos:-?} KiB, at least $ntouched extents x 4096 KiB = $((ntouched * EXT / 1024)) KiB"
  [ -n "$oos" ] && [ "$oos" -ge $((ntouched * EXT / 1024)) ]
}
step oos-covers-extents oos_covers_extents
OOS=$(proc_field oos)

fixed_data_intact() {
  local e off sum got bad=0
  while read -r e off sum; do
    got=$(checksum_range /dev/drbd0 "$off" 65536)
    echo "extent $e at $off: $got (written $sum)"
    [ "$got" = "$sum" ] || bad=1
  done < "$STATE/fixed"
  return $bad
}
step primary-after-crash "$R" primary 0 --force
step fixed-data-intact fixed_data_intact
step secondary "$R" secondary 0
step detach "$S" detach 0 || exit 1

# Debian's drbdmeta reads what our kernel left: every touched extent's
# 1024 bits are set.
bitmap_marks_extents() {
  local dump per e bits bad=0
  dump=$(dump_md $DEV 2>&1) || { echo "$dump" | tail -n 20; return 1; }
  grep -E '^(la-size-sect|# bits-set)' <<<"$dump"
  per=$($MDBITS extents <<<"$dump") || return 1
  for e in $touched; do
    grep -qx "$e 1024" <<<"$per" || { echo "extent $e: $(awk -v e="$e" '$1 == e {print $2}' <<<"$per") bits set, want 1024"; bad=1; }
  done
  echo "extents with bits set: $(awk '{print $1}' <<<"$per" | tr '\n' ' ')"
  bits=$($MDBITS count <<<"$dump") || return 1
  [ $((bits * 4)) = "$OOS" ] || { echo "bits set: $bits x 4 KiB, but oos was $OOS KiB"; bad=1; }
  return $bad
}
step dump-md-marks-extents bitmap_marks_extents

step reattach "$S" attach 0 $DEV || exit 1
one_replay_only() { local n; n=$(dmesg | grep -c 'activity log replayed'); echo "replay lines: $n"; [ "$n" = 1 ]; }
step reattach-no-replay one_replay_only
oos_kept() { local o; o=$(proc_field oos); echo "oos ${o:-?} KiB, before detach $OOS KiB"; [ -n "$o" ] && [ "$o" = "$OOS" ]; }
step reattach-oos-kept oos_kept

# al-updates no: no activity-log transactions, the superblock says so.
step al-updates-no "$S" disk-options 0 --al-updates=no
shows_al_off() { "$S" show r0 | tee /tmp/show; grep -qE 'al-updates\s+no;' /tmp/show; }
step show-al-updates-no shows_al_off
step primary-no-al "$R" primary 0 --force
step write-no-al dd if=/dev/urandom of=/dev/drbd0 bs=4k count=16 seek=$((62 * 1024)) oflag=direct status=none
grep '^ *0:' -A1 /proc/drbd
power_cut "Primary with al-updates no"
fi

# --- boot 2: a crashed Primary without activity log -----------------------------
step attach-after-crash-no-al "$S" attach 0 $DEV || exit 1
step full-sync-assumed sh -c "dmesg | grep 'Assuming that all blocks are out of sync (aka FullSync)'"
all_out_of_sync() {
  local oos kib; oos=$(proc_field oos) kib=$(( $(size_of /dev/drbd0) / 1024 ))
  echo "oos ${oos:-?} KiB of $kib KiB"
  [ -n "$oos" ] && [ "$oos" = "$kib" ]
}
step all-out-of-sync all_out_of_sync
# al-extents changes at once (8.4's disk-options shrinks and resizes the
# log once no extent is in use); writes to 60 extents use the new slots.
step al-extents-live "$S" disk-options 0 --al-extents=67
step al-extents-not-deferred sh -c "! dmesg | grep 'applies from the next attach'"
step primary-al-extents "$R" primary 0 --force
spread_writes() {
  local e
  for e in $(seq 0 59); do
    dd if=/dev/zero of=/dev/drbd0 bs=4k count=1 seek=$((e * 1024 + 2)) oflag=direct status=none || return 1
  done
}
step writes-over-60-extents spread_writes
step secondary-al-extents "$R" secondary 0
step detach-again "$S" detach 0
al_extents_on_disk() { dump_md $DEV | grep -E '^# al-extents'; dump_md $DEV | grep -qx '# al-extents 67;'; }
step al-extents-on-disk al_extents_on_disk
step del-minor "$S" del-minor 0
step del-resource "$S" del-resource r0
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
