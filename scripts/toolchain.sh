# Sourced by the build scripts: the one toolchain that builds kernel code.
# The rustup rustc first on PATH has no rust-src and must never build kernel
# code, so every kernel and M= build gets these variables.
KERNEL_VERSION=6.12
KERNEL_TARBALL=/usr/src/linux-source-${KERNEL_VERSION}.tar.xz
KMAKE_VARS=(LLVM=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc "BINDGEN=$HOME/.cargo/bin/bindgen" HOSTRUSTC=/usr/bin/rustc)
# Built kernels live outside the git tree so a fresh clone (CI) reuses them.
RDRBD_CACHE=${RDRBD_CACHE:-/var/cache/rdrbd}
