#!/bin/bash
# events2 and live options. Two rdrbd nodes: `drbdsetup events2 --now`
# (GET_INITIAL_STATE) lists nothing on an empty module, then the resource,
# its connection, device and peer device ("exists" lines) and ends with
# "exists -"; background listeners (our drbdsetup and drbd-utils'
# drbdsetup-84) see every create/change/destroy of new-resource,
# new-minor, attach, connect, primary, secondary, disconnect and down, in
# order and the same from both tools. While connected, net-options
# --ping-int takes effect (drbdsetup show) and a combination 8.4 refuses
# gets its error code (139, Protocol C required); disk-options
# --resync-rate reaches a running resync (the SyncTarget's "want:").
# guests: 2
# disks: 256M
# timeout: 400
# budget: 80
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
S=$DRBDSETUP
S84=/lib/drbd/drbdsetup-84
OUT=/tmp/events
mkdir -p "$OUT"

# expect_lines FILE PATTERN...: FILE has lines matching each extended
# regular expression PATTERN, in this order (other lines may come between).
expect_lines() {
  local file=$1; shift
  sed 's/^/    /' "$file"
  awk -v n=$# 'BEGIN { for (i = 1; i < ARGC; i++) pat[i] = ARGV[i]; ARGC = 1; i = 1 }
    i <= n && $0 ~ pat[i] { i++ }
    END { if (i <= n) { print "    missing (in order): " pat[i]; exit 1 } }' "$@" < "$file"
}

now_empty() {
  "$S" events2 --now > "$OUT/now-empty" 2>&1 || return 1
  cat "$OUT/now-empty"
  [ "$(cat "$OUT/now-empty")" = "exists -" ]
}

step insmod load_drbd || exit 1
step create-md create_md /dev/vda || exit 1
step now-empty now_empty

"$S" events2 > "$OUT/ours" 2>&1 &
OURS=$!
"$S84" events2 all > "$OUT/drbd-utils" 2>&1 &
THEIRS=$!
sleep 1

step new-resource "$S" new-resource r0 || exit 1
step new-minor "$S" new-minor r0 0 0 || exit 1
now_unconfigured() {
  "$S" events2 --now r0 > "$OUT/now-unconfigured" 2>&1 || return 1
  expect_lines "$OUT/now-unconfigured" \
    '^exists resource name:r0 role:Secondary suspended:no$' \
    '^exists connection name:r0 peer-node-id:0 connection:StandAlone role:Unknown$' \
    '^exists device name:r0 volume:0 minor:0 disk:Diskless' \
    '^exists peer-device name:r0 peer-node-id:0 volume:0 replication:Off peer-disk:DUnknown' \
    '^exists -$'
}
step now-unconfigured now_unconfigured
step attach "$S" attach 0 /dev/vda || exit 1
barrier attached || die "peer never attached"

ADDRS=("ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789")
step connect "$S" connect r0 "${ADDRS[@]}" --protocol=C --ping-timeout=20 --socket-check-timeout=5 || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

now_connected() {
  "$S" events2 --now --statistics > "$OUT/now-connected" 2>&1 || return 1
  expect_lines "$OUT/now-connected" \
    '^exists resource name:r0 role:Secondary suspended:no write-ordering:flush$' \
    '^exists connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary congested:no$' \
    '^exists device name:r0 volume:0 minor:0 disk:Inconsistent size:[0-9]+ ' \
    '^exists peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:Inconsistent .*out-of-sync:[0-9]+' \
    '^exists -$'
}
step now-connected now_connected
step now-drbd-utils "$S84" events2 --now all

