#!/usr/bin/env bash
# Builds build/initramfs.cpio.gz: a busybox-only initramfs whose /init mounts the
# host root read-only over 9p with a tmpfs overlay on top, chroots into it and
# runs one guest test script (named on the kernel command line). Every tool the
# tests use (bash, mkfs.ext4, fio, iproute2, drbd-utils, our build output) is
# the host's, so the initramfs stays tiny and never needs rebuilding for them.
#
# Kernel command line read by /init and the stage-2 script:
#   rdrbd.script=PATH   guest test script (a host path, visible via 9p)
#   rdrbd.root=PATH     repo root on the host          -> $RDRBD_ROOT
#   rdrbd.guest=I       index of this guest, 0-based   -> $GUEST_INDEX
#   rdrbd.nguests=N     guests in this run             -> $NGUESTS
#   rdrbd.test=NAME     test name                      -> $TEST_NAME
#   rdrbd.timeout=S     host-side timeout in seconds   -> $TEST_TIMEOUT
#   rdrbd.boot=B        index of this boot, 0-based    -> $BOOT_INDEX
#   rdrbd.nboots=N      boots in this run (same disks) -> $NBOOTS
#   rdrbd.drbd_ko=PATH, rdrbd.drbdsetup=PATH, rdrbd.drbdmeta=PATH
#                       override $DRBD_KO / $DRBDSETUP / $DRBDMETA (default:
#                       our build in $RDRBD_ROOT/build/out; drbdmeta falls
#                       back to Debian's /usr/sbin/drbdmeta, see lib.sh)
#   rdrbd.modules=PATH  modules_install staging of the booted kernel (default
#                       $RDRBD_ROOT/build/modules; the fast twin's is
#                       build/modules-fast)
# 9p mount tags provided by scripts/guest-run.py: hostroot (ro), results, shared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/initramfs.cpio.gz"
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$busybox" ] || { echo "make-initramfs: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
# A dynamically linked busybox would need the host's libc inside the initramfs.
if grep -qa '/lib64/ld-linux' "$busybox"; then   # the ELF interpreter path
  echo "make-initramfs: $busybox is dynamically linked (need busybox-static)" >&2; exit 1
fi

mkdir -p "$root/build"
stage=$(mktemp -d)
chmod 755 "$stage"   # becomes the rootfs: mktemp makes it 0700
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,mnt/host,mnt/rw,newroot,tmp}
cp "$busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
# The kernel opens /dev/console before /init runs and before devtmpfs is
# mounted: without this node init would start with no stdin/stdout.
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3

# The mounts of stage 1, one `mount -a -T FILE` per pass (see /init).
mkdir -p "$stage/etc"
cat > "$stage/etc/fstab.host" <<'EOF'
proc     /proc       proc   defaults 0 0
hostroot /mnt/host   9p     trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro 0 0
rw       /mnt/rw     tmpfs  mode=0755 0 0
EOF
cat > "$stage/etc/fstab.newroot" <<'EOF'
proc     /newroot/proc    proc     defaults 0 0
sysfs    /newroot/sys     sysfs    defaults 0 0
devtmpfs /newroot/dev     devtmpfs defaults 0 0
tmp      /newroot/tmp     tmpfs    mode=1777 0 0
run      /newroot/run     tmpfs    mode=0755 0 0
results  /newroot/results 9p       trans=virtio,version=9p2000.L,msize=262144 0 0
shared   /newroot/shared  9p       trans=virtio,version=9p2000.L,msize=262144 0 0
EOF
cat > "$stage/etc/fstab.dev" <<'EOF'
shm      /newroot/dev/shm tmpfs    mode=1777 0 0
devpts   /newroot/dev/pts devpts   defaults 0 0
EOF

# ---------------------------------------------------------------------------
# Stage 1 (PID 1, busybox): mounts, then runs stage 2 in the chroot, then
# reboots. PID 1 must never exit: that would panic the kernel.
cat > "$stage/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin

say() { echo "rdrbd-init: $*"; }
die() {
  say "FATAL: $*"
  # Leave a trace for the host if the results share is mounted.
  [ -d /newroot/results ] && { echo 125 > /newroot/results/rc; dmesg > /newroot/results/dmesg.txt; } 2>/dev/null
  sync; reboot -f; sleep 3600
}

