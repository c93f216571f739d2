#!/bin/bash
# data-integrity-alg between two rdrbd nodes (issue #14), protocol C:
# - an algorithm the kernel lacks is refused at connect (8.4's
#   ERR_INTEGRITY_ALG);
# - with crc32c on both, the initial full sync (P_RS_DATA_REPLY) and the
#   Primary's writes (P_DATA) carry digests the receiver checks;
# - guest 1 corrupts what it receives (fault injection bit 9, "receive
#   data corruption"): it logs "Digest integrity check FAILED", writes
#   nothing of the block and drops the connection (ProtocolError); once the
#   fault is off the pair reconnects and resyncs what was not acknowledged;
# - guest 1 connecting with sha256 against crc32c is refused on both sides
#   ("incompatible data-integrity-alg settings");
# - net-options changes it on the live connection (P_PROTOCOL_UPDATE): the
#   peer checks with the new algorithm from that packet on, and writes go
#   on; drbdsetup show reports it;
# - net-options sets verify-alg and csums-alg on the live connection
#   (P_SYNC_PARAM): the peer adopts them ("using verify-alg"), and an
#   online verify with sha256 finds the replicas equal.
# Both data areas match at the end.
# guests: 2
# disks: 16M
# timeout: 600
# budget: 175
set -uo pipefail
. "$(dirname "$0")/lib.sh"

P=/sys/module/drbd/parameters
two_rdrbd_nodes
LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
connect() { "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 "$@"; }

# refused_unknown_alg OPTION: connect with OPTION=no-such-digest fails
# with 8.4's ERR_INTEGRITY_ALG / ERR_VERIFY_ALG / ERR_CSUMS_ALG text.
refused_unknown_alg() {
  local out
  if out=$(connect "--$1=no-such-digest" 2>&1); then echo "accepted: $out"; return 1; fi
  echo "$out"
  echo "$out" | grep -q "The $1 is not known in the kernel"
}
step unknown-alg-refused refused_unknown_alg data-integrity-alg
step unknown-verify-alg-refused refused_unknown_alg verify-alg
step unknown-csums-alg-refused refused_unknown_alg csums-alg
step connect connect --data-integrity-alg=crc32c || exit 1
step connected wait_cs Connected 90 || exit 1
step show-crc32c sh -c "\"$S\" show r0 | grep 'data-integrity-alg.*crc32c'"
barrier connected || die "barrier connected"

# --- full sync and writes with digests -----------------------------------
[ "$GUEST_INDEX" = 0 ] && step force-primary "$S" primary 0 --force
step full-sync wait_synced 300 || exit 1
if [ "$GUEST_INDEX" = 0 ]; then
  step write-4m dd if=/dev/urandom of=/dev/drbd0 bs=1M count=4 seek=2 oflag=direct status=none
fi
barrier written || die "barrier written"
step no-digest-failure-yet sh -c "! dmesg | grep -q 'integrity check FAILED'"

# --- corruption on the way: caught, nothing written, resynced ---------------
if [ "$GUEST_INDEX" = 1 ]; then
  step corrupt-on sh -c "echo 100 > $P/fault_rate && echo 512 > $P/enable_faults"
  share_put armed 1
  step failure-logged wait_kernel_log 1 60 'Digest integrity check FAILED: [0-9]+s \+[0-9]+'
  step faults-off sh -c "echo 0 > $P/enable_faults"
  step protocol-error-logged sh -c "dmesg | grep -q 'protocol error from peer: data integrity check failed'"
else
  share_get armed 60 > /dev/null || die "guest 1 never armed its fault"
  step write-while-corrupted dd if=/dev/urandom of=/dev/drbd0 bs=4k count=16 seek=3000 oflag=direct status=none
fi
step reconnected-and-synced wait_synced 120 || exit 1
barrier repaired || die "barrier repaired"

# --- different algorithms: refused on both sides (StandAlone, as 8.4) -------
failures=$(kernel_log_count 'integrity check FAILED')
[ "$GUEST_INDEX" = 1 ] && step disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier disconnected || die "barrier disconnected"
[ "$GUEST_INDEX" = 1 ] && step connect-sha256 connect --data-integrity-alg=sha256
step mismatch-logged wait_kernel_log 1 60 'incompatible data-integrity-alg settings'
step mismatch-standalone wait_cs StandAlone 30
barrier refused || die "barrier refused"
step reconnect-crc32c connect --data-integrity-alg=crc32c
step connected-again wait_synced 90 || exit 1
barrier connected-again || die "barrier connected-again"

# --- a live change, one side after the other -------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step live-sha256 "$S" net-options "$LOCAL" "$PEER" --data-integrity-alg=sha256
  step show-sha256 sh -c "\"$S\" show r0 | grep 'data-integrity-alg.*sha256'"
  step write-after-change dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=8 oflag=direct status=none
fi
barrier changed-0 || die "barrier changed-0"
if [ "$GUEST_INDEX" = 1 ]; then
  step peer-alg-logged sh -c "dmesg | grep -q 'peer data-integrity-alg: sha256'"
  step live-sha256-here "$S" net-options "$LOCAL" "$PEER" --data-integrity-alg=sha256
fi
barrier changed-1 || die "barrier changed-1"
if [ "$GUEST_INDEX" = 0 ]; then
  step write-both-sha256 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=12 oflag=direct status=none
fi
barrier written-sha256 || die "barrier written-sha256"

# --- verify-alg and csums-alg set on the live connection -------------------
# (P_SYNC_PARAM: the peer adopts them, as 8.4's receive_SyncParam does.)
if [ "$GUEST_INDEX" = 0 ]; then
  step live-verify-alg "$S" net-options "$LOCAL" "$PEER" --verify-alg=sha256 --csums-alg=crc32c
fi
barrier sync-algs || die "barrier sync-algs"
if [ "$GUEST_INDEX" = 1 ]; then
  step verify-alg-adopted wait_kernel_log 1 30 'using verify-alg: "sha256"'
  step csums-alg-adopted wait_kernel_log 1 30 'using csums-alg: "crc32c"'
  step show-adopted sh -c "\"$S\" show r0 | grep 'verify-alg.*sha256'"
else
  # The first 4 MiB (half of them written here): verify reads 4 KiB at a
  # time, slow under TCG.
  step verify-with-sha256 "$S" verify 0 --stop=4M
  # 8.4's ERR_VERIFY_RUNNING: not while the verify uses it.
  step verify-alg-change-refused expect_fail "$S" net-options "$LOCAL" "$PEER" --verify-alg=crc32c
fi
step verify-done wait_verify_done 1 120
step verify-found-nothing sh -c "! dmesg | grep 'Online verify found'"
step still-connected wait_synced 30
step no-new-failure test "$(kernel_log_count 'integrity check FAILED')" = "$failures"
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0

down_with_equal_data
finish
