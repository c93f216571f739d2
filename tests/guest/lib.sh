# Helpers for guest test scripts: source "$(dirname "$0")/lib.sh".
# Runs inside a guest booted by scripts/guest-run.py (see scripts/make-initramfs.sh
# for the environment: RDRBD_ROOT, GUEST_INDEX, NGUESTS, PEER_ADDR, ...).
#
# Sub-results are lines "RESULT: PASS name" / "RESULT: FAIL name message" on
# stdout; the host counts each one. A script that exits non-zero without any
# FAIL line counts as one failure; kernel splats fail the test regardless.

: "${RDRBD_ROOT:?not running in an rdrbd guest}"
DRBD_KO=${DRBD_KO:-$RDRBD_ROOT/build/out/drbd.ko}
DRBDSETUP=${DRBDSETUP:-$RDRBD_ROOT/build/out/bin/drbdsetup}
# Checksums of device contents (userspace/devsum: O_DIRECT, XXH3-128).
DEVSUM=$RDRBD_ROOT/build/out/bin/devsum
GUEST_INDEX=${GUEST_INDEX:-0}
NGUESTS=${NGUESTS:-1}
BOOT_INDEX=${BOOT_INDEX:-0}
NBOOTS=${NBOOTS:-1}
SHARED=${SHARED:-/shared}
RDRBD_FAILED=0

# Every process a test starts costs a quarter of a second or more on the
# debugging guest kernel (KASAN and lockdep in fork, exec and page faults,
# under TCG): the helpers below use bash builtins where a loop or every step
# would otherwise start one. Debian's bash-builtins has a loadable `sleep`
# (fractions of a second, no fork); without it the external one serves.
enable -f /usr/lib/bash/sleep sleep 2>/dev/null || true

log() { printf '[%(%T)T] %s\n' -1 "$*"; }