# Every process costs about 0.1 s here on the debugging kernel, and every
# guest boot pays them: the mounts go in three `mount -a` passes over fstab
# files written below, not one `mount` each.
# Host root, read-only; the overlay makes it writable (in RAM) for the guest.
# cache=loose: the host side does not change during a test, and caching
# saves ~3 s per test on exec and lookups over 9p.
mount -a -T /etc/fstab.host \
  || die "cannot mount the host root over 9p (NET_9P_VIRTIO/9P_FS, -fsdev hostroot?) or a tmpfs"
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot \
  || die "cannot mount the overlay (OVERLAY_FS?)"

# proc, sys, dev; fresh, guest-local /tmp and /run (the host's contents must
# not leak in); the writable shares: this guest's results, and a folder
# common to all guests.
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/results /newroot/shared
mount -a -T /etc/fstab.newroot \
  || die "cannot mount proc, sysfs, devtmpfs, /tmp, /run or the results and shared folders"
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -a -T /etc/fstab.dev || say "no /dev/shm or /dev/pts (DEVPTS?)"
# A checkout under /tmp or /run (a CI clone may live there) must stay
# visible through those fresh mounts: bind it back from the host share.
read -r cmdline < /newroot/proc/cmdline
root=""
for w in $cmdline; do case "$w" in rdrbd.root=*) root=${w#*=} ;; esac; done
case "$root" in
  /tmp/*|/run/*) mkdir -p "/newroot$root" && mount -o bind "/mnt/host$root" "/newroot$root" \
                   || die "cannot expose $root in the guest" ;;
esac

cp /stage2.sh /newroot/run/rdrbd-stage2.sh
chroot /newroot /bin/bash /run/rdrbd-stage2.sh </dev/console >/dev/console 2>&1
say "stage 2 exited with $?"
sync
reboot -f
sleep 3600
EOF
chmod 755 "$stage/init"

# ---------------------------------------------------------------------------
# Stage 2 (bash inside the chroot, host userland): modules, network, env, run
# the test script, collect results. Runs as a child of PID 1.
cat > "$stage/stage2.sh" <<'EOF'
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LC_ALL=C
# Stage 2 starts no process it can do without: on the debugging kernel each
# one costs about a quarter of a second, and every guest boot pays them.
say() { local up; read -r up _ < /proc/uptime; echo "rdrbd-init: [$up] $*"; }
say "stage 2 starting"

# --- kernel command line -------------------------------------------------
SCRIPT="" RDRBD_ROOT="" DRBD_KO="" DRBDSETUP="" DRBDMETA="" MODULES="" GUEST_INDEX=0 NGUESTS=1 TEST_NAME="" TEST_TIMEOUT=600
BOOT_INDEX=0 NBOOTS=1
read -r cmdline < /proc/cmdline
for w in $cmdline; do
  case "$w" in
    rdrbd.script=*)  SCRIPT=${w#*=} ;;
    rdrbd.root=*)    RDRBD_ROOT=${w#*=} ;;
    rdrbd.guest=*)   GUEST_INDEX=${w#*=} ;;
    rdrbd.nguests=*) NGUESTS=${w#*=} ;;
    rdrbd.test=*)    TEST_NAME=${w#*=} ;;
    rdrbd.timeout=*) TEST_TIMEOUT=${w#*=} ;;
    rdrbd.boot=*)    BOOT_INDEX=${w#*=} ;;
    rdrbd.nboots=*)  NBOOTS=${w#*=} ;;
    rdrbd.drbd_ko=*) DRBD_KO=${w#*=} ;;
    rdrbd.drbdsetup=*) DRBDSETUP=${w#*=} ;;
    rdrbd.drbdmeta=*) DRBDMETA=${w#*=} ;;
    rdrbd.modules=*) MODULES=${w#*=} ;;
  esac
done
[ -n "$TEST_NAME" ] || TEST_NAME=$(basename "$SCRIPT" .sh)
export RDRBD_ROOT GUEST_INDEX NGUESTS TEST_NAME TEST_TIMEOUT BOOT_INDEX NBOOTS
export RESULTS=/results SHARED=/shared
# Overridable to run a test against another module or drbdsetup (interop).
export DRBD_KO=${DRBD_KO:-$RDRBD_ROOT/build/out/drbd.ko}
export DRBDSETUP=${DRBDSETUP:-$RDRBD_ROOT/build/out/bin/drbdsetup}
[ -z "$DRBDMETA" ] || export DRBDMETA   # else lib.sh picks ours or Debian's
echo "guest$GUEST_INDEX" > /proc/sys/kernel/hostname 2>/dev/null || true
# busybox (static, from busybox-static) for ip and mount: the first start of
# iproute2's ip or util-linux's mount loads their libraries over 9p, about a
# second per boot on the debugging kernel.
ip() { /bin/busybox ip "$@"; }
/bin/busybox mkdir -p /run/lock /var/lock /root

# --- modules of the in-tree kernel (for `modprobe drbd`, the C driver) ----
setup_modules() {
  local rel src
  read -r rel < /proc/sys/kernel/osrelease
  src=${MODULES:-$RDRBD_ROOT/build/modules}/lib/modules
  if [ ! -d "$src/$rel" ]; then
    say "no $src/$rel: modprobe of in-tree modules will not work"
    return
  fi
  [ -d /lib/modules ] || mkdir -p /lib/modules
  # scripts/build-kernel.sh stages the modules with modules_install, which
  # runs depmod: the index is there and current unless depmod was missing.
  if [ -f "$src/$rel/modules.dep.bin" ]; then
    /bin/busybox mount -o bind "$src" /lib/modules
  else
    # The staging tree is read-only here: copy it to RAM to run depmod.
    say "modules.dep missing: copying modules and running depmod"
    mount -t tmpfs -o mode=0755 modules /lib/modules
    cp -a "$src/$rel" /lib/modules/
    depmod -a "$rel"
  fi
}
setup_modules
say "modules ready"

# --- network: one point-to-point link per guest pair ------------------------
# Pair p (1-based, in order (0,1),(0,2),..,(1,2),..) is 169.254.p.0/24 and guest
# i has 169.254.p.(i+1) on it; the NIC is found by the MAC that
# scripts/guest-run.py assigns: 52:54:00:d8:<p>:<i> (hex).
setup_network() {
  local a b p=0 me=$GUEST_INDEX peer mac f addr ifname first=""
  ip link set lo up
  PEERS=""
  for ((a = 0; a < NGUESTS; a++)); do
    for ((b = a + 1; b < NGUESTS; b++)); do
      p=$((p + 1))
      if [ "$a" = "$me" ]; then peer=$b; elif [ "$b" = "$me" ]; then peer=$a; else continue; fi
      mac=$(printf '52:54:00:d8:%02x:%02x' "$p" "$me")
      ifname=""
      for f in /sys/class/net/*/address; do
        read -r addr < "$f" || continue
        if [ "$addr" = "$mac" ]; then ifname=${f%/address}; ifname=${ifname##*/}; fi
      done
      if [ -z "$ifname" ]; then say "no NIC with MAC $mac for the link to guest $peer"; continue; fi
      ip addr add "169.254.$p.$((me + 1))/24" dev "$ifname"
      ip link set "$ifname" up
      export "PEER_ADDR_$peer=169.254.$p.$((peer + 1))" "LOCAL_ADDR_$peer=169.254.$p.$((me + 1))" "PEER_IF_$peer=$ifname"
      PEERS="$PEERS $peer"
      if [ -z "$first" ]; then
        first=$peer
        export PEER_ADDR="169.254.$p.$((peer + 1))" LOCAL_ADDR="169.254.$p.$((me + 1))" PEER_IF=$ifname
      fi
    done
  done
  export PEERS=${PEERS# }
}
setup_network
say "network ready"

# --- near the host's timeout, dump blocked tasks so a hang can be diagnosed -
if [ -w /proc/sysrq-trigger ] && [ "$TEST_TIMEOUT" -gt 60 ]; then
  (sleep $((TEST_TIMEOUT - 30)); say "test about to time out: blocked tasks follow"; echo w > /proc/sysrq-trigger) &
fi

# --- run the test -------------------------------------------------------------
say "guest $GUEST_INDEX/$NGUESTS, boot $BOOT_INDEX/$NBOOTS, running $SCRIPT (kernel $(uname -r))"
for v in $(compgen -e); do   # sorted by bash
  case $v in RDRBD_ROOT|GUEST_INDEX|NGUESTS|BOOT_INDEX|NBOOTS|TEST_NAME|PEERS|PEER_*|LOCAL_ADDR*) echo "rdrbd-init:   $v=${!v}" ;; esac
done
cd /tmp
set -o pipefail
# Userspace output is prefixed on the console so the host can tell it apart
# from kernel messages when scanning the console log for splats.
bash "$SCRIPT" </dev/null 2>&1 | tee /results/output.txt | sed -u "s/^/[g$GUEST_INDEX] /"
rc=${PIPESTATUS[0]}
say "script exited with $rc"
[ "$rc" = 0 ] || touch "/shared/abort.guest$GUEST_INDEX"   # lets peers' barriers fail fast
dmesg > /results/dmesg.txt
echo "$rc" > /results/rc
sync
EOF

(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -9n > "$out.tmp"
mv "$out.tmp" "$out"
echo "make-initramfs: $out ($(stat -c %s "$out") bytes)"
