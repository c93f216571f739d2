#!/usr/bin/env bash
# Installs, idempotently, everything rdrbd needs to build and test on Debian 12:
# the kernel source, the Debian Rust toolchain that builds kernel code, LLVM 14,
# QEMU, the guest userland, the reference drbd-utils and the Pacemaker agent's
# OCF shell library (resource-agents). Safe to run again.
set -euo pipefail

PACKAGES=(
  linux-source-6.12 rustc-web rust-web-src
  clang lld llvm libclang-dev
  bc flex bison libelf-dev libssl-dev cpio xz-utils lz4 kmod
  qemu-system-x86 busybox-static e2fsprogs fio drbd-utils resource-agents rsync
  bash-builtins
)
BINDGEN_VERSION=0.69.5

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

bindgen="$HOME/.cargo/bin/bindgen"
if ! "$bindgen" --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
  echo "install-deps: installing bindgen-cli $BINDGEN_VERSION"
  cargo install --locked bindgen-cli --version "$BINDGEN_VERSION"
fi
echo "install-deps: all present"
