#!/bin/bash
# Checksum-based resync (csums-alg crc32c) with the in-tree C DRBD 8.4 driver
# (guest 1, drbdsetup-84) as the peer of rdrbd (guest 0), protocol C, both
# directions:
# - the C node is forced Primary on fresh (zeroed) disks: rdrbd is
#   SyncTarget and sends digests, the C node finds every block equal;
#   both log "100 % had equal checksums";
# - rdrbd Primary writes 8 MiB, the C node disconnects, rdrbd writes the
#   same 8 MiB again and 1 MiB of new data; after reconnecting rdrbd is
#   SyncSource: the C node sends digests, rdrbd answers the 8 MiB with
#   P_RS_IS_IN_SYNC and sends only the new MiB (the C node's nr grows by
#   1 MiB);
# - the C node reconnects with csums-alg sha256: both refuse
#   ("Different csums-alg settings") and stay StandAlone.
# Both data areas match at the end.
# (rdrbd used to close both sockets at once on refusing the C node's
# csums-alg, before the C node had read our parameters: it never logged the
# mismatch and kept retrying in WFConnection. rdrbd now lingers after a
# refused handshake until the peer closes, see drbd_conn.rs.)
# guests: 2
# disks: 64M
# timeout: 900
# budget: 150
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
attach_mixed_pair || exit 1

LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
connect() { "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 "$@"; }

step connect connect --csums-alg=crc32c || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

# --- C node SyncSource, rdrbd SyncTarget sending digests ------------------
[ "$GUEST_INDEX" = 1 ] && step c-force-primary "$S" primary 0 --force
step full-sync-from-c wait_synced 600 || { dmesg | grep -i drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 0 ] && step we-were-target sh -c "dmesg | grep 'Began resync as SyncTarget'"
step full-sync-summary wait_summaries 1 30
step full-sync-all-equal expect_summary 1 100 60000 0
[ "$GUEST_INDEX" = 1 ] && step c-secondary "$S" secondary 0
barrier synced || die "barrier synced"

# --- rdrbd SyncSource answering the C node's digests ---------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  step make-data dd if=/dev/urandom of=/tmp/data8m bs=1M count=8 status=none
  step write-connected dd if=/tmp/data8m of=/dev/drbd0 bs=1M seek=8 oflag=direct status=none
fi
barrier written || die "barrier written"
[ "$GUEST_INDEX" = 1 ] && step c-disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier disconnected || die "barrier disconnected"
if [ "$GUEST_INDEX" = 0 ]; then
  step lost-peer wait_cs WFConnection 30
  step rewrite-same dd if=/tmp/data8m of=/dev/drbd0 bs=1M seek=8 oflag=direct status=none
  step write-new dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=40 oflag=direct status=none
  step oos-9M test "$(proc_field oos)" = 9216
fi
barrier written2 || die "barrier written2"
[ "$GUEST_INDEX" = 1 ] && step c-reconnect connect --csums-alg=crc32c
step resync-to-c wait_synced 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 0 ] && step we-were-source sh -c "dmesg | grep 'Began resync as SyncSource'"
step resync-summary wait_summaries 2 30
step resync-eliminated expect_summary 2 85 8192 1100
if [ "$GUEST_INDEX" = 1 ]; then
  # The C driver starts its counters afresh with each connection.
  received() {
    local kb
    kb=$(proc_field nr)
    echo "the C node received ${kb} KiB during the resync"
    [ "$kb" -ge 1024 ] && [ "$kb" -le 1100 ]
  }
  step c-received-only-new received
fi
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0
barrier resynced || die "barrier resynced"

# --- different csums-alg: refused on both sides ----------------------------
[ "$GUEST_INDEX" = 1 ] && step c-disconnect-again "$S" disconnect "$LOCAL" "$PEER"
barrier disconnected2 || die "barrier disconnected2"
[ "$GUEST_INDEX" = 1 ] && step c-connect-sha256 connect --csums-alg=sha256
step mismatch-standalone wait_cs StandAlone 90
step mismatch-logged sh -c "dmesg | grep 'Different csums-alg settings'"
barrier refused || die "barrier refused"

down_with_equal_data
finish
