#!/bin/bash
# v08 metadata at attach, internal and external, checked against drbd-utils:
# - internal metadata made by Debian's drbdmeta and by ours, and external
#   metadata made by ours, flexible (all of /dev/vdb) and indexed (slot 1 of
#   /dev/vdc, slot 0 holding other metadata), are accepted; a fresh
#   create-md attaches Inconsistent with nothing out of sync; the exposed
#   size is the data area (all of the backing device with external
#   metadata);
# - write / detach / re-attach round trips keep the data, and the bitmap
#   (oos in /proc/drbd, and Debian's `drbdmeta dump-md` after detach) marks
#   exactly the 4 KiB blocks written; a clean detach needs no AL replay;
#   external metadata goes to the meta device only (the backing device holds
#   exactly the data, the other slot of the indexed meta device is untouched);
# - two minors keep indexed metadata in two slots of one meta device at the
#   same time; a slot in use, a meta device claimed by another minor and a
#   meta device that is the backing device (external index) are refused;
# - bad metadata is refused with a clear message and nothing is written
#   (checksums of the whole backing and meta devices unchanged): none (zeroed), a
#   corrupted superblock, a wrong magic, a truncated device (a smaller loop
#   view of a disk with metadata), an external meta device too small for
#   its kind (flexible under 1 MiB, indexed slot beyond its end);
# - the in-tree C DRBD attaches the flexible external metadata we left and
#   sees the same data.
# Disks: /dev/vda (160 MiB) for the round trips: more than the 128 MiB one
# 4 KiB bitmap page covers, so that a write crosses a bitmap page; /dev/vdb
# (16 MiB) flexible external metadata; /dev/vdc (320 MiB) two 128 MiB slots
# of indexed metadata and not a third; /dev/vdd (32 MiB) for the refusals
# and the C driver's part, small because each refusal reads every device it
# names twice (checksums on the debug kernel run at ~40 MB/s).
# guests: 1
# disks: 160M 16M 320M 32M
# timeout: 1500
# budget: 300
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
drbd_loaded && die "a drbd module is already loaded"
S=$DRBDSETUP
R=$(role_tool)   # drbdsetup with primary/secondary (see lib.sh)
DEV=/dev/vda
MDBITS="python3 $(dirname "$0")/md-bits.py"
if [ "$DRBDMETA" = "$DEBIAN_DRBDMETA" ]; then
  # TODO: drop once build/out/bin/drbdmeta is always built (make tools).
  log "our drbdmeta is not built ($OUR_DRBDMETA): only Debian's creates metadata"
fi

step insmod load_drbd || exit 1
step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1

SIZE=$(size_of $DEV)
DATA=$(md_data_bytes "$SIZE")
SB=$(md_sb_offset $DEV)
log "$DEV: $SIZE bytes, data area $DATA bytes, superblock at $SB"

replays() { dmesg | grep -c 'activity log replayed'; }

# write_at OFFSET LENGTH: random data to /dev/drbd0 (O_DIRECT, 4 KiB-aligned).
WRITES=()
write_at() {
  dd if=/dev/urandom of=/dev/drbd0 bs="$2" count=1 seek="$1" oflag=direct,seek_bytes status=none || return 1
  WRITES+=("$1 $2")
}

