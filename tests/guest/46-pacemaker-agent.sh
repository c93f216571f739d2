#!/bin/bash
# Pacemaker's resource agent, ocf:linbit:drbd from Debian's drbd-utils 9.22,
# drives rdrbd through our drbdadm and drbdsetup, as a cluster would: this
# script plays Pacemaker on two nodes (the OCF environment of a promotable
# clone with notify, a crm_master that keeps the promotion score in a file,
# a crm_resource that knows nothing).
#   probe (not running) -> start on both (attach, connect) -> monitor (slave,
#   promotion score set) -> guest 0 promote (monitor: master) and writes ->
#   guest 0 demote -> guest 1 promote, reads the same data -> guest 1 demote
#   -> stop on both (not running, no promotion score).
# Every action's OCF exit code is checked against what Pacemaker expects.
# Runs on the non-debug twin kernel (tests/README.md, "Which kernel"): its
# time goes into starting the agent's shell processes (each a quarter of a
# second on the debug kernel); the same up/primary/secondary/down paths run
# on the debug kernel in 13 and 42.
# kernel: fast
# guests: 2
# disks: 64M
# timeout: 600
# budget: 50
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_artifacts
[ "$NGUESTS" = 2 ] || die "needs 2 guests"
[ -x /usr/lib/ocf/resource.d/linbit/drbd ] || die "ocf:linbit:drbd missing (drbd-utils)"
[ -f /usr/lib/ocf/lib/heartbeat/ocf-shellfuncs ] || die "ocf-shellfuncs missing (apt-get install resource-agents)"

# The node names the agent and drbdadm see (uname -n).
hostname "node$GUEST_INDEX"
if [ "$GUEST_INDEX" = 0 ]; then ADDR0=$LOCAL_ADDR ADDR1=$PEER_ADDR; else ADDR0=$PEER_ADDR ADDR1=$LOCAL_ADDR; fi
cat > /etc/drbd.conf <<EOF
global { usage-count no; }
resource r0 {
  protocol C;
  net { ping-timeout 20; socket-check-timeout 5; }
  on node0 {
    device /dev/drbd0;
    disk /dev/vda;
    meta-disk internal;
    address $ADDR0:7789;
  }
  on node1 {
    device /dev/drbd0;
    disk /dev/vda;
    meta-disk internal;
    address $ADDR1:7789;
  }
}
EOF

# Pacemaker's side: the cluster tools the agent calls, as stubs.
CRM=/tmp/crm
mkdir -p "$CRM"
cat > "$CRM/crm_master" <<'EOF'
#!/bin/bash
# crm_master [-q] [-Q] -l reboot (-G | -v SCORE | -D): the node's promotion
# score for this resource, kept in a file.
score=/tmp/crm/master-score
while [ $# -gt 0 ]; do
  case $1 in
    -G) [ -f $score ] && cat $score; exit 0 ;;
    -v) echo "$2" > $score; echo "crm_master -v $2" >> /tmp/crm/log; exit 0 ;;
    -D) rm -f $score; echo "crm_master -D" >> /tmp/crm/log; exit 0 ;;
  esac
  shift
done
EOF
printf '#!/bin/sh\nexit 0\n' > "$CRM/crm_resource"
chmod +x "$CRM/crm_master" "$CRM/crm_resource"

# Our tools come first: the agent calls plain `drbdadm` and `drbdsetup`.
export PATH="$CRM:$(dirname "$DRBDSETUP"):/usr/sbin:/usr/bin:/sbin:/bin"
export HA_SBIN_DIR=$CRM OCF_ROOT=/usr/lib/ocf
export OCF_RESOURCE_INSTANCE=drbd_r0 OCF_RESKEY_drbd_resource=r0
export OCF_RESKEY_CRM_meta_clone_max=2 OCF_RESKEY_CRM_meta_clone_node_max=1
export OCF_RESKEY_CRM_meta_master_max=1 OCF_RESKEY_CRM_meta_master_node_max=1
export OCF_RESKEY_CRM_meta_notify=true OCF_RESKEY_crm_feature_set=3.16.2
export OCF_RESKEY_CRM_meta_timeout=120000

# ra ACTION WANT: runs the agent's ACTION, passes when it exits WANT
# (0 success/slave, 7 not running, 8 master).
ra() {
  local action=$1 want=$2 rc
  OCF_RESKEY_CRM_meta_interval=${INTERVAL:-0} /usr/lib/ocf/resource.d/linbit/drbd "$action" 2>&1 | tail -20
  rc=${PIPESTATUS[0]}
  echo "ocf:linbit:drbd $action: exit $rc, want $want; promotion score: $(cat $CRM/master-score 2>/dev/null || echo none)"
  [ "$rc" = "$want" ]
}
score_is() {
  local s; s=$(cat $CRM/master-score 2>/dev/null || echo none)
  echo "promotion score $s, want $1"
  [ "$s" = "$1" ]
}

ours() { echo "drbdadm: $(command -v drbdadm), drbdsetup: $(command -v drbdsetup)"; [ "$(command -v drbdsetup)" = "$DRBDSETUP" ]; }
step agent-uses-our-tools ours || exit 1
step insmod load_drbd || exit 1
step probe ra monitor 7
step create-md drbdadm --force create-md r0 || exit 1
barrier created || die "barrier created"
step start ra start 0 || exit 1
step connected wait_cs Connected 90 || exit 1
barrier connected || die "barrier connected"
# Fresh metadata on both sides: skip the initial sync, as a new cluster
# with empty disks would (drbdadm new-current-uuid --clear-bitmap).
[ "$GUEST_INDEX" = 0 ] && step skip-initial-sync drbdadm -- --clear-bitmap new-current-uuid r0
step both-uptodate wait_synced 60 || exit 1
barrier uptodate || die "barrier uptodate"
INTERVAL=20000 step monitor-slave ra monitor 0
# UpToDate with an UpToDate peer: "as good as it gets" (10000).
step score-uptodate score_is 10000

if [ "$GUEST_INDEX" = 0 ]; then
  step promote ra promote 0
  INTERVAL=10000 step monitor-master ra monitor 8
  dd if=/dev/urandom of=/tmp/blob bs=1M count=8 status=none
  step write-through-primary dd if=/tmp/blob of=/dev/drbd0 bs=1M oflag=direct status=none
  share_put blob "$(md5sum < /tmp/blob)"
  step demote ra demote 0
  INTERVAL=20000 step monitor-after-demote ra monitor 0
fi
barrier demoted || die "barrier demoted"
if [ "$GUEST_INDEX" = 1 ]; then
  step promote ra promote 0
  INTERVAL=10000 step monitor-master ra monitor 8
  same_blob() {
    local got want; got=$(dd if=/dev/drbd0 bs=1M count=8 iflag=direct status=none | md5sum) want=$(share_get blob)
    echo "read $got, written on node0 $want"
    [ "$got" = "$want" ]
  }
  step data-on-new-primary same_blob
  step demote ra demote 0
fi
barrier done || die "barrier done"
step stop ra stop 0
step monitor-stopped ra monitor 7
step score-removed score_is none
echo "crm_master calls:"; cat $CRM/log 2>/dev/null
step rmmod rmmod drbd
step kernel-log-clean dmesg_clean
finish
