#!/usr/bin/env bash
# Builds the guest kernel (tinyconfig + scripts/kernel.config) once per
# (kernel source version, fragment) pair, in a cache outside the git tree, and
# points build/kernel at it. Output: build/kernel (the O= tree for M= builds),
# build/out/bzImage, build/modules (modules_install staging for the guests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/toolchain.sh"

src_version=$(dpkg-query -W -f='${Version}' "linux-source-$KERNEL_VERSION")
key=$( (echo "$src_version"; cat "$root/scripts/kernel.config"; /usr/bin/rustc --version) | sha256sum | cut -c1-16)
cache="$RDRBD_CACHE/kernel-$key"
jobs=$(( $(nproc) + 1 ))

# One build at a time: a second caller (another make, a test) waits here
# instead of building into the same tree concurrently.
mkdir -p "$RDRBD_CACHE"
exec 9>"$RDRBD_CACHE/.build.lock"
flock 9

if [ ! -f "$cache/.rdrbd-complete" ]; then
  echo "build-kernel: building Linux $src_version into $cache (takes several minutes)"
  mkdir -p "$RDRBD_CACHE"
  if [ ! -f "$RDRBD_CACHE/src-$src_version/Makefile" ]; then
    rm -rf "$RDRBD_CACHE/src-$src_version.tmp"
    mkdir -p "$RDRBD_CACHE/src-$src_version.tmp"
    tar -xf "$KERNEL_TARBALL" -C "$RDRBD_CACHE/src-$src_version.tmp" --strip-components=1
    mv "$RDRBD_CACHE/src-$src_version.tmp" "$RDRBD_CACHE/src-$src_version"
  fi
  ksrc="$RDRBD_CACHE/src-$src_version"
  # A tree without the completion mark may be half-written: start afresh.
  rm -rf "$cache"
  mkdir -p "$cache"
  make -s -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" tinyconfig
  (cd "$cache" && "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$cache" .config "$root/scripts/kernel.config" >/dev/null)
  make -s -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" olddefconfig
  # merge_config drops options whose dependencies are missing without failing: check.
  bad=0
  while IFS= read -r line; do
    case "$line" in CONFIG_*=y|CONFIG_*=m)
      grep -qx "$line" "$cache/.config" || { echo "build-kernel: $line did not stick"; bad=1; } ;;
    esac
  done < "$root/scripts/kernel.config"
  [ $bad = 0 ] || { echo "build-kernel: config fragment not applied"; exit 1; }
  make -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" -j"$jobs" bzImage modules > "$cache/build.log" 2>&1 \
    || { tail -40 "$cache/build.log"; exit 1; }
  rm -rf "$cache/modules-staging"
  make -s -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" INSTALL_MOD_PATH="$cache/modules-staging" modules_install
  touch "$cache/.rdrbd-complete"
fi

mkdir -p "$root/build/out"
ln -sfn "$cache" "$root/build/kernel"
ln -sfn "$cache/modules-staging" "$root/build/modules"
cp "$cache/arch/x86/boot/bzImage" "$root/build/out/bzImage"
echo "build-kernel: $(cat "$cache/include/config/kernel.release") ready at build/kernel"