# expected_ranges: the bitmap bits (4 KiB each) the writes so far touched,
# as merged "FIRST LAST" runs (the format of md-bits.py ranges). Pure bash:
# a python3 start costs 2 s on the debug kernel, and this runs 25 times.
expected_runs() {
  local w f l i n=0
  RUN_FIRST=() RUN_LAST=()
  local -a first=() last=()
  for w in "${WRITES[@]}"; do   # insertion sort by first bit
    f=$(( ${w% *} / 4096 )) l=$(( (${w% *} + ${w#* } - 1) / 4096 ))
    for ((i = n; i > 0 && first[i - 1] > f; i--)); do
      first[i]=${first[i - 1]} last[i]=${last[i - 1]}
    done
    first[i]=$f last[i]=$l n=$((n + 1))
  done
  n=0
  for ((i = 0; i < ${#first[@]}; i++)); do
    if ((n > 0 && first[i] <= RUN_LAST[n - 1] + 1)); then
      ((last[i] > RUN_LAST[n - 1])) && RUN_LAST[n - 1]=${last[i]}
    else
      RUN_FIRST[n]=${first[i]} RUN_LAST[n]=${last[i]} n=$((n + 1))
    fi
  done
}
expected_ranges() {
  local i; expected_runs
  for ((i = 0; i < ${#RUN_FIRST[@]}; i++)); do echo "${RUN_FIRST[i]} ${RUN_LAST[i]}"; done
}
expected_oos_kib() {
  local i n=0; expected_runs
  for ((i = 0; i < ${#RUN_FIRST[@]}; i++)); do n=$((n + RUN_LAST[i] - RUN_FIRST[i] + 1)); done
  echo $((n * 4))
}

# same_sums WHAT1 SUM1 WHAT2 SUM2: two non-empty, equal checksums (or counts).
same_sums() {
  echo "$1: ${2:-<read failed>}, $3: ${4:-<read failed>}"
  [ -n "$2" ] && [ "$2" = "$4" ]
}
disk_state_is() { grep '^ *0:' /proc/drbd; [ "$(proc_field ds)" = "$1" ]; }
size_is_data_area() {
  local got; got=$(size_of /dev/drbd0)
  echo "/dev/drbd0 $got bytes, data area $DATA bytes"
  [ "$got" = "$DATA" ]
}

# oos_is KIB: /proc/drbd shows KIB out of sync.
oos_is() {
  local got; got=$(proc_field oos)
  echo "oos $got KiB, expected $1 KiB"
  [ "$got" = "$1" ]
}

# The metadata the round trips use (set by use_md): META is the meta device
# ($DEV for internal), INDEX drbdmeta's index word, ATTACH what follows the
# minor in `drbdsetup attach`, DATA the size /dev/drbd0 must have.
use_md() {
  META=$1 INDEX=$2
  case $INDEX in
    internal) ATTACH=($DEV); DATA=$(md_data_bytes "$SIZE") ;;
    flex-external) ATTACH=($DEV "$META" flexible); DATA=$SIZE ;;
    *) ATTACH=($DEV "$META" "$INDEX"); DATA=$SIZE ;;
  esac
}
# create_md_on TOOL: fresh metadata of the current kind (use_md).
create_md_on() { "$1" --force 0 v08 "$META" "$INDEX" create-md; }

# bitmap_matches: Debian's dump-md (after detach) shows exactly the written
# blocks, for the whole data area (la-size-sect).
bitmap_matches() {
  local dump got want
  dump=$("$DEBIAN_DRBDMETA" --force 0 v08 "$META" "$INDEX" dump-md 2>&1) || { echo "$dump" | tail -n 20; return 1; }
  grep -E '^(la-size-sect|# bits-set)' <<<"$dump"
  grep -qx "la-size-sect $((DATA / 512));" <<<"$dump" || { echo "la-size-sect is not $((DATA / 512))"; return 1; }
  got=$($MDBITS ranges <<<"$dump") || return 1
  want=$(expected_ranges)
  [ "$got" = "$want" ] && return 0
  echo "bitmap runs differ: got / expected:"
  diff <(echo "$got") <(echo "$want") | head -n 20
  return 1
}

# --- round trips, metadata by each drbdmeta ------------------------------------
round_trips() {
  local tag=$1 tool=$2 sum0 sum1 oos n0
  WRITES=()
  n0=$(replays)
  step "create-md-$tag" create_md_on "$tool" || return 1
  step "attach-$tag" "$S" attach 0 "${ATTACH[@]}" || return 1
  wait_for_dev /dev/drbd0
  step "fresh-inconsistent-$tag" disk_state_is Inconsistent
  step "fresh-oos-zero-$tag" oos_is 0
  step "size-$tag" size_is_data_area
  step "primary-$tag" "$R" primary 0 --force || return 1

  # Round 1: blocks in several extents, one write across an extent border
  # (128 MiB), the last block of the data area.
  local w ok=0
  for w in "0 4096" "1048576 65536" "41943040 1048576" "$(( (128 << 20) - 4096 )) 8192" "$((DATA - 4096)) 4096"; do
    write_at $w || ok=1
  done
  [ $ok = 0 ] && pass "write-$tag" || fail "write-$tag" "a write to /dev/drbd0 failed"
  step "oos-after-write-$tag" oos_is "$(expected_oos_kib)"
  sum0=$(checksum_of /dev/drbd0)
  step "secondary-$tag" "$R" secondary 0
  step "detach-$tag" "$S" detach 0 || return 1
  step "dump-md-after-detach-$tag" bitmap_matches

  step "reattach-$tag" "$S" attach 0 "${ATTACH[@]}" || return 1
  step "reattach-oos-$tag" oos_is "$(expected_oos_kib)"
  step "primary-again-$tag" "$R" primary 0 --force || return 1
  sum1=$(checksum_of /dev/drbd0)
  step "data-intact-$tag" same_sums "before detach" "$sum0" "after re-attach" "$sum1"

  # Round 2: more blocks (one next to a round-1 block), then again.
  ok=0
  for w in "4096 4096" "$((150 << 20)) 12288"; do write_at $w || ok=1; done
  [ $ok = 0 ] && pass "write-again-$tag" || fail "write-again-$tag" "a write to /dev/drbd0 failed"
  step "oos-after-write-again-$tag" oos_is "$(expected_oos_kib)"
  sum0=$(checksum_of /dev/drbd0)
  step "secondary-again-$tag" "$R" secondary 0
  step "detach-again-$tag" "$S" detach 0 || return 1
  step "dump-md-again-$tag" bitmap_matches
  step "reattach-again-$tag" "$S" attach 0 "${ATTACH[@]}" || return 1
  step "reattach-again-oos-$tag" oos_is "$(expected_oos_kib)"
  step "primary-third-$tag" "$R" primary 0 --force
  sum1=$(checksum_of /dev/drbd0)
  step "data-intact-again-$tag" same_sums "before detach" "$sum0" "after re-attach" "$sum1"
  # What drbd0 shows is the data area at the start of the backing disk.
  step "data-area-on-disk-$tag" same_sums drbd0 "$sum1" "$DEV[0, $DATA)" "$(checksum_head $DEV "$DATA")"
  step "secondary-third-$tag" "$R" secondary 0
  step "detach-third-$tag" "$S" detach 0
  step "no-replay-after-clean-detach-$tag" same_sums "AL replays before" "$n0" "after" "$(replays)"
}

use_md $DEV internal
round_trips debian "$DEBIAN_DRBDMETA"
if [ -x "$OUR_DRBDMETA" ]; then
  round_trips ours "$OUR_DRBDMETA"
else
  fail create-md-ours "our drbdmeta is not built ($OUR_DRBDMETA; make tools)"
fi

# --- external metadata ------------------------------------------------------------
FLEX_META=/dev/vdb      # 16 MiB: flexible external metadata, all of it
INDEXED_META=/dev/vdc   # 320 MiB: two 128 MiB slots for indexed metadata
SLOT=$((128 << 20))
"$R" secondary 0 >/dev/null 2>&1; "$S" detach 0 >/dev/null 2>&1

use_md $FLEX_META flex-external
round_trips flex-external "$DRBDMETA"

# Slot 0 holds metadata too (as for another minor); slot 1 is ours, and
# nothing of slot 0 may change.
use_md $INDEXED_META 0
step create-md-slot0 create_md_on "$DRBDMETA"
SLOT0_SUM=$(checksum_head $INDEXED_META $SLOT)
use_md $INDEXED_META 1
round_trips indexed "$DRBDMETA"
step slot0-untouched same_sums "slot 0 before" "$SLOT0_SUM" "after" "$(checksum_head $INDEXED_META $SLOT)"
"$R" secondary 0 >/dev/null 2>&1; "$S" detach 0 >/dev/null 2>&1

# Two minors, two slots of one meta device, attached at the same time (the
# meta device is claimed with one holder shared by DRBD's minors).
two_minors() {
  local loop ok=0
  loop=$(losetup -f --show /tmp/backing1) || return 1
  echo "minor 1 backing device: $loop"
  use_md $INDEXED_META 0
  step create-md-two-0 create_md_on "$DRBDMETA" || ok=1
  step attach-two-0 "$S" attach 0 "${ATTACH[@]}" || ok=1
  step new-minor-1 "$S" new-minor r0 1 1 || ok=1
  step create-md-two-1 "$DRBDMETA" --force 1 v08 $INDEXED_META 1 create-md || ok=1
  step attach-two-1 "$S" attach 1 "$loop" $INDEXED_META 1 || ok=1
  grep -E '^ *[01]:' /proc/drbd
  [ "$(proc_field ds 0)" = Inconsistent ] && [ "$(proc_field ds 1)" = Inconsistent ] \
    && pass both-attached || { fail both-attached "$(grep -E '^ *[01]:' /proc/drbd)"; ok=1; }
  step detach-two-1 "$S" detach 1 || ok=1
  # Slot 0 is minor 0's: minor 1 may not take it too.
  step refuse-slot-in-use expect_fail "$S" attach 1 "$loop" $INDEXED_META 0 || ok=1
  # Flexible external metadata claims the meta device for one minor only.
  step refuse-claimed-meta expect_fail "$S" attach 1 "$loop" $INDEXED_META flexible || ok=1
  "$S" detach 1 >/dev/null 2>&1
  step del-minor-1 "$S" del-minor 1 || ok=1
  step detach-two-0 "$S" detach 0 || ok=1
  losetup -d "$loop"
  return $ok
}
truncate -s 64M /tmp/backing1
two_minors
rm -f /tmp/backing1
# Whatever a failed round left attached (detaching a diskless minor is a no-op).
"$R" secondary 0 >/dev/null 2>&1; "$S" detach 0 >/dev/null 2>&1

# --- bad metadata: refused, clearly, and nothing written -------------------------
# From here on the backing device is the small /dev/vdd (see the header).
DEV=/dev/vdd
SIZE=$(size_of $DEV)
SB=$(md_sb_offset $DEV)
log "$DEV: $SIZE bytes, superblock at $SB"
# refused NAME REGEX DEV... -- ATTACH ARGS: attach must fail with a message
# matching REGEX, and the listed devices must be byte-identical before/after.
refused() {
  local name=$1 re=$2 d out rc before=() after=() i; shift 2
  local devs=()
  while [ "$1" != -- ]; do devs+=("$1"); shift; done
  shift
  for d in "${devs[@]}"; do before+=("$(checksum_of "$d")"); done
  out=$("$S" attach 0 "$@" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed 's/^/    | /'
  for d in "${devs[@]}"; do after+=("$(checksum_of "$d")"); done
  if [ $rc = 0 ]; then
    fail "$name" "attach $* succeeded"
    "$S" detach 0 >/dev/null 2>&1
    return 1
  fi
  grep -Eiq -- "$re" <<<"$out" || { fail "$name" "exit $rc, but the message does not match /$re/"; return 1; }
  for i in "${!devs[@]}"; do
    [ -n "${before[$i]}" ] && [ "${before[$i]}" = "${after[$i]}" ] \
      || { fail "$name" "${devs[$i]} changed: checksum ${before[$i]} -> ${after[$i]}"; return 1; }
  done
  grep -q '^ *0: cs:' /proc/drbd && ! grep -Eq '^ *0: .*ds:(UpToDate|Inconsistent|Consistent|Outdated)' /proc/drbd \
    || { fail "$name" "minor 0 not diskless after the refused attach: $(grep '^ *0:' /proc/drbd)"; return 1; }
  pass "$name"
}
NO_MD='no valid meta data|meta data signature|create-md'

# Zeroed: no metadata at all (the whole metadata area and more).
step zero-md dd if=/dev/zero of=$DEV bs=1M seek=$(( SIZE / 1048576 - 4 )) count=4 oflag=direct status=none
refused refuse-no-md "$NO_MD" $DEV -- $DEV

# Corrupted superblock: random bytes over its 4 KiB.
step create-md-for-corrupt create_md $DEV
step corrupt-sb dd if=/dev/urandom of=$DEV bs=4096 seek=$((SB / 4096)) count=1 oflag=direct status=none
refused refuse-corrupt-sb "$NO_MD|meta data|invalid" $DEV -- $DEV

# Wrong magic: one byte of it flipped (magic at superblock offset 60).
flip_magic() {
  dd if=$DEV of=/tmp/sb bs=4096 skip=$((SB / 4096)) count=1 iflag=direct status=none || return 1
  python3 -c '
import sys
b = bytearray(open("/tmp/sb", "rb").read())
print("magic %s" % b[60:64].hex())
if b[60:64] != bytes.fromhex("8374026b"):
    sys.exit("not the v08 magic")
b[60] ^= 0xff
open("/tmp/sb", "wb").write(b)
print("now  %s" % b[60:64].hex())' || return 1
  dd if=/tmp/sb of=$DEV bs=4096 seek=$((SB / 4096)) count=1 oflag=direct status=none
}
step create-md-for-magic create_md $DEV
step flip-magic flip_magic
refused refuse-wrong-magic "$NO_MD|magic" $DEV -- $DEV

# Truncated: metadata for the whole disk, seen through a loop view of its
# first half, whose end holds no metadata.
step create-md-for-truncated create_md $DEV
LOOP=$(losetup --sizelimit $((SIZE / 2)) -f --show $DEV 2>&1)
if [ -b "$LOOP" ]; then
  pass loop-view
  refused refuse-truncated "$NO_MD|too small|size" $DEV -- "$LOOP"
  losetup -d "$LOOP"
else
  fail loop-view "losetup: $LOOP"
fi

# External metadata on the backing device itself, internal metadata on
# another device: the index does not fit the devices.
step create-md-for-external create_md $DEV
BAD_IDX='meta device other than the backing|combination invalid'
refused refuse-indexed-same-disk "$BAD_IDX" $DEV -- $DEV $DEV 0
refused refuse-flexible-same-disk "$BAD_IDX" $DEV -- $DEV $DEV flexible
refused refuse-internal-other-disk "must be the backing device|combination invalid" $DEV $FLEX_META -- $DEV $FLEX_META internal

# External meta devices too small for their kind: flexible needs 1 MiB
# (a 512 KiB loop device, with metadata created on it), indexed slot 1
# needs 256 MiB (/dev/vdb has 16 MiB), slot 2 384 MiB (/dev/vdc has
# 320 MiB).
TOO_SMALL='too small'
truncate -s 512K /tmp/small-meta
LOOP=$(losetup -f --show /tmp/small-meta 2>&1)
if [ -b "$LOOP" ]; then
  pass small-loop-device
  "$DRBDMETA" --force 0 v08 "$LOOP" flex-external create-md >/dev/null 2>&1 \
    || log "(drbdmeta would not create metadata on 512 KiB either)"
  refused refuse-flexible-too-small "$TOO_SMALL" $DEV "$LOOP" -- $DEV "$LOOP" flexible
  losetup -d "$LOOP"
else
  fail small-loop-device "losetup: $LOOP"
fi
rm -f /tmp/small-meta
refused refuse-indexed-too-small "$TOO_SMALL" $DEV $FLEX_META -- $DEV $FLEX_META 1
refused refuse-indexed-beyond-end "$TOO_SMALL" $DEV $INDEXED_META -- $DEV $INDEXED_META 2

# After all that, good metadata still attaches.
step attach-after-refusals "$S" attach 0 $DEV
step detach-after-refusals "$S" detach 0

# Flexible external metadata written by us, for the C driver to read below:
# fresh metadata, two writes, a clean detach. create-md zeroes only the
# bitmap a device the size of the meta device needs (drbdmeta does not know
# the backing device), so the bits of the earlier round trip beyond it are
# cleared first.
for_c_drbd() {
  use_md $FLEX_META flex-external
  WRITES=()
  step zero-meta-for-c dd if=/dev/zero of=$FLEX_META bs=1M count=1 oflag=direct status=none || return 1
  step create-md-for-c create_md_on "$DRBDMETA" || return 1
  step attach-for-c "$S" attach 0 "${ATTACH[@]}" || return 1
  step primary-for-c "$R" primary 0 --force || return 1
  # Not through step: write_at records the writes in this shell.
  if write_at 8192 8192 && write_at $((20 << 20)) 4096; then
    pass write-for-c
  else
    fail write-for-c "a write to /dev/drbd0 failed"; return 1
  fi
  FLEX_OOS=$(expected_oos_kib)
  step oos-for-c oos_is "$FLEX_OOS"
  step secondary-for-c "$R" secondary 0 || return 1
  step detach-for-c "$S" detach 0 || return 1
  FLEX_SUM=$(checksum_of $DEV)
}
FLEX_SUM=
for_c_drbd

step del-minor "$S" del-minor 0
step del-resource "$S" del-resource r0
step rmmod rmmod drbd

# --- the in-tree C DRBD reads our flexible external metadata ----------------------
c_drbd_reads_ours() {
  local c=/lib/drbd/drbdsetup-84 sum ok=0
  step c-modprobe modprobe drbd || return 1
  step c-new-resource $c new-resource r0 || return 1
  step c-new-minor $c new-minor r0 0 0 || return 1
  step c-attach-flexible $c attach 0 $DEV $FLEX_META flexible || return 1
  step c-size same_sums "C DRBD size" "$(size_of /dev/drbd0)" "backing size" "$SIZE" || ok=1
  step c-oos oos_is "$FLEX_OOS" || ok=1
  step c-primary $c primary 0 --force || ok=1
  sum=$(checksum_of /dev/drbd0)
  step c-same-data same_sums "rdrbd wrote" "$FLEX_SUM" "C DRBD reads" "$sum" || ok=1
  step c-secondary $c secondary 0
  step c-down $c down r0 || ok=1
  step c-rmmod rmmod drbd || ok=1
  return $ok
}
if [ -n "${FLEX_SUM:-}" ]; then
  c_drbd_reads_ours
else
  fail c-attach-flexible "no flexible external metadata written for it"
fi
step kernel-log-clean dmesg_clean
finish
