#!/bin/bash
# read-balancing (issue #14): which reads the UpToDate peer serves while the
# Primary's own disk could (8.4's do_remote_read). Guest 0 is Primary over
# 4 MiB it wrote; for each policy it reads them back (O_DIRECT, 32 KiB
# requests) and checks the data and where it came from: "dr" (read from our
# disk) and "nr" (received from the peer) in /proc/drbd, in KiB:
# - prefer-local, when-congested-remote (no congestion on Linux 6.12, as in
#   the in-tree driver): all local;
# - prefer-remote: all from the peer;
# - 32K-striping: every other request (odd 32 KiB stripes) from the peer;
# - round-robin: local and peer by turns;
# - least-pending: idle, the read itself is one more local request in
#   flight than the peer has, so it goes to the peer (8.4's comparison);
# - prefer-remote with the peer disconnected: local again.
# drbdsetup show reports the policy. allow-two-primaries turned on over
# the live connection (P_PROTOCOL_UPDATE) is adopted by the rdrbd peer,
# and turned off again.
# On the fast kernel: its time goes into moving data (reads by each
# policy, resyncs); no error path.
# kernel: fast
# guests: 2
# disks: 32M
# timeout: 400
# budget: 80
set -uo pipefail
. "$(dirname "$0")/lib.sh"

two_rdrbd_nodes
connect_pair --ping-timeout=20 --socket-check-timeout=5 || exit 1
skip_initial_sync || exit 1

if [ "$GUEST_INDEX" = 0 ]; then
  step primary "$S" primary 0
  step make-data dd if=/dev/urandom of=/tmp/data bs=1M count=4 status=none
  step write-data dd if=/tmp/data of=/dev/drbd0 bs=1M oflag=direct status=none
  WANT=$(checksum_of /tmp/data)

  # read_with POLICY LOCAL_KIB PEER_KIB: reads the 4 MiB back under POLICY
  # and checks the data and how much came from each side.
  read_with() {
    "$S" disk-options 0 --read-balancing="$1" || return 1
    local dr0 nr0 dr1 nr1 sum
    dr0=$(proc_field dr) nr0=$(proc_field nr)
    dd if=/dev/drbd0 of=/tmp/back bs=32k count=128 iflag=direct status=none || return 1
    dr1=$(proc_field dr) nr1=$(proc_field nr)
    sum=$(checksum_of /tmp/back)
    echo "$1: local $((dr1 - dr0)) KiB, peer $((nr1 - nr0)) KiB, data $sum (want $WANT)"
    [ "$sum" = "$WANT" ] && [ $((dr1 - dr0)) = "$2" ] && [ $((nr1 - nr0)) = "$3" ]
  }
  step prefer-local read_with prefer-local 4096 0
  step when-congested-remote read_with when-congested-remote 4096 0
  step prefer-remote read_with prefer-remote 0 4096
  step show-policy sh -c "\"$S\" show r0 | grep 'read-balancing.*prefer-remote'"
  step striping-32k read_with 32K-striping 2048 2048
  step round-robin read_with round-robin 2048 2048
  step least-pending read_with least-pending 0 4096

  # Two Primaries allowed over the live connection: the rdrbd peer
  # resolves conflicting writes, so it is accepted, and the peer adopts it.
  two_primaries_live() {
    "$S" net-options "$LOCAL" "$PEER" --allow-two-primaries || return 1
    "$S" show r0 | grep -E 'allow-two-primaries\s+yes;' || return 1
    dmesg | grep 'allow-two-primaries' | tail -2
    "$S" net-options "$LOCAL" "$PEER" --allow-two-primaries=no
  }
  step two-primaries-live two_primaries_live
  step still-connected wait_cs Connected 5
fi
barrier read || die "barrier read"
# The Secondary read for the peer what guest 0 counted as received.
peer_served() { echo "dr:$(proc_field dr) KiB"; [ "$(proc_field dr)" -ge 10240 ]; }
[ "$GUEST_INDEX" = 1 ] && step peer-served peer_served
adopted_two_primaries() { dmesg | grep -E 'allow-two-primaries false -> true'; }
[ "$GUEST_INDEX" = 1 ] && step peer-adopted-two-primaries adopted_two_primaries
barrier counted || die "barrier counted"
[ "$GUEST_INDEX" = 1 ] && step disconnect "$S" disconnect "$LOCAL" "$PEER"
barrier disconnected || die "barrier disconnected"
if [ "$GUEST_INDEX" = 0 ]; then
  step lost-peer wait_cs WFConnection 30
  step prefer-remote-alone read_with prefer-remote 4096 0
  step back-to-local "$S" disk-options 0 --read-balancing=prefer-local
  step secondary "$S" secondary 0
fi
barrier alone || die "barrier alone"
[ "$GUEST_INDEX" = 1 ] && step reconnect "$S" connect r0 "$LOCAL" "$PEER" --protocol=C --ping-timeout=20 --socket-check-timeout=5
step reconnected wait_synced 60

down_with_equal_data
finish