# indent_tail N PREFIX TEXT: the last N lines of TEXT, each after PREFIX.
indent_tail() {
  local lines start
  mapfile -t lines <<<"$3"
  start=$(( ${#lines[@]} > $1 ? ${#lines[@]} - $1 : 0 ))
  printf "$2%s\n" "${lines[@]:start}"
}

# pass NAME: report sub-result NAME as passed.
pass() { echo "RESULT: PASS $1"; }

# fail NAME MSG...: report sub-result NAME as failed; the script goes on (use
# `|| exit 1` or `die` where later steps make no sense).
fail() {
  local name=$1; shift
  echo "RESULT: FAIL $name $*"
  RDRBD_FAILED=1
}

# die MSG: stop the script here; counts as one failure if no FAIL was reported.
die() { echo "FATAL: $*"; exit 1; }

# finish: last line of a script; exit status says whether any sub-result failed.
finish() { exit "$RDRBD_FAILED"; }

# step NAME CMD...: run CMD; sub-result NAME passes if it exits 0. On failure
# the tail of its output goes into the log. Returns CMD's status.
step() {
  local name=$1 out rc; shift
  log "step $name: $*"
  out=$("$@" 2>&1) && rc=0 || rc=$?
  if [ $rc = 0 ]; then
    [ -z "$out" ] || indent_tail 20 '    ' "$out"
    pass "$name"
  else
    [ -z "$out" ] || indent_tail 30 '    ' "$out"
    fail "$name" "exit $rc: $*"
  fi
  return $rc
}

# expect_fail CMD...: CMD must fail. Prints its message (the tests check that
# errors are reported clearly). Returns 0 if CMD failed, 1 if it succeeded.
expect_fail() {
  local out rc
  out=$("$@" 2>&1) && rc=0 || rc=$?
  indent_tail 1000000 '    | ' "$out"
  if [ $rc = 0 ]; then
    echo "    expected failure, but succeeded: $*"
    return 1
  fi
  echo "    failed as expected (exit $rc): $*"
  return 0
}

# checksum_of DEV|FILE: checksum of the whole content (devsum). Block devices
# are read with O_DIRECT: each block device has its own page cache, so after
# writing through /dev/drbd0 a buffered read of /dev/vda may return stale
# pages. A read error prints nothing and returns 1 (so two failed reads never
# compare equal unless the caller ignores an empty result). devsum instead of
# `dd | md5sum`: four times faster on the debug kernel (tests/README.md).
checksum_of() { "$DEVSUM" "$1"; }

# size_of DEV: size in bytes. Block devices by sysfs, which needs no open: a
# DRBD Secondary cannot be opened at all (DRBD 8.4 drbd_open).
size_of() {
  local sys=/sys/class/block/$(basename "$(readlink -f "$1")")/size
  if [ -b "$1" ] && [ -r "$sys" ]; then echo $(( $(cat "$sys") * 512 )); else blockdev --getsize64 "$1"; fi
}

# barrier NAME [TIMEOUT]: wait until all NGUESTS guests reached NAME. Uses
# files in /shared (a 9p share without caching). Names may repeat: each use is
# numbered. Fails at once if a guest aborted (its script failed or its QEMU died).
declare -A RDRBD_BARRIER_COUNT
barrier() {
  local name=$1 timeout=${2:-300} n i deadline
  n=$(( ${RDRBD_BARRIER_COUNT[$name]:-0} + 1 ))
  RDRBD_BARRIER_COUNT[$name]=$n
  local tag="barrier.$name.$n"
  [ "$NBOOTS" = 1 ] || tag="barrier.boot$BOOT_INDEX.$name.$n"   # /shared outlives a boot
  touch "$SHARED/$tag.guest$GUEST_INDEX"
  deadline=$(( EPOCHSECONDS + timeout ))
  while :; do
    for ((i = 0; i < NGUESTS; i++)); do
      [ -e "$SHARED/$tag.guest$i" ] || break
    done
    [ $i = "$NGUESTS" ] && { log "barrier $name passed"; return 0; }
    if compgen -G "$SHARED/abort.*" > /dev/null; then
      echo "barrier $name: a peer aborted: $(cd "$SHARED" && ls abort.*)"
      return 1
    fi
    if [ "$EPOCHSECONDS" -ge "$deadline" ]; then
      echo "barrier $name: timed out after ${timeout}s waiting for guest $i"
      return 1
    fi
    sleep 0.2
  done
}

# share_put NAME VALUE / share_get NAME [TIMEOUT]: pass small values between
# guests (e.g. a checksum): share_get waits until the value exists.
share_put() { printf '%s\n' "$2" > "$SHARED/val.$1.tmp" && mv "$SHARED/val.$1.tmp" "$SHARED/val.$1"; }
share_get() {
  local deadline=$(( EPOCHSECONDS + ${2:-300} )) value
  until [ -e "$SHARED/val.$1" ]; do
    [ "$EPOCHSECONDS" -lt "$deadline" ] || { echo "share_get $1: timed out" >&2; return 1; }
    sleep 0.2
  done
  IFS= read -r value < "$SHARED/val.$1"
  printf '%s\n' "$value"
}

# dmesg_clean: no kernel splat so far (the host checks the whole log anyway;
# this attributes a splat to a sub-result).
dmesg_clean() {
  ! dmesg | grep -E 'BUG:|WARNING:|Oops|general protection fault|KASAN|UBSAN|possible (circular|recursive) locking|inconsistent lock state|Kernel panic|panicked at|Call Trace:'
}

# drbd_loaded: our module (or any drbd) is loaded.
drbd_loaded() { grep -q '^drbd ' /proc/modules; }

# need_artifacts: the module and drbdsetup are built; otherwise fail NAME and exit.
need_artifacts() {
  local f missing=0
  for f in "$DRBD_KO" "$DRBDSETUP" "$DEVSUM"; do
    [ -e "$f" ] || { fail build-artifacts "missing $f (build the module and userspace first)"; missing=1; }
  done
  [ $missing = 0 ] || exit 1
}

# load_drbd: insmod our module, after modprobing the in-tree modules it
# depends on (modpost records them in .modinfo).
# The dependencies are looked up once per script (tests load and unload the
# module many times).
load_drbd() {
  local d
  [ -n "${DRBD_KO_DEPENDS+set}" ] || DRBD_KO_DEPENDS=$(modinfo -F depends "$DRBD_KO" 2>/dev/null)
  for d in ${DRBD_KO_DEPENDS//,/ }; do
    modprobe "$d" || return 1
  done
  insmod "$DRBD_KO"
}

# wait_for_dev DEV [SECONDS]: devtmpfs creates nodes asynchronously.
wait_for_dev() {
  local n=$(( ${2:-5} * 10 ))
  while [ ! -b "$1" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
  [ -b "$1" ]
}

# --- roles --------------------------------------------------------------------
# DRBD 8.4 opens /dev/drbdN only on a Primary (a Secondary: EROFS for writing,
# EMEDIUMTYPE for reading), and a StandAlone Primary cannot detach. With no
# peer, becoming Primary takes --force (declares the disk UpToDate).
# drbdsetup primary/secondary: ours once it has them, else drbd-utils'
# drbdsetup-84 (which drives our module through the same genl API).
DRBDSETUP_84=/usr/lib/drbd/drbdsetup-84
role_tool() {
  if "$DRBDSETUP" primary --help >/dev/null 2>&1; then echo "$DRBDSETUP"; else echo "$DRBDSETUP_84"; fi
}
# drbd_primary MINOR: Primary, --force (no peer to sync from).
drbd_primary() { "$(role_tool)" primary "$1" --force; }
# drbd_secondary MINOR
drbd_secondary() { "$(role_tool)" secondary "$1"; }

# --- metadata ---------------------------------------------------------------
# drbdmeta: ours (build/out/bin, `make tools`) if built, else Debian's
# drbd-utils one; both write the same v08 layout. DEBIAN_DRBDMETA is always
# the reference tool. Override with rdrbd.drbdmeta=PATH on the kernel
# command line (or DRBDMETA in the environment).
DEBIAN_DRBDMETA=/usr/sbin/drbdmeta
OUR_DRBDMETA=$RDRBD_ROOT/build/out/bin/drbdmeta
if [ -z "${DRBDMETA:-}" ]; then
  if [ -x "$OUR_DRBDMETA" ]; then DRBDMETA=$OUR_DRBDMETA; else DRBDMETA=$DEBIAN_DRBDMETA; fi
fi
# Debian's drbdmeta takes a lock under /var/run/drbd.
mkdir -p /var/run/drbd/lock 2>/dev/null

# create_md DEV [DRBDMETA]: fresh v08 internal metadata on DEV for minor 0
# (--force answers drbdmeta's questions), by $DRBDMETA or the tool given.
create_md() { "${2:-$DRBDMETA}" --force 0 v08 "$1" internal create-md; }

# dm_create NAME TABLE: a device-mapper device /dev/mapper/NAME (fault
# injection: linear, error, flakey, delay, dust). The guests run no udev:
# dmsetup must not wait for it, and makes the node itself.
dm_create() { dmsetup create --noudevsync "$1" --table "$2" && dmsetup mknodes "$1"; }
# dm_remove NAME: removes it (and its node).
dm_remove() { dmsetup remove --noudevsync "$1"; }

# dump_md DEV [DRBDMETA]: drbdmeta dump-md (Debian's by default: the reference).
dump_md() { "${2:-$DEBIAN_DRBDMETA}" --force 0 v08 "$1" internal dump-md; }

# md_data_bytes BACKING_BYTES: the size /dev/drbdN must have on a backing
# device of that size with internal metadata and the default 32 KiB activity
# log (DRBD 8.4 drbd_md_set_sector_offsets, flexible internal): bitmap
# sectors (one per 16 MiB, 4 KiB aligned) + superblock 4 KiB + AL 32 KiB at
# the 4 KiB-aligned end; the exposed size is rounded down to 4 KiB.
md_data_bytes() {
  local s=$(( $1 / 512 )) md
  md=$(( ((s + 32767) / 32768 + 7) / 8 * 8 + 8 + 64 ))
  echo $(( ((s & ~7) - md) / 8 * 8 * 512 ))
}

# md_sb_offset DEV: byte offset of the v08 superblock of internal metadata
# (the last 4 KiB-aligned 4 KiB of the device).
md_sb_offset() { echo $(( ($(size_of "$1") & ~4095) - 4096 )); }

# checksum_head DEV BYTES: checksum of the first BYTES of DEV (see checksum_of).
checksum_head() { "$DEVSUM" --length "$2" "$1"; }

# checksum_range DEV OFFSET BYTES: checksum of BYTES from OFFSET of DEV.
checksum_range() { "$DEVSUM" --offset "$2" --length "$3" "$1"; }

# proc_field FIELD [MINOR]: a field of minor MINOR (default 0) in /proc/drbd,
# e.g. `proc_field oos`, `proc_field ds` (cs, ro, ds: the local part only).
# Pure bash: the wait loops call it every 0.1 s.
proc_field() {
  local want=$1 minor=${2:-0} line word on=0 value
  local -a words
  while IFS= read -r line; do
    read -ra words <<<"$line"
    if [ "${words[0]:-}" = "$minor:" ]; then
      on=1
      case $want in ds | cs | ro)
        for word in "${words[@]:1}"; do
          if [[ $word == "$want:"* ]]; then value=${word#"$want:"}; echo "${value%%/*}"; return; fi
        done ;;
      esac
      continue
    fi
    if [ $on = 1 ] && [[ $line =~ ^\ *ns: ]]; then
      for word in "${words[@]}"; do
        if [[ $word == "$want:"* ]]; then echo "${word#"$want:"}"; return; fi
      done
    fi
    [[ $line =~ ^\ *[0-9]+: ]] && on=0
  done < /proc/drbd
}

# proc_has REGEX: some line of /proc/drbd matches (bash regex, no grep).
proc_has() {
  local line
  while IFS= read -r line; do
    [[ $line =~ $1 ]] && return 0
  done < /proc/drbd
  return 1
}

# --- multi-boot tests (# boots: N) -----------------------------------------
# power_cut [WHY]: end this boot like a power failure: nothing is synced or
# detached. Leaves /results/power-cut (synced) so the host accepts the missing
# exit code, then resets at once (sysrq b; without CONFIG_MAGIC_SYSRQ,
# reboot(2) without sync, which drbd does not see either). Not in the last boot.
power_cut() {
  [ "$BOOT_INDEX" -lt $((NBOOTS - 1)) ] || fail power-cut "power cut in the last boot ($BOOT_INDEX of $NBOOTS)"
  log "power cut${1:+: $1}"
  dmesg > /results/dmesg.txt 2>/dev/null
  echo "boot $BOOT_INDEX: $(date +%T) ${1:-}" > /results/power-cut
  sync /results/power-cut
  sleep 1   # let the stage-2 tee copy our last lines to /results/output.txt
  echo b > /proc/sysrq-trigger 2>/dev/null
  /bin/busybox reboot -n -f
  sleep 60
  die "power cut: the guest did not reset"
}

# attach_rdrbd [DEV]: load our module, fresh metadata on DEV (default
# /dev/vda), resource r0 with minor 0 (volume 0) attached to it; sets S to
# our drbdsetup. Each step is a sub-result; returns non-zero at the first
# failure.
attach_rdrbd() {
  local dev=${1:-/dev/vda}
  S=$DRBDSETUP
  step insmod load_drbd &&
    step create-md create_md "$dev" &&
    step new-resource "$S" new-resource r0 &&
    step new-minor "$S" new-minor r0 0 0 &&
    step attach "$S" attach 0 "$dev"
}

# rejoin_after_boot [DEV]: a later boot of a crash test: the module loaded, r0
# and minor 0 created, DEV (default /dev/vda) attached with the metadata
# it kept, /dev/drbd0 there; shows /proc/drbd. Exits the test at a failure.
rejoin_after_boot() {
  local dev=${1:-/dev/vda}
  S=$DRBDSETUP
  step insmod load_drbd || exit 1
  step new-resource "$S" new-resource r0 || exit 1
  step new-minor "$S" new-minor r0 0 0 || exit 1
  step attach-kept-md "$S" attach 0 "$dev" || exit 1
  wait_for_dev /dev/drbd0
  grep -A2 '^ *0:' /proc/drbd
}

# two_rdrbd_nodes [DEV]: the start of a test of two rdrbd nodes: the build
# is there, two guests run, each attaches rdrbd on DEV (attach_rdrbd) and
# waits for the other. Exits the test at a failure.
two_rdrbd_nodes() {
  need_artifacts
  [ "$NGUESTS" = 2 ] || die "needs 2 guests"
  attach_rdrbd "${1:-/dev/vda}" || exit 1
  barrier attached || die "peer never attached"
}

# wait_ds DISKS [SECONDS]: until minor 0's disk states read DISKS (as
# "ds:DISKS" in /proc/drbd, e.g. Diskless/UpToDate; default 60 s); shows
# its lines.
wait_ds() {
  local n=$(( ${2:-60} * 10 ))
  until proc_has "ds:$1" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep -A2 '^ *0:' /proc/drbd
  proc_has "ds:$1"
}

# reattach_rdrbd DEV [OPTIONS...]: r0 down, then up again on DEV with the
# metadata it has, connected to the peer (LOCAL, PEER of connect_pair)
# with protocol C and OPTIONS. Each step a sub-result; returns non-zero
# at the first failure.
reattach_rdrbd() {
  local dev=$1; shift
  step down-again "$S" down r0 &&
    step new-resource-again "$S" new-resource r0 &&
    step new-minor-again "$S" new-minor r0 0 0 &&
    step attach-again "$S" attach 0 "$dev" &&
    step connect-again "$S" connect r0 "$LOCAL" "$PEER" --protocol=C "$@"
}

# attach_c_drbd: the same with the in-tree C driver and drbd-utils' tools
# (the interoperability peer); sets S to drbdsetup-84.
attach_c_drbd() {
  S=/lib/drbd/drbdsetup-84
  step modprobe-c-drbd modprobe drbd &&
    step create-md create_md /dev/vda "$DEBIAN_DRBDMETA" &&
    step new-resource "$S" new-resource r0 &&
    step new-minor "$S" new-minor r0 0 0 &&
    step attach "$S" attach 0 /dev/vda /dev/vda internal
}

# use_recording_helper: points the module's usermode_helper at a script
# that appends "<arguments> <DRBD_PEER_AF> <DRBD_PEER_ADDRESS>" to
# $HELPER_LOG, sleeps the seconds in $HELPER_SLEEP (0 at first), appends
# its first argument to $HELPER_DONE and exits with the number in
# $HELPER_EXIT (0 at first). The kernel runs helpers in PID 1's root, the
# initramfs, where the tests' root is /newroot (scripts/make-initramfs.sh).
HELPER_LOG=/tmp/helper-calls HELPER_EXIT=/tmp/helper-exit
HELPER_SLEEP=/tmp/helper-sleep HELPER_DONE=/tmp/helper-done
use_recording_helper() {
  local root=/newroot
  echo 0 > "$HELPER_EXIT"
  echo 0 > "$HELPER_SLEEP"
  printf '#!/bin/sh\necho "$* $DRBD_PEER_AF $DRBD_PEER_ADDRESS" >> %s\nread s < %s\nsleep $s\necho "$1" >> %s\nread code < %s\nexit $code\n' \
    "$root$HELPER_LOG" "$root$HELPER_SLEEP" "$root$HELPER_DONE" "$root$HELPER_EXIT" > /tmp/helper.sh
  chmod +x /tmp/helper.sh
  echo "$root/tmp/helper.sh" > /sys/module/drbd/parameters/usermode_helper
}

# attach_mixed_pair: the interoperability setup, rdrbd on guest 0 and the
# in-tree C driver on guest 1, each attached on /dev/vda; then both wait
# for each other.
attach_mixed_pair() {
  if [ "$GUEST_INDEX" = 0 ]; then
    attach_rdrbd || return 1
  else
    attach_c_drbd || return 1
  fi
  barrier attached || die "peer never attached"
}

# connect_pair [OPTIONS...]: connect r0 to the other guest with protocol C
# and OPTIONS (each side's own drbdsetup, $S), wait for Connected on both.
# Sets LOCAL and PEER (the two endpoints).
connect_pair() {
  LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
  step connect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C "$@" || return 1
  step connected wait_cs Connected 90 || return 1
  barrier connected || die "barrier connected"
}

# start_verifying_writer SIZE: fio in the background writes 4 KiB blocks at
# random into the first SIZE of /dev/drbd0, 16 in flight, each block once,
# and reads each back to verify it (crc32c); sets FIO_PID (wait for it
# here: `step` runs in a subshell), output in /tmp/fio-verify.txt.
start_verifying_writer() {
  fio --name=verify --filename=/dev/drbd0 --rw=randwrite --bs=4k --size="$1" --iodepth=16 \
    --ioengine=libaio --direct=1 --verify=crc32c --verify_backlog=64 \
    --output=/tmp/fio-verify.txt > /dev/null 2>&1 &
  FIO_PID=$!
}
# verifying_writer_summary: what it wrote and whether it found an error.
verifying_writer_summary() { grep -E 'WRITE:|err=|verify' /tmp/fio-verify.txt | head -4; }

# skip_initial_sync: both disks are fresh (all zeroes), so equal: guest 0
# clears the bitmap as drbdadm's new-current-uuid --clear-bitmap does, and
# both wait for UpToDate/UpToDate.
skip_initial_sync() {
  [ "$GUEST_INDEX" = 0 ] && step skip-initial-sync "$S" new-current-uuid --clear-bitmap 0
  step both-uptodate wait_synced 60 || return 1
  barrier uptodate || die "barrier uptodate"
}

# wait_proc_at_least FIELD KIB [SECONDS]: until minor 0's /proc/drbd
# counter FIELD (ns, nr, dw, ...) reaches KIB (default 120 s); prints it.
wait_proc_at_least() {
  local n=$(( ${3:-120} * 5 )) value
  until value=$(proc_field "$1") && [ "${value:-0}" -ge "$2" ]; do
    n=$((n - 1)); [ $n -gt 0 ] || { echo "$1:${value:-?} KiB, not $2"; return 1; }
    sleep 0.2
  done
  echo "$1:$value KiB"
}

# wait_cs STATE [SECONDS]: wait until minor 0's connection state is STATE
# (default 60 s), then show its /proc/drbd lines.
wait_cs() {
  local n=$(( ${2:-60} * 10 ))
  while [ "$(proc_field cs)" != "$1" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
  grep -A1 '^ *0:' /proc/drbd
  [ "$(proc_field cs)" = "$1" ]
}

# --- two-node replication checks --------------------------------------------

# Checksum-based resync (csums-alg) summaries in our kernel log.
# last_csums FIELD: a figure of the last "had equal checksums" line in our
# kernel log: percent, eliminated, transferred or total (KiB).
last_csums() {
  dmesg | grep 'had equal checksums' | tail -1 | sed -n \
    's/.* \([0-9]*\) % had equal checksums, eliminated: \([0-9]*\)K; transferred \([0-9]*\)K total \([0-9]*\)K.*/\1 \2 \3 \4/p' |
    awk -v f="$1" '{ if (f == "percent") print $1; else if (f == "eliminated") print $2; else if (f == "transferred") print $3; else print $4 }'
}
# csums_lines: how many resyncs logged the summary.
csums_lines() { dmesg | grep -c 'had equal checksums'; }
# expect_summary N PERCENT_MIN ELIM_MIN TRANSFERRED_MAX: the N-th summary
# is there and says at least / at most this.
expect_summary() {
  local lines p e t total
  lines=$(csums_lines); p=$(last_csums percent); e=$(last_csums eliminated)
  t=$(last_csums transferred); total=$(last_csums total)
  echo "summaries $lines: $p % eliminated ${e}K transferred ${t}K total ${total}K"
  [ "$lines" = "$1" ] && [ -n "$p" ] && [ "$p" -ge "$2" ] && [ "$e" -ge "$3" ] && [ "$t" -le "$4" ]
}
# wait_summaries N SECONDS: the resync end is logged a little after the
# state shows UpToDate on the peer.
wait_summaries() {
  local n=$(( $2 * 10 ))
  until [ "$(csums_lines)" -ge "$1" ] || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  [ "$(csums_lines)" -ge "$1" ]
}

# wait_synced SECONDS: wait until minor 0 is Connected and UpToDate on both
# sides; shows the resync progress lines once when a resync is seen running,
# then the final /proc/drbd lines.
wait_synced() {
  local n=$(( $1 * 10 )) shown=0 lines
  # The verdict is the state shown (the peer may go on meanwhile).
  until lines=$(grep -A3 '^ *0:' /proc/drbd) && grep -q 'cs:Connected .* ds:UpToDate/UpToDate' <<<"$lines" ||
        [ $n = 0 ]; do
    if [ $shown = 0 ] && grep -q "sync'ed" <<<"$lines"; then echo "$lines"; shown=1; fi
    sleep 0.1; n=$((n - 1))
  done
  echo "$lines"
  grep -q 'cs:Connected .* ds:UpToDate/UpToDate' <<<"$lines"
}

# kernel_log_count REGEX: how many kernel log lines match (extended regex).
kernel_log_count() { dmesg | grep -cE -- "$1"; }

# wait_kernel_log N SECONDS REGEX: until N kernel log lines match REGEX.
# Polls twice a second, not ten times: each poll starts dmesg and grep,
# which on the debug kernel take CPU from the resync or verify waited for.
wait_kernel_log() {
  local n=$(( $2 * 2 ))
  until [ "$(kernel_log_count "$3")" -ge "$1" ] || [ $n = 0 ]; do sleep 0.5; n=$((n - 1)); done
  [ "$(kernel_log_count "$3")" -ge "$1" ]
}

# wait_resync N SECONDS: the Nth resync of this test is done (rdrbd and the
# C driver log "Resync done", as source or target), then both UpToDate.
# (Only waiting for UpToDate/UpToDate could pass before a resync began.)
wait_resync() {
  wait_kernel_log "$1" "$2" 'Resync done'
  dmesg | grep 'Resync done' | tail -1
  wait_synced 30
}

# verify_count: online verify runs finished here.
verify_count() { kernel_log_count 'Online verify done'; }
# wait_verify_done N SECONDS: until the Nth "Online verify done"; shows the
# verify lines of the kernel log.
wait_verify_done() {
  local rc=0
  wait_kernel_log "$1" "$2" 'Online verify done' || rc=1
  dmesg | grep -E 'Online verify|Out of sync' | tail -5
  return $rc
}

# resynced_kb: the size of the last resync this node began as SyncSource,
# from its kernel log ("Began resync as SyncSource (will sync N KB ...").
resynced_kb() {
  dmesg | grep 'Began resync as SyncSource' | tail -1 | sed -n 's/.*will sync \([0-9]*\) KB.*/\1/p'
}

# share_data_sum BYTES: publish the checksum of the first BYTES of /dev/vda
# (the data area) as sum.<guest index>, then wait for the other guest's.
share_data_sum() {
  share_put "sum.$GUEST_INDEX" "$(checksum_head /dev/vda "$1")"
  barrier summed
}

# down_and_compare: r0 goes down on both guests, whose backing disks' data
# areas must then be equal.
down_and_compare() {
  cat /proc/drbd
  # Neither goes down while the other still checks the connected state.
  barrier checked || die "barrier checked"
  step down "$S" down r0
  local n; n=$(md_data_bytes "$(size_of /dev/vda)")
  share_data_sum "$n" || die "barrier summed"
  step data-identical same_data "$n"
}

# down_with_equal_data: the end of a two-node test: down_and_compare, then
# the module is unloaded and the kernel log checked.
down_with_equal_data() {
  down_and_compare
  step rmmod rmmod drbd
  step kernel-log-clean dmesg_clean
}

# same_data BYTES: the two guests' published data-area checksums are equal.
same_data() {
  local a b; a=$(share_get sum.0) b=$(share_get sum.1)
  echo "guest0 $a guest1 $b (first $1 bytes of /dev/vda)"
  [ -n "$a" ] && [ "$a" = "$b" ]
}