# net-options on the live connection: ping-int applies (and shows), a
# combination 8.4's _check_net_options refuses gets its error.
ping_int_live() {
  "$S" net-options "${ADDRS[@]}" --ping-int=7 || return 1
  "$S" show r0 | tee "$OUT/show"
  grep -Eq '^[[:space:]]*ping-int[[:space:]]+7;' "$OUT/show"
}
step ping-int-live ping_int_live
refused_two_primaries() {
  local out rc
  out=$("$S" net-options "${ADDRS[@]}" --protocol=A --allow-two-primaries 2>&1) && rc=0 || rc=$?
  echo "$out (exit $rc)"
  [ $rc = 10 ] && echo "$out" | grep -q '(139) Protocol C required'
}
step refused-not-proto-c refused_two_primaries
step still-ping-int-7 sh -c "'$S' show r0 | grep -Eq '^[[:space:]]*ping-int[[:space:]]+7;'"
barrier options || die "barrier options"

# Roles and a live resync rate: guest 1 (the SyncTarget to be) asks for a
# slow fixed rate, guest 0 goes Primary --force and resyncs to it; guest 1
# raises the rate while the resync runs and /proc/drbd shows the new
# "want:" at once. Guest 0 goes back to Secondary; then it disconnects
# (the resync never finishes at this rate).
[ "$GUEST_INDEX" = 1 ] && step slow-rate "$S" disk-options 0 --c-plan-ahead=0 --resync-rate=100K
barrier slow || die "barrier slow"
# wait_want KIB: the SyncTarget's /proc/drbd shows "want: KIB K/sec".
wait_want() {
  local n=200
  until proc_has "want: $1 K/sec" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
  cat /proc/drbd
  grep -q "want: $1 K/sec" /proc/drbd
}
if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0 --force
  step sync-source wait_cs SyncSource 60
else
  step sync-target wait_cs SyncTarget 60
  step want-100 wait_want 100
  step rate-live "$S" disk-options 0 --resync-rate=300K
  step want-300 wait_want 300
fi
barrier rate || die "barrier rate"
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0
barrier roles || die "barrier roles"
if [ "$GUEST_INDEX" = 0 ]; then
  step disconnect "$S" disconnect "${ADDRS[@]}"
  step standalone wait_cs StandAlone 10
else
  step peer-lost wait_cs WFConnection 60
fi
barrier disconnected || die "barrier disconnected"
step down "$S" down r0
sleep 1
kill "$OURS" "$THEIRS" 2>/dev/null
wait 2>/dev/null

# What both listeners saw, in order.
seen_by() {
  local file=$1
  local roles=('^change resource name:r0 role:Primary' '^change device name:r0 volume:0 minor:0 disk:UpToDate$'
    '^change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:SyncSource'
    '^change resource name:r0 role:Secondary')
  [ "$GUEST_INDEX" = 0 ] || roles=('^change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:SyncTarget')
  local standalone='^change connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting'
  [ "$GUEST_INDEX" = 0 ] && standalone='^change connection name:r0 peer-node-id:0 conn-name:peer connection:Disconnecting'
  expect_lines "$file" \
    '^exists -$' \
    '^create resource name:r0 role:Secondary suspended:no$' \
    '^create device name:r0 volume:0 minor:0 disk:Diskless$' \
    '^change device name:r0 volume:0 minor:0 disk:Attaching$' \
    '^change device name:r0 volume:0 minor:0 disk:Inconsistent$' \
    '^create connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone role:Unknown$' \
    '^create peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Off peer-disk:DUnknown' \
    '^change connection name:r0 peer-node-id:0 conn-name:peer connection:Unconnected$' \
    '^change connection name:r0 peer-node-id:0 conn-name:peer connection:Connected' \
    '^change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established' \
    "${roles[@]}" \
    "$standalone" \
    '^destroy peer-device name:r0 peer-node-id:0 conn-name:peer volume:0$' \
    '^destroy connection name:r0 peer-node-id:0 conn-name:peer$' \
    '^change device name:r0 volume:0 minor:0 disk:Diskless$' \
    '^destroy device name:r0 volume:0 minor:0$' \
    '^destroy resource name:r0$'
}
step events2-ours seen_by "$OUT/ours"
step events2-drbd-utils seen_by "$OUT/drbd-utils"
step same-lines diff "$OUT/ours" "$OUT/drbd-utils"

step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
