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
GUEST_INDEX=${GUEST_INDEX:-0}
NGUESTS=${NGUESTS:-1}
SHARED=${SHARED:-/shared}
RDRBD_FAILED=0

log() { echo "[$(date +%T)] $*"; }

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
    [ -z "$out" ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
    pass "$name"
  else
    printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /'
    fail "$name" "exit $rc: $*"
  fi
  return $rc
}

# expect_fail CMD...: CMD must fail. Prints its message (the tests check that
# errors are reported clearly). Returns 0 if CMD failed, 1 if it succeeded.
expect_fail() {
  local out rc
  out=$("$@" 2>&1) && rc=0 || rc=$?
  printf '%s\n' "$out" | sed 's/^/    | /'
  if [ $rc = 0 ]; then
    echo "    expected failure, but succeeded: $*"
    return 1
  fi
  echo "    failed as expected (exit $rc): $*"
  return 0
}

# md5_of DEV|FILE: md5 of the whole content. Block devices are read with
# O_DIRECT: each block device has its own page cache, so after writing through
# /dev/drbd0 a buffered read of /dev/vda may return stale pages.
md5_of() {
  if [ -b "$1" ]; then
    dd if="$1" bs=1M iflag=direct status=none | md5sum | cut -d' ' -f1
  else
    md5sum < "$1" | cut -d' ' -f1
  fi
}

# size_of DEV: size in bytes.
size_of() { blockdev --getsize64 "$1"; }

# barrier NAME [TIMEOUT]: wait until all NGUESTS guests reached NAME. Uses
# files in /shared (a 9p share without caching). Names may repeat: each use is
# numbered. Fails at once if a guest aborted (its script failed or its QEMU died).
declare -A RDRBD_BARRIER_COUNT
barrier() {
  local name=$1 timeout=${2:-300} n i deadline
  n=$(( ${RDRBD_BARRIER_COUNT[$name]:-0} + 1 ))
  RDRBD_BARRIER_COUNT[$name]=$n
  local tag="barrier.$name.$n"
  touch "$SHARED/$tag.guest$GUEST_INDEX"
  deadline=$(( $(date +%s) + timeout ))
  while :; do
    for ((i = 0; i < NGUESTS; i++)); do
      [ -e "$SHARED/$tag.guest$i" ] || break
    done
    [ $i = "$NGUESTS" ] && { log "barrier $name passed"; return 0; }
    if compgen -G "$SHARED/abort.*" > /dev/null; then
      echo "barrier $name: a peer aborted: $(cd "$SHARED" && ls abort.*)"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
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
  local deadline=$(( $(date +%s) + ${2:-300} ))
  until [ -e "$SHARED/val.$1" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "share_get $1: timed out" >&2; return 1; }
    sleep 0.2
  done
  cat "$SHARED/val.$1"
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
  for f in "$DRBD_KO" "$DRBDSETUP"; do
    [ -e "$f" ] || { fail build-artifacts "missing $f (build the module and userspace first)"; missing=1; }
  done
  [ $missing = 0 ] || exit 1
}

# load_drbd: insmod our module, after modprobing the in-tree modules it
# depends on (modpost records them in .modinfo).
load_drbd() {
  local d
  for d in $(modinfo -F depends "$DRBD_KO" 2>/dev/null | tr ',' ' '); do
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
