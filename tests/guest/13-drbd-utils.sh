#!/bin/bash
# Debian's own tools drive rdrbd as they drive the in-tree C driver:
# drbdadm-84 (with a drbd.conf written here) and drbdsetup-84 run the same
# sequence first on the C drbd.ko, then on rdrbd (create-md, up, role,
# cstate, dstate, primary --force, status, show, events, resource- disk-
# and net-options, suspend-io/resume-io, outdate, secondary, down), and
# every output must be the same. The peer address is one nobody listens on,
# so the resource stays in WFConnection.
# guests: 1
# disks: 256M
# timeout: 600
# budget: 110
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
drbd_loaded && die "a drbd module is already loaded"

# drbdadm-84 runs drbdsetup-84 and drbdmeta from its own directory when
# called by path, else from PATH: put drbd-utils' 8.4 tools first.
export PATH=/lib/drbd:/usr/sbin:/usr/bin:/sbin:/bin
ADM=drbdadm-84
SETUP=drbdsetup-84
HOST=$(uname -n)
cat > /etc/drbd.conf <<EOF
global { usage-count no; }
resource r0 {
  protocol C;
  on $HOST {
    device /dev/drbd0;
    disk /dev/vda;
    meta-disk internal;
    address 127.0.0.1:7789;
  }
  on nobody-listens {
    device /dev/drbd0;
    disk /dev/vda;
    meta-disk internal;
    address 127.0.0.2:7789;
  }
}
EOF
OUT=/tmp/drbd-utils
mkdir -p "$OUT"

# run TAG NAME CMD...: runs CMD, keeps its output and exit status as
# $OUT/TAG/NAME for the comparison (sequence numbers of events and the
# timestamps of status are the only things that may differ).
run() {
  local tag=$1 name=$2 rc; shift 2
  "$@" > "$OUT/$tag/$name" 2>&1 && rc=0 || rc=$?
  echo "exit $rc" >> "$OUT/$tag/$name"
  log "$tag $name: $* (exit $rc)"
  sed 's/^/    /' "$OUT/$tag/$name"
  return $rc
}

# Waits until drbdsetup-84 sees the connection state STATE.
wait_cstate() {
  local n=100
  until [ "$($SETUP cstate 0 2>/dev/null)" = "$1" ] || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
}

# The sequence, identical for both drivers.
sequence() {
  local t=$1
  mkdir -p "$OUT/$t"
  dd if=/dev/zero of=/dev/vda bs=1M count=4 seek=252 status=none
  run "$t" create-md $ADM --force create-md r0
  # events of everything, in the background: the initial state, then
  # every change this sequence makes.
  $SETUP events all > "$OUT/$t/events.raw" 2>&1 &
  local events=$!
  sleep 1
  run "$t" dry-run-up $ADM -d up r0
  run "$t" up $ADM up r0
  wait_cstate WFConnection
  run "$t" role $ADM role r0
  run "$t" cstate $ADM cstate r0
  run "$t" dstate $ADM dstate r0
  run "$t" show $SETUP show r0
  run "$t" show-all $SETUP show
  run "$t" sh-status $SETUP sh-status 0
  run "$t" status $SETUP status r0
  run "$t" primary-no-force $ADM primary r0
  run "$t" primary $ADM primary --force r0
  run "$t" role-primary $ADM role r0
  run "$t" dstate-primary $ADM dstate r0
  run "$t" resource-options $SETUP resource-options r0 --on-no-data-accessible=suspend-io --cpu-mask=1
  run "$t" disk-options $SETUP disk-options 0 --al-extents=509 --resync-rate=4M
  run "$t" net-options $SETUP net-options ipv4:127.0.0.1:7789 ipv4:127.0.0.2:7789 --ping-int=7
  run "$t" show-options $SETUP show r0
  run "$t" net-options-protocol $SETUP net-options ipv4:127.0.0.1:7789 ipv4:127.0.0.2:7789 --protocol=A
  run "$t" suspend-io $SETUP suspend-io 0
  run "$t" status-suspended $SETUP status r0
  # A write to a suspended device waits, and completes on resume-io.
  dd if=/dev/zero of=/dev/drbd0 bs=4k count=1 oflag=direct status=none &
  local writer=$!
  sleep 1
  if kill -0 "$writer" 2>/dev/null; then echo "write waits" > "$OUT/$t/suspended-write"; else echo "write did not wait" > "$OUT/$t/suspended-write"; fi
  run "$t" resume-io $SETUP resume-io 0
  wait "$writer"; echo "write exit $?" >> "$OUT/$t/suspended-write"
  run "$t" outdate-primary $SETUP outdate 0
  run "$t" secondary $ADM secondary r0
  run "$t" role-secondary $ADM role r0
  run "$t" disconnect $ADM disconnect r0
  run "$t" outdate $SETUP outdate 0
  run "$t" dstate-outdated $ADM dstate r0
  run "$t" status-outdated $SETUP status r0
  run "$t" adjust $ADM adjust r0
  wait_cstate WFConnection
  run "$t" show-adjusted $SETUP show r0
  run "$t" down $ADM down r0
  run "$t" role-down $ADM role r0
  sleep 1
  kill "$events"
  wait "$events" 2>/dev/null
  # drbdsetup-84 events: "<seq> <ST|...> <minor> ..."; the sequence
  # numbers count broadcasts since module load, so only their order
  # matters. "R - <resource>" lines are the events2 notifications
  # (RESOURCE_STATE, DEVICE_STATE, ...), which rdrbd does not send yet:
  # only the DRBD_EVENT state changes are compared. Their "ST" line is the
  # state when the broadcast is formatted, which C does in its worker,
  # after later changes may have happened (the detach of `down` right
  # after its disconnect): only the change itself (ST-prev, ST-new) is
  # compared, and rdrbd's ST is checked to be the new state below.
  sed -e 's/^[0-9]* //' -e '/^R - /d' -e '/^ST /d' "$OUT/$t/events.raw" > "$OUT/$t/events"
  log "$t events:"; sed 's/^/    /' "$OUT/$t/events.raw"
  run "$t" proc cat /proc/drbd
}

# The reference: the in-tree C driver.
if step modprobe-c-drbd modprobe drbd; then
  sequence c
  step rmmod-c-drbd rmmod drbd
else
  die "no in-tree C drbd module to compare with"
fi

step insmod load_drbd || exit 1
sequence rdrbd
# Every rdrbd broadcast shows the state it changed to.
step rdrbd-st-is-new-state awk '
  $2 == "ST-new" { new = $0; sub(/^[0-9]+ ST-new /, "", new); next }
  $2 == "ST" && new != "" { st = $0; sub(/^[0-9]+ ST /, "", st); n++
    if (st != new) { print "ST " st " after ST-new " new; bad = 1 } }
  { new = "" }
  END { if (n < 10) { print n " ST lines"; bad = 1 }; exit bad }' "$OUT/rdrbd/events.raw"

# /proc/drbd differs on purpose (srcversion, counters): compare the rest.
for f in "$OUT"/c/*; do
  name=$(basename "$f")
  case "$name" in proc|events.raw) continue ;; esac
  if diff -u "$f" "$OUT/rdrbd/$name" > "$OUT/$name.diff"; then
    pass "same-$name"
  else
    fail "same-$name" "output differs from the C driver's:"
    sed 's/^/    /' "$OUT/$name.diff"
  fi
done

step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
