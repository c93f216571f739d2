#!/bin/bash
# data-integrity-alg crc32c with the in-tree C DRBD 8.4 driver (guest 1,
# drbdsetup-84) as the peer of rdrbd (guest 0), protocol C; every block
# either way carries a digest the receiver checks:
# - the C node is forced Primary: the full sync's P_RS_DATA_REPLY come
#   from it (it does not write as Primary: on the debug kernel its worker
#   then warns "do not call blocking ops when !TASK_RUNNING" from
#   maybe_send_barrier, a bug of its own that fails the splat check);
# - rdrbd Primary writes while the C node is away and is SyncSource when it
#   is back (P_RS_DATA_REPLY sent from the read pages), then writes
#   connected (P_DATA);
# - rdrbd changes to sha256 with net-options on the live connection: the C
#   node logs "peer data-integrity-alg: sha256" and checks the writes after
#   it with sha256; then the C node changes too.
# No "integrity check FAILED" on either side; both data areas match.
# On the fast kernel: its time goes into moving data; the digest checks
# and their failure path run on the debug kernel in 62.
# kernel: fast
# guests: 2
# disks: 32M
# timeout: 600
# budget: 90
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
attach_mixed_pair || exit 1

LOCAL="ipv4:$LOCAL_ADDR:7789" PEER="ipv4:$PEER_ADDR:7789"
connect() { "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5 "$@"; }

step connect connect --data-integrity-alg=crc32c || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"

# --- the C node sends: the full sync ----------------------------------------
if [ "$GUEST_INDEX" = 1 ]; then
  step c-force-primary "$S" primary 0 --force
fi
step full-sync-from-c wait_synced 300 || { dmesg | grep -i drbd | tail -30; exit 1; }
[ "$GUEST_INDEX" = 1 ] && step c-secondary "$S" secondary 0
barrier c-synced || die "barrier c-synced"

# --- rdrbd sends: a resync, then writes -----------------------------------
[ "$GUEST_INDEX" = 1 ] && step c-disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier c-away || die "barrier c-away"
if [ "$GUEST_INDEX" = 0 ]; then
  step lost-peer wait_cs WFConnection 30
  step primary "$S" primary 0
  step write-while-away dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=8 oflag=direct status=none
fi
barrier written-away || die "barrier written-away"
[ "$GUEST_INDEX" = 1 ] && step c-reconnect connect --data-integrity-alg=crc32c
step resync-to-c wait_synced 120 || { dmesg | grep -i drbd | tail -30; exit 1; }
if [ "$GUEST_INDEX" = 0 ]; then
  step we-were-source sh -c "dmesg | grep 'Began resync as SyncSource'"
  step write-connected dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=12 oflag=direct status=none
fi
barrier written-connected || die "barrier written-connected"

# --- a live change to sha256 ------------------------------------------------
if [ "$GUEST_INDEX" = 0 ]; then
  step live-sha256 "$S" net-options "$LOCAL" "$PEER" --data-integrity-alg=sha256
  step write-sha256 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=16 oflag=direct status=none
fi
barrier changed-0 || die "barrier changed-0"
if [ "$GUEST_INDEX" = 1 ]; then
  step c-saw-change sh -c "dmesg | grep 'peer data-integrity-alg: sha256'"
  step c-live-sha256 "$S" net-options "$LOCAL" "$PEER" --data-integrity-alg=sha256
fi
barrier changed-1 || die "barrier changed-1"
[ "$GUEST_INDEX" = 0 ] && step write-both-sha256 dd if=/dev/urandom of=/dev/drbd0 bs=1M count=2 seek=20 oflag=direct status=none
barrier written-sha256 || die "barrier written-sha256"
step still-connected wait_synced 30
step no-integrity-failure sh -c "! dmesg | grep 'integrity check FAILED'"
[ "$GUEST_INDEX" = 0 ] && step secondary "$S" secondary 0

down_with_equal_data
finish
