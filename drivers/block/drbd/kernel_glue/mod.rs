//! The one layer of `unsafe` in rdrbd.
//!
//! Small safe wrappers, shaped like the `kernel` crate's own, around the
//! kernel APIs that the 6.12 `kernel` crate lacks: block devices and bios,
//! generic netlink, procfs, keyed hashes, wait queues that interrupt
//! context can wake. Everything above this module is safe Rust. Where an
//! API is a static inline, a macro or a static table, the wrapper goes
//! through the C shim (`drbd_shim.c`), declared in [`shim`].

pub(crate) mod block;
pub(crate) mod crypto;
pub(crate) mod faults;
pub(crate) mod genl;
pub(crate) mod net;
pub(crate) mod peer_write;
pub(crate) mod procfs;
pub(crate) mod thread;
pub(crate) mod umh;
pub(crate) mod wait;
mod shim;

/// Milliseconds of the monotonic clock: the time base of every timer and
/// timeout in the driver.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(kernel::time::Ktime::ktime_get().to_ms()).unwrap_or(0)
}

/// A random 64-bit value (`get_random_u64`), e.g. for new data UUIDs.
pub(crate) fn random_u64() -> u64 {
    // SAFETY: get_random_u64 may be called from any context.
    unsafe { shim::rdrbd_random_u64() }
}
