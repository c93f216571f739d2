#!/bin/bash
# Checksum-based resync (csums-alg crc32c) between two rdrbd nodes, protocol
# C: guest 0 is SyncSource, guest 1 SyncTarget.
# - Full initial sync of fresh (zeroed) disks: every block has equal
#   checksums, so nothing but digests crosses ("100 % had equal checksums").
# - Guest 0 writes 8 MiB of random data while connected; guest 1 disconnects;
#   guest 0 writes the same 8 MiB again (out of sync, but equal) and 1 MiB of
#   new data. The resync after reconnecting finds the 8 MiB equal: eliminated
#   >= 8192K, transferred about 1 MiB, and guest 1 receives about 1 MiB (nr).
# - `invalidate` on guest 1: a full resync of equal disks, 100 % eliminated.
# - Connecting with a different csums-alg (sha256 on guest 1) is refused on
#   both sides ("Different csums-alg settings", StandAlone).
# Both data areas match at the end.
# Mostly moves data (full and bitmap resyncs with checksums of every block): runs on the non-debug twin
# kernel (tests/README.md, "Which kernel").
# kernel: fast
# guests: 2
# disks: 64M
# timeout: 900
# budget: 40
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes

connect() { "$S" connect r0 "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789" --protocol=C --ping-timeout=20 --socket-check-timeout=5 "$@"; }
disconnect() { "$S" disconnect "ipv4:$LOCAL_ADDR:7789" "ipv4:$PEER_ADDR:7789"; }

step connect connect --csums-alg=crc32c || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

# --- full initial sync of two zeroed disks --------------------------------
[ "$GUEST_INDEX" = 0 ] && step force-primary "$S" primary 0 --force
step full-sync wait_synced 600 || { dmesg | grep drbd | tail -30; exit 1; }
step full-sync-summary wait_summaries 1 30
step full-sync-all-equal expect_summary 1 100 60000 0
barrier synced || die "barrier synced"

# --- the same data written again while disconnected -------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step make-data dd if=/dev/urandom of=/tmp/data8m bs=1M count=8 status=none
  step write-connected dd if=/tmp/data8m of=/dev/drbd0 bs=1M seek=8 oflag=direct status=none
fi
barrier written || die "barrier written"
[ "$GUEST_INDEX" = 1 ] && step disconnect disconnect
barrier disconnected || die "barrier disconnected"
if [ "$GUEST_INDEX" = 0 ]; then
  step lost-peer wait_cs WFConnection 30
  step rewrite-same dd if=/tmp/data8m of=/dev/drbd0 bs=1M seek=8 oflag=direct status=none
  step write-new dd if=/dev/urandom of=/dev/drbd0 bs=1M count=1 seek=40 oflag=direct status=none
  step oos-9M test "$(proc_field oos)" = 9216
fi
barrier written2 || die "barrier written2"
nr_before=$(proc_field nr)
[ "$GUEST_INDEX" = 1 ] && step reconnect connect --csums-alg=crc32c
step resync wait_synced 300 || { dmesg | grep drbd | tail -30; exit 1; }
step resync-summary wait_summaries 2 30
# 8 MiB equal, 1 MiB new: 88 %, at most the new MiB (and a block either
# side of it) transferred.
step resync-eliminated expect_summary 2 85 8192 1100
if [ "$GUEST_INDEX" = 1 ]; then
  received() {
    local kb=$(( $(proc_field nr) - nr_before ))
    echo "received ${kb} KiB during the resync"
    [ "$kb" -ge 1024 ] && [ "$kb" -le 1100 ]
  }
  step received-only-new received
fi
barrier resynced || die "barrier resynced"

# --- invalidate the target: every block out of sync, all equal -----------
if [ "$GUEST_INDEX" = 0 ]; then
  step secondary "$S" secondary 0
fi
barrier secondary || die "barrier secondary"
[ "$GUEST_INDEX" = 1 ] && step invalidate "$S" invalidate 0
# (Until the peer's state change arrives both may still look synced: wait
# for the summary of this resync first.)
step invalidate-summary wait_summaries 3 600 || { dmesg | grep drbd | tail -30; exit 1; }
step invalidate-resync wait_synced 600
step invalidate-all-equal expect_summary 3 100 60000 0
barrier invalidated || die "barrier invalidated"

# --- different csums-alg: refused at connect -------------------------------
[ "$GUEST_INDEX" = 1 ] && step disconnect-again disconnect
barrier disconnected2 || die "barrier disconnected2"
if [ "$GUEST_INDEX" = 1 ]; then
  step connect-sha256 connect --csums-alg=sha256
fi
step mismatch-standalone wait_cs StandAlone 90
step mismatch-logged sh -c "dmesg | grep 'Different csums-alg settings'"
barrier refused || die "barrier refused"

down_with_equal_data
finish
