#!/usr/bin/env bash
# Builds a guest kernel once per (kernel source version, fragments) pair, in a
# cache outside the git tree, and points the build tree at it.
#   scripts/build-kernel.sh [debug]  tinyconfig + scripts/kernel.config: the
#       debugging kernel most tests run on. Output: build/kernel (the O= tree
#       for M= builds), build/out/bzImage, build/modules (modules_install
#       staging for the guests).
#   scripts/build-kernel.sh fast     the same plus scripts/kernel-fast.config
#       (debugging off, release "<version>-fast"). Output: build/kernel-fast,
#       build/out/bzImage-fast, build/modules-fast.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/toolchain.sh"

flavour=${1:-debug}
case $flavour in
  debug) fragments=("$root/scripts/kernel.config") suffix="" ;;
  fast) fragments=("$root/scripts/kernel.config" "$root/scripts/kernel-fast.config") suffix="-fast" ;;
  *) echo "build-kernel: unknown flavour $flavour (debug or fast)" >&2; exit 2 ;;
esac

src_version=$(dpkg-query -W -f='${Version}' "linux-source-$KERNEL_VERSION")
key=$( (echo "$src_version"; cat "${fragments[@]}"; /usr/bin/rustc --version) | sha256sum | cut -c1-16)
cache="$RDRBD_CACHE/kernel-$key"
jobs=$(( $(nproc) + 1 ))

# One build at a time: a second caller (another make, a test) waits here
# instead of building into the same tree concurrently.
mkdir -p "$RDRBD_CACHE"
exec 9>"$RDRBD_CACHE/.build.lock"
flock 9

if [ ! -f "$cache/.rdrbd-complete" ]; then
  echo "build-kernel: building the $flavour Linux $src_version into $cache (takes several minutes)"
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
  (cd "$cache" && "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$cache" .config "${fragments[@]}" >/dev/null)
  make -s -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" olddefconfig
  # merge_config drops options whose dependencies are missing without failing:
  # check every option the merged fragments (the later one wins) switch on.
  declare -A want=()
  while IFS= read -r line; do
    case "$line" in CONFIG_*=*) want[${line%%=*}]=$line ;; esac
  done < <(cat "${fragments[@]}")
  bad=0
  for opt in "${!want[@]}"; do
    case "${want[$opt]}" in *=y|*=m)
      grep -qx "${want[$opt]}" "$cache/.config" || { echo "build-kernel: ${want[$opt]} did not stick"; bad=1; } ;;
    esac
  done
  [ $bad = 0 ] || { echo "build-kernel: config fragment not applied"; exit 1; }
  make -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" -j"$jobs" bzImage modules > "$cache/build.log" 2>&1 \
    || { tail -40 "$cache/build.log"; exit 1; }
  rm -rf "$cache/modules-staging"
  make -s -C "$ksrc" O="$cache" "${KMAKE_VARS[@]}" INSTALL_MOD_PATH="$cache/modules-staging" modules_install
  touch "$cache/.rdrbd-complete"
fi

mkdir -p "$root/build/out"
ln -sfn "$cache" "$root/build/kernel$suffix"
ln -sfn "$cache/modules-staging" "$root/build/modules$suffix"
cp "$cache/arch/x86/boot/bzImage" "$root/build/out/bzImage$suffix"
echo "build-kernel: $(cat "$cache/include/config/kernel.release") ready at build/kernel$suffix"
